//! A fixed-capacity, append-only table whose readers take no lock.
//!
//! Items are written once, under the owner's insert lock, into a `OnceLock`; `len` is then
//! raised with `Release`. A reader that loads `len` with `Acquire` sees every item below it fully
//! built. Items are never removed, which is what makes handing out `&T` safe without reference
//! counting, and the capacity is what bounds memory.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct AppendOnly<T> {
    items: Box<[OnceLock<T>]>,
    len: AtomicUsize,
}

impl<T> AppendOnly<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        AppendOnly {
            items: (0..capacity).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Appends `item` and returns its index, or gives it back when full. Callers serialise
    /// pushes with their own lock (which also guards their name index).
    pub(crate) fn push(&self, item: T) -> Result<usize, T> {
        let index = self.len.load(Ordering::Relaxed);
        let Some(cell) = self.items.get(index) else {
            return Err(item);
        };
        cell.set(item)?;
        self.len.store(index + 1, Ordering::Release);
        Ok(index)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index)?.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items[..self.len()].iter().filter_map(OnceLock::get)
    }
}
