//! Rings of bucket *bodies* too large for one word: timing histograms and HyperLogLog registers.
//!
//! # Protocol
//! Each slot has a `state` word, `(epoch + 1) << 1 | ready`, next to a lazily allocated body.
//! - A writer for epoch `e` that finds `ready(e)` updates the body with relaxed RMWs.
//! - A writer that finds an older epoch *claims* the slot by CAS to `resetting(e)`, clears the
//!   body, then publishes `ready(e)` with a `Release` store. Writers of `e` that load `ready(e)`
//!   with `Acquire` therefore see the cleared body before they add to it: nothing is lost to
//!   the reset.
//! - A writer that finds `resetting(e)` (another thread is clearing the slot for its own epoch)
//!   spins for a bounded number of rounds; if the claimer was descheduled it gives up and the
//!   caller counts the sample as skipped. No thread ever waits without bound.
//! - Readers validate like a seqlock: load `state` (`Acquire`), copy the body, `fence(Acquire)`,
//!   load `state` again. The claimer issues `fence(Release)` between its claim and its clearing
//!   stores, so a reader whose copy saw any clearing store is guaranteed to see the claim on its
//!   second load, and discards the copy.
//!
//! - Every update ends by setting the slot's bit in `changed` (`Release`); a checkpoint clears
//!   the bits (`Acquire`) before it copies the bodies, so an update it missed sets its bit
//!   again for the next.
//!
//! A writer that loaded `ready(e)` and then stalled for a whole ring period (minutes to hours)
//! before adding could land in the next lap's bucket; counts are kept in [`crate::ring`], where
//! this cannot happen, so at worst such a sample moves between two histograms.

use crate::ring::{Bucket, Level, Write};
use crate::sync::{AtomicU64, Ordering, fence, spin};
use std::sync::OnceLock;

/// A bucket body: state that a claimer clears with relaxed stores.
pub(crate) trait Body: Default {
    fn clear(&self);
}

struct Slot<B> {
    state: AtomicU64,
    body: OnceLock<Box<B>>,
}

/// One body per bucket at every resolution of a layout, allocated on first use.
pub(crate) struct BodyRings<B> {
    slots: Box<[Slot<B>]>,
    /// A bit per slot: updated since a checkpoint last copied it.
    changed: Box<[AtomicU64]>,
}

/// How long a writer waits for another thread's reset before skipping its sample.
const SPIN_LIMIT: u32 = if cfg!(loom) { 2 } else { 1 << 10 };

const fn ready(epoch: u64) -> u64 {
    ((epoch + 1) << 1) | 1
}

const fn resetting(epoch: u64) -> u64 {
    (epoch + 1) << 1
}

/// The epoch a non-empty state word belongs to.
const fn epoch_of(state: u64) -> u64 {
    (state >> 1) - 1
}

impl<B: Body> BodyRings<B> {
    /// One slot, its body not counted (that is allocated on first use).
    pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot<B>>();

    pub(crate) fn new(slots: usize) -> Self {
        BodyRings {
            slots: (0..slots)
                .map(|_| Slot {
                    state: AtomicU64::new(0),
                    body: OnceLock::new(),
                })
                .collect(),
            changed: (0..slots.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Runs `update` on the body of `bucket`, resetting a stale body first. Returns
    /// [`Write::TooOld`] if the slot already holds a newer epoch and `None` if another writer
    /// was resetting the slot for too long (the caller counts the sample as skipped).
    pub(crate) fn update(&self, bucket: Bucket, update: impl FnOnce(&B)) -> Option<Write> {
        let slot = &self.slots[bucket.slot];
        let epoch = bucket.epoch;
        let body = slot.body.get_or_init(Box::default);
        let mut state = slot.state.load(Ordering::Acquire);
        let mut spins = 0;
        loop {
            if state == ready(epoch) {
                update(body);
                self.mark_changed(bucket.slot);
                return Some(Write::Counted);
            }
            if state != 0 && epoch_of(state) > epoch {
                return Some(Write::TooOld);
            }
            if state == resetting(epoch) {
                if spins == SPIN_LIMIT {
                    return None;
                }
                spins += 1;
                spin();
                state = slot.state.load(Ordering::Acquire);
                continue;
            }
            match slot.state.compare_exchange_weak(
                state,
                resetting(epoch),
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    fence(Ordering::Release);
                    body.clear();
                    slot.state.store(ready(epoch), Ordering::Release);
                    update(body);
                    self.mark_changed(bucket.slot);
                    return Some(Write::Counted);
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Copies what bucket `epoch` holds with `copy`, or `None` if the slot holds another epoch
    /// (or was recycled while being copied).
    pub(crate) fn read<T>(&self, level: &Level, epoch: u64, copy: impl FnOnce(&B) -> T) -> Option<T> {
        let slot = &self.slots[level.bucket(epoch).slot];
        let before = slot.state.load(Ordering::Acquire);
        if before != ready(epoch) {
            return None;
        }
        let body = slot.body.get()?;
        let value = copy(body);
        fence(Ordering::Acquire);
        (slot.state.load(Ordering::Relaxed) == before).then_some(value)
    }

    /// Always a read-modify-write, even when the bit is set: a checkpoint that clears it
    /// must synchronise with this update (or leave the bit set for the next one).
    fn mark_changed(&self, slot: usize) {
        self.changed[slot / 64].fetch_or(1 << (slot % 64), Ordering::Release);
    }

    /// Copies, with `copy`, every body updated since the last call, passing its slot and epoch
    /// to `each`. A body being recycled while copied is left for the next call (its writer
    /// marks it changed again).
    pub(crate) fn take_changed<T>(&self, copy: impl Fn(&B) -> T, mut each: impl FnMut(usize, u64, T)) {
        for (word_index, word) in self.changed.iter().enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::Acquire);
            while bits != 0 {
                let index = word_index * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let slot = &self.slots[index];
                let before = slot.state.load(Ordering::Acquire);
                let Some(body) = slot.body.get().filter(|_| before & 1 == 1) else {
                    continue;
                };
                let value = copy(body);
                fence(Ordering::Acquire);
                if slot.state.load(Ordering::Relaxed) == before {
                    each(index, epoch_of(before), value);
                }
            }
        }
    }

    /// Bytes held on the heap, counting only the bodies allocated so far.
    pub(crate) fn heap_bytes(&self) -> usize {
        let allocated = self.slots.iter().filter(|s| s.body.get().is_some()).count();
        std::mem::size_of_val(&*self.slots)
            + std::mem::size_of_val(&*self.changed)
            + allocated * std::mem::size_of::<B>()
    }
}

/// Model-checked with loom: `RUSTFLAGS="--cfg loom" cargo test -p tally-core --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::ring::Layout;
    use crate::time::{Resolution, Timestamp};
    use loom::sync::Arc;
    use loom::thread;

    #[derive(Default)]
    struct Counter(AtomicU64);

    impl Body for Counter {
        fn clear(&self) {
            self.0.store(0, Ordering::Relaxed);
        }
    }

    fn add(rings: &BodyRings<Counter>, level: &Level, epoch: u64, n: u64) -> Option<Write> {
        rings.update(level.bucket(epoch), |c| {
            c.0.fetch_add(n, Ordering::Relaxed);
        })
    }

    fn read(rings: &BodyRings<Counter>, level: &Level, epoch: u64) -> Option<u64> {
        rings.read(level, epoch, |c| c.0.load(Ordering::Relaxed))
    }

    fn setup() -> (Level, Arc<BodyRings<Counter>>) {
        let layout = Layout::new(&[Resolution::new(1000, 4)], Timestamp::from_millis(0)).expect("valid");
        let level = layout.levels()[0].clone();
        let rings = Arc::new(BodyRings::new(layout.slots()));
        // Allocate slot 1's body up front: loom does not model `OnceLock`.
        assert_eq!(add(&rings, &level, 1, 100), Some(Write::Counted));
        (level, rings)
    }

    #[test]
    fn loom_reset_loses_nothing_of_the_new_epoch() {
        loom::model(|| {
            let (level, rings) = setup();
            // Two writers of epoch 5 race to recycle epoch 1's body.
            let other = {
                let (rings, level) = (Arc::clone(&rings), level.clone());
                thread::spawn(move || add(&rings, &level, 5, 2))
            };
            let mine = add(&rings, &level, 5, 1);
            let theirs = other.join().expect("thread");
            let kept: u64 = [(mine, 1), (theirs, 2)]
                .iter()
                .filter(|(w, _)| *w == Some(Write::Counted))
                .map(|(_, n)| n)
                .sum();
            // A writer may give up (None) only while the other is resetting; all else is kept.
            assert_eq!(read(&rings, &level, 5), Some(kept));
            assert!(kept >= 1);
        });
    }

    #[test]
    fn loom_readers_never_see_a_half_reset_body() {
        loom::model(|| {
            let (level, rings) = setup();
            let writer = {
                let (rings, level) = (Arc::clone(&rings), level.clone());
                thread::spawn(move || add(&rings, &level, 5, 7))
            };
            // Epoch 1's validated reads show epoch 1's data (100) or nothing; epoch 5's show
            // the cleared body or the new sample, never leftovers of epoch 1.
            let old = read(&rings, &level, 1);
            let new = read(&rings, &level, 5);
            assert!(old.is_none() || old == Some(100), "{old:?}");
            assert!(new.is_none() || new == Some(0) || new == Some(7), "{new:?}");
            assert_eq!(writer.join().expect("thread"), Some(Write::Counted));
            assert_eq!(read(&rings, &level, 5), Some(7));
            assert_eq!(add(&rings, &level, 1, 1), Some(Write::TooOld));
        });
    }
}
