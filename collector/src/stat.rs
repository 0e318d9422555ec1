//! `tally stat`: the collector without a UI, reporting every interval as a compact table or
//! as one JSON object per line (schema in the README).

use crate::collector::Collector;
use crate::health::now;
use crate::report::Report;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tally_core::{Clock, Snapshot, SnapshotRequest, Window, printable, short_number};

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
            let report = Report::new(&snapshot, options.top, &sources, &outputs);
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
