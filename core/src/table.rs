//! A bounded, append-only table whose readers take no lock.
//!
//! Items are written once, under the owner's insert lock, into a write-once [`Slot`]; `len` is
//! then raised with `Release`. A reader that loads `len` with `Acquire` sees every item below it
//! fully built. Items are never removed, which is what makes handing out `&T` safe without
//! reference counting, and the capacity is what bounds memory.
//!
//! Slots come in segments of 8, 16, 32, ... allocated as the table fills, so a table sized for
//! 100,000 accounts, or 33 types of an account that uses 5, costs what it holds, not its cap.

use once_cell::race::OnceBox;
use std::marker::PhantomData;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Slots in the first segment; each further one is twice the one before.
const FIRST: usize = 8;

/// Where a table keeps an item: in the slot itself (`OnceLock<T>`), or behind a thin pointer
/// (`OnceBox<T>`: 8 bytes a slot, where a `OnceLock<Box<T>>` takes 16) for items too large to
/// leave a segment's unused slots their size.
pub(crate) trait Slot: Default {
    type Item;
    /// What is handed over to be stored.
    type Owned;
    fn get(&self) -> Option<&Self::Item>;
    fn set(&self, item: Self::Owned) -> Result<(), Self::Owned>;
}

impl<T> Slot for OnceLock<T> {
    type Item = T;
    type Owned = T;

    fn get(&self) -> Option<&T> {
        OnceLock::get(self)
    }

    fn set(&self, item: T) -> Result<(), T> {
        OnceLock::set(self, item)
    }
}

impl<T> Slot for OnceBox<T> {
    type Item = T;
    type Owned = Box<T>;

    fn get(&self) -> Option<&T> {
        OnceBox::get(self)
    }

    fn set(&self, item: Box<T>) -> Result<(), Box<T>> {
        OnceBox::set(self, item)
    }
}

/// A run of slots, allocated when the table first reaches it.
type Segment<S> = OnceLock<Box<[S]>>;

pub(crate) struct AppendOnly<T, S: Slot<Item = T> = OnceLock<T>> {
    segments: Box<[Segment<S>]>,
    // 4 bytes each: there are two tables in every account.
    capacity: u32,
    len: AtomicU32,
    item: PhantomData<T>,
}

/// The segment holding slot `index`, and the slot's place in it.
fn locate(index: usize) -> (usize, usize) {
    let segment = (usize::BITS - (index / FIRST + 1).leading_zeros() - 1) as usize;
    (segment, index - FIRST * ((1 << segment) - 1))
}

impl<T, S: Slot<Item = T>> AppendOnly<T, S> {
    /// At most `u32::MAX` slots (more are cut to that).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        let segments = capacity
            .checked_sub(1)
            .map_or(0, |last| locate(last as usize).0 + 1);
        AppendOnly {
            segments: (0..segments).map(|_| OnceLock::new()).collect(),
            capacity,
            len: AtomicU32::new(0),
            item: PhantomData,
        }
    }

    /// Appends `item` and returns its index, or gives it back when full. Callers serialise
    /// pushes with their own lock (which also guards their name index).
    pub(crate) fn push(&self, item: S::Owned) -> Result<usize, S::Owned> {
        let index = self.len.load(Ordering::Relaxed);
        if index == self.capacity {
            return Err(item);
        }
        let (segment, slot) = locate(index as usize);
        let slots = self.segments[segment].get_or_init(|| {
            let size = (FIRST << segment).min(self.capacity() - (index as usize - slot));
            (0..size).map(|_| S::default()).collect()
        });
        slots[slot].set(item)?;
        self.len.store(index + 1, Ordering::Release);
        Ok(index as usize)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        let (segment, slot) = locate(index);
        self.segments.get(segment)?.get()?.get(slot)?.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        let len = self.len();
        let slots = self
            .segments
            .iter()
            .map_while(OnceLock::get)
            .flat_map(|slots| slots.iter());
        slots.take(len).filter_map(S::get)
    }

    /// What the table itself takes (its items' own heap not included).
    pub(crate) fn heap_bytes(&self) -> usize {
        let segments = self.segments.iter().filter_map(OnceLock::get);
        std::mem::size_of_val(&*self.segments)
            + segments
                .map(|slots| std::mem::size_of_val(&**slots))
                .sum::<usize>()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn segments_double_and_stop_at_the_capacity() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(7), (0, 7));
        assert_eq!(locate(8), (1, 0));
        assert_eq!(locate(23), (1, 15));
        assert_eq!(locate(24), (2, 0));
        let table = AppendOnly::<usize>::with_capacity(30);
        for i in 0..30 {
            assert_eq!(table.push(i), Ok(i));
        }
        assert_eq!(table.push(30), Err(30));
        assert_eq!(
            table.iter().copied().collect::<Vec<_>>(),
            (0..30).collect::<Vec<_>>()
        );
        assert_eq!(table.get(29), Some(&29));
        assert_eq!(table.get(30), None);
        let empty = AppendOnly::<u64>::with_capacity(100_001);
        assert!(empty.heap_bytes() < 500, "an empty table allocates no slots");
    }

    #[test]
    fn boxed_items_take_a_thin_slot() {
        let table: AppendOnly<String, OnceBox<String>> = AppendOnly::with_capacity(9);
        for (index, name) in ["a", "b"].into_iter().enumerate() {
            assert_eq!(table.push(Box::new(name.to_owned())).ok(), Some(index));
        }
        assert_eq!(table.get(1).map(String::as_str), Some("b"));
        assert_eq!(table.iter().cloned().collect::<Vec<_>>(), ["a", "b"]);
        let directory = 2 * std::mem::size_of::<Segment<OnceBox<String>>>();
        assert_eq!(table.heap_bytes(), directory + 8 * 8, "one segment of 8 pointers");
    }
}
