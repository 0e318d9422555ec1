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

    /// The time of day in UTC, `HH:MM:SS` (the reports show [`Clock`]'s zone instead).
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

/// The zone clock times are shown in: the user's own (from `TZ` or the system, looked up by
/// the binaries: the core reads no files) or UTC (`--utc`). DST is the zone's rules' business.
#[derive(Clone, Debug, PartialEq)]
pub struct Clock {
    zone: jiff::tz::TimeZone,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::utc()
    }
}

impl Clock {
    pub fn utc() -> Clock {
        Clock {
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    pub fn new(zone: jiff::tz::TimeZone) -> Clock {
        Clock { zone }
    }

    fn zoned(&self, time: Timestamp) -> Option<jiff::Zoned> {
        let at = jiff::Timestamp::from_millisecond(i64::try_from(time.as_millis()).ok()?).ok()?;
        Some(at.to_zoned(self.zone.clone()))
    }

    /// `HH:MM:SS` in this zone.
    pub fn time_of_day(&self, time: Timestamp) -> String {
        self.format(time, "%H:%M:%S")
    }

    /// `HH:MM` in this zone, for axis ticks.
    pub fn hours_minutes(&self, time: Timestamp) -> String {
        self.format(time, "%H:%M")
    }

    /// How far this zone's clocks are ahead of UTC at `time`, in milliseconds (negative
    /// west of Greenwich): what lines axis ticks up with whole local minutes and hours.
    pub fn offset_ms(&self, time: Timestamp) -> i64 {
        let Ok(millis) = i64::try_from(time.as_millis()) else {
            return 0;
        };
        match jiff::Timestamp::from_millisecond(millis) {
            Ok(at) => i64::from(self.zone.to_offset(at).seconds()) * 1000,
            Err(_) => 0,
        }
    }

    /// When the day that `time` falls in began, in this zone (local midnight, as a rule).
    pub fn start_of_day(&self, time: Timestamp) -> Timestamp {
        self.zoned(time)
            .and_then(|zoned| zoned.start_of_day().ok())
            .and_then(|start| u64::try_from(start.timestamp().as_millisecond()).ok())
            .map_or(time, Timestamp::from_millis)
    }

    /// The local date and hour of `time` in this zone: what a history files it under.
    pub fn civil_hour(&self, time: Timestamp) -> CivilHour {
        match self.zoned(time) {
            Some(zoned) => CivilHour {
                year: zoned.year(),
                month: zoned.month(),
                day: zoned.day(),
                hour: zoned.hour(),
            },
            None => CivilHour::default(),
        }
    }

    /// When local day `year-month-day` begins and the next begins, in this zone; `None` for
    /// a date that is not one.
    pub fn day_span(&self, year: i16, month: i8, day: i8) -> Option<(Timestamp, Timestamp)> {
        let date = jiff::civil::Date::new(year, month, day).ok()?;
        let start = date.to_zoned(self.zone.clone()).ok()?;
        let next = start.tomorrow().ok()?.start_of_day().ok()?;
        let millis = |zoned: &jiff::Zoned| u64::try_from(zoned.timestamp().as_millisecond()).ok();
        Some((
            Timestamp::from_millis(millis(&start)?),
            Timestamp::from_millis(millis(&next)?),
        ))
    }

    /// The zone's name at `time`: its abbreviation (`EST`, `CEST`, `UTC`), or its offset
    /// (`+0530`) where it has none.
    pub fn zone_label(&self, time: Timestamp) -> String {
        self.format(time, "%Z")
    }

    fn format(&self, time: Timestamp, pattern: &str) -> String {
        match self.zoned(time) {
            Some(zoned) => jiff::fmt::strtime::format(pattern, &zoned)
                .or_else(|_| jiff::fmt::strtime::format(pattern.replace("%Z", "%z"), &zoned))
                .unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// A local date and hour (see [`Clock::civil_hour`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilHour {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub hour: i8,
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
    fn clocks_show_the_zone_they_are_in() {
        // 2023-11-14 23:02:03 UTC.
        let time = Timestamp::from_millis(1_700_002_800_000 + 123_456);
        let utc = Clock::utc();
        assert_eq!(
            (utc.time_of_day(time), utc.zone_label(time)),
            ("23:02:03".into(), "UTC".into())
        );
        let new_york = Clock::new(jiff::tz::TimeZone::get("America/New_York").expect("tzdb"));
        assert_eq!(new_york.time_of_day(time), "18:02:03");
        assert_eq!(new_york.zone_label(time), "EST");
        let summer = Timestamp::from_millis(1_689_375_600_000); // 2023-07-14 23:00 UTC
        assert_eq!(
            (new_york.time_of_day(summer), new_york.zone_label(summer)),
            ("19:00:00".into(), "EDT".into())
        );
        let fixed = Clock::new(jiff::tz::TimeZone::fixed(jiff::tz::offset(5)));
        assert_eq!(fixed.hours_minutes(time), "04:02");
        let kolkata = Clock::new(jiff::tz::TimeZone::get("Asia/Kolkata").expect("tzdb"));
        assert_eq!(kolkata.offset_ms(time), 19_800_000);
        assert_eq!(new_york.offset_ms(time), -18_000_000);
        // 23:02 UTC is 18:02 in New York: its day began at 05:00 UTC.
        assert_eq!(
            new_york.start_of_day(time),
            Timestamp::from_millis(1_699_938_000_000)
        );
        assert_eq!(utc.start_of_day(time), Timestamp::from_millis(1_699_920_000_000));
    }

    #[test]
    fn a_history_files_hours_under_local_dates() {
        let new_york = Clock::new(jiff::tz::TimeZone::get("America/New_York").expect("tzdb"));
        // 2023-11-14 23:02 UTC is 18:02 on the 14th in New York, 23:02 in UTC.
        let time = Timestamp::from_millis(1_700_002_800_000 + 123_456);
        let local = |year, month, day, hour| CivilHour {
            year,
            month,
            day,
            hour,
        };
        assert_eq!(new_york.civil_hour(time), local(2023, 11, 14, 18));
        assert_eq!(Clock::utc().civil_hour(time), local(2023, 11, 14, 23));
        let (start, end) = new_york.day_span(2023, 11, 14).expect("a date");
        assert_eq!(start, new_york.start_of_day(time));
        assert_eq!(end.as_millis() - start.as_millis(), 24 * 3_600_000);
        // The day summer time ended had 25 hours; there is no 30 February.
        let (start, end) = new_york.day_span(2023, 11, 5).expect("a date");
        assert_eq!(end.as_millis() - start.as_millis(), 25 * 3_600_000);
        assert_eq!(new_york.day_span(2023, 2, 30), None);
    }

    #[test]
    fn resolutions_and_clocks_read_naturally() {
        assert_eq!(Resolution::new(60_000, 60).to_string(), "1h x 1m");
        assert_eq!(
            Timestamp::from_millis(1_700_002_800_000 + 3_723_456).utc_clock(),
            "00:02:03"
        );
    }
}
