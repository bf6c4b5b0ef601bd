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

/// 1900-01-01T00:00:00Z: no event Marquee accepts happened earlier.
pub const EARLIEST_EVENT: Millis = -2_208_988_800_000;

/// When a client-reported event may have happened: not before 1900, and at most `max_ahead`
/// after the server's clock (clients' clocks drift; a few minutes is normal, a year is not).
/// Outside it, `recordEvents` refuses the event, so that no client can move "now": the
/// replay clock (`--clock last-event`) starts at the newest stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWindow {
    pub max_ahead: Millis,
}

impl Default for EventWindow {
    fn default() -> Self {
        EventWindow {
            max_ahead: Self::DEFAULT_MAX_AHEAD,
        }
    }
}

impl EventWindow {
    /// Five minutes.
    pub const DEFAULT_MAX_AHEAD: Millis = 5 * 60_000;

    /// `at`, if it is within the window around `now`.
    pub fn check(&self, at: Millis, now: Millis) -> Result<Millis, ParseError> {
        if at < EARLIEST_EVENT {
            return Err(ParseError(format!(
                "occurredAt {} is before 1900-01-01",
                format_rfc3339(at)
            )));
        }
        if at > self.latest(now) {
            return Err(ParseError(format!(
                "occurredAt {} is more than {} s after the server's clock ({})",
                format_rfc3339(at),
                self.max_ahead / 1000,
                format_rfc3339(now)
            )));
        }
        Ok(at)
    }

    /// The latest time an event may carry when it is `now`.
    pub fn latest(&self, now: Millis) -> Millis {
        now.saturating_add(self.max_ahead)
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
        .map_err(|e| {
            ParseError(format!(
                "{} is not an RFC 3339 timestamp ({e})",
                crate::domain::excerpt(s)
            ))
        })
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
    fn event_window_refuses_the_far_future_and_the_distant_past() {
        let w = EventWindow::default();
        let now = parse_rfc3339("1998-04-23T00:00:00Z").unwrap();
        assert_eq!(w.check(now + 60_000, now), Ok(now + 60_000));
        assert!(w.check(now + 6 * 60_000, now).is_err());
        let far = parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert!(
            w.check(far, now)
                .unwrap_err()
                .0
                .contains("after the server's clock")
        );
        assert!(
            w.check(parse_rfc3339("1899-12-31T23:59:59Z").unwrap(), now)
                .is_err()
        );
        assert_eq!(w.check(EARLIEST_EVENT, now), Ok(EARLIEST_EVENT));
    }

    #[test]
    fn starting_clock_ticks_from_its_start() {
        let c = Clock::starting_at(1_000);
        assert!(c.now() >= 1_000 && c.now() < 60_000);
        assert_eq!(Clock::Fixed(5).now(), 5);
    }
}
