//! The one source of "now". Replayed historical data (MovieLens is from 1997–98) needs a clock
//! that starts where the data ends, or every time window would be empty.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::{Millis, ParseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Wall-clock time.
    System,
    /// Always the same instant (tests).
    Fixed(Millis),
    /// Wall-clock time shifted so that the process started at `start`: replays keep ticking,
    /// so events recorded during a demo still order correctly.
    StartingAt {
        start: Millis,
        wall_at_start: Millis,
    },
}

/// The wall clock. Everything else asks a `Clock` (`Clock::System` for real time), so that
/// tests and replays decide what "now" is; `tests/boundaries.rs` checks that.
pub(crate) fn wall_now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

impl Clock {
    pub fn starting_at(start: Millis) -> Self {
        Clock::StartingAt {
            start,
            wall_at_start: wall_now(),
        }
    }

    pub fn now(&self) -> Millis {
        match *self {
            Clock::System => wall_now(),
            Clock::Fixed(t) => t,
            Clock::StartingAt {
                start,
                wall_at_start,
            } => start + (wall_now() - wall_at_start).max(0),
        }
    }
}

/// RFC 3339 in UTC with milliseconds, the form every timestamp leaves Marquee in.
pub fn format_rfc3339(t: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| t.to_string())
}

pub fn parse_rfc3339(s: &str) -> Result<Millis, ParseError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|e| ParseError(format!("{s:?} is not an RFC 3339 timestamp ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = parse_rfc3339("1998-04-22T23:10:38.000Z").unwrap();
        assert_eq!(format_rfc3339(t), "1998-04-22T23:10:38.000Z");
        assert!(parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn starting_clock_ticks_from_its_start() {
        let c = Clock::starting_at(1_000);
        assert!(c.now() >= 1_000 && c.now() < 60_000);
        assert_eq!(Clock::Fixed(5).now(), 5);
    }
}
