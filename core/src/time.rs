//! Time as the engine sees it: milliseconds since the Unix epoch, passed in by the caller.
//!
//! The core never reads a clock. The collector stamps each event with its arrival time and the
//! UIs ask for snapshots "as of" a time; tests drive both with a fake clock.

use crate::format::human_duration;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs * 1000)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    pub const fn saturating_sub_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_sub(ms))
    }

    pub const fn saturating_add_millis(self, ms: u64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// The time of day in UTC, `HH:MM:SS`, as the dashboards and `stat` show it.
    pub fn utc_clock(self) -> String {
        let seconds = self.0 / 1000;
        format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600 % 24,
            seconds / 60 % 60,
            seconds % 60
        )
    }
}

/// One resolution of the rolling windows: `buckets` time buckets of `bucket_ms` each.
///
/// The default engine keeps three at once: 1 s x 300 (5 minutes), 1 min x 60 (an hour) and
/// 1 h x 24 (a day).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resolution {
    pub bucket_ms: u64,
    pub buckets: u32,
}

impl Resolution {
    pub const fn new(bucket_ms: u64, buckets: u32) -> Self {
        Resolution { bucket_ms, buckets }
    }

    /// How much time the whole ring covers.
    pub const fn span_ms(self) -> u64 {
        self.bucket_ms * self.buckets as u64
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} x {}",
            human_duration(self.buckets as u64 * self.bucket_ms),
            human_duration(self.bucket_ms)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_and_clocks_read_naturally() {
        assert_eq!(Resolution::new(60_000, 60).to_string(), "1h x 1m");
        assert_eq!(
            Timestamp::from_millis(1_700_002_800_000 + 3_723_456).utc_clock(),
            "00:02:03"
        );
    }
}
