//! The capacity model: what one pod is planned to serve when the TicketEvent
//! sets no `perPodRps`, derived from the project's own benchmarks
//! (BENCHMARKS.md, "Capacity model") rather than guessed.
//!
//! per-pod rps = requests one core serves on the slowest request path
//!               × cores a pod requests
//!               × the CPU utilisation the HPA holds pods at.
//!
//! The slowest path sets the rate for every workload so that none is
//! under-provisioned at the forecast: the enter endpoint and the booking
//! accept path are each measured in requests per CPU-second of the process
//! serving them against Kafka + Redis, and the lower one is used. The
//! consumers (queue keeper, decider) do less per request than the APIs that
//! feed them (they batch: one Redis script call per batch of up to 500), so
//! the same replica count over-provisions them rather than the reverse.
//! Sizing pods at the HPA's target leaves the HPA its headroom to react to
//! what the forecast missed.

/// CPU each workload pod requests, in millicores (the Deployments' resource
/// request, and so the HPA's 100 %).
pub const POD_CPU_MILLICORES: u64 = 1000;

/// Average CPU utilisation, in percent of the request, that the HPA holds
/// each workload's pods at.
pub const HPA_TARGET_CPU_PERCENT: u64 = 70;

/// Requests one fully used core serves on the slowest request path.
///
/// Measured 2026-11-22 (BENCHMARKS.md, "Capacity model") on the project's
/// 2-core machine against Kafka 4.3.1 + Redis 7.0, as requests per
/// CPU-second of the serving process:
/// * enter (`bench_enter --kafka …`, 3 runs): 16,536–18,979 per core-second,
///   the assigner and the admission loop in the same process;
/// * booking accept + decision (`bench_booking --kafka …`, 4 runs):
///   7,168–8,032 per core-second, the in-process load generator counted too;
///
/// the lowest run of the slower path, rounded down to hundreds.
pub const MEASURED_REQUESTS_PER_CORE_SECOND: u64 = 7_100;

/// Requests per second one pod is planned to sustain when the TicketEvent
/// sets no `perPodRps`: the measured per-core rate on the pod's CPU request,
/// at the HPA's target utilisation (see the module docs).
pub const DEFAULT_PER_POD_RPS: u64 =
    MEASURED_REQUESTS_PER_CORE_SECOND * POD_CPU_MILLICORES / 1000 * HPA_TARGET_CPU_PERCENT / 100;

/// One line saying where [`DEFAULT_PER_POD_RPS`] comes from, for `plan`.
pub fn default_rate_explained() -> String {
    format!(
        "default per-pod rate {DEFAULT_PER_POD_RPS} rps = {MEASURED_REQUESTS_PER_CORE_SECOND} requests per \
         core-second (slowest path measured, BENCHMARKS.md) × {} core requested × {HPA_TARGET_CPU_PERCENT}% HPA CPU target",
        cores(POD_CPU_MILLICORES)
    )
}

/// The pod CPU request as Kubernetes writes it (`1`, `500m`).
pub fn cpu_request() -> String {
    if POD_CPU_MILLICORES.is_multiple_of(1000) {
        (POD_CPU_MILLICORES / 1000).to_string()
    } else {
        format!("{POD_CPU_MILLICORES}m")
    }
}

fn cores(millicores: u64) -> String {
    let whole = millicores / 1000;
    match millicores % 1000 {
        0 => whole.to_string(),
        frac => format!("{whole}.{}", format!("{frac:03}").trim_end_matches('0')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_measured_rate_at_the_hpa_target() {
        assert_eq!(
            DEFAULT_PER_POD_RPS,
            MEASURED_REQUESTS_PER_CORE_SECOND * HPA_TARGET_CPU_PERCENT / 100
        );
        assert!(default_rate_explained().contains(&DEFAULT_PER_POD_RPS.to_string()));
    }

    #[test]
    fn formats_cpu_quantities() {
        assert_eq!(cores(1000), "1");
        assert_eq!(cores(1500), "1.5");
        assert_eq!(cores(250), "0.25");
        assert_eq!(cpu_request(), "1");
    }
}
