//! Wall-clock time for records: UNIX milliseconds and their RFC 3339 text, as written into
//! saved plans, journals and locks.
//!
//! Owns only these two conversions, so that every layer can stamp a record without reaching
//! into another layer. Must not: schedule, sleep, or format for people (see `render`).

use std::time::SystemTime;

/// Milliseconds since the UNIX epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 UTC text of UNIX milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
