//! The engine: accounts, their rolling windows, and the counters of what went wrong.
//!
//! One [`Engine`] is shared (in an `Arc`) by every ingest thread and every UI. Ingest threads
//! each own a [`Recorder`], which caches name lookups and the current bucket of each
//! resolution, so recording an event into a known account takes no lock, allocates nothing and
//! divides nothing: a hash lookup and a handful of atomic read-modify-writes.

use crate::account::{Account, Misses};
use crate::bodies::BodyRings;
use crate::event::{Event, OTHER, Value, clamp_name};
use crate::hll::AtomicHll;
use crate::rejection::{RejectLog, RejectSample, Rejection};
use crate::ring::{Bucket, Layout, LayoutError};
use crate::table::AppendOnly;
use crate::time::{Resolution, Timestamp};
use hashbrown::{Equivalent, HashMap};
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
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
    /// Account x type series that keep timing histograms (about 2 KiB per bucket in use).
    pub max_timing_series: usize,
    /// Account x type series that keep set registers (256 bytes per bucket in use).
    pub max_set_series: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            resolutions: vec![
                Resolution::new(1000, 300),
                Resolution::new(60_000, 60),
                Resolution::new(3_600_000, 24),
            ],
            max_accounts: 10_000,
            max_types_per_account: 32,
            max_timing_series: 256,
            max_set_series: 256,
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
    by_name: HashMap<Arc<str>, usize>,
    other: Option<usize>,
}

pub struct Engine {
    pub(crate) layout: Layout,
    pub(crate) config: EngineConfig,
    pub(crate) accounts: AppendOnly<Account>,
    index: Mutex<Index>,
    pub(crate) folded_names: AtomicHll,
    pub(crate) counters: Counters,
    rejects: Mutex<RejectLog>,
    timing_series: AtomicUsize,
    set_series: AtomicUsize,
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
        Ok(Arc::new(Engine {
            layout,
            // One more than the cap: room for `(other)`.
            accounts: AppendOnly::with_capacity(config.max_accounts + 1),
            index: Mutex::new(Index {
                by_name: HashMap::new(),
                other: None,
            }),
            config,
            folded_names: AtomicHll::default(),
            counters: Counters::default(),
            rejects: Mutex::new(RejectLog::default()),
            timing_series: AtomicUsize::new(0),
            set_series: AtomicUsize::new(0),
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A recorder for one ingest thread.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        Recorder {
            engine: Arc::clone(self),
            names: HashMap::new(),
            buckets: self.layout.levels().iter().map(|level| level.bucket(0)).collect(),
            // Empty spans: the first event computes real ones.
            spans: self
                .layout
                .levels()
                .iter()
                .map(|_| BucketSpan::default())
                .collect(),
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

    /// The account for `name`, created if there is room, else `(other)`. The flag says whether
    /// the name was folded (such lookups must not be cached: their number is unbounded).
    fn resolve_account(&self, name: &str) -> (usize, bool) {
        let mut index = lock(&self.index);
        if let Some(&found) = index.by_name.get(name) {
            return (found, false);
        }
        let named = index.by_name.len() - usize::from(index.other.is_some());
        if named < self.config.max_accounts {
            let name: Arc<str> = Arc::from(name);
            let account = Account::new(Arc::clone(&name), &self.layout, self.config.max_types_per_account);
            if let Ok(slot) = self.accounts.push(account) {
                if &*name == OTHER {
                    index.other = Some(slot);
                }
                index.by_name.insert(name, slot);
                return (slot, false);
            }
        }
        self.folded_names.insert(name.as_bytes());
        self.counters.folded_events.fetch_add(1, Relaxed);
        if let Some(other) = index.other {
            return (other, true);
        }
        let name: Arc<str> = Arc::from(OTHER);
        let account = Account::new(Arc::clone(&name), &self.layout, self.config.max_types_per_account);
        // The table has one slot more than the cap, kept for `(other)`.
        let slot = self
            .accounts
            .push(account)
            .unwrap_or(self.accounts.capacity() - 1);
        index.by_name.insert(name, slot);
        index.other = Some(slot);
        (slot, true)
    }

    fn claim(counter: &AtomicUsize, cap: usize) -> bool {
        counter
            .fetch_update(Relaxed, Relaxed, |n| (n < cap).then_some(n + 1))
            .is_ok()
    }

    fn apply(&self, account: &Account, type_index: usize, buckets: &[Bucket], event: &Event<'_>) {
        let Some(entry) = account.types.get(type_index) else {
            return;
        };
        let layout = &self.layout;
        let mut misses = Misses::default();
        let n = event.value.events();
        if n > 0 {
            account.counts.record(layout, buckets, n, &mut misses);
            entry.counts.record(layout, buckets, n, &mut misses);
        }
        match event.value {
            Value::Count(_) => {}
            Value::Gauge(value) => entry.gauge.set(value),
            Value::GaugeDelta(delta) => entry.gauge.add(delta),
            Value::Timing { ms, .. } => {
                let rings = entry.timings.get_or_init(|| {
                    Self::claim(&self.timing_series, self.config.max_timing_series)
                        .then(|| BodyRings::new(layout.slots()))
                });
                match rings {
                    Some(rings) => {
                        for &bucket in buckets {
                            match rings.update(bucket, |body| body.record(ms)) {
                                Some(write) => misses.note(write),
                                None => {
                                    self.counters.skipped_samples.fetch_add(1, Relaxed);
                                }
                            }
                        }
                    }
                    None => {
                        self.counters.uncapped_samples.fetch_add(1, Relaxed);
                    }
                }
            }
            Value::SetMember(member) => {
                let rings = entry.sets.get_or_init(|| {
                    Self::claim(&self.set_series, self.config.max_set_series)
                        .then(|| BodyRings::new(layout.slots()))
                });
                match rings {
                    Some(rings) => {
                        for &bucket in buckets {
                            match rings.update(bucket, |body| body.insert(member.as_bytes())) {
                                Some(write) => misses.note(write),
                                None => {
                                    self.counters.skipped_samples.fetch_add(1, Relaxed);
                                }
                            }
                        }
                    }
                    None => {
                        self.counters.uncapped_samples.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if let Some(app) = event.app {
            account.note_app(app);
        }
        if misses.saturated {
            self.counters.saturated.fetch_add(1, Relaxed);
        }
        if misses.too_old {
            self.counters.too_old.fetch_add(1, Relaxed);
        }
    }

    /// Bytes the engine holds on the heap for accounts (tables, rings, names), for the
    /// memory-per-account benchmark and the UIs' health line.
    pub fn heap_bytes(&self) -> usize {
        let table = self.accounts.capacity() * std::mem::size_of::<std::sync::OnceLock<Account>>();
        table + self.accounts.iter().map(Account::heap_bytes).sum::<usize>()
    }
}

/// The time range that the recorder's current bucket of one resolution covers.
#[derive(Clone, Copy, Debug, Default)]
struct BucketSpan {
    start_ms: u64,
    end_ms: u64,
}

/// An (account, type) pair, owned, looked up with borrowed `(&str, &str)`.
#[derive(Debug, PartialEq, Eq)]
struct NameKey {
    account: Box<str>,
    event_type: Box<str>,
}

impl Hash for NameKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `(&str, &str)` for the borrowed lookup below.
        (&*self.account, &*self.event_type).hash(state);
    }
}

impl Equivalent<NameKey> for (&str, &str) {
    fn equivalent(&self, key: &NameKey) -> bool {
        self.0 == &*key.account && self.1 == &*key.event_type
    }
}

/// Records events for one ingest thread. Not shared: each thread makes its own with
/// [`Engine::recorder`].
pub struct Recorder {
    engine: Arc<Engine>,
    /// (account, type) -> (account index, type index); bounded because folded accounts are
    /// never cached.
    names: HashMap<NameKey, (u32, u32)>,
    /// The bucket of each resolution for the latest event time, and the span it covers.
    buckets: Box<[Bucket]>,
    spans: Box<[BucketSpan]>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("cached_names", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn record(&mut self, event: &Event<'_>) {
        let account_name = clamp_name(event.account);
        let type_name = clamp_name(event.event_type);
        let (account, type_index) = match self.names.get(&(account_name, type_name)) {
            Some(&(a, t)) => (a as usize, t as usize),
            None => self.resolve(account_name, type_name),
        };
        let engine = &*self.engine;
        if !advance(engine, &mut self.spans, &mut self.buckets, event.time) {
            engine.counters.too_old.fetch_add(1, Relaxed);
            return;
        }
        if let Some(account) = engine.accounts.get(account) {
            engine.apply(account, type_index, &self.buckets, event);
        }
    }

    fn resolve(&mut self, account_name: &str, type_name: &str) -> (usize, usize) {
        let engine = &*self.engine;
        let (account, folded) = engine.resolve_account(account_name);
        let type_index = engine.accounts.get(account).map_or(0, |a| {
            a.resolve_type(type_name, &engine.layout, engine.config.max_types_per_account)
        });
        if !folded {
            let key = NameKey {
                account: account_name.into(),
                event_type: type_name.into(),
            };
            self.names.insert(key, (account as u32, type_index as u32));
        }
        (account, type_index)
    }
}

/// Moves each resolution's current bucket to the one `time` falls in; `false` before the
/// engine's origin. Divides only when `time` leaves the cached bucket.
fn advance(engine: &Engine, spans: &mut [BucketSpan], buckets: &mut [Bucket], time: Timestamp) -> bool {
    let ms = time.as_millis();
    let layout = &engine.layout;
    let levels = layout.levels().iter().enumerate();
    for ((span, bucket), (index, level)) in spans.iter_mut().zip(buckets.iter_mut()).zip(levels) {
        if ms < span.start_ms || ms >= span.end_ms {
            let Some(epoch) = layout.epoch(index, time) else {
                return false;
            };
            span.start_ms = layout.bucket_start(index, epoch).as_millis();
            span.end_ms = span.start_ms + level.resolution.bucket_ms;
            *bucket = level.bucket(epoch);
        }
    }
    true
}
