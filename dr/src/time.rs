//! Caller-supplied time.
//!
//! The machine never reads a clock: every call carries `now`, so tests can
//! replay an hour of probes in microseconds and the wiring decides which
//! monotonic clock to trust (wall clocks jump; failover timing must not).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds: an instant since an arbitrary epoch chosen by the caller,
/// or a duration. One unit for both keeps arithmetic and JSON obvious
/// (config fields that hold one end in `Ms`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    pub const ZERO: Millis = Millis(0);

    pub const fn from_secs(secs: u64) -> Millis {
        Millis(secs.saturating_mul(1_000))
    }

    pub const fn from_mins(mins: u64) -> Millis {
        Millis::from_secs(mins.saturating_mul(60))
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later, so a
    /// "how long since" question never underflows.
    pub const fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }

    pub const fn plus(self, duration: Millis) -> Millis {
        Millis(self.0.saturating_add(duration.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_saturates_instead_of_underflowing() {
        assert_eq!(Millis(5).since(Millis(7)), Millis::ZERO);
        assert_eq!(Millis(7).since(Millis(5)), Millis(2));
    }

    #[test]
    fn serializes_as_a_plain_number() {
        assert_eq!(
            serde_json::to_string(&Millis::from_secs(90)).unwrap(),
            "90000"
        );
        assert_eq!(Millis::from_mins(2), Millis(120_000));
    }
}
