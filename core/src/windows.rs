//! The engine's windows as a checkpoint saves them, and how a restart puts them back.
//!
//! A checkpointer polls [`Engine::windows`] (one atomic load per series), copies the series
//! whose total moved with [`Engine::copy_series`], and the timing and set bodies updated since
//! its last look with [`Engine::take_changed_bodies`]. A restarted tally builds its engine with
//! the saved [`Engine::origin`] and the same resolutions, so saved epochs name the same
//! buckets, and hands everything back with [`Engine::restore_series`],
//! [`Engine::restore_body`] and [`Engine::restore_counters`] before ingest starts: the windows
//! show what they showed, and the time tally was down shows as empty buckets.

use crate::bodies::Body;
use crate::engine::Engine;
use crate::histogram::{TimingBody, TimingCopy};
use crate::hours::SeriesId;
use crate::rejection::{RejectSample, Rejection};
use crate::ring::Level;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// A series whose windows are kept: every account's events together, one account's, one
/// account's type, or a type over all accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WindowId {
    All,
    Account(u32),
    Type(SeriesId),
}

/// One bucket of a ring: its epoch (counted from the engine's origin) and its count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SavedBucket {
    pub epoch: u64,
    pub count: u64,
}

/// What a series keeps besides its timing and set bodies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesCopy {
    /// Events since the history of this engine began (restarts included).
    pub total: u64,
    /// The finest-resolution epoch of its latest event.
    pub last_active: Option<u64>,
    /// The last value of an account's gauge type.
    pub gauge: Option<f64>,
    /// The apps an account's events came from.
    pub apps: Vec<String>,
    /// Every resolution's ring, finest first, slot by slot (count 0: nothing there).
    pub rings: Vec<Vec<SavedBucket>>,
}

/// A bucket's timing histogram or set registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyCopy {
    Timing(TimingCopy),
    Set(Vec<u8>),
}

/// A body and where it lies: its slot in the series' rings (the same in an engine of the same
/// resolutions) and its bucket's epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedBody {
    pub slot: usize,
    pub epoch: u64,
    pub body: BodyCopy,
}

/// The engine's counters of what went wrong, and the distinct names folded into `(other)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CountersCopy {
    pub saturated: u64,
    pub too_old: u64,
    pub skipped_samples: u64,
    pub uncapped_samples: u64,
    pub folded_events: u64,
    /// By [`Rejection::as_str`].
    pub rejected: BTreeMap<String, u64>,
    pub folded_names: Vec<u8>,
    /// The last rejected payloads (the bad input view's examples), oldest first.
    pub recent_rejects: Vec<RejectSample>,
}

impl Engine {
    /// Where epochs count from: a restarted engine built from this start reads saved epochs
    /// as the same buckets.
    pub fn origin(&self) -> Timestamp {
        self.layout.origin()
    }

    /// Calls `each` with every series whose windows are kept: its id, account and type names
    /// (`None` where it spans all of them) and total events.
    pub fn windows(&self, mut each: impl FnMut(WindowId, Option<&str>, Option<&str>, u64)) {
        each(WindowId::All, None, None, self.all.total());
        for (index, account) in self.accounts.iter().enumerate() {
            let id = WindowId::Account(index as u32);
            each(id, Some(&account.name), None, account.counts.total());
        }
        self.series_totals(|id, account, kind, total| each(WindowId::Type(id), account, Some(kind), total));
    }

    /// Everything series `id` keeps but its bodies.
    pub fn copy_series(&self, id: WindowId) -> Option<SeriesCopy> {
        let (series, gauge, apps) = match id {
            WindowId::All => (&self.all, None, vec![]),
            WindowId::Account(index) => {
                let account = self.accounts.get(index as usize)?;
                let apps = account.apps.iter().map(|app| app.to_string()).collect();
                (&account.counts, None, apps)
            }
            WindowId::Type(id) => {
                // A gauge's last value over all accounts means nothing: only an account's.
                let gauge =
                    (self.type_entry(id)?.gauge.get()).filter(|_| matches!(id, SeriesId::Account { .. }));
                (self.type_counts(id)?, gauge, vec![])
            }
        };
        let (total, last_active, rings) = series.copy(&self.layout);
        Some(SeriesCopy {
            total,
            last_active,
            gauge,
            apps,
            rings,
        })
    }

    /// Passes each timing and set body of series `id` updated since the last call to `each`.
    pub fn take_changed_bodies(&self, id: SeriesId, mut each: impl FnMut(SavedBody)) {
        let Some(entry) = self.type_entry(id) else {
            return;
        };
        if let Some(rings) = entry.timings.get() {
            rings.take_changed(TimingBody::copy, |slot, epoch, copy| {
                each(SavedBody {
                    slot,
                    epoch,
                    body: BodyCopy::Timing(copy),
                })
            });
        }
        if let Some(rings) = entry.sets.get() {
            rings.take_changed(
                |registers| registers.copy(),
                |slot, epoch, copy| {
                    each(SavedBody {
                        slot,
                        epoch,
                        body: BodyCopy::Set(copy),
                    })
                },
            );
        }
    }

    /// Adds a saved series (of account and type `kind`; `None` where it spans all of them),
    /// creating its account and type, and returns where it went: an account past the cap goes
    /// to `(other)`. For an engine of the saved origin and resolutions, before any event.
    ///
    /// A type's counts over all accounts are those of its accounts' series of it, added up as
    /// those are restored (or read from the only one, as while recording): its own saved
    /// counts are not added again. Its timings and sets are its own, restored by
    /// [`Engine::restore_body`].
    pub fn restore_series(
        &self,
        account: Option<&str>,
        kind: Option<&str>,
        copy: &SeriesCopy,
    ) -> Option<WindowId> {
        let restore = |series: &crate::account::Series| {
            series.restore(
                &self.layout,
                copy.total,
                copy.last_active,
                &copy.rings,
                &self.wide,
            );
        };
        match (account, kind) {
            (None, None) => {
                restore(&self.all);
                Some(WindowId::All)
            }
            (Some(name), None) => {
                let index = self.resolve_account(name).0;
                let account = self.accounts.get(index)?;
                restore(&account.counts);
                for app in &copy.apps {
                    account.note_app(app);
                }
                Some(WindowId::Account(index as u32))
            }
            (Some(name), Some(kind)) => {
                let index = self.resolve_account(name).0;
                let account = self.accounts.get(index)?;
                let max_types = self.config.max_types_per_account;
                let shared = |name: &str| self.types.shared_name(name);
                let kind =
                    account.resolve_type(kind, &self.layout, max_types, self.type_series_room(), shared);
                let entry = account.types.get(kind)?;
                let overall = self.overall_for(index, kind);
                restore(&entry.counts);
                // Before any event, so no hand-over can come between the two.
                if self.overall_needs(overall, index as u32, kind as u32)
                    && let Some(overall) = self.types.entries.get(overall)
                {
                    restore(&overall.counts);
                }
                if let Some(gauge) = copy.gauge {
                    entry.gauge.set(gauge);
                }
                let (account, kind) = (index as u32, kind as u32);
                Some(WindowId::Type(SeriesId::Account { account, kind }))
            }
            (None, Some(kind)) => {
                let kind = self.types.resolve(kind, &self.layout);
                Some(WindowId::Type(SeriesId::Overall { kind: kind as u32 }))
            }
        }
    }

    /// Adds a saved body to series `id` (as [`Engine::restore_series`], whose id this is).
    pub fn restore_body(&self, id: SeriesId, saved: &SavedBody) {
        let Some(entry) = self.type_entry(id) else {
            return;
        };
        let holds = |level: &&Level| (level.offset..level.offset + level.buckets()).contains(&saved.slot);
        let Some(level) = self.layout.levels().iter().find(holds) else {
            return;
        };
        // A body saved for another slot than its epoch's (another layout) is not taken.
        let bucket = level.bucket(saved.epoch);
        if bucket.slot != saved.slot {
            return;
        }
        let claimed = self.claimed_for(id);
        // Past the caps on timing and set series, or for a slot recycled meanwhile, the body
        // is left out, as a new sample would be.
        let _ = match &saved.body {
            BodyCopy::Timing(copy) => (self.timing_rings(entry, claimed))
                .and_then(|rings| rings.update(bucket, |body| body.restore(copy))),
            BodyCopy::Set(registers) => (self.set_rings(entry, claimed))
                .and_then(|rings| rings.update(bucket, |body| body.restore(registers))),
        };
    }

    pub fn counters_copy(&self) -> CountersCopy {
        let counters = &self.counters;
        CountersCopy {
            saturated: counters.saturated.load(Relaxed),
            too_old: counters.too_old.load(Relaxed),
            skipped_samples: counters.skipped_samples.load(Relaxed),
            uncapped_samples: counters.uncapped_samples.load(Relaxed),
            folded_events: counters.folded_events.load(Relaxed),
            rejected: (Rejection::ALL.iter())
                .map(|&reason| (reason, counters.rejected[reason.index()].load(Relaxed)))
                .filter(|&(_, n)| n > 0)
                .map(|(reason, n)| (reason.as_str().to_owned(), n))
                .collect(),
            folded_names: self.folded_names.copy(),
            recent_rejects: self.recent_rejects(),
        }
    }

    /// Sets the counters and folded names to saved ones (after the series: restoring an
    /// account past the cap, or `(other)` itself, counts as folding it).
    pub fn restore_counters(&self, copy: &CountersCopy) {
        let counters = &self.counters;
        counters.saturated.store(copy.saturated, Relaxed);
        counters.too_old.store(copy.too_old, Relaxed);
        counters.skipped_samples.store(copy.skipped_samples, Relaxed);
        counters.uncapped_samples.store(copy.uncapped_samples, Relaxed);
        counters.folded_events.store(copy.folded_events, Relaxed);
        for reason in Rejection::ALL {
            let saved = copy.rejected.get(reason.as_str()).copied().unwrap_or(0);
            counters.rejected[reason.index()].store(saved, Relaxed);
        }
        self.folded_names.clear();
        self.folded_names.restore(&copy.folded_names);
        self.restore_rejects(&copy.recent_rejects);
    }
}
