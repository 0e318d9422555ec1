//! Prometheus' text exposition of what a collector has seen (`GET /metrics`): exact event
//! counters per account and type, timing summaries, gauges and distinct counts in the window,
//! and tally's own health (bad input, sources, outputs).
//!
//! Cardinality is bounded: the `top` busiest accounts are named, every other account is
//! summed under `account="(other)"`, whatever arrives.

use std::fmt::Write;
use tally_core::{OTHER, OutputStatus, Snapshot, SourceStatus};

/// Accounts named in `/metrics` unless told otherwise (`--metrics-top`, `?top=N`).
pub const DEFAULT_TOP: usize = 100;

/// One of a source's counters, if it keeps that one.
type SourceCounter = fn(&SourceStatus) -> Option<u64>;

/// A label value as the exposition format wants it: `\`, `"` and line breaks escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'o> {
    out: &'o mut String,
}

impl Family<'_> {
    fn start<'o>(out: &'o mut String, name: &str, kind: &str, help: &str) -> Family<'o> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = (labels.iter())
            .map(|(key, value)| format!("{key}=\"{}\"", label(value)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }
}

/// The exposition for `snapshot` (taken with details for at least `top` accounts), naming
/// its `top` busiest accounts.
pub fn exposition(
    snapshot: &Snapshot,
    top: usize,
    sources: &[SourceStatus],
    outputs: &[OutputStatus],
) -> String {
    let mut out = String::new();
    let (named, rest) = snapshot.accounts.split_at(top.min(snapshot.accounts.len()));
    let types = || {
        (named.iter()).flat_map(|a| {
            let types = a.detail.iter().flat_map(|d| &d.types);
            types.map(move |t| (&*a.name, t))
        })
    };

    let mut events = Family::start(
        &mut out,
        "tally_events_total",
        "counter",
        "Events counted since tally started, by account and type (exact).",
    );
    for (account, kind) in types() {
        events.sample(
            "tally_events_total",
            &[("account", account), ("type", &kind.name)],
            kind.total as f64,
        );
    }
    let others: u64 = rest.iter().fold(0, |sum, a| sum.saturating_add(a.total));
    if others > 0 || rest.iter().any(|a| &*a.name == OTHER) {
        events.sample(
            "tally_events_total",
            &[("account", OTHER), ("type", "")],
            others as f64,
        );
    }

    let mut timings = Family::start(
        &mut out,
        "tally_timing_ms",
        "summary",
        "Timings in the window, in milliseconds (quantiles, sum and count over the window).",
    );
    for (account, kind) in types() {
        let Some(timing) = &kind.timing else { continue };
        let series = [("account", account), ("type", &*kind.name)];
        for (quantile, value) in [("0.5", timing.p50), ("0.9", timing.p90), ("0.99", timing.p99)] {
            let labels = [series[0], series[1], ("quantile", quantile)];
            timings.sample("tally_timing_ms", &labels, value);
        }
        timings.sample("tally_timing_ms_sum", &series, timing.mean * timing.count as f64);
        timings.sample("tally_timing_ms_count", &series, timing.count as f64);
    }

    let mut gauges = Family::start(&mut out, "tally_gauge", "gauge", "Each gauge's last value.");
    for (account, kind) in types() {
        if let Some(value) = kind.gauge {
            gauges.sample(
                "tally_gauge",
                &[("account", account), ("type", &kind.name)],
                value,
            );
        }
    }

    let mut distinct = Family::start(
        &mut out,
        "tally_distinct",
        "gauge",
        "Distinct set members in the window (an estimate, about 6.5% standard error).",
    );
    for (account, kind) in types() {
        if let Some(count) = kind.distinct {
            distinct.sample(
                "tally_distinct",
                &[("account", account), ("type", &kind.name)],
                count as f64,
            );
        }
    }

    let totals = &snapshot.totals;
    let mut rate = Family::start(
        &mut out,
        "tally_rate",
        "gauge",
        "Events per second now, all accounts.",
    );
    rate.sample("tally_rate", &[], totals.rate);
    let mut rejected = Family::start(
        &mut out,
        "tally_rejected_total",
        "counter",
        "Input that could not be counted, by reason.",
    );
    for reason in &snapshot.rejections {
        rejected.sample(
            "tally_rejected_total",
            &[("reason", reason.reason.as_str())],
            reason.count as f64,
        );
    }
    let mut saturated = Family::start(
        &mut out,
        "tally_saturated_total",
        "counter",
        "Events that hit a bucket's or a total's maximum.",
    );
    saturated.sample("tally_saturated_total", &[], totals.saturated as f64);

    let mut up = Family::start(
        &mut out,
        "tally_source_up",
        "gauge",
        "1 when a source is receiving (listening, or connected and not silent), else 0.",
    );
    for source in sources {
        let labels = [
            ("kind", source.kind.as_str()),
            ("address", &*source.address),
            ("state", source.state.as_str()),
        ];
        up.sample(
            "tally_source_up",
            &labels,
            f64::from(u8::from(source.is_healthy())),
        );
    }
    let per_source: [(&str, &str, SourceCounter); 5] = [
        (
            "tally_source_received_total",
            "Datagrams, lines or messages received.",
            |s| Some(s.received),
        ),
        ("tally_source_bad_total", "Payloads with bad input.", |s| {
            Some(s.bad)
        }),
        (
            "tally_kernel_drops_total",
            "UDP datagrams the kernel dropped on a full buffer.",
            |s| s.kernel_drops,
        ),
        (
            "tally_source_dropped_total",
            "Hub messages dropped because ingest fell behind.",
            |s| s.dropped,
        ),
        ("tally_hub_reconnects_total", "Hub clients' reconnections.", |s| {
            s.reconnects
        }),
    ];
    for (name, help, value) in per_source {
        let mut family = Family::start(&mut out, name, "counter", help);
        for source in sources {
            if let Some(value) = value(source) {
                let labels = [("kind", source.kind.as_str()), ("address", &*source.address)];
                family.sample(name, &labels, value as f64);
            }
        }
    }
    let mut published = Family::start(
        &mut out,
        "tally_output_published_total",
        "counter",
        "Events re-published by an output (tally hub).",
    );
    for output in outputs {
        let labels = [("kind", output.kind.as_str()), ("address", &*output.address)];
        published.sample("tally_output_published_total", &labels, output.published as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
