//! Human duration strings of the plan format: `30s`, `15m`, `4h`, `8d`, `1h30m`.
//!
//! Owns parsing and canonical printing of those strings, and their bound: no duration in a plan
//! is longer than [`MAX_DURATION_SECS`] (366 days), so no sum of plan durations, and no
//! duration added to an instant, can overflow. Must not know where they are used.

use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Regex (JSON schema `pattern`) every duration string matches: at most four units (d, h, m,
/// s) of at most eight digits each. It bounds the text; [`DurationSpec::parse`] bounds the
/// value to [`MAX_DURATION_SECS`].
pub const DURATION_PATTERN: &str = r"^([0-9]{1,8}[dhms]){1,4}$";

/// The shape of a duration without the digit bound: what [`DURATION_PATTERN`] refuses but this
/// accepts is a duration that is too long (reported as such, not as "not a duration").
pub const DURATION_SHAPE: &str = r"^([0-9]+[dhms])+$";

/// Longest duration a plan may state: 366 days (`366d`). A change, a window or a timeout longer
/// than a year is a typo; the bound keeps every sum of durations far from overflowing.
pub const MAX_DURATION_SECS: u64 = 366 * 86_400;

/// A duration written as in the plan format. Stored as whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationSpec(pub u64);

impl DurationSpec {
    pub const fn from_secs(s: u64) -> Self {
        DurationSpec(s)
    }
    pub const fn secs(self) -> u64 {
        self.0
    }
    pub fn as_std(self) -> Duration {
        Duration::from_secs(self.0)
    }

    /// Parses `1h30m`-style strings; units d, h, m, s; each unit at most once, largest first;
    /// at most [`MAX_DURATION_SECS`].
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty duration; write e.g. 30s, 15m, 4h, 8d or 1h30m".into());
        }
        let mut total: u64 = 0;
        let mut num: Option<u64> = None;
        let mut last_rank = 5u8;
        for ch in s.chars() {
            if let Some(d) = ch.to_digit(10) {
                let n = num.unwrap_or(0);
                num = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d)))
                        .ok_or_else(|| format!("duration `{s}` is too large"))?,
                );
                continue;
            }
            let (mult, rank) = match ch {
                'd' => (86_400u64, 4u8),
                'h' => (3_600, 3),
                'm' => (60, 2),
                's' => (1, 1),
                _ => {
                    return Err(format!(
                        "`{s}` is not a duration: unexpected `{ch}`; write e.g. 30s, 15m, 4h, 8d or 1h30m"
                    ));
                }
            };
            let n = num
                .take()
                .ok_or_else(|| format!("`{s}` is not a duration: a number must precede `{ch}`"))?;
            if rank >= last_rank {
                return Err(format!(
                    "`{s}` is not a duration: units must go from largest to smallest, each once"
                ));
            }
            last_rank = rank;
            total = n
                .checked_mul(mult)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("duration `{s}` is too large"))?;
        }
        if num.is_some() {
            return Err(format!(
                "`{s}` is not a duration: the last number has no unit (d, h, m or s)"
            ));
        }
        if total > MAX_DURATION_SECS {
            return Err(format!(
                "duration `{s}` is longer than {}, the longest swing accepts",
                DurationSpec(MAX_DURATION_SECS)
            ));
        }
        Ok(DurationSpec(total))
    }
}

impl fmt::Display for DurationSpec {
    /// Canonical form: `2h10m`, `45s`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, secs) in [("d", 86_400u64), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= secs {
                write!(f, "{}{}", rest / secs, unit)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DurationSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: 30s, 15m, 4h, 8d, or combinations like 1h30m; at most 366d",
            "examples": ["30s", "15m", "1h30m", "8d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, secs) in [
            ("30s", 30),
            ("15m", 900),
            ("4h", 14_400),
            ("8d", 691_200),
            ("1h30m", 5_400),
        ] {
            let d = DurationSpec::parse(s).unwrap();
            assert_eq!(d.secs(), secs, "{s}");
            assert_eq!(d.to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "10",
            "h",
            "1x",
            "30m1h",
            "1h1h",
            "99999999999999999999d",
            "18446744073709551615s",
            "367d",
            "366d1s",
        ] {
            assert!(DurationSpec::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn the_longest_duration_is_a_year_and_the_pattern_bounds_the_text() {
        assert_eq!(
            DurationSpec::parse("366d").unwrap().secs(),
            MAX_DURATION_SECS
        );
        assert!(
            DurationSpec::parse("367d")
                .unwrap_err()
                .contains("longest swing accepts")
        );
    }
}
