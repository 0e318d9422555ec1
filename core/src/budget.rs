//! How much memory an engine can take at worst, and caps chosen to fit a budget.
//!
//! Every structure the engine allocates is bounded by a cap of [`EngineConfig`]; the ceiling
//! is what they all take when every cap is reached and every bucket of every ring is in use
//! (names at their longest, every timing and set series allocated). It is computed from the
//! structures' real sizes, so it stays true when they change; a test fills an engine to its
//! caps and checks the ceiling against what it holds.

use crate::account::{Account, TypeEntry};
use crate::bodies::BodyRings;
use crate::engine::EngineConfig;
use crate::event::MAX_NAME_BYTES;
use crate::histogram::TimingBody;
use crate::hll::AtomicHll;
use compact_str::CompactString;
use once_cell::race::OnceBox;
use std::mem::size_of;
use std::sync::{Arc, OnceLock};

/// What the allocator adds to each allocation, at most (glibc: 16 bytes, rounded to 16).
const ALLOCATION: u64 = 32;
/// One name as the engine holds it: at most [`MAX_NAME_BYTES`] in an `Arc<str>`.
const NAME: u64 = MAX_NAME_BYTES as u64 + 16 + ALLOCATION;
/// A type's name: such a name behind an `Arc` of its own ([`crate::account::TypeName`], a thin pointer).
const TYPE_NAME: u64 = NAME + size_of::<(usize, usize, Arc<str>)>() as u64 + ALLOCATION;
/// A series' slot: 4 bytes (and 8 more in the series allowed to outgrow them, counted apart).
const SLOT: u64 = 4;
/// One entry of the accounts' index (a slot number, at the table's worst load factor).
const ACCOUNT_INDEX_ENTRY: u64 = 2 * (size_of::<usize>() as u64 + 1);
/// One entry of the types' index (`HashMap<Arc<str>, usize>`, likewise).
const TYPE_INDEX_ENTRY: u64 = 2 * (size_of::<(Arc<str>, usize)>() as u64 + 1);

/// Why a budget cannot be met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetError {
    pub budget: u64,
    pub fixed: u64,
    pub per_account: u64,
}

impl std::fmt::Display for BudgetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        write!(
            f,
            "a memory budget of {:.1} MiB is too small: the types table, timing histograms and set registers can take {:.1} MiB, and each account {:.2} MiB more (lower the caps in [engine], or allow more)",
            mib(self.budget),
            mib(self.fixed),
            mib(self.per_account)
        )
    }
}

impl std::error::Error for BudgetError {}

impl EngineConfig {
    fn slots(&self) -> u64 {
        self.resolutions.iter().map(|r| u64::from(r.buckets)).sum()
    }

    /// One type entry (an account's, or a type's over all accounts) with its counts.
    fn type_entry_bytes(&self) -> u64 {
        size_of::<TypeEntry>() as u64 + self.slots() * SLOT + TYPE_NAME + 2 * ALLOCATION
    }

    /// One tracked account at its worst, its named types apart (see `type_series`):
    /// its own series, its `(other)` type, its table of types full, every app name remembered.
    pub fn account_ceiling(&self) -> u64 {
        let types = self.max_types_per_account as u64 + 1;
        let table = types * size_of::<OnceBox<TypeEntry>>() as u64;
        let apps = crate::account::MAX_APPS as u64 * (size_of::<OnceLock<CompactString>>() as u64 + NAME);
        size_of::<OnceLock<Account>>() as u64
            + self.slots() * SLOT
            + table
            + self.type_series_bytes()
            + apps
            + NAME
            + ACCOUNT_INDEX_ENTRY
            + 8 * ALLOCATION
    }

    /// Named account x type series at most: the engine-wide cap, or every account full.
    fn type_series(&self) -> u64 {
        (self.max_type_series as u64).min(self.max_accounts as u64 * self.max_types_per_account as u64)
    }

    fn type_series_bytes(&self) -> u64 {
        self.type_entry_bytes() + ALLOCATION
    }

    /// What the series allowed 8-byte buckets add.
    fn wide_ceiling(&self) -> u64 {
        self.max_wide_series as u64 * (self.slots() * 8 + ALLOCATION)
    }

    /// Every account and its types at their worst.
    fn accounts_ceiling(&self) -> u64 {
        // `(other)` is an account on top of the cap.
        (self.max_accounts as u64 + 1) * self.account_ceiling()
            + self.type_series() * self.type_series_bytes()
    }

    /// What does not grow with accounts: the types over all accounts, the histograms and
    /// registers of the timing and set series (each cap counts twice: per account x type, and
    /// per type over all accounts), and the all-events series.
    fn fixed_ceiling(&self) -> u64 {
        let (slots, timing_series, set_series) =
            (self.slots(), self.timing_series_bytes(), self.set_series_bytes());
        // Each with the word saying which series stands in for it.
        let type_bytes = size_of::<OnceLock<TypeEntry>>() + size_of::<u64>();
        let types =
            (self.max_types as u64 + 1) * (type_bytes as u64 + self.type_entry_bytes() + TYPE_INDEX_ENTRY);
        types
            + 2 * self.max_timing_series as u64 * timing_series
            + 2 * self.max_set_series as u64 * set_series
            + slots * SLOT
    }

    /// A series' bodies, every bucket in use, and its bitmap of changed ones.
    fn bodies_bytes(&self, slot: usize, body: usize) -> u64 {
        let changed = self.slots().div_ceil(64) * 8 + ALLOCATION;
        ALLOCATION + self.slots() * ((slot + body) as u64 + ALLOCATION) + changed
    }

    fn timing_series_bytes(&self) -> u64 {
        self.bodies_bytes(BodyRings::<TimingBody>::SLOT_BYTES, size_of::<TimingBody>())
    }

    fn set_series_bytes(&self) -> u64 {
        self.bodies_bytes(BodyRings::<AtomicHll>::SLOT_BYTES, size_of::<AtomicHll>())
    }

    /// The most memory an engine with these caps can hold, in bytes. Each ingest thread's
    /// name cache comes on top ([`crate::Recorder::cache_ceiling`]).
    pub fn memory_ceiling(&self) -> u64 {
        self.fixed_ceiling() + self.accounts_ceiling() + self.wide_ceiling()
    }

    /// These caps lowered (never raised) so that the ceiling fits `budget`: the timing and set
    /// series first, if their histograms and registers would take more than half of it, then
    /// `max_accounts` to what is left, with `max_type_series` in proportion.
    pub fn within_budget(&self, budget: u64) -> Result<EngineConfig, BudgetError> {
        let mut config = self.clone();
        let bodies = 2
            * (config.max_timing_series as u64 * config.timing_series_bytes()
                + config.max_set_series as u64 * config.set_series_bytes());
        let half = budget / 2;
        if config.fixed_ceiling() > half && bodies > 0 {
            let room = half.saturating_sub(config.fixed_ceiling() - bodies);
            let scale = |cap: usize| (cap as u128 * room as u128 / bodies as u128) as usize;
            config.max_timing_series = scale(config.max_timing_series);
            config.max_set_series = scale(config.max_set_series);
        }
        // Each account with its share of the named types.
        let types_each = config.type_series() as f64 / config.max_accounts.max(1) as f64;
        let per_account =
            config.account_ceiling() + (types_each * config.type_series_bytes() as f64).ceil() as u64;
        let fixed = config.fixed_ceiling() + config.wide_ceiling();
        let room = budget.saturating_sub(fixed) / per_account;
        // At least one named account besides `(other)`.
        if room < 2 {
            return Err(BudgetError {
                budget,
                fixed,
                per_account,
            });
        }
        config.max_accounts = config.max_accounts.min((room - 1) as usize);
        let type_series = (config.max_accounts as f64 * types_each) as usize;
        config.max_type_series = config.max_type_series.min(type_series);
        debug_assert!(config.memory_ceiling() <= budget);
        Ok(config)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_budget_lowers_the_account_cap_to_fit() {
        let defaults = EngineConfig::default();
        let ceiling = defaults.memory_ceiling();
        let half = defaults.within_budget(ceiling / 2).expect("fits");
        assert!(half.memory_ceiling() <= ceiling / 2);
        assert!(half.max_accounts < defaults.max_accounts && half.max_accounts > 1000);
        let roomy = defaults.within_budget(ceiling * 4).expect("fits");
        assert_eq!(roomy, defaults, "a budget never raises a cap");
        let small = defaults
            .within_budget(256 << 20)
            .expect("fits, with fewer histograms");
        assert!(small.memory_ceiling() <= 256 << 20);
        assert!(small.max_timing_series < defaults.max_timing_series && small.max_accounts > 500);
        let error = defaults
            .within_budget(1 << 20)
            .expect_err("1 MiB cannot hold the types table");
        assert!(error.to_string().contains("too small"), "{error}");
    }
}

#[cfg(all(test, not(loom)))]
mod filled {
    use crate::time::{Resolution, Timestamp};
    use crate::{Engine, EngineConfig, Event, Value};

    /// An engine filled to every cap, every bucket of every ring written, holds less than the
    /// ceiling says, and not much less (the ceiling is a bound, not a guess).
    #[test]
    fn the_ceiling_bounds_a_full_engine_closely() {
        let config = EngineConfig {
            resolutions: vec![Resolution::new(1000, 8), Resolution::new(4000, 4)],
            max_accounts: 30,
            max_types_per_account: 4,
            max_types: 6,
            // Every account x type gets its histograms and registers.
            max_timing_series: 31 * 5,
            max_set_series: 31 * 5,
            max_type_series: 30 * 4,
            // Every account's series, and the all-events series and the 7 types' over all accounts.
            max_wide_series: 31 * 6 + 8,
        };
        let start = Timestamp::from_millis(1_700_000_000_000);
        let engine = Engine::new(config.clone(), start).expect("valid");
        let mut recorder = engine.recorder();
        let long = |prefix: &str, i: usize| format!("{prefix}{i}{}", "x".repeat(200));
        for second in 0..16 {
            let time = Timestamp::from_millis(start.as_millis() + second * 1000);
            for account in 0..31 {
                for kind in 0..5 {
                    let (account, event_type) = (long("a", account), long("t", kind));
                    // A count too large for 4-byte buckets moves every series to 8.
                    let values = [
                        Value::Timing { ms: 3.0, count: 1 },
                        Value::SetMember("m"),
                        Value::Count(1 << 30),
                    ];
                    for value in values {
                        let event = Event {
                            account: &account,
                            event_type: &event_type,
                            app: None,
                            value,
                            time,
                        };
                        recorder.record(&event);
                    }
                }
            }
        }
        recorder.flush();
        // What `heap_bytes` counts: the accounts, with their series' bodies.
        let held = engine.heap_bytes() as u64;
        let series = config.max_timing_series as u64;
        let ceiling = config.accounts_ceiling()
            + config.wide_ceiling()
            + series * (config.timing_series_bytes() + config.set_series_bytes());
        assert!(held <= ceiling, "{held} > {ceiling}");
        assert!(
            held as f64 > 0.8 * ceiling as f64,
            "the ceiling {ceiling} is loose for {held}"
        );
    }
}
