//! `tally stat`: the collector without a UI, reporting every interval as a compact table or
//! as one JSON object per line (schema in the README).

use crate::collector::Collector;
use crate::health::now;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tally_core::{
    Annotation, Clock, OutputStatus, ServiceCheck, Snapshot, SnapshotRequest, SourceStatus, Timestamp,
    TimingSummary, Window, printable, short_number,
};

/// Like nsq_stat: the table's header is printed again every this many rows.
const HEADER_EVERY: u64 = 25;

#[derive(Clone, Debug)]
pub struct StatOptions {
    pub interval: Duration,
    pub json: bool,
    /// Exit after this many reports.
    pub count: Option<u64>,
    pub window: Window,
    /// Accounts named in each table row, or listed in each JSON report (busiest first; the
    /// rest are summed in `left_out`).
    pub top: usize,
    /// The zone of the table's times.
    pub clock: Clock,
}

/// What a JSON report leaves out past `--top`: how many accounts, and their sums.
#[derive(Serialize, Default)]
struct LeftOut {
    accounts: usize,
    total: u64,
    window_total: u64,
    rate: f64,
}

#[derive(Serialize)]
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

#[derive(Serialize)]
struct AccountReport<'a> {
    account: &'a str,
    total: u64,
    window_total: u64,
    rate: f64,
    share: f64,
    types: BTreeMap<&'a str, TypeReport<'a>>,
}

#[derive(Serialize)]
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

/// One line of `stat --json`.
#[derive(Serialize)]
struct Report<'a> {
    /// Milliseconds since the Unix epoch.
    time: Timestamp,
    window_seconds: f64,
    totals: TotalsReport,
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

/// The time column is headed by its zone (`EST`, `UTC`).
fn table_header(out: &mut impl Write, zone: &str) -> io::Result<()> {
    writeln!(
        out,
        "{:>8}  {:>8} {:>8} {:>8}  {:>5} {:>6}  top accounts (events/s)",
        zone, "events/s", "peak/s", "total", "accts", "bad"
    )
}

fn table_row(out: &mut impl Write, snapshot: &Snapshot, top: usize, clock: &Clock) -> io::Result<()> {
    let clock = clock.time_of_day(snapshot.time);
    let leaders: Vec<String> = snapshot
        .accounts
        .iter()
        .filter(|a| a.rate > 0.0)
        .take(top)
        .map(|a| format!("{} {}", printable(&a.name), short_number(a.rate)))
        .collect();
    let totals = &snapshot.totals;
    writeln!(
        out,
        "{clock:>8}  {:>8} {:>8} {:>8}  {:>5} {:>6}  {}",
        short_number(totals.rate),
        short_number(totals.peak_rate),
        short_number(totals.total as f64),
        totals.active_accounts,
        short_number(totals.rejected as f64),
        leaders.join(", ")
    )
}

/// Sleeps until `due`, or until `stop` is set (then `true`).
fn wait_until(due: Instant, stop: &AtomicBool) -> bool {
    while let Some(wait) = due.checked_duration_since(Instant::now()) {
        if stop.load(Relaxed) {
            return true;
        }
        std::thread::sleep(wait.min(Duration::from_millis(100)));
    }
    stop.load(Relaxed)
}

/// Reports until `count` reports were printed, or `stop` is set (then a last one).
pub fn run(
    collector: &Collector,
    options: &StatOptions,
    out: &mut impl Write,
    stop: &Arc<AtomicBool>,
) -> io::Result<()> {
    let request = SnapshotRequest {
        window: options.window,
        top: options.top,
        // The JSON has each type of the accounts it lists, with its timing percentiles.
        detail: if options.json { options.top } else { 0 },
        percentiles: options.json,
        ..SnapshotRequest::default()
    };
    let start = Instant::now();
    let mut printed = 0u64;
    while options.count.is_none_or(|count| printed < count) {
        let due = start + options.interval * (printed as u32 + 1);
        // Stopped early (a signal): one last report, with what arrived up to now.
        let stopped = wait_until(due, stop);
        let snapshot = collector.engine().snapshot(&request, now());
        if options.json {
            let (sources, outputs) = (collector.sources(), collector.outputs());
            let report = report(&snapshot, options.top, &sources, &outputs);
            serde_json::to_writer(&mut *out, &report).map_err(io::Error::other)?;
            writeln!(out)?;
        } else {
            if printed.is_multiple_of(HEADER_EVERY) {
                table_header(out, &options.clock.zone_label(snapshot.time))?;
            }
            table_row(out, &snapshot, options.top, &options.clock)?;
        }
        out.flush()?;
        printed += 1;
        if stopped {
            break;
        }
    }
    Ok(())
}
