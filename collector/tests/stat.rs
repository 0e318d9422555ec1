//! `stat`'s table and `send` over TCP, through the library.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tally_collector::collector::Collector;
use tally_collector::config::SourceArgs;
use tally_collector::send::{self, Format, SendOptions, Transport};
use tally_collector::stat::{self, StatOptions};
use tally_core::{SnapshotRequest, Window};

/// A collector keeping no state: tests must not read or write the user's.
fn collector(args: SourceArgs) -> Collector {
    let args = SourceArgs {
        no_state: Some(true),
        ..args
    };
    Collector::start(&args.settings().expect("valid")).expect("starts")
}

#[test]
fn the_table_repeats_its_header_every_25_rows() {
    let collector = collector(SourceArgs {
        udp: vec!["127.0.0.1:0".parse().expect("address")],
        ..SourceArgs::default()
    });
    let options = StatOptions {
        interval: Duration::from_millis(1),
        json: false,
        count: Some(30),
        window: Window {
            level: 0,
            buckets: 60,
        },
        top: 3,
        clock: tally_core::Clock::new(jiff::tz::TimeZone::get("Asia/Kolkata").expect("tzdb")),
    };
    let mut out = Vec::new();
    stat::run(&collector, &options, &mut out, &Arc::new(AtomicBool::new(false))).expect("runs");
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 32, "30 rows and 2 headers:\n{text}");
    let headers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("events/s"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(headers, [0, 26]);
    // The time column is headed by its zone (India has no abbreviation: its offset).
    assert!(
        lines[0].trim_start().starts_with("+0530") || lines[0].contains("IST"),
        "{}",
        lines[0]
    );
    collector.stop();
}

#[test]
fn send_over_tcp_reaches_the_tcp_listener() {
    let collector = collector(SourceArgs {
        no_udp: Some(true),
        tcp: vec!["127.0.0.1:0".parse().expect("address")],
        ..SourceArgs::default()
    });
    let to = collector.sources()[0]
        .address
        .parse()
        .expect("a TCP listener's address");
    for format in [Format::Statsd, Format::Json] {
        let report = send::send(&SendOptions {
            to,
            transport: Transport::Tcp,
            format,
            count: 500,
            rate: None,
            accounts: 3,
            types: 2,
            per_datagram: 1,
        })
        .expect("sends");
        assert_eq!(report.events, 500);
    }
    let msgpack_over_tcp = send::send(&SendOptions {
        to,
        transport: Transport::Tcp,
        format: Format::Msgpack,
        count: 1,
        rate: None,
        accounts: 1,
        types: 1,
        per_datagram: 1,
    });
    assert!(msgpack_over_tcp.is_err(), "msgpack has no line framing");
    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        let snapshot = collector
            .engine()
            .snapshot(&SnapshotRequest::default(), tally_collector::health::now());
        if snapshot.totals.total >= 1000 || Instant::now() > deadline {
            break snapshot;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let totals: Vec<(String, u64)> = snapshot
        .accounts
        .iter()
        .map(|a| (a.name.to_string(), a.total))
        .collect();
    assert_eq!(
        totals,
        [
            ("acme".to_owned(), 334),
            ("globex".to_owned(), 334),
            ("initech".to_owned(), 332)
        ]
    );
    collector.stop();
}
