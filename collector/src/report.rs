//! The JSON document that describes what a collector has seen: a line of `tally stat --json`,
//! and the HTTP API's `/api/snapshot` (one schema, one serializer; the README documents it).

use serde::Serialize;
use std::collections::BTreeMap;
use tally_core::{Annotation, OutputStatus, ServiceCheck, Snapshot, SourceStatus, Timestamp, TimingSummary};

/// What a JSON report leaves out past `--top`: how many accounts, and their sums.
#[derive(Debug, Serialize, Default)]
struct LeftOut {
    accounts: usize,
    total: u64,
    window_total: u64,
    rate: f64,
}

#[derive(Debug, Serialize)]
struct TypeReport<'a> {
    total: u64,
    window_total: u64,
    rate: f64,
    /// Timings in the window (ms): count, min, mean, p50, p90, p99, max.
    #[serde(skip_serializing_if = "Option::is_none")]
    timing: Option<&'a TimingSummary>,
    /// A gauge's last value.
    #[serde(skip_serializing_if = "Option::is_none")]
    gauge: Option<f64>,
    /// Distinct set members in the window (an estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    distinct: Option<u64>,
}

#[derive(Debug, Serialize)]
struct AccountReport<'a> {
    account: &'a str,
    total: u64,
    window_total: u64,
    rate: f64,
    share: f64,
    types: BTreeMap<&'a str, TypeReport<'a>>,
}

#[derive(Debug, Serialize)]
struct TotalsReport {
    total: u64,
    window_total: u64,
    rate: f64,
    peak_rate: f64,
    accounts: usize,
    active_accounts: usize,
    folded_accounts: u64,
    folded_events: u64,
    rejected: u64,
    saturated: u64,
}

/// The window's bars: all events per bucket, oldest first.
#[derive(Debug, Serialize)]
struct BarsReport<'a> {
    /// When the first bucket starts (ms since the Unix epoch).
    start: Timestamp,
    bucket_ms: u64,
    totals: &'a [u64],
}

/// One line of `stat --json`, and `GET /api/snapshot`'s answer.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Milliseconds since the Unix epoch.
    time: Timestamp,
    window_seconds: f64,
    totals: TotalsReport,
    bars: BarsReport<'a>,
    /// The `--top` busiest accounts.
    accounts: Vec<AccountReport<'a>>,
    #[serde(skip_serializing_if = "left_out_nothing")]
    left_out: LeftOut,
    sources: &'a [SourceStatus],
    /// Where `tally hub` re-publishes events (absent for the other commands).
    #[serde(skip_serializing_if = "<[OutputStatus]>::is_empty")]
    outputs: &'a [OutputStatus],
    rejections: BTreeMap<&'static str, u64>,
    /// DogStatsD events in the window, oldest first.
    #[serde(skip_serializing_if = "<[Annotation]>::is_empty")]
    annotations: &'a [Annotation],
    /// Service checks' last statuses, the most troubled first.
    #[serde(skip_serializing_if = "<[ServiceCheck]>::is_empty")]
    checks: &'a [ServiceCheck],
}

fn left_out_nothing(left_out: &LeftOut) -> bool {
    left_out.accounts == 0
}

impl<'a> Report<'a> {
    /// The document for `snapshot`, listing its `top` busiest accounts (the rest summed in
    /// `left_out`), with every source's and output's status.
    pub fn new(
        snapshot: &'a Snapshot,
        top: usize,
        sources: &'a [SourceStatus],
        outputs: &'a [OutputStatus],
    ) -> Report<'a> {
        report(snapshot, top, sources, outputs)
    }
}

fn report<'a>(
    snapshot: &'a Snapshot,
    top: usize,
    sources: &'a [SourceStatus],
    outputs: &'a [OutputStatus],
) -> Report<'a> {
    let window = &snapshot.window;
    let (shown, rest) = snapshot.accounts.split_at(top.min(snapshot.accounts.len()));
    let left_out = rest.iter().fold(LeftOut::default(), |sum, a| LeftOut {
        accounts: sum.accounts + 1,
        total: sum.total.saturating_add(a.total),
        window_total: sum.window_total + a.window_total,
        rate: sum.rate + a.rate,
    });
    Report {
        time: snapshot.time,
        window_seconds: (window.buckets as u64 * window.resolution.bucket_ms) as f64 / 1000.0,
        totals: TotalsReport {
            total: snapshot.totals.total,
            window_total: snapshot.totals.window_total,
            rate: snapshot.totals.rate,
            peak_rate: snapshot.totals.peak_rate,
            accounts: snapshot.totals.accounts,
            active_accounts: snapshot.totals.active_accounts,
            folded_accounts: snapshot.totals.folded_accounts,
            folded_events: snapshot.totals.folded_events,
            rejected: snapshot.totals.rejected,
            saturated: snapshot.totals.saturated,
        },
        bars: BarsReport {
            start: snapshot.stack.start,
            bucket_ms: snapshot.stack.bucket_ms,
            totals: &snapshot.stack.totals,
        },
        left_out,
        accounts: shown
            .iter()
            .map(|a| AccountReport {
                account: &a.name,
                total: a.total,
                window_total: a.window_total,
                rate: a.rate,
                share: a.share,
                types: a
                    .detail
                    .iter()
                    .flat_map(|d| &d.types)
                    .map(|t| {
                        let report = TypeReport {
                            total: t.total,
                            window_total: t.window_total,
                            rate: t.rate,
                            timing: t.timing.as_ref(),
                            gauge: t.gauge,
                            distinct: t.distinct,
                        };
                        (&*t.name, report)
                    })
                    .collect(),
            })
            .collect(),
        sources,
        outputs,
        rejections: snapshot
            .rejections
            .iter()
            .map(|r| (r.reason.as_str(), r.count))
            .collect(),
        annotations: &snapshot.annotations,
        checks: &snapshot.checks,
    }
}
