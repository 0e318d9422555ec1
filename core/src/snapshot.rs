//! Snapshots: everything a UI draws for one frame, computed from the rings without locks.
//!
//! A snapshot reads each account's total (one load) and, for accounts active in the window, its
//! buckets at the window's resolution. Idle accounts cost a couple of loads, so an idle engine's
//! snapshot is cheap however many accounts it knows. Values written while a snapshot is taken
//! may or may not be in it; nothing is ever half-counted.

use crate::OTHER;
use crate::account::{Account, Series, TypeEntry};
use crate::engine::Engine;
use crate::histogram::{Histogram, TimingSummary};
use crate::hll::Hll;
use crate::notice::{Annotation, ServiceCheck};
use crate::palette::{self, OTHER_COLOUR};
use crate::plan::{Plan, SLOTS_PER_LINE};
use crate::rejection::{RejectSample, Rejection};
use crate::ring::{Bucket, Level};
use crate::time::{Resolution, Timestamp};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Which stretch of time a snapshot covers: the last `buckets` buckets of resolution `level`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub level: usize,
    pub buckets: u32,
}

/// What to compute. `Default` is the dashboard's opening view: the last minute at the finest
/// resolution, stacked by the top 10 accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub window: Window,
    /// Accounts (or, when focused, types) stacked in the bars; the rest is `(other)`.
    pub top: usize,
    /// The first `detail` accounts by rank also get types, timings and a sparkline.
    pub detail: usize,
    /// Drill down: stack this account's bars by type and always give its detail.
    pub focus: Option<String>,
    /// Always give this account's detail too (a UI's selected row), without drilling down.
    pub detail_for: Option<String>,
    /// Also total the types over all accounts (costs a pass over every active type).
    pub all_types: bool,
    /// Timing percentiles in the detail (merging a histogram per bucket of the window: the
    /// costliest part of a detailed snapshot; headless reports that print none skip it).
    pub percentiles: bool,
    /// "Current rate" is measured over this much of the finest resolution.
    pub rate_ms: u64,
    /// Stack only accounts whose name contains this (any case): the bars are then the
    /// matching accounts' events, their `(other)` the matching ones past `top`. The table's
    /// rows and the totals are not filtered.
    pub filter: Option<String>,
    /// Also count the events from this time on ([`Totals::since`]): a wall screen's "today".
    pub since: Option<Timestamp>,
}

impl Default for SnapshotRequest {
    fn default() -> Self {
        SnapshotRequest {
            window: Window {
                level: 0,
                buckets: 60,
            },
            top: 10,
            detail: 20,
            focus: None,
            filter: None,
            detail_for: None,
            all_types: false,
            percentiles: true,
            rate_ms: 5000,
            since: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: Timestamp,
    pub window: WindowInfo,
    pub totals: Totals,
    /// Every account seen since start, busiest in the window first (then by rate, then name).
    pub accounts: Vec<AccountStats>,
    pub stack: Stack,
    /// Types over all accounts, busiest first (only when requested).
    pub types: Vec<TypeStats>,
    /// Rejected input by reason (reasons with a non-zero count).
    pub rejections: Vec<RejectionCount>,
    /// The latest rejected payloads, newest last.
    pub recent_rejects: Vec<RejectSample>,
    /// DogStatsD events in the window, oldest first: the charts' annotations.
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    /// Every service check's last status, the most troubled first.
    #[serde(default)]
    pub checks: Vec<ServiceCheck>,
}

/// What a view compares to decide whether a new snapshot looks different from the last one
/// it drew: counts, bad input, the window moving on by a bucket, and accounts appearing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    total: u64,
    rejected: u64,
    window_start: Timestamp,
    accounts: usize,
    /// The newest annotation and the checks' statuses.
    notices: (Option<Timestamp>, u64),
}

impl Snapshot {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            total: self.totals.total,
            rejected: self.totals.rejected,
            window_start: self.window.start,
            accounts: self.accounts.len(),
            notices: (
                self.annotations.last().map(|a| a.time),
                (self.checks.iter()).fold(self.checks.len() as u64, |sum, c| {
                    sum.wrapping_mul(31)
                        .wrapping_add(u64::from(c.status.severity()) + c.time.as_millis())
                }),
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInfo {
    pub level: usize,
    pub resolution: Resolution,
    pub buckets: u32,
    /// Start of the oldest bucket shown.
    pub start: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Events since start, exact.
    pub total: u64,
    pub window_total: u64,
    /// Events per second now.
    pub rate: f64,
    /// Highest per-second rate of any complete bucket in the window, or the current rate if
    /// that is higher.
    pub peak_rate: f64,
    /// Accounts tracked by name (not counting `(other)`).
    pub accounts: usize,
    /// Accounts with events in the window (not counting `(other)`, like `accounts`).
    pub active_accounts: usize,
    /// Distinct account names folded into `(other)`: an estimate (HyperLogLog, near exact below
    /// a few hundred names, then a standard error of 6.5%, so within 13% 19 times in 20).
    /// Counting them exactly would take memory per name, which the account cap exists to bound.
    pub folded_accounts: u64,
    /// Events counted under `(other)` because the account cap was reached.
    pub folded_events: u64,
    pub rejected: u64,
    /// Events that hit a bucket's maximum count somewhere.
    pub saturated: u64,
    /// Events too old for at least one ring (its bucket was already recycled).
    pub too_old: u64,
    /// Timing or set samples left out of one bucket's histogram or registers while another
    /// thread was resetting it (their counts are kept).
    pub skipped_samples: u64,
    /// Timing or set samples without a histogram or registers because of the series caps.
    pub uncapped_samples: u64,
    /// Events since [`SnapshotRequest::since`], when asked and the rings reach back that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountStats {
    /// Inline up to 24 bytes: a row costs no reference count to make or drop (100,000 rows a
    /// frame at the account cap).
    pub name: CompactString,
    /// Colour index of the account's layer in the stack; `None` when it is drawn as `(other)`.
    pub colour: Option<u8>,
    pub total: u64,
    pub window_total: u64,
    pub rate: f64,
    /// Fraction (0..=1) of the window's events.
    pub share: f64,
    /// Start of the finest bucket of its latest event.
    pub last_seen: Option<Timestamp>,
    pub detail: Option<Box<AccountDetail>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountDetail {
    /// Busiest in the window first.
    pub types: Vec<TypeStats>,
    /// Count per bucket of the window, oldest first.
    pub sparkline: Vec<u64>,
    /// All the account's timings merged.
    pub timing: Option<TimingSummary>,
    pub apps: Vec<Arc<str>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeStats {
    pub name: Arc<str>,
    pub total: u64,
    pub window_total: u64,
    pub rate: f64,
    pub timing: Option<TimingSummary>,
    pub gauge: Option<f64>,
    /// Distinct set members in the window (HyperLogLog estimate).
    pub distinct: Option<u64>,
}

/// Stacked bars: one value per layer per bucket, oldest bucket first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    /// `Some(account)` when the bars are that account's types.
    pub focus: Option<Arc<str>>,
    /// The filter the bars were stacked with (see [`SnapshotRequest::filter`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub start: Timestamp,
    pub bucket_ms: u64,
    /// All events per bucket (the height of each bar).
    pub totals: Vec<u64>,
    /// In a stable order (by name), `(other)` last.
    pub layers: Vec<Layer>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub name: Arc<str>,
    pub colour: u8,
    pub values: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionCount {
    pub reason: Rejection,
    pub count: u64,
}

/// How many accounts a snapshot asks for the buckets of at once, before it reads them: their
/// cache misses overlap (a few lines an account, within what a core keeps in flight).
const BLOCK: usize = 16;

/// An account's place in the ranking: what the sort compares, small so that sorting 100,000
/// of them is cheap, and where the account and its row are.
struct Rank<'e> {
    window_total: u64,
    rate: f64,
    /// The name's first 16 bytes, big-endian and zero-padded: ties are nearly always told
    /// apart without reading the names.
    prefix: u128,
    account: &'e Account,
    /// The row's index in the accounts' order, in which the rows are made.
    row: u32,
}

fn name_prefix(name: &str) -> u128 {
    // Byte by byte in a register: copied into a zeroed array first, the 16-byte load that
    // followed waited for the copy's smaller stores to reach the cache.
    let bytes = &name.as_bytes()[..name.len().min(16)];
    let prefix = bytes.iter().fold(0u128, |prefix, &b| prefix << 8 | u128::from(b));
    // Zero-padded on the right; an empty name shifts everything out.
    prefix.checked_shl(8 * (16 - bytes.len() as u32)).unwrap_or(0)
}

/// Puts `rows` in the ranking's order, in place (a sorted copy would be another 10 MB of fresh
/// memory a frame at 100,000 accounts): the row at `ranks[i].row` moves to `i`.
fn put_in_rank_order(rows: &mut [AccountStats], ranks: &[Rank<'_>]) {
    let mut from: Vec<u32> = ranks.iter().map(|rank| rank.row).collect();
    // Each cycle of the permutation is walked once; a place whose row is in place points at
    // itself.
    for start in 0..from.len() {
        let mut at = start;
        loop {
            let source = from[at] as usize;
            from[at] = at as u32;
            if source == start {
                break;
            }
            rows.swap(at, source);
            at = source;
        }
    }
}

/// Where "now" falls, and which buckets a request reads.
struct Frame<'a> {
    level: &'a Level,
    last: u64,
    len: usize,
    /// Finest-resolution epoch of the window's first bucket start.
    window_start_fine: u64,
    /// Finest-resolution epoch just after the window's last bucket.
    window_end_fine: u64,
    /// How a window total is read for a series written after the window...
    plan: Plan<'a>,
    /// ... and, with fewer reads, for one that was not (nearly all, at "now").
    quiet_plan: Plan<'a>,
    rate: RateFrame<'a>,
    /// The window is the finest ring's whole length (the dashboard's 5 minutes): its total is
    /// the rings' running sum less what aged out since a series' latest write.
    whole_finest_ring: bool,
    /// What [`Frame::touch`] loads of every series: the rate's buckets, and the plan's
    /// unless the window is read from the running sum.
    touch_points: Vec<usize>,
}

struct RateFrame<'a> {
    level: &'a Level,
    now: u64,
    complete: usize,
    /// The bucket `complete` epochs before `now`, where the rate's run starts.
    first: Bucket,
    seconds: f64,
}

impl RateFrame<'_> {
    fn rate(&self, series: &Series) -> f64 {
        if self.seconds <= 0.0
            || series
                .last_active()
                .is_none_or(|e| e + (self.complete as u64) < self.now)
        {
            return 0.0;
        }
        let len = self.complete + 1;
        series.read(|r| r.sum_from(self.level, self.first, len)) as f64 / self.seconds
    }
}

impl Frame<'_> {
    fn active(&self, series: &Series) -> bool {
        series.last_active().is_some_and(|e| e >= self.window_start_fine)
    }

    /// The window's total for `series`, read with as few loads as its latest write allows.
    fn window_sum(&self, series: &Series) -> u64 {
        match series.last_active() {
            Some(latest) if latest >= self.window_start_fine => {
                let recent = self
                    .whole_finest_ring
                    .then(|| series.rings.recent_sum(self.level, self.last));
                if let Some(sum) = recent.flatten() {
                    return sum;
                }
                let plan = if latest < self.window_end_fine {
                    &self.quiet_plan
                } else {
                    &self.plan
                };
                series.read(|r| plan.sum(r))
            }
            _ => 0,
        }
    }

    /// Asks for a line of every run of buckets that [`Frame::window_sum`] and
    /// [`RateFrame::rate`] will read for `series`, so that a few accounts' cache misses overlap. `slots` is room
    /// for the slots to load, kept from one account to the next.
    fn touch(&self, series: &Series, slots: &mut Vec<usize>) {
        slots.clear();
        slots.extend_from_slice(&self.touch_points);
        let n = self.level.buckets() as u64;
        // The buckets that aged out of the running sum between the latest write and `last`.
        match (self.whole_finest_ring, series.last_active()) {
            (true, Some(latest)) if latest < self.last && self.last - latest < n && self.last >= n => {
                let first = (latest + 1).saturating_sub(n);
                let (start, len) = (self.level.bucket(first), (self.last - n - first) as usize);
                let lines = (0..len).step_by(SLOTS_PER_LINE as usize).chain([len]);
                slots.extend(lines.map(|steps| self.level.slot_after(start, steps)));
            }
            _ => {}
        }
        series.rings.touch(slots.iter().copied());
    }

    fn values(&self, series: &Series) -> Vec<u64> {
        let mut values = vec![0; self.len];
        if self.active(series) {
            series.read(|r| r.window(self.level, self.last, &mut values));
        }
        values
    }
}

fn by_window_then_rate_then_name(a: (u64, f64, &str), b: (u64, f64, &str)) -> Ordering {
    b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(b.2))
}

impl Engine {
    /// The windows a UI offers, shortest first: a minute at the finest resolution (when the
    /// ring is longer), then each resolution's whole ring.
    pub fn window_presets(&self) -> Vec<Window> {
        let mut presets = vec![];
        let levels = self.layout.levels();
        if let Some(finest) = levels.first() {
            let minute = (60_000 / finest.resolution.bucket_ms) as u32;
            if minute > 1 && minute < finest.resolution.buckets {
                presets.push(Window {
                    level: 0,
                    buckets: minute,
                });
            }
        }
        presets.extend(levels.iter().enumerate().map(|(level, l)| Window {
            level,
            buckets: l.resolution.buckets,
        }));
        presets
    }

    /// Events from `since` to `now`, read at the finest resolution that still holds `since`,
    /// from the start of the bucket it falls in (so from a whole hour at the 1 h resolution);
    /// `None` when no ring reaches back that far. Before the engine began there were none.
    pub fn events_since(&self, since: Timestamp, now: Timestamp) -> Option<u64> {
        let layout = &self.layout;
        for (index, level) in layout.levels().iter().enumerate() {
            let Some(last) = layout.epoch(index, now) else {
                return Some(0);
            };
            let first = layout.epoch(index, since).unwrap_or(0).min(last);
            if last - first < level.buckets() as u64 {
                return Some(self.all.read(|r| r.sum(level, first, last)));
            }
        }
        None
    }

    pub fn snapshot(&self, request: &SnapshotRequest, now: Timestamp) -> Snapshot {
        let layout = &self.layout;
        let levels = layout.levels();
        let level_index = request.window.level.min(levels.len() - 1);
        let level = &levels[level_index];
        let len = (request.window.buckets.max(1) as usize).min(level.buckets());
        let last = layout.epoch(level_index, now).unwrap_or(0);
        // May lie before the origin: those buckets are shown, empty.
        let window_start = layout
            .bucket_start(level_index, last)
            .saturating_sub_millis((len as u64 - 1) * level.resolution.bucket_ms);

        let fine = &levels[0];
        let fine_now = layout.epoch(0, now).unwrap_or(0);
        let fine_ms = fine.resolution.bucket_ms;
        let complete = ((request.rate_ms / fine_ms).max(1) as usize)
            .min(fine.buckets() - 1)
            .min(fine_now as usize);
        let into_bucket = now
            .as_millis()
            .saturating_sub(layout.bucket_start(0, fine_now).as_millis());
        let first = (last + 1).saturating_sub(len as u64);
        let coarse = levels.get(level_index + 1).and_then(|coarse| {
            let (fine_ms, coarse_ms) = (level.resolution.bucket_ms, coarse.resolution.bucket_ms);
            (coarse_ms % fine_ms == 0 && coarse_ms > fine_ms).then_some((coarse, coarse_ms / fine_ms))
        });
        let quiet_plan = Plan::new(level, coarse, first, last, true);
        let whole_finest_ring = level_index == 0 && len == level.buckets();
        let mut touch_points = if whole_finest_ring {
            vec![]
        } else {
            quiet_plan.touch_points()
        };
        touch_points.extend([
            fine.bucket(fine_now - complete as u64).slot,
            fine.bucket(fine_now).slot,
        ]);
        let frame = Frame {
            level,
            last,
            len,
            window_start_fine: layout.epoch(0, window_start).unwrap_or(0),
            window_end_fine: layout
                .epoch(0, layout.bucket_start(level_index, last + 1))
                .unwrap_or(u64::MAX),
            plan: Plan::new(level, coarse, first, last, false),
            quiet_plan,
            rate: RateFrame {
                level: fine,
                now: fine_now,
                complete,
                first: fine.bucket(fine_now - complete as u64),
                seconds: (complete as f64 * fine_ms as f64 + into_bucket as f64) / 1000.0,
            },
            whole_finest_ring,
            touch_points,
        };

        // One pass over the accounts for their totals, window sums and rates; idle ones cost two
        // loads. The buckets of a block of accounts are requested before any is read, so that
        // cache misses overlap. The bars' heights and the overall numbers come from `all`.
        let mut heights = vec![0u64; len];
        if frame.active(&self.all) {
            self.all.read(|r| r.window(level, last, &mut heights));
        }
        let mut totals = Totals {
            total: self.all.total(),
            rate: frame.rate.rate(&self.all),
            since: request.since.and_then(|since| self.events_since(since, now)),
            ..Totals::default()
        };
        totals.window_total = heights.iter().sum();
        let share = |window_total: u64| match totals.window_total {
            0 => 0.0,
            all => window_total as f64 / all as f64,
        };
        // Rows are made in the accounts' order, with everything they need read there (in the
        // ranking's order, a cache miss an account at 100,000), then put in the ranking's.
        let mut rows: Vec<AccountStats> = Vec::with_capacity(self.accounts.len());
        let mut ranks: Vec<Rank<'_>> = Vec::with_capacity(self.accounts.len());
        // The next block's buckets are asked for before this one's are read: the hints are in
        // flight while this block is summed.
        let mut accounts = self.accounts.iter();
        let mut slots = Vec::new();
        let (mut block, mut next): (Vec<&Account>, Vec<&Account>) =
            (Vec::with_capacity(BLOCK), Vec::with_capacity(BLOCK));
        let mut take_and_touch = |block: &mut Vec<_>| {
            block.clear();
            block.extend(accounts.by_ref().take(BLOCK));
            for account in block.iter().filter(|a| frame.active(&a.counts)) {
                frame.touch(&account.counts, &mut slots);
            }
        };
        take_and_touch(&mut block);
        while !block.is_empty() {
            take_and_touch(&mut next);
            for &account in &block {
                let counts = &account.counts;
                let window_total = frame.window_sum(counts);
                let rate = frame.rate.rate(counts);
                let named = account.name != OTHER;
                totals.accounts += usize::from(named);
                totals.active_accounts += usize::from(frame.active(counts) && named);
                ranks.push(Rank {
                    window_total,
                    rate,
                    prefix: name_prefix(&account.name),
                    account,
                    row: rows.len() as u32,
                });
                rows.push(AccountStats {
                    name: account.name.clone(),
                    colour: None,
                    total: counts.total(),
                    window_total,
                    rate,
                    share: share(window_total),
                    last_seen: counts.last_active().map(|e| layout.bucket_start(0, e)),
                    detail: None,
                });
            }
            std::mem::swap(&mut block, &mut next);
        }
        let bucket_seconds = level.resolution.bucket_ms as f64 / 1000.0;
        let complete_heights = if len > 1 {
            &heights[..len - 1]
        } else {
            &heights[..]
        };
        // A rate now above every complete bucket's is the peak (a burst in progress).
        let complete_peak = complete_heights
            .iter()
            .max()
            .map_or(0.0, |&h| h as f64 / bucket_seconds);
        totals.peak_rate = complete_peak.max(totals.rate);
        ranks.sort_unstable_by(|a, b| {
            (b.window_total.cmp(&a.window_total))
                .then(b.rate.total_cmp(&a.rate))
                .then(a.prefix.cmp(&b.prefix))
                .then_with(|| a.account.name.cmp(&b.account.name))
        });
        put_in_rank_order(&mut rows, &ranks);

        // The rows hold the names inline, in order: no account is read to find one.
        let position = |name: &str| rows.iter().position(|row| row.name == name);
        let focus = request.focus.as_deref().and_then(position);
        let detail_for = request.detail_for.as_deref().and_then(position);
        let stack = match focus {
            Some(index) => type_stack(ranks[index].account, &frame, request.top, window_start),
            None => match request.filter.as_deref().filter(|f| !f.is_empty()) {
                None => account_stack(&mut rows, &ranks, &frame, request.top, &heights, window_start),
                Some(filter) => filtered_stack(&mut rows, &ranks, &frame, request.top, filter, window_start),
            },
        };

        let detailed = (0..request.detail.min(rows.len())).chain(focus).chain(detail_for);
        for index in detailed {
            if rows[index].detail.is_none() {
                let detail = self.detail(ranks[index].account, &frame, request.percentiles);
                rows[index].detail = Some(Box::new(detail));
            }
        }

        let types = if request.all_types {
            self.all_types(&frame, request.percentiles)
        } else {
            vec![]
        };

        let counters = &self.counters;
        let rejections: Vec<RejectionCount> = Rejection::ALL
            .iter()
            .map(|&reason| RejectionCount {
                reason,
                count: counters.rejected[reason.index()].load(Relaxed),
            })
            .filter(|r| r.count > 0)
            .collect();
        totals.rejected = rejections.iter().map(|r| r.count).sum();
        let mut folded = Hll::default();
        folded.add_atomic(&self.folded_names);
        totals.folded_accounts = if counters.folded_events.load(Relaxed) > 0 {
            folded.estimate().max(1)
        } else {
            0
        };
        totals.folded_events = counters.folded_events.load(Relaxed);
        totals.saturated = counters.saturated.load(Relaxed);
        totals.too_old = counters.too_old.load(Relaxed);
        totals.skipped_samples = counters.skipped_samples.load(Relaxed);
        totals.uncapped_samples = counters.uncapped_samples.load(Relaxed);

        Snapshot {
            time: now,
            window: WindowInfo {
                level: level_index,
                resolution: level.resolution,
                buckets: len as u32,
                start: window_start,
            },
            totals,
            accounts: rows,
            stack,
            types,
            rejections,
            recent_rejects: self.recent_rejects(),
            annotations: self.annotations_since(window_start),
            checks: self.checks(),
        }
    }

    fn detail(&self, account: &Account, frame: &Frame<'_>, percentiles: bool) -> AccountDetail {
        let mut merged = Histogram::default();
        let types = account.types.iter().map(|entry| (entry, &entry.counts));
        let types = self.type_stats(types, frame, percentiles, |h| merged.merge(h));
        AccountDetail {
            types,
            sparkline: frame.values(&account.counts),
            timing: merged.summary(),
            apps: account.apps.iter().map(|app| Arc::from(app.as_str())).collect(),
        }
    }

    /// Each type over all accounts, busiest first.
    fn all_types(&self, frame: &Frame<'_>, percentiles: bool) -> Vec<TypeStats> {
        let types = (self.types.entries.iter().enumerate())
            .filter_map(|(index, entry)| Some((entry, self.overall_counts(index)?)));
        self.type_stats(types, frame, percentiles, |_| {})
    }

    /// Stats of `entries` (each with its counts: a type's over all accounts may be read from
    /// another series), busiest first; `merge` sees each window histogram.
    fn type_stats<'e>(
        &self,
        entries: impl Iterator<Item = (&'e TypeEntry, &'e Series)>,
        frame: &Frame<'_>,
        percentiles: bool,
        mut merge: impl FnMut(&Histogram),
    ) -> Vec<TypeStats> {
        let mut types: Vec<TypeStats> = entries
            .map(|(entry, counts)| {
                let histogram = percentiles
                    .then(|| self.window_histogram(entry, counts, frame))
                    .flatten();
                if let Some(h) = &histogram {
                    merge(h);
                }
                TypeStats {
                    name: entry.name.shared(),
                    total: counts.total(),
                    window_total: frame.window_sum(counts),
                    rate: frame.rate.rate(counts),
                    timing: histogram.and_then(|h| h.summary()),
                    gauge: entry.gauge.get(),
                    distinct: self.window_distinct(entry, counts, frame),
                }
            })
            .collect();
        types.sort_by(|a, b| {
            by_window_then_rate_then_name(
                (a.window_total, a.rate, &a.name),
                (b.window_total, b.rate, &b.name),
            )
        });
        types
    }

    fn window_histogram(&self, entry: &TypeEntry, counts: &Series, frame: &Frame<'_>) -> Option<Histogram> {
        let rings = entry.timings.get()?;
        let mut merged = Histogram::default();
        if frame.active(counts) {
            let first = (frame.last + 1).saturating_sub(frame.len as u64);
            let mut bucket = Histogram::default();
            for epoch in first..=frame.last {
                bucket.clear();
                if rings
                    .read(frame.level, epoch, |body| bucket.add_body(body))
                    .is_some()
                {
                    merged.merge(&bucket);
                }
            }
        }
        Some(merged)
    }

    fn window_distinct(&self, entry: &TypeEntry, counts: &Series, frame: &Frame<'_>) -> Option<u64> {
        let rings = entry.sets.get()?;
        let mut merged = Hll::default();
        if frame.active(counts) {
            let first = (frame.last + 1).saturating_sub(frame.len as u64);
            for epoch in first..=frame.last {
                let mut bucket = Hll::default();
                if rings
                    .read(frame.level, epoch, |body| bucket.add_atomic(body))
                    .is_some()
                {
                    merged.merge(&bucket);
                }
            }
        }
        Some(merged.estimate())
    }
}

/// Layers for the top accounts, named in a stable order, and `(other)` for the rest. `rows`
/// and `ranks` are in the ranking's order.
fn account_stack(
    rows: &mut [AccountStats],
    ranks: &[Rank<'_>],
    frame: &Frame<'_>,
    top: usize,
    heights: &[u64],
    start: Timestamp,
) -> Stack {
    let shown: Vec<usize> = (rows.iter().enumerate())
        .filter(|(_, row)| row.window_total > 0 && row.name != OTHER)
        .map(|(i, _)| i)
        .take(top)
        .collect();
    let layers = colour_layers(rows, ranks, frame, &shown);
    finish_stack(None, layers, frame, heights, start)
}

/// Like [`account_stack`], over the accounts whose name contains `filter` (any case): the
/// bars are their sum, not every account's.
fn filtered_stack(
    rows: &mut [AccountStats],
    ranks: &[Rank<'_>],
    frame: &Frame<'_>,
    top: usize,
    filter: &str,
    start: Timestamp,
) -> Stack {
    let filter = filter.to_lowercase();
    let mut heights = vec![0u64; frame.len];
    let mut matching = vec![];
    for (index, row) in rows.iter().enumerate() {
        if row.window_total > 0 && row.name.to_lowercase().contains(&filter) {
            let values = frame.values(&ranks[index].account.counts);
            for (height, value) in heights.iter_mut().zip(values) {
                *height += value;
            }
            matching.push(index);
        }
    }
    let shown: Vec<usize> = (matching.into_iter())
        .filter(|&i| rows[i].name != OTHER)
        .take(top)
        .collect();
    let layers = colour_layers(rows, ranks, frame, &shown);
    let mut stack = finish_stack(None, layers, frame, &heights, start);
    stack.filter = Some(filter);
    stack
}

/// A layer for each of the `shown` rows, coloured (the row too), in the names' order.
fn colour_layers(
    rows: &mut [AccountStats],
    ranks: &[Rank<'_>],
    frame: &Frame<'_>,
    shown: &[usize],
) -> Vec<Layer> {
    let names: Vec<&str> = shown.iter().map(|&i| rows[i].name.as_str()).collect();
    let colours = palette::assign(&names);
    let mut layers: Vec<Layer> = shown
        .iter()
        .zip(colours)
        .map(|(&i, colour)| {
            rows[i].colour = Some(colour);
            Layer {
                name: Arc::from(rows[i].name.as_str()),
                colour,
                values: frame.values(&ranks[i].account.counts),
            }
        })
        .collect();
    layers.sort_by(|a, b| a.name.cmp(&b.name));
    layers
}

/// Layers for the focused account's top types, and `(other)` for its other types.
fn type_stack(account: &Account, frame: &Frame<'_>, top: usize, start: Timestamp) -> Stack {
    let mut types: Vec<(&TypeEntry, u64)> = account
        .types
        .iter()
        .map(|t| (t, frame.window_sum(&t.counts)))
        .filter(|(t, sum)| *sum > 0 && &*t.name != OTHER)
        .collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.name.cmp(&b.0.name)));
    types.truncate(top);
    types.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let names: Vec<&str> = types.iter().map(|(t, _)| &*t.name).collect();
    let colours = palette::assign(&names);
    let layers = types
        .iter()
        .zip(colours)
        .map(|((entry, _), colour)| Layer {
            name: entry.name.shared(),
            colour,
            values: frame.values(&entry.counts),
        })
        .collect();
    let totals = frame.values(&account.counts);
    finish_stack(
        Some(Arc::from(account.name.as_str())),
        layers,
        frame,
        &totals,
        start,
    )
}

/// Adds the `(other)` layer. The layers were read after `heights`, so under concurrent ingest
/// they may hold a little more; each bar's total is made the sum of its layers, so the layers
/// always add up to the bar.
fn finish_stack(
    focus: Option<Arc<str>>,
    mut layers: Vec<Layer>,
    frame: &Frame<'_>,
    heights: &[u64],
    start: Timestamp,
) -> Stack {
    let shown: Vec<u64> = (0..frame.len)
        .map(|i| layers.iter().map(|l| l.values[i]).sum())
        .collect();
    let rest: Vec<u64> = heights
        .iter()
        .zip(&shown)
        .map(|(h, s)| h.saturating_sub(*s))
        .collect();
    let totals = shown.iter().zip(&rest).map(|(s, r)| s + r).collect();
    if rest.iter().any(|&v| v > 0) {
        layers.push(Layer {
            name: Arc::from(OTHER),
            colour: OTHER_COLOUR,
            values: rest,
        });
    }
    Stack {
        focus,
        filter: None,
        start,
        bucket_ms: frame.level.resolution.bucket_ms,
        totals,
        layers,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::name_prefix;

    /// The ranking breaks ties by the prefix before the whole name, so the two must agree
    /// wherever the prefix tells names apart (names hold no NUL bytes).
    #[test]
    fn a_name_prefix_orders_as_the_names_first_16_bytes() {
        let names = [
            "",
            "a",
            "ab",
            "b",
            "account-000009",
            "account-000010",
            "exactly-16-bytes",
            "exactly-16-bytez",
            "exactly-16-bytes-and-more",
            "ünïcode",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
        ];
        let first_16 = |name: &str| name.as_bytes()[..name.len().min(16)].to_vec();
        for a in names {
            for b in names {
                assert_eq!(
                    name_prefix(a).cmp(&name_prefix(b)),
                    first_16(a).cmp(&first_16(b)),
                    "{a:?} against {b:?}"
                );
            }
        }
        assert_eq!(name_prefix("a"), u128::from(b'a') << 120);
    }
}
