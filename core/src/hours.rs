//! Events per hour of each series, read from the engine's rings: what a history store keeps
//! for years after the rings have moved on.
//!
//! A store polls [`Engine::series_totals`] (one atomic load per series), copies the series
//! whose total moved ([`Engine::copy_series`]) and reads their hours with
//! [`Engine::hour_buckets`]. They come from the
//! coarsest resolution whose buckets divide an hour, so each lies within one hour and counts
//! are exact: every event counted in a ring is in exactly one bucket, that of its own time.
//! A store that remembers what it saw of each bucket adds only what is new, so a bucket
//! rotating out of its ring takes nothing away.

use crate::account::{Series, TypeEntry};
use crate::engine::Engine;
use crate::time::Timestamp;
use crate::windows::SeriesCopy;

const HOUR_MS: u64 = 3_600_000;

/// One series of counts: a type of one account, or a type over all accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesId {
    Account { account: u32, kind: u32 },
    Overall { kind: u32 },
}

impl Engine {
    /// The resolution hours are read from: the coarsest whose buckets divide an hour.
    fn hour_level(&self) -> Option<usize> {
        let levels = self.layout.levels().iter().enumerate();
        (levels.filter(|(_, level)| HOUR_MS.is_multiple_of(level.resolution.bucket_ms)))
            .max_by_key(|(_, level)| level.resolution.bucket_ms)
            .map(|(index, _)| index)
    }

    /// Whether the engine can say how many events each hour had (some resolution's buckets
    /// divide an hour).
    pub fn keeps_hours(&self) -> bool {
        self.hour_level().is_some()
    }

    /// How far back [`Engine::hour_buckets`] reaches: the span of its ring.
    pub fn hours_span_ms(&self) -> u64 {
        self.hour_level().map_or(0, |level| {
            let resolution = self.layout.levels()[level].resolution;
            resolution.bucket_ms * u64::from(resolution.buckets)
        })
    }

    /// Calls `each` with every series: its id, account name (`None` for a type over all
    /// accounts), type name and total events since start.
    pub fn series_totals(&self, mut each: impl FnMut(SeriesId, Option<&str>, &str, u64)) {
        for (account_index, account) in self.accounts.iter().enumerate() {
            for (kind_index, entry) in account.types.iter().enumerate() {
                let id = SeriesId::Account {
                    account: account_index as u32,
                    kind: kind_index as u32,
                };
                each(id, Some(&account.name), &entry.name, entry.counts.total());
            }
        }
        for (kind_index, entry) in self.types.entries.iter().enumerate() {
            let id = SeriesId::Overall {
                kind: kind_index as u32,
            };
            let total = self.type_counts(id).map_or(0, Series::total);
            each(id, None, &entry.name, total);
        }
    }

    /// Series `id`'s counts (for a type over all accounts, see [`Engine::overall_counts`]).
    pub(crate) fn type_counts(&self, id: SeriesId) -> Option<&Series> {
        match id {
            SeriesId::Account { .. } => self.type_entry(id).map(|entry| &entry.counts),
            SeriesId::Overall { kind } => self.overall_counts(kind as usize),
        }
    }

    pub(crate) fn type_entry(&self, id: SeriesId) -> Option<&TypeEntry> {
        match id {
            SeriesId::Account { account, kind } => {
                let account = self.accounts.get(account as usize)?;
                account.types.get(kind as usize)
            }
            SeriesId::Overall { kind } => self.types.entries.get(kind as usize),
        }
    }

    /// The events in each bucket (each within one hour) of a copied series that its ring
    /// holds as of `now`, or of its latest write if that is later (an event stamped by an
    /// ingest thread just after the caller read its clock, and then no other: a store that
    /// reads a series again only when its total moves would never see it otherwise): (start of
    /// the bucket, count), oldest first, empty buckets left out.
    pub fn hour_buckets(&self, copy: &SeriesCopy, now: Timestamp) -> Vec<(Timestamp, u64)> {
        let Some(level) = self.hour_level() else {
            return vec![];
        };
        let latest =
            (copy.last_active).and_then(|fine| self.layout.epoch(level, self.layout.bucket_start(0, fine)));
        let last = self.layout.epoch(level, now).max(latest);
        let (Some(ring), Some(last)) = (copy.rings.get(level), last) else {
            return vec![];
        };
        let first = (last + 1).saturating_sub(self.layout.levels()[level].buckets() as u64);
        let mut buckets: Vec<(Timestamp, u64)> = (ring.iter())
            .filter(|bucket| bucket.count > 0 && (first..=last).contains(&bucket.epoch))
            .map(|bucket| (self.layout.bucket_start(level, bucket.epoch), bucket.count))
            .collect();
        buckets.sort_unstable();
        buckets
    }
}

/// The start of the hour `time` is in (hours are whole in UTC, as in every zone but a few
/// half-hour ones, where a history's hours are the UTC ones).
pub fn hour_of(time: Timestamp) -> Timestamp {
    Timestamp::from_millis(time.as_millis() / HOUR_MS * HOUR_MS)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{EngineConfig, Event, Resolution, Value, WindowId};

    fn engine(resolutions: Vec<Resolution>) -> std::sync::Arc<Engine> {
        let config = EngineConfig {
            resolutions,
            ..EngineConfig::default()
        };
        Engine::new(config, Timestamp::from_millis(0)).expect("valid")
    }

    fn record(engine: &std::sync::Arc<Engine>, account: &str, kind: &str, at_ms: u64, n: u64) {
        engine.recorder().record(&Event {
            account,
            event_type: kind,
            app: None,
            value: Value::Count(n),
            time: Timestamp::from_millis(at_ms),
        });
    }

    #[test]
    fn buckets_come_from_the_coarsest_ring_that_divides_an_hour() {
        // 1 s x 300 and 1 min x 180 (3 h): hours from the minutes.
        let engine = engine(vec![Resolution::new(1000, 300), Resolution::new(60_000, 180)]);
        assert_eq!(engine.hours_span_ms(), 3 * HOUR_MS);
        record(&engine, "acme", "view", HOUR_MS + 5_000, 2);
        record(&engine, "acme", "view", 2 * HOUR_MS - 1, 1);
        record(&engine, "acme", "view", 2 * HOUR_MS + 61_000, 4);
        record(&engine, "globex", "view", 2 * HOUR_MS, 7);
        let mut series = vec![];
        engine.series_totals(|id, account, kind, total| {
            series.push((id, account.map(str::to_owned), kind.to_owned(), total));
        });
        assert_eq!(
            series.len(),
            3,
            "two account series and the type over all: {series:?}"
        );
        let acme = series[0].0;
        assert_eq!(series[0].3, 7);
        let now = Timestamp::from_millis(2 * HOUR_MS + 120_000);
        let at = Timestamp::from_millis;
        let hours = |id| engine.hour_buckets(&engine.copy_series(WindowId::Type(id)).expect("a series"), now);
        assert_eq!(
            hours(acme),
            [
                (at(HOUR_MS), 2),
                (at(2 * HOUR_MS - 60_000), 1),
                (at(2 * HOUR_MS + 60_000), 4)
            ]
        );
        let overall = series[2].0;
        assert_eq!(series[2].1, None);
        assert_eq!(
            hours(overall),
            [
                (at(HOUR_MS), 2),
                (at(2 * HOUR_MS - 60_000), 1),
                (at(2 * HOUR_MS), 7),
                (at(2 * HOUR_MS + 60_000), 4)
            ]
        );
        assert_eq!(hour_of(at(2 * HOUR_MS - 1)), at(HOUR_MS));
    }

    #[test]
    fn a_bucket_written_after_now_is_read_too() {
        let engine = engine(vec![Resolution::new(1000, 300), Resolution::new(60_000, 180)]);
        record(&engine, "acme", "view", 2 * HOUR_MS + 30_000, 3);
        let acme = SeriesId::Account { account: 0, kind: 0 };
        let copy = engine.copy_series(WindowId::Type(acme)).expect("a series");
        let just_before = Timestamp::from_millis(2 * HOUR_MS - 1);
        assert_eq!(
            engine.hour_buckets(&copy, just_before),
            [(Timestamp::from_millis(2 * HOUR_MS), 3)]
        );
    }

    #[test]
    fn without_a_resolution_that_divides_an_hour_there_are_no_hours() {
        let engine = engine(vec![Resolution::new(7_000, 10)]);
        record(&engine, "acme", "view", 7_000, 1);
        assert!(!engine.keeps_hours());
        let acme = SeriesId::Account { account: 0, kind: 0 };
        let copy = engine.copy_series(WindowId::Type(acme)).expect("a series");
        assert!(
            engine
                .hour_buckets(&copy, Timestamp::from_millis(8_000))
                .is_empty()
        );
    }
}
