//! Timing distributions: a fixed-size log histogram of atomic counters per bucket.
//!
//! Bin `i > 0` holds values in `(LOWEST * GAMMA^(i-1), LOWEST * GAMMA^i]` milliseconds and
//! reports the point that splits the bin's relative error evenly, so any quantile is within
//! `(GAMMA - 1) / (GAMMA + 1)` = [`RELATIVE_ERROR`] (1.96%) of a value that was recorded, for
//! values from 10 us to about 85 minutes. Quantiles are also clamped to the exact min and max,
//! which bounds values outside that range. Histograms merge by adding bins (DDSketch's idea), so
//! any window is the sum of its buckets.

use crate::bodies::Body;
use crate::sync::{AtomicU32, AtomicU64, Ordering::Relaxed};
use serde::{Deserialize, Serialize};

pub const BINS: usize = 512;
const GAMMA: f64 = 1.04;
const LOWEST_MS: f64 = 0.01;
/// Worst relative error of a reported quantile for values inside the histogram's range.
pub const RELATIVE_ERROR: f64 = (GAMMA - 1.0) / (GAMMA + 1.0);

/// The bin that holds `ms`.
pub fn bin_of(ms: f64) -> usize {
    if ms.is_nan() || ms <= LOWEST_MS {
        return 0;
    }
    let bin = ((ms / LOWEST_MS).ln() / GAMMA.ln()).ceil();
    (bin as usize).min(BINS - 1)
}

/// The value reported for bin `i`.
pub fn bin_value(bin: usize) -> f64 {
    if bin == 0 {
        return LOWEST_MS;
    }
    LOWEST_MS * GAMMA.powi(bin as i32) * 2.0 / (1.0 + GAMMA)
}

fn to_micros(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}

/// One bucket's timings, updated concurrently.
pub(crate) struct TimingBody {
    sum_us: AtomicU64,
    min_us: AtomicU64,
    max_us: AtomicU64,
    bins: [AtomicU32; BINS],
}

impl Default for TimingBody {
    fn default() -> Self {
        TimingBody {
            sum_us: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
            bins: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

impl Body for TimingBody {
    fn clear(&self) {
        self.sum_us.store(0, Relaxed);
        self.min_us.store(u64::MAX, Relaxed);
        self.max_us.store(0, Relaxed);
        for bin in &self.bins {
            bin.store(0, Relaxed);
        }
    }
}

impl TimingBody {
    pub(crate) fn record(&self, ms: f64) {
        let us = to_micros(ms);
        self.bins[bin_of(ms)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        if us < self.min_us.load(Relaxed) {
            self.min_us.fetch_min(us, Relaxed);
        }
        if us > self.max_us.load(Relaxed) {
            self.max_us.fetch_max(us, Relaxed);
        }
    }
}

/// One bucket's timings as a checkpoint saves them: only the bins in use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimingCopy {
    pub sum_us: u64,
    pub min_us: u64,
    pub max_us: u64,
    /// (bin, samples) of the bins with samples.
    pub bins: Vec<(u16, u32)>,
}

impl TimingBody {
    pub(crate) fn copy(&self) -> TimingCopy {
        let bins = self.bins.iter().enumerate();
        TimingCopy {
            sum_us: self.sum_us.load(Relaxed),
            min_us: self.min_us.load(Relaxed),
            max_us: self.max_us.load(Relaxed),
            bins: (bins.map(|(bin, n)| (bin as u16, n.load(Relaxed))))
                .filter(|&(_, n)| n > 0)
                .collect(),
        }
    }

    /// Adds a saved copy to what the body holds.
    pub(crate) fn restore(&self, copy: &TimingCopy) {
        for &(bin, n) in &copy.bins {
            if let Some(bin) = self.bins.get(usize::from(bin)) {
                bin.fetch_add(n, Relaxed);
            }
        }
        self.sum_us.fetch_add(copy.sum_us, Relaxed);
        self.min_us.fetch_min(copy.min_us, Relaxed);
        self.max_us.fetch_max(copy.max_us, Relaxed);
    }
}

/// A merged distribution: what a window of buckets adds up to.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bins: Box<[u64; BINS]>,
    count: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bins: Box::new([0; BINS]),
            count: 0,
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ms: f64) {
        let us = to_micros(ms);
        self.bins[bin_of(ms)] += 1;
        self.count += 1;
        self.sum_us += us;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    pub(crate) fn add_body(&mut self, body: &TimingBody) {
        for (sum, bin) in self.bins.iter_mut().zip(&body.bins) {
            let n = bin.load(Relaxed) as u64;
            *sum += n;
            self.count += n;
        }
        self.sum_us += body.sum_us.load(Relaxed);
        self.min_us = self.min_us.min(body.min_us.load(Relaxed));
        self.max_us = self.max_us.max(body.max_us.load(Relaxed));
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (sum, n) in self.bins.iter_mut().zip(other.bins.iter()) {
            *sum += n;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn clear(&mut self) {
        *self = Histogram {
            bins: std::mem::replace(&mut self.bins, Box::new([0; BINS])),
            ..Histogram::default()
        };
        self.bins.fill(0);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1), within [`RELATIVE_ERROR`] of a recorded value.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let bin = self
            .bins
            .iter()
            .position(|&n| {
                seen += n;
                seen >= rank
            })
            .unwrap_or(BINS - 1);
        let (min, max) = (self.min_us as f64 / 1000.0, self.max_us as f64 / 1000.0);
        Some(bin_value(bin).clamp(min, max))
    }

    pub fn summary(&self) -> Option<TimingSummary> {
        Some(TimingSummary {
            count: self.count,
            min: self.min_us as f64 / 1000.0,
            max: self.max_us as f64 / 1000.0,
            mean: self.sum_us as f64 / 1000.0 / self.count as f64,
            p50: self.quantile(0.5)?,
            p90: self.quantile(0.9)?,
            p99: self.quantile(0.99)?,
        })
    }
}

/// Timing statistics over a window, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingSummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bins_cover_microseconds_to_over_an_hour() {
        assert_eq!(bin_of(0.0), 0);
        assert_eq!(bin_of(-3.0), 0);
        assert_eq!(bin_of(f64::NAN), 0);
        assert!(bin_of(3_600_000.0) < BINS - 1);
        assert_eq!(bin_of(1e12), BINS - 1);
        const { assert!(RELATIVE_ERROR < 0.02) };
    }

    proptest! {
        /// Every quantile is within the stated relative error of the exact order statistic.
        #[test]
        fn quantiles_within_relative_error(
            values in prop::collection::vec(0.01f64..5_000_000.0, 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut h = Histogram::default();
            for &v in &values {
                h.record(v);
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
            let exact = sorted[rank - 1];
            let estimate = h.quantile(q).expect("non-empty");
            // Values are stored as whole microseconds; allow that rounding on top.
            let tolerance = exact * RELATIVE_ERROR + 0.001;
            prop_assert!((estimate - exact).abs() <= tolerance,
                "q={q} exact={exact} estimate={estimate}");
        }

        #[test]
        fn merging_equals_recording_together(
            a in prop::collection::vec(0.0f64..10_000.0, 0..100),
            b in prop::collection::vec(0.0f64..10_000.0, 0..100),
        ) {
            let (mut ha, mut hb, mut all) = (Histogram::default(), Histogram::default(), Histogram::default());
            for &v in &a { ha.record(v); all.record(v); }
            for &v in &b { hb.record(v); all.record(v); }
            ha.merge(&hb);
            prop_assert_eq!(ha, all);
        }
    }

    #[test]
    fn atomic_body_matches_plain_histogram() {
        let body = TimingBody::default();
        let mut plain = Histogram::default();
        for v in [0.5, 12.0, 12.0, 250.0, 3.25] {
            body.record(v);
            plain.record(v);
        }
        let mut merged = Histogram::default();
        merged.add_body(&body);
        assert_eq!(merged, plain);
        let s = merged.summary().expect("non-empty");
        assert_eq!((s.count, s.min, s.max), (5, 0.5, 250.0));
        assert!((s.mean - 55.55).abs() < 1e-9);
        body.clear();
        let mut empty = Histogram::default();
        empty.add_body(&body);
        assert_eq!(empty, Histogram::default());
    }
}
