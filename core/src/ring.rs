//! Lock-free rolling counters: rings of epoch-tagged buckets, one ring per resolution.
//!
//! # How a bucket is kept
//! Every bucket is one `AtomicU64` holding `tag << count_bits | count`, where `tag` is the
//! bucket's epoch (the bucket number since the engine's origin). A writer for epoch `e` loads the
//! slot `e % buckets` and, in one compare-and-swap,
//! - adds to the count when the tag is `e`,
//! - replaces the slot with `(e, delta)` when the tag is older (the ring wrapped onto a stale
//!   bucket: this *is* the lazy reset, no tick thread needed),
//! - or gives up when the tag is newer (the event is older than the whole ring).
//!
//! A reader asking for epoch `e` loads the slot and trusts the count only if the tag is `e`.
//!
//! # Why `Relaxed` is enough
//! Everything a bucket means (which epoch, how many) lives in one atomic word and changes only
//! through read-modify-write operations, so every thread agrees on one modification order per
//! slot and no load can see a tag with another epoch's count. No value is published *through* a
//! slot (nothing else is read because of what a slot says), so there is no other memory whose
//! visibility needs ordering against it: `Relaxed` loads and CASes are sufficient, and the
//! loom model in `tests/loom.rs` checks exactly this. The only thing concurrency changes is
//! *when* a reader sees an increment, never whether it is counted or in which bucket.
//!
//! # Why the tag never lies
//! The tag width is chosen per resolution so that epochs do not wrap within [`HORIZON_MS`]
//! (about 136 years of uptime): a stale slot can never carry the tag of a current epoch. What is
//! left for the count is at least ~4 x 10^9 per second of bucket time at every resolution;
//! beyond that a bucket saturates (and the engine counts it) instead of overflowing into the tag.

use crate::sync::{AtomicU64, Ordering::Relaxed};
use crate::time::{Resolution, Timestamp};
use crate::windows::SavedBucket;

/// Epoch tags must stay unique for this long after the engine's origin.
pub const HORIZON_MS: u64 = (1 << 31) * 1000;

/// What happened to one write into one ring.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    Counted,
    /// The count hit the bucket's maximum; the excess was not kept.
    Saturated,
    /// The event's bucket was already recycled for a newer epoch.
    TooOld,
}

/// A bucket's epoch and the absolute index of its slot, computed once per bucket period by the
/// recorder so the hot path divides nothing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) epoch: u64,
    pub(crate) slot: usize,
}

/// Where one resolution's ring lives inside a series' slot array, and how its words are split.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    pub(crate) resolution: Resolution,
    pub(crate) offset: usize,
    count_bits: u32,
}

impl Level {
    pub(crate) fn buckets(&self) -> usize {
        self.resolution.buckets as usize
    }

    fn count_max(&self) -> u64 {
        (1 << self.count_bits) - 1
    }

    fn tag_mask(&self) -> u64 {
        u64::MAX >> self.count_bits
    }

    pub(crate) fn bucket(&self, epoch: u64) -> Bucket {
        Bucket {
            epoch,
            slot: self.offset + (epoch % self.resolution.buckets as u64) as usize,
        }
    }

    fn pack(&self, epoch: u64, count: u64) -> u64 {
        ((epoch & self.tag_mask()) << self.count_bits) | count
    }

    fn tag(&self, word: u64) -> u64 {
        word >> self.count_bits
    }

    fn count(&self, word: u64) -> u64 {
        word & self.count_max()
    }
}

/// Reads a run of consecutive epochs' slots (starting at `epoch`), passing each bucket's count
/// (0 for a slot that holds another epoch) to `each`.
fn read_run(level: &Level, slots: &[AtomicU64], epoch: u64, each: &mut impl FnMut(u64)) {
    let mut tag = epoch & level.tag_mask();
    for slot in slots {
        let word = slot.load(Relaxed);
        each(if level.tag(word) == tag {
            level.count(word)
        } else {
            0
        });
        tag = (tag + 1) & level.tag_mask();
    }
}

/// The shape shared by every series of an engine: the resolutions, their place in a slot array,
/// and the origin that epochs count from.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    levels: Box<[Level]>,
    slots: usize,
    origin_ms: u64,
}

/// Why a set of resolutions cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    NoResolutions,
    ZeroBucket,
    ZeroBuckets,
    TooManyBuckets(u32),
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::NoResolutions => write!(f, "at least one resolution is needed"),
            LayoutError::ZeroBucket => write!(f, "a bucket must be at least 1 ms long"),
            LayoutError::ZeroBuckets => write!(f, "a resolution needs at least one bucket"),
            LayoutError::TooManyBuckets(n) => {
                write!(f, "{n} buckets is too many for one ring (at most 100000)")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

impl Layout {
    /// `start` is rounded down to a whole bucket of the coarsest resolution, so buckets of every
    /// resolution begin on wall-clock boundaries (whole seconds, minutes, hours).
    pub(crate) fn new(resolutions: &[Resolution], start: Timestamp) -> Result<Self, LayoutError> {
        if resolutions.is_empty() {
            return Err(LayoutError::NoResolutions);
        }
        let mut levels = Vec::with_capacity(resolutions.len());
        let mut offset = 0;
        for &resolution in resolutions {
            if resolution.bucket_ms == 0 {
                return Err(LayoutError::ZeroBucket);
            }
            match resolution.buckets {
                0 => return Err(LayoutError::ZeroBuckets),
                n if n > 100_000 => return Err(LayoutError::TooManyBuckets(n)),
                _ => {}
            }
            let max_epoch = HORIZON_MS / resolution.bucket_ms;
            let tag_bits = u64::BITS - max_epoch.leading_zeros();
            levels.push(Level {
                resolution,
                offset,
                count_bits: u64::BITS - tag_bits,
            });
            offset += resolution.buckets as usize;
        }
        let coarsest = resolutions.iter().map(|r| r.bucket_ms).max().unwrap_or(1);
        Ok(Layout {
            levels: levels.into(),
            slots: offset,
            origin_ms: start.as_millis() / coarsest * coarsest,
        })
    }

    pub(crate) fn levels(&self) -> &[Level] {
        &self.levels
    }

    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    pub(crate) fn origin(&self) -> Timestamp {
        Timestamp::from_millis(self.origin_ms)
    }

    /// The epoch of `time` at `level`, or `None` before the origin.
    pub(crate) fn epoch(&self, level: usize, time: Timestamp) -> Option<u64> {
        let since = time.as_millis().checked_sub(self.origin_ms)?;
        Some(since / self.levels[level].resolution.bucket_ms)
    }

    /// When bucket `epoch` of `level` starts.
    pub(crate) fn bucket_start(&self, level: usize, epoch: u64) -> Timestamp {
        let bucket_ms = self.levels[level].resolution.bucket_ms;
        Timestamp::from_millis(self.origin_ms + epoch * bucket_ms)
    }
}

/// One counter kept at every resolution of a layout: `slots` holds all rings back to back.
pub(crate) struct CountRings {
    slots: Box<[AtomicU64]>,
}

impl CountRings {
    pub(crate) fn new(layout: &Layout) -> Self {
        CountRings {
            slots: (0..layout.slots()).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `delta` to `bucket` at `level`.
    pub(crate) fn add(&self, level: &Level, bucket: Bucket, delta: u64) -> Write {
        let slot = &self.slots[bucket.slot];
        let epoch = bucket.epoch;
        let tag = epoch & level.tag_mask();
        let mut current = slot.load(Relaxed);
        loop {
            let current_tag = level.tag(current);
            let (count, outcome) = if current_tag == tag {
                let sum = level.count(current).saturating_add(delta);
                if sum > level.count_max() {
                    (level.count_max(), Write::Saturated)
                } else {
                    (sum, Write::Counted)
                }
            } else if current_tag < tag {
                if delta > level.count_max() {
                    (level.count_max(), Write::Saturated)
                } else {
                    (delta, Write::Counted)
                }
            } else {
                return Write::TooOld;
            };
            match slot.compare_exchange_weak(current, level.pack(epoch, count), Relaxed, Relaxed) {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }

    /// The count of bucket `epoch` at `level` (0 if the slot holds another epoch).
    #[cfg(any(test, loom))]
    pub(crate) fn get(&self, level: &Level, epoch: u64) -> u64 {
        let mut count = [0];
        self.add_window(level, epoch, &mut count);
        count[0]
    }

    /// Passes the counts of buckets `first..=last` to `each`, oldest first. The run must not be
    /// longer than the ring. This is the snapshot's inner loop: the run is read as (at most) two
    /// contiguous stretches of slots, with no per-slot index arithmetic.
    fn read(&self, level: &Level, first: u64, last: u64, mut each: impl FnMut(u64)) {
        let buckets = level.buckets();
        let len = (last + 1 - first) as usize;
        debug_assert!(len <= buckets);
        let ring = &self.slots[level.offset..level.offset + buckets];
        let start = (first % buckets as u64) as usize;
        let run = (buckets - start).min(len);
        read_run(level, &ring[start..start + run], first, &mut each);
        read_run(level, &ring[..len - run], first + run as u64, &mut each);
    }

    /// Adds the counts of the `out.len()` buckets ending at `last` into `out`, oldest first
    /// (buckets before the origin add nothing), and returns their sum. `out` must not be longer
    /// than the ring.
    pub(crate) fn add_window(&self, level: &Level, last: u64, out: &mut [u64]) -> u64 {
        let first = (last + 1).saturating_sub(out.len() as u64);
        let before_origin = out.len() - (last + 1 - first) as usize;
        let mut out = out[before_origin..].iter_mut();
        let mut sum = 0;
        self.read(level, first, last, |count| {
            if let Some(out) = out.next() {
                *out += count;
            }
            sum += count;
        });
        sum
    }

    /// The buckets of the ring of `level` as they lie in it, slot by slot (tags never wrap, so
    /// a tag is its bucket's epoch).
    pub(crate) fn copy(&self, level: &Level) -> Vec<SavedBucket> {
        let ring = &self.slots[level.offset..level.offset + level.buckets()];
        (ring.iter().map(|slot| slot.load(Relaxed)))
            .map(|word| SavedBucket {
                epoch: level.tag(word),
                count: level.count(word),
            })
            .collect()
    }

    /// Loads a slot (see [`Level::bucket`]) and discards it: a hint to bring it into cache before
    /// a sum reads it.
    pub(crate) fn touch(&self, slot: usize) {
        std::hint::black_box(self.slots[slot].load(Relaxed));
    }

    /// Sum of buckets `first..=last` (no more than the ring holds).
    pub(crate) fn sum(&self, level: &Level, first: u64, last: u64) -> u64 {
        let mut sum = 0;
        self.read(level, first, last, |count| sum += count);
        sum
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(
            &[Resolution::new(1000, 4), Resolution::new(60_000, 3)],
            Timestamp::from_millis(0),
        )
        .expect("valid layout")
    }

    #[test]
    fn tag_widths_leave_room_for_2_to_the_32_per_second() {
        let layout = Layout::new(
            &[
                Resolution::new(1, 10),
                Resolution::new(1000, 300),
                Resolution::new(7, 10),
                Resolution::new(10_000, 10),
                Resolution::new(60_000, 60),
                Resolution::new(3_600_000, 24),
            ],
            Timestamp::from_millis(0),
        )
        .expect("valid layout");
        for level in layout.levels() {
            let per_second = (level.count_max() + 1) as f64 * 1000.0 / level.resolution.bucket_ms as f64;
            assert!(
                per_second >= 4_294_967_296.0,
                "{:?} holds only {per_second}/s",
                level.resolution
            );
            let max_epoch = HORIZON_MS / level.resolution.bucket_ms;
            assert_eq!(max_epoch & level.tag_mask(), max_epoch, "tag too narrow");
        }
    }

    #[test]
    fn wrapping_onto_a_stale_bucket_resets_it() {
        let layout = layout();
        let level = &layout.levels()[0];
        let rings = CountRings::new(&layout);
        assert_eq!(rings.add(level, level.bucket(1), 5), Write::Counted);
        assert_eq!(rings.add(level, level.bucket(1), 2), Write::Counted);
        assert_eq!(rings.get(level, 1), 7);
        // Epoch 5 lands in the same slot as epoch 1 (4 buckets).
        assert_eq!(rings.add(level, level.bucket(5), 3), Write::Counted);
        assert_eq!(rings.get(level, 5), 3);
        assert_eq!(rings.get(level, 1), 0, "the old epoch is gone, not mixed in");
        assert_eq!(rings.add(level, level.bucket(1), 1), Write::TooOld);
        assert_eq!(rings.get(level, 5), 3);
    }

    #[test]
    fn saturates_instead_of_overflowing_into_the_tag() {
        let layout = layout();
        let level = &layout.levels()[0];
        let rings = CountRings::new(&layout);
        let max = level.count_max();
        assert_eq!(rings.add(level, level.bucket(2), max - 1), Write::Counted);
        assert_eq!(rings.add(level, level.bucket(2), 10), Write::Saturated);
        assert_eq!(rings.get(level, 2), max);
        assert_eq!(rings.get(level, 3), 0);
    }

    #[test]
    fn windows_read_oldest_first_and_pad_before_the_origin() {
        let layout = layout();
        let level = &layout.levels()[0];
        let rings = CountRings::new(&layout);
        rings.add(level, level.bucket(0), 1);
        rings.add(level, level.bucket(1), 2);
        let mut window = [0; 4];
        assert_eq!(rings.add_window(level, 1, &mut window), 3);
        assert_eq!(window, [0, 0, 1, 2]);
        assert_eq!(rings.sum(level, 0, 1), 3);
        // A window that wraps around the end of the ring.
        rings.add(level, level.bucket(4), 5);
        let mut window = [0; 4];
        assert_eq!(rings.add_window(level, 4, &mut window), 7);
        assert_eq!(window, [2, 0, 0, 5]);
    }

    #[test]
    fn origin_is_aligned_to_the_coarsest_bucket() {
        let layout = Layout::new(
            &[Resolution::new(1000, 10), Resolution::new(60_000, 10)],
            Timestamp::from_millis(125_500),
        )
        .expect("valid layout");
        assert_eq!(layout.origin(), Timestamp::from_millis(120_000));
        assert_eq!(layout.epoch(0, Timestamp::from_millis(125_500)), Some(5));
        assert_eq!(layout.epoch(1, Timestamp::from_millis(125_500)), Some(0));
        assert_eq!(layout.epoch(0, Timestamp::from_millis(1)), None);
        assert_eq!(layout.bucket_start(0, 5), Timestamp::from_millis(125_000));
    }
}

/// Model-checked with loom: `RUSTFLAGS="--cfg loom" cargo test -p tally-core --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn rings() -> (Layout, Arc<CountRings>) {
        let layout = Layout::new(&[Resolution::new(1000, 4)], Timestamp::from_millis(0)).expect("valid");
        let rings = Arc::new(CountRings::new(&layout));
        (layout, rings)
    }

    #[test]
    fn loom_concurrent_adds_to_one_bucket_are_exact() {
        loom::model(|| {
            let (layout, rings) = rings();
            let level = layout.levels()[0].clone();
            let other = {
                let (rings, level) = (Arc::clone(&rings), level.clone());
                thread::spawn(move || rings.add(&level, level.bucket(1), 2))
            };
            assert_eq!(rings.add(&level, level.bucket(1), 1), Write::Counted);
            assert_eq!(other.join().expect("thread"), Write::Counted);
            assert_eq!(rings.get(&level, 1), 3);
        });
    }

    #[test]
    fn loom_wrap_race_never_mixes_epochs() {
        loom::model(|| {
            let (layout, rings) = rings();
            let level = layout.levels()[0].clone();
            // Epoch 5 recycles epoch 1's slot (4 buckets) while epoch 1 is being written.
            let late = {
                let (rings, level) = (Arc::clone(&rings), level.clone());
                thread::spawn(move || rings.add(&level, level.bucket(5), 10))
            };
            let reader = {
                let (rings, level) = (Arc::clone(&rings), level.clone());
                thread::spawn(move || (rings.get(&level, 1), rings.get(&level, 5)))
            };
            let first = rings.add(&level, level.bucket(1), 1);
            let second = rings.add(&level, level.bucket(1), 1);
            assert_eq!(late.join().expect("thread"), Write::Counted);
            let (seen_1, seen_5) = reader.join().expect("thread");
            assert!(seen_1 <= 2, "epoch 1 never shows epoch 5's count: {seen_1}");
            assert!(
                seen_5 == 0 || seen_5 == 10,
                "epoch 5 never shows epoch 1's: {seen_5}"
            );
            // Once epoch 5 owns the slot, epoch 1 writes are refused, never added to it.
            assert_eq!(rings.get(&level, 5), 10);
            let kept_for_1 = [first, second].iter().filter(|w| **w == Write::Counted).count();
            assert!(kept_for_1 <= 2);
            assert_eq!(rings.get(&level, 1), 0);
        });
    }
}
