//! What the engine keeps per account and per account x type.

use crate::bodies::BodyRings;
use crate::histogram::TimingBody;
use crate::hll::AtomicHll;
use crate::ring::{Bucket, CountRings, Layout, RingReader, RingWriter, Wait, WideSeries, Write};
use crate::table::AppendOnly;
use crate::windows::SavedBucket;
use compact_str::CompactString;
use once_cell::race::OnceBox;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// How many app names an account remembers (the first ones seen).
pub(crate) const MAX_APPS: usize = 8;

/// An event count kept exactly since start and in rolling buckets at every resolution.
pub(crate) struct Series {
    total: AtomicU64,
    pub(crate) rings: CountRings,
}

/// Whether an event's writes were not all kept, for the engine's health counters.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Misses {
    pub(crate) saturated: bool,
    pub(crate) too_old: bool,
}

impl Misses {
    pub(crate) fn note(&mut self, write: Write) {
        match write {
            Write::Counted => {}
            Write::Saturated => self.saturated = true,
            Write::TooOld => self.too_old = true,
        }
    }
}

impl Series {
    pub(crate) fn new(layout: &Layout) -> Self {
        Series {
            total: AtomicU64::new(0),
            rings: CountRings::new(layout),
        }
    }

    /// Adds `n` events at `buckets` (one per resolution, finest first), then runs `then` before
    /// the series' lock is let go: what `then` reads cannot change between the write and the
    /// read for whoever changes it under this lock (see [`Series::hand_over`]). The total
    /// saturates at `u64::MAX` (counted as a saturation) rather than wrap. `None`, nothing
    /// written, when another writer holds the series and `wait` says not to wait for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record<R>(
        &self,
        layout: &Layout,
        buckets: &[Bucket],
        n: u64,
        wait: Wait,
        wide: &WideSeries,
        misses: &mut Misses,
        then: impl FnOnce() -> R,
    ) -> Option<R> {
        let mut writer = self.rings.writer(wait)?;
        // Under the write lock: a plain load and store, not a locked add.
        let total = self.total.load(Relaxed).checked_add(n).unwrap_or_else(|| {
            misses.saturated = true;
            u64::MAX
        });
        self.total.store(total, Relaxed);
        writer.advance(layout, buckets[0].epoch);
        for (level, &bucket) in layout.levels().iter().zip(buckets) {
            misses.note(writer.add(level, bucket, n, wide));
        }
        Some(then())
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// Asks for the buckets a [`Series::record`] at `buckets` writes: a hint that lets a block
    /// of series' cache misses overlap before any is written.
    pub(crate) fn touch(&self, buckets: &[Bucket]) {
        self.rings.touch(buckets.iter().map(|b| b.slot));
    }

    /// The finest-resolution epoch of the latest write.
    pub(crate) fn last_active(&self) -> Option<u64> {
        self.rings.newest()
    }

    /// Runs `read` on a consistent view of the rings (see [`CountRings::read`]).
    pub(crate) fn read<R>(&self, read: impl FnMut(&RingReader<'_>) -> R) -> R {
        self.rings.read(read)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.rings.heap_bytes()
    }

    /// The total, the latest finest epoch and every ring, as a checkpoint saves them.
    pub(crate) fn copy(&self, layout: &Layout) -> (u64, Option<u64>, Vec<Vec<SavedBucket>>) {
        let writer = self.rings.lock();
        self.copy_under(&writer, layout)
    }

    fn copy_under(
        &self,
        writer: &RingWriter<'_>,
        layout: &Layout,
    ) -> (u64, Option<u64>, Vec<Vec<SavedBucket>>) {
        let rings = layout.levels().iter().map(|level| writer.copy(level));
        (self.total(), self.last_active(), rings.collect())
    }

    /// Adds everything this series holds to `to`, then runs `then`, all under this series'
    /// lock. A writer that asks under the same lock ([`Series::record`]) whether `to` needs
    /// its count too sees the state either before `then`, and its count is in the copy, or
    /// after it, and is not: every count reaches `to` once.
    pub(crate) fn hand_over(&self, to: &Series, layout: &Layout, wide: &WideSeries, then: impl FnOnce()) {
        let writer = self.rings.lock();
        let (total, last_active, rings) = self.copy_under(&writer, layout);
        to.restore(layout, total, last_active, &rings, wide);
        then();
    }

    /// Adds what a checkpoint saved (into an engine of the same origin and resolutions).
    pub(crate) fn restore(
        &self,
        layout: &Layout,
        total: u64,
        last_active: Option<u64>,
        rings: &[Vec<SavedBucket>],
        wide: &WideSeries,
    ) {
        let mut writer = self.rings.lock();
        self.total.store(self.total().saturating_add(total), Relaxed);
        let Some(newest) = last_active else {
            return;
        };
        writer.advance(layout, newest);
        for (level, saved) in layout.levels().iter().zip(rings) {
            for bucket in saved.iter().filter(|b| b.count > 0) {
                // Buckets the ring no longer holds as of `newest` are too old, and left out.
                writer.add(level, level.bucket(bucket.epoch), bucket.count, wide);
            }
        }
    }
}

/// A gauge's last value; StatsD semantics (a delta to a gauge never set starts from 0).
pub(crate) struct Gauge {
    bits: AtomicU64,
}

/// Not a value any set or delta can produce: finite inputs only.
const UNSET: u64 = u64::MAX;

impl Default for Gauge {
    fn default() -> Self {
        Gauge {
            bits: AtomicU64::new(UNSET),
        }
    }
}

impl Gauge {
    pub(crate) fn set(&self, value: f64) {
        if value.is_finite() {
            self.bits.store(value.to_bits(), Relaxed);
        }
    }

    pub(crate) fn add(&self, delta: f64) {
        if !delta.is_finite() {
            return;
        }
        let _ = self.bits.fetch_update(Relaxed, Relaxed, |bits| {
            let current = if bits == UNSET { 0.0 } else { f64::from_bits(bits) };
            Some((current + delta).to_bits())
        });
    }

    pub(crate) fn get(&self) -> Option<f64> {
        let bits = self.bits.load(Relaxed);
        (bits != UNSET).then(|| f64::from_bits(bits))
    }
}

/// A type's name: one copy shared by every account's entry for the type and the all-accounts
/// one. A thin pointer (8 bytes, where an `Arc<str>` takes 16), since every account holds a few;
/// the second hop lands on a line that every account's lookups of the type keep warm.
#[derive(Clone)]
pub(crate) struct TypeName(Arc<Arc<str>>);

impl TypeName {
    pub(crate) fn new(name: &str) -> Self {
        TypeName(Arc::new(Arc::from(name)))
    }

    /// The name as a snapshot hands it out, without a copy.
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl std::ops::Deref for TypeName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// One event type of one account.
pub(crate) struct TypeEntry {
    pub(crate) name: TypeName,
    pub(crate) counts: Series,
    /// Allocated on the first timing, if the engine's cap on timing series allows. A thin
    /// pointer (8 bytes, where a `OnceLock` takes 16): most types never have timings or sets.
    pub(crate) timings: OnceBox<BodyRings<TimingBody>>,
    /// Allocated on the first set member, likewise capped.
    pub(crate) sets: OnceBox<BodyRings<AtomicHll>>,
    pub(crate) gauge: Gauge,
}

// Every account holds a few: 88 bytes are one 96-byte allocation with glibc's header, where 112
// took 128 (docs/PERFORMANCE.md, "Thinner type entries"). Not under loom, whose atomics and
// locks are larger.
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<TypeEntry>() <= 88);

impl TypeEntry {
    pub(crate) fn new(name: TypeName, layout: &Layout) -> Self {
        TypeEntry {
            name,
            counts: Series::new(layout),
            timings: OnceBox::new(),
            sets: OnceBox::new(),
            gauge: Gauge::default(),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let timings = self.timings.get().map_or(0, BodyRings::heap_bytes);
        let sets = self.sets.get().map_or(0, BodyRings::heap_bytes);
        // The name is shared with the type's entry over all accounts.
        self.counts.heap_bytes() + timings + sets
    }
}

/// One account: its own counts, its types (capped, then folded into `(other)`) and apps.
pub(crate) struct Account {
    /// Inline up to 24 bytes: a snapshot copies every account's name into its row, without a
    /// cache miss on a separate allocation or a reference count.
    pub(crate) name: CompactString,
    pub(crate) counts: Series,
    pub(crate) types: AppendOnly<TypeEntry, OnceBox<TypeEntry>>,
    /// Inline up to 24 bytes, as the name: every event that names an app is checked against
    /// them, and a name kept elsewhere was a cache miss of its own.
    pub(crate) apps: AppendOnly<CompactString>,
    /// Serialises appends to `types` and `apps`; never taken by readers or known types.
    insert: Mutex<()>,
}

impl Account {
    pub(crate) fn new(name: CompactString, layout: &Layout, max_types: usize) -> Self {
        Account {
            name,
            counts: Series::new(layout),
            // One more than the cap: room for the `(other)` type.
            types: AppendOnly::with_capacity(max_types + 1),
            apps: AppendOnly::with_capacity(MAX_APPS),
            insert: Mutex::new(()),
        }
    }

    fn find_type(&self, name: &str) -> Option<usize> {
        self.types.iter().position(|t| &*t.name == name)
    }

    /// The index of type `name`, adding it, or folding it into `(other)` past `max_types` or
    /// when `room` (asked only for a new type) says the engine has no more series for types. A
    /// new entry's name comes from `shared`, so that accounts share one copy of each name.
    pub(crate) fn resolve_type(
        &self,
        name: &str,
        layout: &Layout,
        max_types: usize,
        room: impl FnOnce() -> bool,
        shared: impl FnOnce(&str) -> TypeName,
    ) -> usize {
        if let Some(index) = self.find_type(name) {
            return index;
        }
        let _insert = self.insert.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(index) = self.find_type(name) {
            return index;
        }
        let name = if self.types.len() < max_types && room() {
            name
        } else {
            if let Some(index) = self.find_type(crate::OTHER) {
                return index;
            }
            crate::OTHER
        };
        let entry = Box::new(TypeEntry::new(shared(name), layout));
        match self.types.push(entry) {
            Ok(index) => index,
            // Unreachable by construction: capacity is max_types + 1 and (other) comes last.
            Err(_) => self.types.capacity() - 1,
        }
    }

    pub(crate) fn note_app(&self, app: &str) {
        if self.apps.len() == MAX_APPS || self.apps.iter().any(|a| a == app) {
            return;
        }
        let _insert = self.insert.lock().unwrap_or_else(|poison| poison.into_inner());
        if !self.apps.iter().any(|a| a == app) {
            let _ = self.apps.push(CompactString::from(crate::event::clamp_name(app)));
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let types: usize = self
            .types
            .iter()
            .map(|t| std::mem::size_of::<TypeEntry>() + t.heap_bytes())
            .sum();
        let table = self.types.heap_bytes() + self.apps.heap_bytes();
        let name = if self.name.is_heap_allocated() {
            self.name.capacity()
        } else {
            0
        };
        self.counts.heap_bytes() + types + table + name
    }
}

/// Model-checked with loom: `RUSTFLAGS="--cfg loom" cargo test -p tally-core --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::ring::Wait;
    use crate::time::{Resolution, Timestamp};
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Release};
    use loom::thread;

    /// Publishes `n` events at `epoch` of a pair whose series stands in for its type while
    /// `standing` says so, as the engine does.
    fn publish(
        layout: &Layout,
        wide: &WideSeries,
        series: &(Series, Series, AtomicBool),
        epoch: u64,
        n: u64,
    ) {
        let (own, overall, standing) = series;
        let buckets = [layout.levels()[0].bucket(epoch)];
        let mut misses = Misses::default();
        let overall_too = || !standing.load(Acquire);
        if own.record(layout, &buckets, n, Wait::Yes, wide, &mut misses, overall_too) == Some(true) {
            overall.record(layout, &buckets, n, Wait::Yes, wide, &mut misses, || ());
        }
    }

    /// A pair's series stands in for its type over all accounts while a writer publishes to
    /// it, and a second pair's arrival hands it over: every count reaches the type's own series
    /// once, whichever runs first.
    #[test]
    fn loom_a_hand_over_counts_every_event_once() {
        loom::model(|| {
            let layout = Layout::new(&[Resolution::new(1000, 4)], Timestamp::from_millis(0)).expect("valid");
            let wide = Arc::new(WideSeries::new(0));
            let series = Arc::new((Series::new(&layout), Series::new(&layout), AtomicBool::new(true)));
            publish(&layout, &wide, &series, 1, 1);
            let writer = {
                let (layout, wide, series) = (layout.clone(), Arc::clone(&wide), Arc::clone(&series));
                thread::spawn(move || publish(&layout, &wide, &series, 2, 2))
            };
            let (own, overall, standing) = &*series;
            own.hand_over(overall, &layout, &wide, || standing.store(false, Release));
            writer.join().expect("thread");
            assert_eq!((overall.total(), own.total()), (3, 3));
            let sum = |series: &Series, epoch| series.read(|r| r.sum(&layout.levels()[0], epoch, epoch));
            assert_eq!((sum(overall, 1), sum(overall, 2)), (1, 2));
        });
    }
}
