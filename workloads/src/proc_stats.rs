//! Readings of a process from Linux `/proc`, for the benchmarks: resident
//! memory and CPU time (all threads), so a benchmark can report memory per
//! connection and requests per CPU-second of the server it measures.

/// Linux reports /proc CPU times in USER_HZ, 100 on every mainstream arch.
const USER_HZ: f64 = 100.0;

/// A `kB` field of `/proc/<pid>/status` (`"VmRSS:"`, `"VmHWM:"`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds of a process, all threads together.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    #[allow(clippy::cast_precision_loss)] // ticks stay far below 2^52
    parse_cpu_ticks(&text).map(|ticks| ticks as f64 / USER_HZ)
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line; the command
/// name in parentheses may contain spaces, so count from its closing `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_after_a_command_name_with_spaces() {
        let stat =
            "1234 (tokio rt (w)) S 1 1234 1234 0 -1 4194560 100 0 0 0 300 25 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_a_kib_field() {
        let status = "Name:\ttwinkle\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(10240.0));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_uses_memory_and_some_cpu() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS:").is_some_and(|kib| kib > 0.0));
        assert!(cpu_seconds(me).is_some_and(|s| s >= 0.0));
    }
}
