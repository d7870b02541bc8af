//! Maintenance windows at apply time: is the named window open now, not yet open, or over?
//!
//! Owns the time comparison only. Must not: read the clock itself (the caller passes "now"),
//! or decide what a closed window means for a step (the walker does).

use chrono::{DateTime, FixedOffset};
use swing_schema::Window;

/// Where "now" stands relative to a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowState {
    Open,
    NotYet {
        starts: DateTime<FixedOffset>,
    },
    Over {
        ended: DateTime<FixedOffset>,
    },
    /// The plan names no such window (validation should have caught it).
    Unknown,
}

/// The state of window `name` at UNIX milliseconds `now_ms`.
pub fn window_state(windows: &[Window], name: &str, now_ms: i64) -> WindowState {
    let Some(w) = windows.iter().find(|w| w.name == name) else {
        return WindowState::Unknown;
    };
    let start = w.start.timestamp_millis();
    let end = w.end.timestamp_millis();
    if now_ms < start {
        WindowState::NotYet { starts: w.start }
    } else if now_ms >= end {
        WindowState::Over { ended: w.end }
    } else {
        WindowState::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, s: &str, e: &str) -> Window {
        Window {
            name: name.into(),
            start: DateTime::parse_from_rfc3339(s).unwrap(),
            end: DateTime::parse_from_rfc3339(e).unwrap(),
        }
    }

    #[test]
    fn classifies_now() {
        let ws = vec![w(
            "second",
            "2026-12-12T22:00:00+01:00",
            "2026-12-13T02:00:00+01:00",
        )];
        let start = ws[0].start.timestamp_millis();
        assert!(matches!(
            window_state(&ws, "second", start - 1),
            WindowState::NotYet { .. }
        ));
        assert_eq!(window_state(&ws, "second", start), WindowState::Open);
        let end = ws[0].end.timestamp_millis();
        assert!(matches!(
            window_state(&ws, "second", end),
            WindowState::Over { .. }
        ));
        assert_eq!(window_state(&ws, "third", start), WindowState::Unknown);
    }
}
