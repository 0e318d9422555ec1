//! The engine: accounts, their rolling windows, and the counters of what went wrong.
//!
//! One [`Engine`] is shared (in an `Arc`) by every ingest thread and every UI. Ingest threads
//! each own a [`Recorder`], which caches name lookups, the current bucket of each resolution
//! and the counts not yet published, so recording a count of a known pair takes no lock,
//! allocates nothing and divides nothing: a hash lookup and an add; the shared rings are
//! written a pair at a time when the recorder publishes.

use crate::account::{Account, Misses, Series, TypeEntry, TypeName};
use crate::bodies::BodyRings;
use crate::event::{Event, OTHER, Value, clamp_name};
use crate::histogram::TimingBody;
use crate::hll::AtomicHll;
use crate::hours::SeriesId;
use crate::notice::{Annotation, Notice, Notices, NoticesCopy, ServiceCheck};
use crate::rejection::{RejectLog, RejectSample, Rejection};
use crate::ring::{Bucket, Layout, LayoutError, Wait, WideSeries};
use crate::table::AppendOnly;
use crate::time::{Resolution, Timestamp};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use once_cell::race::OnceBox;
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the engine keeps, fixed at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Finest first. Default: 1 s x 300, 1 min x 60, 1 h x 24.
    pub resolutions: Vec<Resolution>,
    /// Accounts tracked by name; events of further accounts are counted under `(other)`.
    pub max_accounts: usize,
    /// Types tracked per account; further types are counted under the type `(other)`.
    pub max_types_per_account: usize,
    /// Type names tracked over all accounts (the all-accounts types table); further names are
    /// counted under `(other)` there.
    pub max_types: usize,
    /// Series that keep timing histograms (about 2 KiB per bucket in use): up to this many
    /// account x type series, and as many types over all accounts.
    pub max_timing_series: usize,
    /// Series that keep set registers (256 bytes per bucket in use), capped likewise.
    pub max_set_series: usize,
    /// Account x type series over all accounts; past it an account's new types are counted
    /// under its type `(other)`.
    pub max_type_series: usize,
    /// Series whose buckets may move from 4 to 8 bytes when a count outgrows 2^30; past it
    /// such counts stop there (counted as saturated).
    pub max_wide_series: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            resolutions: vec![
                Resolution::new(1000, 300),
                Resolution::new(60_000, 60),
                Resolution::new(3_600_000, 24),
            ],
            max_accounts: 100_000,
            max_types_per_account: 32,
            max_types: 1_000,
            max_timing_series: 256,
            max_set_series: 256,
            max_type_series: 500_000,
            max_wide_series: 10_000,
        }
    }
}

/// Engine-wide counters of events not fully kept, and input rejected before it was an event.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) saturated: AtomicU64,
    pub(crate) too_old: AtomicU64,
    pub(crate) skipped_samples: AtomicU64,
    pub(crate) uncapped_samples: AtomicU64,
    pub(crate) folded_events: AtomicU64,
    pub(crate) rejected: [AtomicU64; Rejection::ALL.len()],
}

/// Account lookup by name, guarded together with appends to the account table.
struct Index {
    /// Slots of the account table, found by the account's own name (not a second copy of it).
    by_name: HashTable<usize>,
    hasher: DefaultHashBuilder,
    other: Option<usize>,
}

impl Index {
    fn find(&self, accounts: &AppendOnly<Account>, name: &str) -> Option<usize> {
        let named = |&slot: &usize| accounts.get(slot).is_some_and(|account| account.name == name);
        self.by_name.find(self.hasher.hash_one(name), named).copied()
    }

    /// Indexes the account at `slot` under its name.
    fn insert(&mut self, accounts: &AppendOnly<Account>, slot: usize) {
        let hasher = &self.hasher;
        let hash_of = |slot: usize| hasher.hash_one(accounts.get(slot).map_or("", |a| a.name.as_str()));
        self.by_name
            .insert_unique(hash_of(slot), slot, |&slot| hash_of(slot));
    }
}

/// Each type over all accounts, kept as it is recorded so that the all-accounts types table
/// (with percentiles) costs a pass over types, not over every account's types. An entry's gauge
/// is not kept: a last value over accounts means nothing.
pub(crate) struct TypeTotals {
    pub(crate) entries: AppendOnly<TypeEntry>,
    index: Mutex<HashMap<Arc<str>, usize>>,
    claimed: Claimed,
    /// Each entry's [`StandIn`], packed.
    stand_ins: Box<[AtomicU64]>,
    /// Serialises pairs joining an entry ([`Engine::join_overall`]).
    joining: Mutex<()>,
}

/// Whose series holds the counts of a type over all accounts. While one (account, type) pair
/// is all a type has, that pair's series holds exactly the type's counts over all accounts: it
/// is read for them, and the pair's counts are published to it alone, which halves the writes
/// of a type that only one account sends (every type of many StatsD streams). When a second
/// pair joins, the first pair's series is copied into the type's own, which holds the counts
/// from then on. Its timings and sets are the type's own throughout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StandIn {
    /// No pair yet.
    Nobody,
    /// The only pair: an account and its type's index there.
    Pair { account: u32, kind: u32 },
    /// Several pairs, or one whose series was not found: the type's own series.
    Own,
}

impl StandIn {
    // Tags no pair takes: an account's types never reach these indexes.
    const NOBODY: u64 = u64::MAX;
    const OWN: u64 = u64::MAX - 1;

    fn pack(self) -> u64 {
        match self {
            StandIn::Nobody => Self::NOBODY,
            StandIn::Pair { account, kind } => (u64::from(account) << 32) | u64::from(kind),
            StandIn::Own => Self::OWN,
        }
    }

    fn unpack(packed: u64) -> Self {
        match packed {
            Self::NOBODY => StandIn::Nobody,
            Self::OWN => StandIn::Own,
            _ => StandIn::Pair {
                account: (packed >> 32) as u32,
                kind: packed as u32,
            },
        }
    }
}

/// How many timing and set series have been given their rings, against the caps.
#[derive(Default)]
pub(crate) struct Claimed {
    timing_series: AtomicUsize,
    set_series: AtomicUsize,
}

impl TypeTotals {
    fn new(max_types: usize) -> Self {
        TypeTotals {
            // One more than the cap: room for `(other)`.
            entries: AppendOnly::with_capacity(max_types + 1),
            index: Mutex::new(HashMap::new()),
            claimed: Claimed::default(),
            stand_ins: (0..=max_types).map(|_| AtomicU64::new(StandIn::NOBODY)).collect(),
            joining: Mutex::new(()),
        }
    }

    fn stand_in(&self, overall: usize) -> StandIn {
        let packed = self
            .stand_ins
            .get(overall)
            .map_or(StandIn::OWN, |s| s.load(Acquire));
        StandIn::unpack(packed)
    }

    /// The name of the entry for type `name` if there is one (one copy for every account), else
    /// a new copy.
    pub(crate) fn shared_name(&self, name: &str) -> TypeName {
        let found = lock(&self.index)
            .get(name)
            .and_then(|&index| self.entries.get(index));
        found.map_or_else(|| TypeName::new(name), |entry| entry.name.clone())
    }

    /// The entry for type `name`, added if there is room, else `(other)`'s.
    pub(crate) fn resolve(&self, name: &str, layout: &Layout) -> usize {
        let mut index = lock(&self.index);
        if let Some(&found) = index.get(name) {
            return found;
        }
        let named = self.entries.len() - usize::from(index.contains_key(OTHER));
        let name = if named < self.entries.capacity() - 1 {
            name
        } else {
            OTHER
        };
        if let Some(&found) = index.get(name) {
            return found;
        }
        let name = TypeName::new(name);
        let slot = self
            .entries
            .push(TypeEntry::new(name.clone(), layout))
            // Full only when `(other)` takes the last slot, which it then has.
            .unwrap_or(self.entries.capacity() - 1);
        index.insert(name.shared(), slot);
        slot
    }
}

pub struct Engine {
    pub(crate) layout: Layout,
    pub(crate) config: EngineConfig,
    pub(crate) accounts: AppendOnly<Account>,
    index: Mutex<Index>,
    /// Every account's events together: the bars' heights and the overall totals and rates.
    pub(crate) all: Series,
    pub(crate) types: TypeTotals,
    pub(crate) folded_names: AtomicHll,
    pub(crate) counters: Counters,
    rejects: Mutex<RejectLog>,
    notices: Mutex<Notices>,
    claimed: Claimed,
    /// Account x type series given so far, against `max_type_series`.
    type_series: AtomicUsize,
    pub(crate) wide: WideSeries,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("accounts", &self.accounts.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the dashboard down with it; the guarded data stays valid
    // because every critical section here leaves it consistent at each step.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Engine {
    /// An engine whose buckets count from `start` (rounded down to the coarsest bucket).
    pub fn new(config: EngineConfig, start: Timestamp) -> Result<Arc<Self>, LayoutError> {
        let layout = Layout::new(&config.resolutions, start)?;
        let all = Series::new(&layout);
        let wide = WideSeries::new(config.max_wide_series);
        Ok(Arc::new(Engine {
            layout,
            // One more than the cap: room for `(other)`.
            accounts: AppendOnly::with_capacity(config.max_accounts + 1),
            index: Mutex::new(Index {
                by_name: HashTable::new(),
                hasher: DefaultHashBuilder::default(),
                other: None,
            }),
            types: TypeTotals::new(config.max_types),
            config,
            all,
            folded_names: AtomicHll::default(),
            counters: Counters::default(),
            rejects: Mutex::new(RejectLog::default()),
            notices: Mutex::new(Notices::default()),
            claimed: Claimed::default(),
            type_series: AtomicUsize::new(0),
            wide,
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A recorder for one ingest thread, remembering up to [`Recorder::MAX_CACHED_NAMES`]
    /// names.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        self.recorder_caching(Recorder::MAX_CACHED_NAMES)
    }

    /// A recorder that remembers at most `names` (account, type) pairs: a small cache for
    /// where there are many recorders (one per stream connection), so that their caches
    /// together stay within what [`Recorder::cache_ceiling`] says.
    pub fn recorder_caching(self: &Arc<Self>, names: usize) -> Recorder {
        Recorder {
            engine: Arc::clone(self),
            names: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            max_names: names.max(1),
            buckets: self.layout.levels().iter().map(|level| level.bucket(0)).collect(),
            // Empty: the first event computes the real one.
            span: BucketSpan::default(),
            pending: Vec::new(),
            account_sums: Vec::new(),
            type_sums: Vec::new(),
            pending_all: 0,
            waiting_since_ms: None,
        }
    }

    /// Counts input that could not become an event, keeping the payload as evidence.
    pub fn reject(&self, reason: Rejection, detail: &str, payload: &[u8], time: Timestamp) {
        self.counters.rejected[reason.index()].fetch_add(1, Relaxed);
        lock(&self.rejects).push(RejectSample::new(time, reason, detail, payload));
    }

    /// Counts `n` rejections that have no payload worth keeping (e.g. a full queue).
    pub fn reject_many(&self, reason: Rejection, n: u64) {
        self.counters.rejected[reason.index()].fetch_add(n, Relaxed);
    }

    pub(crate) fn recent_rejects(&self) -> Vec<RejectSample> {
        lock(&self.rejects).samples()
    }

    /// Takes back saved examples of rejected input, before any newer one.
    pub(crate) fn restore_rejects(&self, samples: &[RejectSample]) {
        let mut log = lock(&self.rejects);
        samples.iter().cloned().for_each(|sample| log.push(sample));
    }

    /// Keeps a DogStatsD event (to be marked on the charts) or a service check's status
    /// (replacing its last one).
    pub fn notice(&self, notice: Notice) {
        let mut notices = lock(&self.notices);
        match notice {
            Notice::Annotation(annotation) => notices.annotate(annotation),
            Notice::Check(check) => notices.check(check),
        }
    }

    /// The annotations and checks, unless none came since the copy that returned `changes`
    /// (0 before the first): with the count to pass next time.
    pub fn notices_copy(&self, changes: u64) -> Option<(u64, NoticesCopy)> {
        lock(&self.notices).copy_since(changes)
    }

    /// Takes back saved annotations and checks, as if they had just arrived.
    pub fn restore_notices(&self, copy: NoticesCopy) {
        let mut notices = lock(&self.notices);
        copy.annotations.into_iter().for_each(|a| notices.annotate(a));
        copy.checks.into_iter().for_each(|c| notices.check(c));
    }

    pub(crate) fn annotations_since(&self, since: Timestamp) -> Vec<Annotation> {
        lock(&self.notices).annotations_since(since)
    }

    pub(crate) fn checks(&self) -> Vec<ServiceCheck> {
        lock(&self.notices).checks()
    }

    /// The account for `name`, created if there is room, else `(other)`. The flag says whether
    /// the name was folded (such lookups must not be cached: their number is unbounded).
    pub(crate) fn resolve_account(&self, name: &str) -> (usize, bool) {
        let mut index = lock(&self.index);
        if let Some(found) = index.find(&self.accounts, name) {
            return (found, false);
        }
        let named = index.by_name.len() - usize::from(index.other.is_some());
        if named < self.config.max_accounts {
            let account = Account::new(name.into(), &self.layout, self.config.max_types_per_account);
            if let Ok(slot) = self.accounts.push(account) {
                if name == OTHER {
                    index.other = Some(slot);
                }
                index.insert(&self.accounts, slot);
                return (slot, false);
            }
        }
        self.folded_names.insert(name.as_bytes());
        self.counters.folded_events.fetch_add(1, Relaxed);
        if let Some(other) = index.other {
            return (other, true);
        }
        let account = Account::new(OTHER.into(), &self.layout, self.config.max_types_per_account);
        // The table has one slot more than the cap, kept for `(other)`.
        let slot = self
            .accounts
            .push(account)
            .unwrap_or(self.accounts.capacity() - 1);
        index.insert(&self.accounts, slot);
        index.other = Some(slot);
        (slot, true)
    }

    /// Takes one of the `max_type_series` when called: for an account's new type.
    pub(crate) fn type_series_room(&self) -> impl FnOnce() -> bool {
        || Self::claim(&self.type_series, self.config.max_type_series)
    }

    fn claim(counter: &AtomicUsize, cap: usize) -> bool {
        counter
            .fetch_update(Relaxed, Relaxed, |n| (n < cap).then_some(n + 1))
            .is_ok()
    }

    /// Adds `n` events of `key` at `buckets`.
    fn add_count(&self, key: Key, buckets: &[Bucket], n: u64) {
        if self.add_own_type_count(key, buckets, n, Wait::Yes) == Some(true) {
            self.add_overall_count(key.overall, buckets, n, Wait::Yes);
        }
        self.add_account_count(key.account, buckets, n, Wait::Yes);
    }

    /// Adds `n` events at `buckets` to `series`; `false`, nothing added, when it would have
    /// had to wait for another writer and was told not to. `too_old` says whether writes too
    /// old for the rings are counted here (they are once per event, by its own type).
    fn add_to(&self, series: &Series, buckets: &[Bucket], n: u64, wait: Wait, too_old: bool) -> bool {
        self.add_to_then(series, buckets, n, wait, too_old, || ())
            .is_some()
    }

    /// [`Engine::add_to`], then `then` under the series' lock (see [`Series::record`]).
    fn add_to_then<R>(
        &self,
        series: &Series,
        buckets: &[Bucket],
        n: u64,
        wait: Wait,
        too_old: bool,
        then: impl FnOnce() -> R,
    ) -> Option<R> {
        let mut misses = Misses::default();
        let added = series.record(&self.layout, buckets, n, wait, &self.wide, &mut misses, then);
        misses.too_old &= too_old;
        self.note_misses(misses);
        added
    }

    /// Adds `n` events to account `account`'s own series.
    fn add_account_count(&self, account: u32, buckets: &[Bucket], n: u64, wait: Wait) -> bool {
        let Some(account) = self.accounts.get(account as usize) else {
            return true;
        };
        self.add_to(&account.counts, buckets, n, wait, false)
    }

    /// Adds `n` events of `key` at `buckets` to the account's series of its type. `None`,
    /// nothing added, when it would have had to wait and was told not to; else whether the
    /// type's series over all accounts must have them too: not while this pair's series stands
    /// in for it, which is asked under the series' lock, where a hand-over changes it.
    fn add_own_type_count(&self, key: Key, buckets: &[Bucket], n: u64, wait: Wait) -> Option<bool> {
        let Some(own) = self.own_entry(key) else {
            return Some(true);
        };
        let overall_too = || self.overall_needs(key.overall as usize, key.account, key.type_index);
        self.add_to_then(&own.counts, buckets, n, wait, true, overall_too)
    }

    /// Whether type `overall` over all accounts must have the counts of pair (`account`,
    /// `kind`) too: not while that pair's series stands in for it. Asked under the pair
    /// series' lock by writers, where a hand-over changes the answer.
    pub(crate) fn overall_needs(&self, overall: usize, account: u32, kind: u32) -> bool {
        self.types.stand_in(overall) != StandIn::Pair { account, kind }
    }

    /// The type over all accounts that `account`'s type `kind` counts in, the pair joined to
    /// it (before any of its counts is published).
    pub(crate) fn overall_for(&self, account: usize, kind: usize) -> usize {
        let (account, kind) = (account as u32, kind as u32);
        // The account's own name for the type: `(other)` past its cap.
        let name = self.pair_entry(account, kind).map_or(OTHER, |t| &*t.name);
        let overall = self.types.resolve(name, &self.layout);
        self.join_overall(overall, account, kind);
        overall
    }

    /// Counts pair (`account`, `kind`) in type `overall` over all accounts (see [`StandIn`]):
    /// the first pair stands in for the type; a second one hands the first one's counts over
    /// to the type's own series.
    fn join_overall(&self, overall: usize, account: u32, kind: u32) {
        let pair = StandIn::Pair { account, kind };
        let joined = |now: StandIn| now == pair || now == StandIn::Own;
        if joined(self.types.stand_in(overall)) {
            return;
        }
        let _joining = lock(&self.types.joining);
        let (Some(cell), Some(entry)) = (self.types.stand_ins.get(overall), self.types.entries.get(overall))
        else {
            return;
        };
        match self.types.stand_in(overall) {
            StandIn::Nobody => cell.store(pair.pack(), Release),
            standing @ StandIn::Pair { account, kind } if standing != pair => {
                let standing = self.pair_entry(account, kind).map(|t| &t.counts);
                let own = || cell.store(StandIn::OWN, Release);
                match standing {
                    Some(series) => series.hand_over(&entry.counts, &self.layout, &self.wide, own),
                    None => own(),
                }
            }
            _ => {}
        }
    }

    /// The series of type `overall` over all accounts: the type's own, or its only pair's
    /// while that stands in for it (see [`StandIn`]).
    pub(crate) fn overall_counts(&self, overall: usize) -> Option<&Series> {
        let entry = self.types.entries.get(overall)?;
        let standing = match self.types.stand_in(overall) {
            StandIn::Pair { account, kind } => self.pair_entry(account, kind).map(|t| &t.counts),
            StandIn::Nobody | StandIn::Own => None,
        };
        Some(standing.unwrap_or(&entry.counts))
    }

    /// Adds `n` events to the series of type `overall` over all accounts.
    fn add_overall_count(&self, overall: u32, buckets: &[Bucket], n: u64, wait: Wait) -> bool {
        let Some(entry) = self.types.entries.get(overall as usize) else {
            return true;
        };
        self.add_to(&entry.counts, buckets, n, wait, false)
    }

    /// The account's entry for the key's type.
    fn own_entry(&self, key: Key) -> Option<&TypeEntry> {
        self.pair_entry(key.account, key.type_index)
    }

    /// Account `account`'s type `kind`.
    fn pair_entry(&self, account: u32, kind: u32) -> Option<&TypeEntry> {
        (self.accounts.get(account as usize)).and_then(|a| a.types.get(kind as usize))
    }

    /// Records what an event carries besides its count: a timing, a gauge, a set member.
    fn add_measure(&self, key: Key, buckets: &[Bucket], value: &Value<'_>) {
        let mut misses = Misses::default();
        if let Some(entry) = self.own_entry(key) {
            match *value {
                Value::Gauge(value) => entry.gauge.set(value),
                Value::GaugeDelta(delta) => entry.gauge.add(delta),
                _ => self.add_sample(entry, &self.claimed, buckets, value, &mut misses),
            }
        }
        if let Some(entry) = self.types.entries.get(key.overall as usize) {
            self.add_sample(entry, &self.types.claimed, buckets, value, &mut misses);
        }
        self.note_misses(misses);
    }

    /// The counts of timing and set series given rings so far, for an account's type or a
    /// type over all accounts.
    pub(crate) fn claimed_for(&self, id: SeriesId) -> &Claimed {
        match id {
            SeriesId::Account { .. } => &self.claimed,
            SeriesId::Overall { .. } => &self.types.claimed,
        }
    }

    /// `entry`'s timing histograms, allocated on first use if the cap (counted in `claimed`)
    /// allows.
    pub(crate) fn timing_rings<'a>(
        &self,
        entry: &'a TypeEntry,
        claimed: &Claimed,
    ) -> Option<&'a BodyRings<TimingBody>> {
        self.body_rings(
            &entry.timings,
            &claimed.timing_series,
            self.config.max_timing_series,
        )
    }

    /// `entry`'s set registers, allocated likewise.
    pub(crate) fn set_rings<'a>(
        &self,
        entry: &'a TypeEntry,
        claimed: &Claimed,
    ) -> Option<&'a BodyRings<AtomicHll>> {
        self.body_rings(&entry.sets, &claimed.set_series, self.config.max_set_series)
    }

    /// The rings in `cell`, allocated on first use if `claimed` is still under `cap`. A series
    /// refused is asked again at its next sample: one load of the count while it is at the cap.
    fn body_rings<'a, B: crate::bodies::Body>(
        &self,
        cell: &'a OnceBox<BodyRings<B>>,
        claimed: &AtomicUsize,
        cap: usize,
    ) -> Option<&'a BodyRings<B>> {
        if let Some(rings) = cell.get() {
            return Some(rings);
        }
        if !Self::claim(claimed, cap) {
            return None;
        }
        if cell.set(Box::new(BodyRings::new(self.layout.slots()))).is_err() {
            // Another writer allocated them first: its claim counts, ours is given back.
            claimed.fetch_sub(1, Relaxed);
        }
        cell.get()
    }

    /// Adds a timing or a set member to `entry`'s histograms or registers.
    fn add_sample(
        &self,
        entry: &TypeEntry,
        claimed: &Claimed,
        buckets: &[Bucket],
        value: &Value<'_>,
        misses: &mut Misses,
    ) {
        match *value {
            Value::Timing { ms, .. } => {
                let rings = self.timing_rings(entry, claimed);
                self.update_bodies(rings, buckets, misses, |body| body.record(ms));
            }
            Value::SetMember(member) => {
                let rings = self.set_rings(entry, claimed);
                self.update_bodies(rings, buckets, misses, |body| body.insert(member.as_bytes()));
            }
            Value::Count(_) | Value::Gauge(_) | Value::GaugeDelta(_) => {}
        }
    }

    fn update_bodies<B: crate::bodies::Body>(
        &self,
        rings: Option<&BodyRings<B>>,
        buckets: &[Bucket],
        misses: &mut Misses,
        update: impl Fn(&B),
    ) {
        let Some(rings) = rings else {
            self.counters.uncapped_samples.fetch_add(1, Relaxed);
            return;
        };
        for &bucket in buckets {
            match rings.update(bucket, &update) {
                Some(write) => misses.note(write),
                None => {
                    self.counters.skipped_samples.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn note_misses(&self, misses: Misses) {
        if misses.saturated {
            self.counters.saturated.fetch_add(1, Relaxed);
        }
        if misses.too_old {
            self.counters.too_old.fetch_add(1, Relaxed);
        }
    }

    /// Bytes the engine holds on the heap for accounts (tables, rings, names), for the
    /// memory-per-account benchmark and the UIs' health line. The types over all accounts are
    /// left out: they are bounded by the number of type names, not accounts.
    pub fn heap_bytes(&self) -> usize {
        self.accounts.heap_bytes() + self.accounts.iter().map(Account::heap_bytes).sum::<usize>()
    }
}

/// The time range that the recorder's current finest bucket covers.
#[derive(Clone, Copy, Debug, Default)]
struct BucketSpan {
    start_ms: u64,
    end_ms: u64,
}

/// How a recorder's cache names an (account, type) pair: the bytes the pair was read from, as
/// the decoder had them (a StatsD bucket as sent, see [`Recorder::record_spelled`]), or else
/// the account's name, [`NAMES_APART`] and the type's. That byte never occurs in UTF-8, so
/// the two kinds never meet, and one pair spelled both ways is simply cached twice. Kept
/// inline when short (as most are), so a lookup compares bytes on the cached pair's own line.
#[derive(Debug, PartialEq, Eq)]
enum Spelling {
    Inline { len: u8, bytes: [u8; INLINE_SPELLING] },
    Heap(Box<[u8]>),
}

/// Spellings up to this many bytes are kept inline (what fills [`Cached`]'s line).
const INLINE_SPELLING: usize = 38;

/// The longest spelling a recorder caches as given; a longer one names its pair by the
/// account's and type's names, which are cut to [`crate::MAX_NAME_BYTES`] each.
const MAX_SPELLING: usize = 2 * crate::event::MAX_NAME_BYTES + 1;

impl Spelling {
    fn new(lookup: Lookup<'_>) -> Self {
        let pieces = lookup.pieces();
        let len: usize = pieces.iter().map(|piece| piece.len()).sum();
        match u8::try_from(len) {
            Ok(short) if len <= INLINE_SPELLING => {
                let mut bytes = [0; INLINE_SPELLING];
                let mut at = 0;
                for piece in pieces {
                    bytes[at..at + piece.len()].copy_from_slice(piece);
                    at += piece.len();
                }
                Spelling::Inline { len: short, bytes }
            }
            _ => Spelling::Heap(pieces.concat().into()),
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Spelling::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Spelling::Heap(bytes) => bytes,
        }
    }
}

/// A pair as a recorder looks it up: by the bytes it was read from, or by its two names,
/// compared with a cached spelling piece by piece so that nothing is copied to look it up.
#[derive(Clone, Copy)]
enum Lookup<'a> {
    Spelled(&'a [u8]),
    Named(&'a [u8], &'a [u8]),
}

impl<'a> Lookup<'a> {
    /// `spelling`, if it is short enough to be cached as given ([`MAX_SPELLING`]).
    fn spelled(spelling: &'a str) -> Option<Self> {
        (spelling.len() <= MAX_SPELLING).then_some(Lookup::Spelled(spelling.as_bytes()))
    }

    /// How a cached spelling was looked up.
    fn of(spelling: &'a [u8]) -> Self {
        match spelling.iter().position(|&b| b == NAMES_APART) {
            Some(at) => Lookup::Named(&spelling[..at], &spelling[at + 1..]),
            None => Lookup::Spelled(spelling),
        }
    }

    /// The spelling's bytes, in pieces.
    fn pieces(self) -> [&'a [u8]; 3] {
        match self {
            Lookup::Spelled(bytes) => [bytes, &[], &[]],
            Lookup::Named(account, event_type) => [account, &[NAMES_APART], event_type],
        }
    }

    /// The same for a pair and for its cached spelling ([`Lookup::of`]).
    #[inline(always)]
    fn hash(self, hasher: &DefaultHashBuilder) -> u64 {
        let mut state = hasher.build_hasher();
        match self {
            Lookup::Spelled(bytes) => state.write(bytes),
            Lookup::Named(..) => self.pieces().iter().for_each(|piece| state.write(piece)),
        }
        state.finish()
    }

    #[inline(always)]
    fn matches(self, spelling: &[u8]) -> bool {
        match self {
            Lookup::Spelled(bytes) => same_bytes(spelling, bytes),
            Lookup::Named(account, event_type) => {
                spelling.len() == account.len() + 1 + event_type.len()
                    && spelling.starts_with(account)
                    && spelling[account.len()] == NAMES_APART
                    && spelling.ends_with(event_type)
            }
        }
    }
}

/// `a == b`, a word at a time and inline (names are short: a call to `memcmp` cost more than
/// the comparison). The bytes after the last whole word are compared as the last eight (or
/// four) bytes, overlapping what was compared already, rather than one at a time.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    #[inline(always)]
    fn word(bytes: &[u8], at: usize) -> u64 {
        u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
    }
    #[inline(always)]
    fn half(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
    }
    let len = a.len();
    if len != b.len() {
        return false;
    }
    match len {
        8.. => {
            let last = len - 8;
            (0..last).step_by(8).all(|at| word(a, at) == word(b, at)) && word(a, last) == word(b, last)
        }
        4..8 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        _ => a == b,
    }
}

/// Between an account's and a type's names in a spelling made of them (never in UTF-8).
const NAMES_APART: u8 = 0xff;

/// Where an (account, type) pair's events go: the account, its type entry, and the type's entry
/// over all accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Key {
    account: u32,
    type_index: u32,
    overall: u32,
}

/// A cached (account, type) pair: its spelling, where its events go, and its count not yet
/// published, on one cache line, held in the table itself: an event's lookup reads the
/// table's control bytes and then this line, where it compares the spelling and adds to the
/// count (with the pairs in a list of their own and their places in the table, it took one
/// more dependent miss).
#[derive(Debug)]
#[repr(align(64))]
struct Cached {
    spelling: Spelling,
    key: Key,
    pending: u64,
}

/// Why a bucket the recorder keeps in `pending` or a [`Target`] holds a pair.
const CACHED: &str =
    "a pending or found bucket holds its pair until the table grows or is cleared, which publishes first";

// One line, as its comment says: a longer inline spelling would spill onto a second.
const _: () = assert!(std::mem::size_of::<Cached>() == 64);

/// Where a recorded pair's count goes: a cached pair's pending count, or (for an account
/// folded into `(other)`, whose names are not cached) straight into the rings.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The pair's bucket in the recorder's table.
    Cached(usize),
    Folded(Key),
}

/// How long a deferring caller lets counts wait in a recorder ([`Recorder::publish_if_due`]):
/// the dashboards draw a few times a second, so a lag this short is not seen.
pub const PUBLISH_EVERY_MS: u64 = 50;

/// Records events for one ingest thread. Not shared: each thread makes its own with
/// [`Engine::recorder`].
///
/// Counts are added up per (account, type) in the recorder and published to the shared rings
/// together: when the time moves to another bucket, on [`Recorder::flush`] (which most inputs
/// call after each receive), when [`Recorder::publish_if_due`] finds they have waited
/// [`PUBLISH_EVERY_MS`] (a busy UDP receiver, which flushes only when its socket drains), and
/// on drop. So a
/// pair costs one series lock per publication instead of atomics per event, however many
/// pairs a stream rotates through, and threads recording the same account rarely contend;
/// the periodic publication does not even wait then (a busy series' count waits here).
/// Timings, gauges and set members are recorded at once (their counts are added up too).
pub struct Recorder {
    engine: Arc<Engine>,
    /// The cached pairs, found by their spelling; bounded because folded accounts are never
    /// cached.
    names: HashTable<Cached>,
    hasher: DefaultHashBuilder,
    max_names: usize,
    /// The bucket of each resolution for the latest event time, and the time the finest one
    /// covers (the coarser ones contain it: the layout's resolutions nest).
    buckets: Box<[Bucket]>,
    span: BucketSpan,
    /// The buckets of `names` with a pending count (a bucket stays put until the table grows,
    /// and nothing is pending then).
    pending: Vec<usize>,
    /// (account, pending count) and (type over all accounts, pending count) while flushing:
    /// each sum is published once.
    account_sums: Vec<(u32, u64)>,
    type_sums: Vec<(u32, u64)>,
    /// Events not yet published to the all-events series.
    pending_all: u64,
    /// When [`Recorder::publish_if_due`] first found counts waiting since the last
    /// publication (ms since the Unix epoch).
    waiting_since_ms: Option<u64>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("cached_names", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// (account, type) pairs a recorder remembers by default; past its limit it forgets
    /// them all and relearns.
    pub const MAX_CACHED_NAMES: usize = 1 << 14;

    /// The most memory a name cache of `names` pairs takes: the longest names, in a table at
    /// its worst load factor.
    pub const fn cache_ceiling(names: usize) -> u64 {
        let pair = 1 + std::mem::size_of::<Cached>() + MAX_SPELLING + 32;
        (2 * names * pair) as u64
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn record(&mut self, event: &Event<'_>) {
        let (account, event_type) = (clamp_name(event.account), clamp_name(event.event_type));
        self.record_as(event, Lookup::Named(account.as_bytes(), event_type.as_bytes()));
    }

    /// Records `event` like [`Recorder::record`], its pair cached under `spelling`: the bytes
    /// its account and type were read from (a StatsD bucket as sent: `acme.pageview`), which
    /// the caller reads the same way every time. One contiguous key is hashed and compared
    /// where the pair's two names would be, and nothing is copied to build it.
    #[inline]
    pub fn record_spelled(&mut self, event: &Event<'_>, spelling: &str) {
        match Lookup::spelled(spelling) {
            Some(lookup) => self.record_as(event, lookup),
            None => self.record(event),
        }
    }

    /// Records an event of the pair cached under `spelling` (see
    /// [`Recorder::record_spelled`]), if one is: its names need not be read. `false`, with
    /// nothing recorded, when none is.
    #[inline]
    pub fn record_known(&mut self, spelling: &str, value: &Value<'_>, time: Timestamp) -> bool {
        let Some(index) = Lookup::spelled(spelling).and_then(|lookup| self.find(lookup).1) else {
            return false;
        };
        self.record_at(Target::Cached(index), value, None, time);
        true
    }

    /// Loads the pairs cached under `spellings` (see [`Recorder::record_spelled`]) and
    /// discards them: nothing is recorded. An ingest thread calls it with a batch of payloads'
    /// buckets before it decodes any, so that their cache misses overlap instead of being
    /// taken an event at a time (between two datagrams the kernel's receive path evicts the
    /// table from the nearer caches). Each pair is found by its hash and control byte alone,
    /// without reading it: that read, the miss, is then issued for all of them in a row.
    pub fn warm<'s>(&self, spellings: impl IntoIterator<Item = &'s [u8]>) {
        const AT_ONCE: usize = 64;
        let load = |found: &[usize]| {
            let sink = (found.iter()).fold(0, |sink, &index| {
                sink ^ self.names.get_bucket(index).map_or(0, |cached| cached.pending)
            });
            std::hint::black_box(sink);
        };
        let mut found = [0; AT_ONCE];
        let mut n = 0;
        for spelling in spellings.into_iter().filter(|s| s.len() <= MAX_SPELLING) {
            let hash = Lookup::Spelled(spelling).hash(&self.hasher);
            if let Some(index) = self.names.find_bucket_index(hash, |_| true) {
                found[n] = index;
                n += 1;
                if n == AT_ONCE {
                    load(&found);
                    n = 0;
                }
            }
        }
        load(&found[..n]);
    }

    /// The lookup's hash, and the bucket of the pair cached as it spells it, if one is.
    #[inline(always)]
    fn find(&self, lookup: Lookup<'_>) -> (u64, Option<usize>) {
        let hash = lookup.hash(&self.hasher);
        let found = (self.names).find_bucket_index(hash, |cached| lookup.matches(cached.spelling.bytes()));
        (hash, found)
    }

    fn record_as(&mut self, event: &Event<'_>, lookup: Lookup<'_>) {
        let target = match self.find(lookup) {
            (_, Some(index)) => Target::Cached(index),
            (hash, None) => self.resolve(hash, lookup, event),
        };
        self.record_at(target, &event.value, event.app, event.time);
    }

    fn record_at(&mut self, target: Target, value: &Value<'_>, app: Option<&str>, time: Timestamp) {
        if !self.in_current_buckets(time) {
            self.flush();
            if !self.move_to(time) {
                self.engine.counters.too_old.fetch_add(1, Relaxed);
                return;
            }
        }
        let n = value.events();
        let key = match target {
            Target::Cached(index) => {
                let cached = self.names.get_bucket_mut(index).expect(CACHED);
                if n > 0 {
                    if cached.pending == 0 {
                        self.pending.push(index);
                    }
                    cached.pending = cached.pending.saturating_add(n);
                }
                cached.key
            }
            Target::Folded(key) => {
                if n > 0 {
                    self.engine.add_count(key, &self.buckets, n);
                }
                key
            }
        };
        self.pending_all = self.pending_all.saturating_add(n);
        if let Some(app) = app
            && let Some(account) = self.engine.accounts.get(key.account as usize)
        {
            account.note_app(app);
        }
        if !matches!(value, Value::Count(_)) {
            self.engine.add_measure(key, &self.buckets, value);
        }
    }

    /// Publishes the pending counts to the shared rings, where snapshots see them: each
    /// pair's to its account's series of its type, and the sums of each account and of each
    /// type over all accounts once (thousands of accounts of one type cost one write there, and
    /// a type of one account none: see [`StandIn`]).
    pub fn flush(&mut self) {
        self.publish(Wait::Yes);
    }

    /// Publishes what is pending. Without waiting, a series another thread is writing keeps
    /// its count here for the next publication (always before the buckets change).
    fn publish(&mut self, wait: Wait) {
        let engine = &*self.engine;
        let (buckets, names) = (&self.buckets, &mut self.names);
        let (accounts, types) = (&mut self.account_sums, &mut self.type_sums);
        in_touched_blocks(
            &mut self.pending,
            names,
            |names, block| {
                let keys = block.map(|index| names.get_bucket(index).expect(CACHED).key);
                let accounts = keys.map(|key| engine.accounts.get(key.account as usize));
                let entries = accounts.zip(keys).map(|(account, key)| {
                    account
                        .and_then(|a| a.types.get(key.type_index as usize))
                        .map(|e| &e.counts)
                });
                touch_series(entries, buckets);
            },
            |names, index| {
                let cached = names.get_bucket_mut(index).expect(CACHED);
                let Some(overall_too) = engine.add_own_type_count(cached.key, buckets, cached.pending, wait)
                else {
                    return false;
                };
                accounts.push((cached.key.account, cached.pending));
                if overall_too {
                    types.push((cached.key.overall, cached.pending));
                }
                cached.pending = 0;
                true
            },
        );
        publish_sums(
            accounts,
            |block| {
                touch_series(
                    block.map(|account| engine.accounts.get(account as usize).map(|a| &a.counts)),
                    buckets,
                )
            },
            |account, n| engine.add_account_count(account, buckets, n, wait),
        );
        publish_sums(
            types,
            |block| {
                touch_series(
                    block.map(|overall| engine.types.entries.get(overall as usize).map(|e| &e.counts)),
                    buckets,
                )
            },
            |overall, n| engine.add_overall_count(overall, buckets, n, wait),
        );
        if self.pending_all > 0 && engine.add_to(&engine.all, buckets, self.pending_all, wait, false) {
            self.pending_all = 0;
        }
        if !self.holds_counts() {
            self.waiting_since_ms = None;
        }
    }

    /// Publishes the pending counts if they have waited [`PUBLISH_EVERY_MS`], as of `now`:
    /// since the first call that found them waiting. Counts that come after a quiet spell are
    /// not published at once, only to be published again with the rest of their burst.
    pub fn publish_if_due(&mut self, now: Timestamp) {
        let now = now.as_millis();
        if !self.holds_counts() {
            return;
        }
        let since = *self.waiting_since_ms.get_or_insert(now);
        if now.saturating_sub(since) >= PUBLISH_EVERY_MS || now < since {
            self.publish(Wait::No);
            if self.holds_counts() {
                // Left by a busy series: they wait from now.
                self.waiting_since_ms = Some(now);
            }
        }
    }

    /// Whether counts wait to be published.
    fn holds_counts(&self) -> bool {
        let sums = self.account_sums.len() + self.type_sums.len();
        !self.pending.is_empty() || sums > 0 || self.pending_all > 0
    }

    fn in_current_buckets(&self, time: Timestamp) -> bool {
        let ms = time.as_millis();
        self.span.start_ms <= ms && ms < self.span.end_ms
    }

    /// Makes the buckets `time` falls in current (`false` before the engine's origin).
    fn move_to(&mut self, time: Timestamp) -> bool {
        let layout = &self.engine.layout;
        self.span = BucketSpan::default();
        let mut span = BucketSpan::default();
        for ((index, level), bucket) in layout.levels().iter().enumerate().zip(self.buckets.iter_mut()) {
            let Some(epoch) = layout.epoch(index, time) else {
                return false;
            };
            *bucket = level.bucket(epoch);
            if index == 0 {
                span.start_ms = layout.bucket_start(0, epoch).as_millis();
                span.end_ms = span.start_ms + level.resolution.bucket_ms;
            }
        }
        self.span = span;
        true
    }

    /// Where `event`'s pair goes, cached as `lookup` spells it unless its account is folded
    /// (`hash`: the lookup's).
    fn resolve(&mut self, hash: u64, lookup: Lookup<'_>, event: &Event<'_>) -> Target {
        let (account_name, type_name) = (clamp_name(event.account), clamp_name(event.event_type));
        let engine = &*self.engine;
        let (account, folded) = engine.resolve_account(account_name);
        let type_index = engine.accounts.get(account).map_or(0, |a| {
            let max_types = engine.config.max_types_per_account;
            a.resolve_type(
                type_name,
                &engine.layout,
                max_types,
                engine.type_series_room(),
                |name| engine.types.shared_name(name),
            )
        });
        let overall = engine.overall_for(account, type_index);
        let key = Key {
            account: account as u32,
            type_index: type_index as u32,
            overall: overall as u32,
        };
        if folded {
            return Target::Folded(key);
        }
        if self.names.len() >= self.max_names {
            // A cache, not a record: start again rather than grow without bound (what it
            // holds pending goes out first).
            self.flush();
            self.names.clear();
        } else if self.names.len() == self.names.capacity() {
            // Growing moves every pair to another bucket: what they hold pending goes out first.
            self.flush();
            debug_assert!(self.pending.is_empty(), "a waiting publication takes every count");
        }
        let cached = Cached {
            spelling: Spelling::new(lookup),
            key,
            pending: 0,
        };
        let hasher = &self.hasher;
        let rehash = |cached: &Cached| Lookup::of(cached.spelling.bytes()).hash(hasher);
        Target::Cached(self.names.insert_unique(hash, cached, rehash).bucket_index())
    }
}

/// How many series a publication loads before it writes any of them. Each write takes the
/// series' lock, and a locked instruction waits for every load before it, so cache misses
/// taken one series at a time cannot overlap; loaded a block at a time, they do.
const TOUCH_BLOCK: usize = 16;

/// Up to [`TOUCH_BLOCK`] items. A series is reached through a chain of dependent loads (a
/// pair's line in the recorder's table, its account, the account's types, the type's entry,
/// then the buckets), each a cache miss after a burst. Mapped a stage at a time over the whole
/// block, each stage's misses overlap; followed one item at a time, the reorder window held
/// only a chain or two, and the misses were taken nearly one after another.
#[derive(Clone, Copy)]
struct Block<T> {
    items: [T; TOUCH_BLOCK],
    len: usize,
}

impl<T: Copy + Default> Block<T> {
    /// The first [`TOUCH_BLOCK`] of `items`.
    fn of(items: &[T]) -> Self {
        let mut block = Block {
            items: [T::default(); TOUCH_BLOCK],
            len: items.len().min(TOUCH_BLOCK),
        };
        block.items[..block.len].copy_from_slice(&items[..block.len]);
        block
    }

    fn zip<U: Copy + Default>(&self, other: Block<U>) -> Block<(T, U)> {
        let mut items = [(T::default(), U::default()); TOUCH_BLOCK];
        for (to, (&a, &b)) in items.iter_mut().zip(self.items.iter().zip(&other.items)) {
            *to = (a, b);
        }
        Block { items, len: self.len }
    }

    fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    fn map<U: Copy + Default>(&self, mut f: impl FnMut(T) -> U) -> Block<U> {
        let mut items = [U::default(); TOUCH_BLOCK];
        for (to, &from) in items.iter_mut().zip(self.as_slice()) {
            *to = f(from);
        }
        Block { items, len: self.len }
    }
}

/// Loads what publishing to `series` writes, in two stages (see [`Block`]): each series'
/// header, where its buckets' address is, then its buckets.
fn touch_series(series: Block<Option<&Series>>, buckets: &[Bucket]) {
    let series = series.as_slice();
    series.iter().flatten().for_each(|s| {
        std::hint::black_box(s.total());
    });
    series.iter().flatten().for_each(|s| s.touch(buckets));
}

/// Calls `publish` on each item of `items`, `touch` on a block of them first (both given
/// `state`); leaves in `items`, in order, those `publish` did not take (returned `false` for).
fn in_touched_blocks<T: Copy + Default, S: ?Sized>(
    items: &mut Vec<T>,
    state: &mut S,
    touch: impl Fn(&S, Block<T>),
    mut publish: impl FnMut(&mut S, T) -> bool,
) {
    let mut kept = 0;
    for start in (0..items.len()).step_by(TOUCH_BLOCK) {
        let end = (start + TOUCH_BLOCK).min(items.len());
        touch(state, Block::of(&items[start..end]));
        for at in start..end {
            let item = items[at];
            if !publish(state, item) {
                // `kept` never passes `at`: what is not read yet stays where it is.
                items[kept] = item;
                kept += 1;
            }
        }
    }
    items.truncate(kept);
}

/// Adds up the counts of each id in `sums` and passes each total to `publish`, once (see
/// [`in_touched_blocks`] for `touch`); leaves in `sums` only the totals it did not take.
fn publish_sums(
    sums: &mut Vec<(u32, u64)>,
    touch: impl Fn(Block<u32>),
    mut publish: impl FnMut(u32, u64) -> bool,
) {
    sums.sort_unstable_by_key(|&(id, _)| id);
    sums.dedup_by(|(id, n), (kept_id, total)| {
        let same = id == kept_id;
        if same {
            *total = total.saturating_add(*n);
        }
        same
    });
    in_touched_blocks(
        sums,
        &mut (),
        |_, block| touch(block.map(|(id, _)| id)),
        |_, (id, n)| publish(id, n),
    );
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_tells_any_one_byte_apart_at_every_length() {
        let bytes: Vec<u8> = (0..40).map(|i| b'a' + i % 26).collect();
        for len in 0..=bytes.len() {
            let a = &bytes[..len];
            let copy = a.to_vec();
            assert!(same_bytes(a, &copy), "{len} bytes, copied");
            if let Some(shorter) = len.checked_sub(1) {
                assert!(!same_bytes(a, &bytes[..shorter]), "{len} bytes against {shorter}");
            }
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "{len} bytes, byte {at} apart");
            }
        }
    }

    fn count(account: &str, at_ms: u64) -> Event<'_> {
        Event {
            account,
            event_type: "pageview",
            app: None,
            value: Value::Count(1),
            time: Timestamp::from_millis(at_ms),
        }
    }

    /// The name cache finds a pair it holds (whatever the table grew through), stays within
    /// its bound by starting again, and loses no count doing so.
    #[test]
    fn the_name_cache_finds_what_it_holds_and_starts_again_past_its_bound() {
        let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(0)).expect("valid");
        let mut recorder = engine.recorder_caching(300);
        let names: Vec<String> = (0..1000).map(|i| format!("account-{i}")).collect();
        for round in 0..3 {
            for name in &names[..250] {
                recorder.record(&count(name, 1000));
            }
            assert_eq!(recorder.names.len(), 250, "round {round}: each pair cached once");
        }
        // Spellings too long to keep inline: by name and as sent.
        let long = "a".repeat(60);
        let long_spelling = format!("{long}.pageview");
        for _ in 0..2 {
            recorder.record_spelled(&count("account-0", 1000), "account-0.pageview");
            recorder.record_spelled(&count("account-1", 1000), "account-1.pageview");
            recorder.record(&count(&long, 1000));
            recorder.record_spelled(&count(&long, 1000), &long_spelling);
        }
        assert_eq!(recorder.names.len(), 254, "each spelling cached once");
        for name in &names {
            recorder.record(&count(name, 1000));
            assert!(recorder.names.len() <= 300);
        }
        recorder.flush();
        let snapshot = engine.snapshot(&crate::SnapshotRequest::default(), Timestamp::from_millis(2000));
        assert_eq!(snapshot.totals.total, 3 * 250 + 8 + 1000);
        let first = snapshot
            .accounts
            .iter()
            .find(|a| a.name == "account-0")
            .expect("recorded");
        assert_eq!(first.total, 6);
    }

    #[test]
    fn notices_are_copied_when_they_changed_and_restored() {
        let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(0)).expect("valid");
        assert_eq!(engine.notices_copy(0), None, "none yet");
        let deploy = Annotation {
            time: Timestamp::from_millis(5_000),
            title: "deploy".into(),
            ..Annotation::default()
        };
        engine.notice(Notice::Annotation(deploy.clone()));
        let (changes, copy) = engine.notices_copy(0).expect("one came");
        assert_eq!(copy.annotations, std::slice::from_ref(&deploy));
        assert_eq!(engine.notices_copy(changes), None, "nothing since");

        let restarted = Engine::new(EngineConfig::default(), Timestamp::from_millis(0)).expect("valid");
        restarted.restore_notices(copy);
        assert_eq!(restarted.annotations_since(Timestamp::from_millis(0)), [deploy]);
    }

    /// A block's series are loaded before any of them is written, and what a publication could
    /// not take stays, in order, for the next.
    #[test]
    fn publications_touch_a_block_before_writing_it_and_keep_what_they_could_not_publish() {
        let mut items: Vec<u32> = (0..20).collect();
        let mut seen = vec![];
        in_touched_blocks(
            &mut items,
            &mut seen,
            |_, _| {},
            |seen, item| {
                seen.push(item);
                item % 3 != 0
            },
        );
        assert_eq!(items, [0, 3, 6, 9, 12, 15, 18]);
        assert_eq!(seen, (0..20).collect::<Vec<_>>());

        let order = std::cell::RefCell::new(vec![]);
        let mut items: Vec<u32> = (0..2 * TOUCH_BLOCK as u32 + 3).collect();
        in_touched_blocks(
            &mut items,
            &mut (),
            |_, block| {
                order
                    .borrow_mut()
                    .extend(block.as_slice().iter().map(|&item| ("touch", item)))
            },
            |_, item| {
                order.borrow_mut().push(("write", item));
                true
            },
        );
        let order = order.into_inner();
        let first_write = order.iter().position(|&(what, _)| what == "write");
        assert_eq!(first_write, Some(TOUCH_BLOCK), "{order:?}");
        let second_block = &order[2 * TOUCH_BLOCK..3 * TOUCH_BLOCK];
        assert!(second_block.iter().all(|&(what, _)| what == "touch"), "{order:?}");
        assert_eq!(order.len(), 2 * (2 * TOUCH_BLOCK + 3));
        assert!(items.is_empty());
    }

    #[test]
    fn sums_are_published_once_per_id() {
        let mut sums = vec![(7, 1), (3, 2), (7, 4), (5, 1), (3, 1)];
        let mut published = vec![];
        publish_sums(
            &mut sums,
            |_| {},
            |id, n| {
                published.push((id, n));
                id != 5
            },
        );
        assert_eq!(published, [(3, 3), (5, 1), (7, 5)]);
        assert_eq!(sums, [(5, 1)], "what was not taken stays");
    }

    /// A busy UDP thread's periodic publication never waits for another writer: what it
    /// could not publish stays with it, exactly, until a publication finds the series free.
    #[test]
    fn a_periodic_publication_does_not_wait_for_a_busy_series() {
        let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(0)).expect("valid");
        let mut recorder = engine.recorder();
        recorder.record(&count("acme", 1000));
        recorder.flush();
        recorder.record(&count("acme", 1100));
        recorder.record(&count("globex", 1200));
        recorder.publish_if_due(Timestamp::from_millis(1200));
        {
            // Another writer holds the all-events series and acme's own.
            let _all = engine.all.rings.lock();
            let _acme = engine.accounts.get(0).expect("acme").counts.rings.lock();
            recorder.publish_if_due(Timestamp::from_millis(1300));
        }
        let acme = &engine.accounts.get(0).expect("acme").counts;
        assert_eq!(
            (engine.all.total(), acme.total()),
            (1, 1),
            "busy series left alone"
        );
        let globex = &engine.accounts.get(1).expect("globex").counts;
        assert_eq!(globex.total(), 1, "free series published");
        recorder.publish_if_due(Timestamp::from_millis(1400));
        assert_eq!((engine.all.total(), acme.total()), (3, 2), "published once free");
        let sums_left = recorder.account_sums.len() + recorder.type_sums.len();
        assert_eq!((sums_left, recorder.pending_all), (0, 0));
    }

    /// Counts that come after a quiet spell wait [`PUBLISH_EVERY_MS`] from when they were
    /// first found waiting, not from the last publication, which may be long past: published
    /// at once, they would be published again with the rest of their burst.
    #[test]
    fn a_periodic_publication_counts_the_wait_from_the_first_count_waiting() {
        let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(0)).expect("valid");
        let mut recorder = engine.recorder();
        recorder.publish_if_due(Timestamp::from_millis(1000));
        recorder.record(&count("acme", 5000));
        recorder.publish_if_due(Timestamp::from_millis(5000));
        assert_eq!(engine.all.total(), 0, "waited no time yet");
        recorder.record(&count("acme", 5020));
        recorder.publish_if_due(Timestamp::from_millis(5049));
        assert_eq!(engine.all.total(), 0, "waited 49 ms");
        recorder.publish_if_due(Timestamp::from_millis(5050));
        assert_eq!(engine.all.total(), 2, "waited 50 ms");
        recorder.record(&count("acme", 9000));
        recorder.publish_if_due(Timestamp::from_millis(9000));
        assert_eq!(engine.all.total(), 2, "the wait starts again");
        recorder.publish_if_due(Timestamp::from_millis(9050));
        assert_eq!(engine.all.total(), 3);
    }

    /// A type only one account sends is published to that account's series alone, which is
    /// read for the type over all accounts; when a second account sends it, what the first had
    /// counted is handed over, and every count is in the type's total and buckets once.
    #[test]
    fn a_type_one_account_sends_is_read_from_its_series_until_a_second_account_joins() {
        use crate::windows::WindowId;
        let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(0)).expect("valid");
        let signup = |account, at_ms| Event {
            event_type: "signup",
            value: Value::Count(2),
            ..count(account, at_ms)
        };
        let overall_buckets = |kind: usize| {
            let id = WindowId::Type(SeriesId::Overall { kind: kind as u32 });
            let copy = engine.copy_series(id).expect("a type over all accounts");
            let mut finest: Vec<(u64, u64)> = (copy.rings[0].iter())
                .filter(|b| b.count > 0)
                .map(|b| (b.epoch, b.count))
                .collect();
            finest.sort_unstable();
            (copy.total, finest)
        };
        let signups = |now_ms| {
            let request = crate::SnapshotRequest {
                all_types: true,
                ..crate::SnapshotRequest::default()
            };
            let types = engine.snapshot(&request, Timestamp::from_millis(now_ms)).types;
            let signup = types.into_iter().find(|t| &*t.name == "signup").expect("listed");
            (signup.total, signup.window_total)
        };

        let mut acme = engine.recorder();
        for at_ms in [1000, 1500, 2500] {
            acme.record(&signup("acme", at_ms));
        }
        acme.flush();
        let kind = engine.types.resolve("signup", &engine.layout);
        let own = &engine.types.entries.get(kind).expect("resolved").counts;
        assert_eq!(own.total(), 0, "not written while one account sends the type");
        assert_eq!(overall_buckets(kind), (6, vec![(1, 4), (2, 2)]));
        assert_eq!(signups(3000), (6, 6));

        let mut globex = engine.recorder();
        globex.record(&signup("globex", 3000));
        globex.flush();
        acme.record(&signup("acme", 3500));
        acme.flush();
        assert_eq!(own.total(), 10, "handed over, then written");
        assert_eq!(overall_buckets(kind), (10, vec![(1, 4), (2, 2), (3, 4)]));
        assert_eq!(signups(4000), (10, 10));
        let totals: u64 = (engine.accounts.iter()).map(|a| a.counts.total()).sum();
        assert_eq!(totals, 10, "each account's own counts are untouched");
    }
}
