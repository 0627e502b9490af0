//! Durations in the spec (`preScaleLead: 15m`, `sessionTtl: 10m`).
//!
//! Written in the Go syntax Kubernetes users already know from
//! `metav1.Duration`, restricted to whole numbers of `h`, `m`, `s` and `ms`
//! (`1h30m`, `90s`, `250ms`). The restriction is deliberate: the schema's
//! pattern, CEL's `duration()` in the API server's rules and [`Duration`]'s
//! parser here all accept exactly this grammar, so a value the API server
//! accepted always parses in the operator and means the same thing. Not
//! `humantime`: it also accepts `15min` or `1day`, which CEL would reject;
//! not `kube::core::Duration`: it accepts fractions and negative values and
//! rewrites `15m` as `900s`, losing what the user wrote.

use std::{borrow::Cow, fmt, str::FromStr, time};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The schema pattern every duration in the spec must match.
pub const PATTERN: &str = "^([0-9]+(h|m|s|ms))+$";
/// Long enough for any sensible duration, short enough to keep the cost
/// estimate of CEL rules on durations small.
pub const MAX_LENGTH: u32 = 32;

/// A non-negative duration in restricted Go syntax, keeping the text the
/// user wrote so it round-trips unchanged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration {
    text: String,
    value: time::Duration,
}

impl Duration {
    /// The duration's value.
    pub fn get(&self) -> time::Duration {
        self.value
    }

    /// The text as written (`1h30m`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A built-in default; the tests parse every one of them.
    pub(crate) fn known(text: &'static str) -> Self {
        text.parse().expect("built-in default durations are valid")
    }
}

impl FromStr for Duration {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let fail = |why| Error::Duration {
            value: text.to_owned(),
            why,
        };
        if text.is_empty() {
            return Err(fail("empty; write e.g. 15m, 1h30m or 90s"));
        }
        if text.len() > MAX_LENGTH as usize {
            return Err(fail("longer than 32 characters"));
        }
        let mut rest = text;
        let mut total = time::Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(fail(
                    "expected a whole number before each unit (h, m, s, ms)",
                ));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| fail("number too large"))?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (time::Duration::from_millis(1), 2)
            } else if rest.starts_with('h') {
                (time::Duration::from_secs(3600), 1)
            } else if rest.starts_with('m') {
                (time::Duration::from_secs(60), 1)
            } else if rest.starts_with('s') {
                (time::Duration::from_secs(1), 1)
            } else {
                return Err(fail("expected a unit after each number: h, m, s or ms"));
            };
            rest = &rest[len..];
            let part = u32::try_from(number)
                .ok()
                .and_then(|n| unit.checked_mul(n))
                .ok_or_else(|| fail("too large"))?;
            total = total.checked_add(part).ok_or_else(|| fail("too large"))?;
        }
        Ok(Self {
            text: text.to_owned(),
            value: total,
        })
    }
}

impl TryFrom<String> for Duration {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<Duration> for String {
    fn from(duration: Duration) -> Self {
        duration.text
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl JsonSchema for Duration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // No `format: duration`: to the API server that means its own,
        // looser grammar (it also accepts days and weeks, which CEL's
        // `duration()` does not), so the pattern is the contract.
        json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "maxLength": MAX_LENGTH,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        text.parse::<Duration>().unwrap().get().as_secs()
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(secs("15m"), 900);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("0s"), 0);
        assert_eq!(secs("168h"), 604_800);
        let d: Duration = "1s250ms".parse().unwrap();
        assert_eq!(d.get(), time::Duration::from_millis(1250));
        assert_eq!(d.to_string(), "1s250ms");
    }

    #[test]
    fn refuses_what_the_schema_pattern_refuses() {
        for bad in [
            "", "15", "m", "1.5h", "-5m", "15 m", "1d", "15min", "1h30", "PT15M",
        ] {
            assert!(
                bad.parse::<Duration>().is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(
            "99999999999h"
                .parse::<Duration>()
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn round_trips_the_written_text() {
        let d: Duration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m\"");
        assert!(serde_json::from_str::<Duration>("\"soon\"").is_err());
    }
}
