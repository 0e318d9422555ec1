//! Distinct counts (StatsD sets, folded account names): a small HyperLogLog.
//!
//! 256 one-byte registers (precision 8): a standard error of 1.04 / sqrt(256) = 6.5%, with
//! linear counting below 2.5 x 256 so small sets are near exact. Registers merge by maximum,
//! so a window's estimate is the merge of its buckets.

use crate::bodies::Body;
use crate::sync::{AtomicU8, Ordering::Relaxed};
use std::hash::{BuildHasher, Hash};

const PRECISION: u32 = 8;
pub const REGISTERS: usize = 1 << PRECISION;
/// Standard error of an estimate above the linear-counting range.
pub const STANDARD_ERROR: f64 = 0.065;

/// A fixed hash, so the same member lands in the same register in every bucket.
fn hash_of(member: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7a11_7a11).hash_one(member)
}

fn register_and_rank(member: &[u8]) -> (usize, u8) {
    let hash = hash_of(member);
    let register = (hash >> (u64::BITS - PRECISION)) as usize;
    let rest = hash << PRECISION;
    let rank = (rest.leading_zeros().min(u64::BITS - PRECISION) + 1) as u8;
    (register, rank)
}

/// Registers updated concurrently.
pub(crate) struct AtomicHll {
    registers: [AtomicU8; REGISTERS],
}

impl Default for AtomicHll {
    fn default() -> Self {
        AtomicHll {
            registers: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }
}

impl Body for AtomicHll {
    fn clear(&self) {
        for register in &self.registers {
            register.store(0, Relaxed);
        }
    }
}

impl AtomicHll {
    /// The registers, as a checkpoint saves them.
    pub(crate) fn copy(&self) -> Vec<u8> {
        self.registers.iter().map(|r| r.load(Relaxed)).collect()
    }

    /// Merges saved registers into these.
    pub(crate) fn restore(&self, registers: &[u8]) {
        for (mine, &theirs) in self.registers.iter().zip(registers) {
            mine.fetch_max(theirs, Relaxed);
        }
    }

    pub(crate) fn insert(&self, member: &[u8]) {
        let (register, rank) = register_and_rank(member);
        let register = &self.registers[register];
        if rank > register.load(Relaxed) {
            register.fetch_max(rank, Relaxed);
        }
    }
}

/// Merged registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hll {
    registers: [u8; REGISTERS],
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            registers: [0; REGISTERS],
        }
    }
}

impl Hll {
    pub fn insert<T: Hash + AsRef<[u8]> + ?Sized>(&mut self, member: &T) {
        let (register, rank) = register_and_rank(member.as_ref());
        self.registers[register] = self.registers[register].max(rank);
    }

    pub(crate) fn add_atomic(&mut self, other: &AtomicHll) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(theirs.load(Relaxed));
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        if raw <= 2.5 * m && zeros > 0 {
            (m * (m / zeros as f64).ln()).round() as u64
        } else {
            raw.round() as u64
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn estimates_within_three_standard_errors() {
        for n in [0u64, 1, 10, 100, 1_000, 10_000, 100_000] {
            let mut hll = Hll::default();
            for i in 0..n {
                hll.insert(format!("user-{i}").as_bytes());
                hll.insert(format!("user-{i}").as_bytes());
            }
            let estimate = hll.estimate() as f64;
            let error = (estimate - n as f64).abs() / (n as f64).max(1.0);
            assert!(error <= 3.0 * STANDARD_ERROR, "n={n} estimate={estimate}");
        }
    }

    #[test]
    fn atomic_registers_merge_like_plain_ones() {
        let atomic = AtomicHll::default();
        let mut plain = Hll::default();
        for i in 0..500 {
            let member = format!("m{i}");
            atomic.insert(member.as_bytes());
            plain.insert(member.as_bytes());
        }
        let mut merged = Hll::default();
        merged.add_atomic(&atomic);
        assert_eq!(merged, plain);
    }
}
