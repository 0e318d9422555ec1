//! Time as the engine sees it: milliseconds since the Unix epoch, passed in by the caller.
//!
//! The core never reads a clock. The collector stamps each event with its arrival time and the
//! UIs ask for snapshots "as of" a time; tests drive both with a fake clock.

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

/// `90s` -> "90s", `300000` -> "5m", `3600000` -> "1h": the largest unit that divides exactly.
pub fn human_duration(ms: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".to_owned();
    }
    let (size, unit) = UNITS
        .into_iter()
        .find(|(size, _)| ms.is_multiple_of(*size))
        .unwrap_or((1, "ms"));
    format!("{}{unit}", ms / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(human_duration(300_000), "5m");
        assert_eq!(human_duration(90_000), "90s");
        assert_eq!(human_duration(1500), "1500ms");
        assert_eq!(human_duration(86_400_000), "1d");
        assert_eq!(Resolution::new(60_000, 60).to_string(), "1h x 1m");
        assert_eq!(
            Timestamp::from_millis(1_700_002_800_000 + 3_723_456).utc_clock(),
            "00:02:03"
        );
    }
}
