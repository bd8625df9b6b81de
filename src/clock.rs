//! The server's clock. Booking opens, closes and stops taking cancellations by it, never by
//! the client's. It reads the system time unless a test (or the benchmark) pins it, which is
//! how early access is tested at T-72h without waiting three days.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// Cheap to clone; clones share the same time.
#[derive(Clone, Default)]
pub struct Clock(Arc<Pinned>);

/// Microseconds since the epoch while pinned; `NOT_PINNED` otherwise.
struct Pinned(AtomicI64);

const NOT_PINNED: i64 = i64::MIN;

impl Default for Pinned {
    fn default() -> Self {
        Pinned(AtomicI64::new(NOT_PINNED))
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.0 .0.load(Ordering::Acquire) {
            NOT_PINNED => Utc::now(),
            micros => DateTime::from_timestamp_micros(micros).unwrap_or_else(Utc::now),
        }
    }

    /// Stops the clock at `at`; it stays there until moved again.
    pub fn pin(&self, at: DateTime<Utc>) {
        self.0 .0.store(at.timestamp_micros(), Ordering::Release);
    }

    /// Moves a pinned clock (or pins the system time) forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.pin(self.now() + by);
    }

    /// Back to the system time.
    pub fn unpin(&self) {
        self.0 .0.store(NOT_PINNED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_stays_put_until_moved_and_clones_share_it() {
        let clock = Clock::system();
        let copy = clock.clone();
        let at = DateTime::from_timestamp(1_800_000_000, 123_000).unwrap_or_default();
        clock.pin(at);
        assert_eq!(copy.now(), at);
        copy.advance(Duration::hours(72));
        assert_eq!(clock.now(), at + Duration::hours(72));
        clock.unpin();
        assert!((copy.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
