//! Which buckets a window's total is read from: as few as possible.
//!
//! A window of `n` buckets could be read bucket by bucket, but the next coarser resolution, when
//! its buckets nest exactly in ours, holds the same counts in fewer words: every event is written
//! at every resolution, so a coarse bucket is the sum of its fine buckets. A window is therefore
//! read as a run of whole coarse buckets plus our own buckets at its ragged ends, and where a
//! coarse bucket at an end is cheaper to read whole and correct by subtracting the fine buckets
//! outside the window, it is. A snapshot reads thousands of series with one plan, and this is its
//! inner loop: for a 5-minute window at 1 s, it is 6 coarse words and 0 to 59 fine ones instead
//! of 300 words (60 before the newest coarse bucket stood in for the newest fine ones).
//!
//! A coarse bucket stands in exactly when
//! - it is still in the coarse ring (the coarse run is no longer than the ring), and
//! - for the newest coarse bucket, which reaches past the window's last bucket, nothing was
//!   written after the window. The same condition keeps the fine buckets before the window that
//!   a subtraction reads in the fine ring: with no write after `last`, the ring holds the epochs
//!   up to `last` going back its whole length. The caller checks a series' latest write and
//!   uses the plan built for quiet series (see [`Plan::new`]) only when it holds.

use crate::ring::{Level, RingReader};

/// Consecutive buckets of one resolution, added to or subtracted from a window's total.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run<'a> {
    level: &'a Level,
    first: u64,
    last: u64,
    subtract: bool,
}

impl<'a> Run<'a> {
    fn add(level: &'a Level, first: u64, last: u64) -> Self {
        Run {
            level,
            first,
            last,
            subtract: false,
        }
    }

    fn subtract(level: &'a Level, first: u64, last: u64) -> Self {
        Run {
            subtract: true,
            ..Run::add(level, first, last)
        }
    }

    fn len(&self) -> u64 {
        self.last + 1 - self.first
    }
}

/// The reads that total one window, the same for every series of an engine.
#[derive(Clone, Debug)]
pub(crate) struct Plan<'a> {
    runs: Vec<Run<'a>>,
}

/// Slots per 64-byte cache line (4-byte words; a series moved to 8-byte words has two lines
/// for each touched).
pub(crate) const SLOTS_PER_LINE: u64 = 16;

impl<'a> Plan<'a> {
    /// The cheapest reads for buckets `first..=last` of `level`, given the next coarser level
    /// and how many of our buckets make one of its (`None` when it does not nest). `quiet`
    /// plans may rely on nothing having been written after `last`.
    pub(crate) fn new(
        level: &'a Level,
        coarse: Option<(&'a Level, u64)>,
        first: u64,
        last: u64,
        quiet: bool,
    ) -> Self {
        let bucket_by_bucket = Plan {
            runs: vec![Run::add(level, first, last)],
        };
        let Some((coarse, ratio)) = coarse else {
            return bucket_by_bucket;
        };
        let (coarse_first, coarse_last) = (first / ratio, last / ratio);
        // The newest coarse bucket stands in for ours up to `last` when nothing follows `last`
        // in it: always for a quiet series, else only when `last` ends it.
        let (coarse_end, newest_fine) = if quiet || (last + 1).is_multiple_of(ratio) {
            (Some(coarse_last), None)
        } else {
            let newest = Run::add(level, (coarse_last * ratio).max(first), last);
            (coarse_last.checked_sub(1), Some(newest))
        };
        let Some(coarse_end) = coarse_end else {
            return bucket_by_bucket;
        };
        // The oldest of our buckets still in our ring (for a quiet series).
        let oldest_kept = (last + 1).saturating_sub(level.buckets() as u64);
        let mut oldest_options = vec![];
        if first.is_multiple_of(ratio) {
            oldest_options.push((coarse_first, None));
        } else {
            let ours = Run::add(level, first, (coarse_first + 1) * ratio - 1);
            oldest_options.push((coarse_first + 1, Some(ours)));
            if quiet && coarse_first * ratio >= oldest_kept {
                let outside = Run::subtract(level, coarse_first * ratio, first - 1);
                oldest_options.push((coarse_first, Some(outside)));
            }
        }
        let mut best = bucket_by_bucket;
        for (coarse_start, oldest_fine) in oldest_options {
            if coarse_start > coarse_end || coarse_end - coarse_start >= coarse.buckets() as u64 {
                continue;
            }
            let runs: Vec<Run<'a>> = [
                Some(Run::add(coarse, coarse_start, coarse_end)),
                oldest_fine,
                newest_fine,
            ]
            .into_iter()
            .flatten()
            .collect();
            let plan = Plan { runs };
            if plan.reads() < best.reads() {
                best = plan;
            }
        }
        best
    }

    /// How many buckets the plan reads.
    pub(crate) fn reads(&self) -> u64 {
        self.runs.iter().map(Run::len).sum()
    }

    /// The window's total in the rings `reader` reads.
    pub(crate) fn sum(&self, reader: &RingReader<'_>) -> u64 {
        let (mut added, mut subtracted) = (0u64, 0u64);
        for run in &self.runs {
            let sum = reader.sum(run.level, run.first, run.last);
            if run.subtract {
                subtracted += sum;
            } else {
                added += sum;
            }
        }
        // Under concurrent writes the subtracted buckets may have been read after the coarse one.
        added.saturating_sub(subtracted)
    }

    /// Slots to load before [`Plan::sum`] needs them: one in each cache line of every run.
    pub(crate) fn touch_points(&self) -> Vec<usize> {
        let mut points = vec![];
        for run in &self.runs {
            let mut epoch = run.first;
            while epoch <= run.last {
                points.push(run.level.bucket(epoch).slot);
                epoch += SLOTS_PER_LINE;
            }
            points.push(run.level.bucket(run.last).slot);
        }
        points
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ring::Layout;
    use crate::time::{Resolution, Timestamp};

    fn layout() -> Layout {
        Layout::new(
            &[Resolution::new(1000, 300), Resolution::new(60_000, 60)],
            Timestamp::from_millis(0),
        )
        .expect("valid layout")
    }

    /// The runs as `(bucket seconds, first, last, sign)`.
    fn runs(plan: &Plan<'_>) -> Vec<(u64, u64, u64, char)> {
        plan.runs
            .iter()
            .map(|r| {
                let sign = if r.subtract { '-' } else { '+' };
                (r.level.resolution.bucket_ms / 1000, r.first, r.last, sign)
            })
            .collect()
    }

    fn plan(layout: &Layout, first: u64, last: u64, quiet: bool) -> Plan<'_> {
        let [fine, coarse] = layout.levels() else {
            unreachable!("two levels")
        };
        Plan::new(fine, Some((coarse, 60)), first, last, quiet)
    }

    #[test]
    fn five_minutes_read_whole_minutes_and_the_oldest_seconds() {
        let layout = layout();
        // Now is 10:00:20 (epoch 36020); the window starts at 09:55:21.
        let (first, last) = (36020 - 299, 36020);
        assert_eq!(
            runs(&plan(&layout, first, last, true)),
            vec![(60, 596, 600, '+'), (1, first, 35759, '+')],
            "the current minute is read whole; 39 seconds before the first whole minute",
        );
        // With a write after `last`, the current minute holds more than the window.
        assert_eq!(
            runs(&plan(&layout, first, last, false)),
            vec![
                (60, 596, 599, '+'),
                (1, first, 35759, '+'),
                (1, 36000, 36020, '+')
            ],
        );
    }

    #[test]
    fn a_minute_subtracts_when_that_is_cheaper() {
        let layout = layout();
        // 10:00:50: the window 09:59:51 - 10:00:50 is 9 seconds of the minute before, then 51.
        let (first, last) = (36050 - 59, 36050);
        assert_eq!(
            runs(&plan(&layout, first, last, true)),
            vec![(60, 600, 600, '+'), (1, 35991, 35999, '+')],
        );
        // 10:00:05: 54 seconds of the minute before are in the window; the 6 before it are read
        // and subtracted from that whole minute instead.
        let (first, last) = (36005 - 59, 36005);
        assert_eq!(
            runs(&plan(&layout, first, last, true)),
            vec![(60, 599, 600, '+'), (1, 35940, 35945, '-')],
        );
        // Not for a series with later writes: those buckets may have been recycled.
        assert_eq!(plan(&layout, first, last, false).reads(), 60);
    }

    #[test]
    fn aligned_windows_are_whole_coarse_buckets() {
        let layout = layout();
        assert_eq!(
            runs(&plan(&layout, 36000, 36059, false)),
            vec![(60, 600, 600, '+')]
        );
        assert_eq!(
            runs(&plan(&layout, 36000, 36299, false)),
            vec![(60, 600, 604, '+')]
        );
    }

    #[test]
    fn short_or_unnested_windows_are_read_bucket_by_bucket() {
        let layout = layout();
        assert_eq!(
            runs(&plan(&layout, 36003, 36005, true)),
            vec![(1, 36003, 36005, '+')]
        );
        // Five seconds cost more than their minute less the three before them.
        assert_eq!(
            runs(&plan(&layout, 36003, 36007, true)),
            vec![(60, 600, 600, '+'), (1, 36000, 36002, '-')],
        );
        let fine = &layout.levels()[0];
        let alone = Plan::new(fine, None, 0, 299, true);
        assert_eq!(runs(&alone), vec![(1, 0, 299, '+')]);
        // Before the origin: the window starts at epoch 0.
        assert_eq!(runs(&plan(&layout, 0, 20, true)), vec![(60, 0, 0, '+')]);
    }

    #[test]
    fn coarse_runs_never_outrun_the_coarse_ring() {
        let layout = Layout::new(
            &[Resolution::new(1000, 300), Resolution::new(60_000, 2)],
            Timestamp::from_millis(0),
        )
        .expect("valid layout");
        let [fine, coarse] = layout.levels() else {
            unreachable!("two levels")
        };
        let plan = Plan::new(fine, Some((coarse, 60)), 36000, 36299, true);
        assert_eq!(plan.reads(), 300, "5 minutes do not fit in 2 one-minute buckets");
    }

    #[test]
    fn touch_points_cover_every_cache_line() {
        let layout = layout();
        let plan = plan(&layout, 36020 - 299, 36020, true);
        let points = plan.touch_points();
        let fine = &layout.levels()[0];
        for epoch in 35721..=35759 {
            let slot = fine.bucket(epoch).slot;
            assert!(
                points
                    .iter()
                    .any(|&p| p <= slot && slot < p + SLOTS_PER_LINE as usize),
                "slot {slot} is within a line of a touched slot"
            );
        }
    }
}
