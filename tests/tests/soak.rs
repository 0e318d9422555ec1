//! Soak: 2,000,000 events (lines and documents), mixed formats (hub JSON, msgpack, StatsD with sample rates and
//! timings), over real loopback UDP into the real `tally` binary. Per-account totals must be
//! exact; any loss must show in the kernel's drop counter (and fails the test).
//!
//! The sender keeps at most `IN_FLIGHT` datagrams ahead of what tally reports received, so
//! the run adapts to the machine's speed instead of relying on a fixed rate.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use tally_tests::{Stat, account_total, free_udp_port, udp_source};

/// StatsD lines, JSON documents and msgpack documents to send.
const MESSAGES: u64 = 2_000_000;
const ACCOUNTS: usize = 50;
const IN_FLIGHT: u64 = 1500;

#[derive(Serialize)]
struct Data<'a> {
    account: &'a str,
    app: &'a str,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: Data<'a>,
}

/// StatsD lines and the events each stands for (value / sample rate; timings count 1 / rate).
const LINES: [(&str, u64); 5] = [
    ("pageview:1|c", 1),
    ("order.create:3|c|@0.5", 6),
    ("api.latency:12.5|ms", 1),
    ("api.latency:80|ms|@0.25", 4),
    ("checkout:2|c|@0.1", 20),
];

#[test]
fn two_million_mixed_events_are_counted_exactly() {
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let mut stat = Stat::start(&["--no-udp", "--udp", &listen, "--interval", "50ms"]);
    stat.wait_for(Duration::from_secs(60), |r| udp_source(r)["state"] == "listening");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("sender");
    socket.connect(&listen).expect("connect");
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("soak{i:02}")).collect();

    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    // `events` counts what tally must add up to: StatsD lines count value / sample rate.
    let (mut messages, mut events, mut datagrams, mut received) = (0u64, 0u64, 0u64, 0u64);
    let mut text = String::with_capacity(1500);
    let started = Instant::now();
    let mut k = 0usize;
    while messages < MESSAGES {
        let account = &names[k % ACCOUNTS];
        let payload: Vec<u8> = match k % 10 {
            // One in ten datagrams hub JSON, one in ten msgpack, the rest 20 StatsD lines each.
            0 => serde_json::to_vec(&Hub {
                event_type: "pageview",
                data: Data { account, app: "shop" },
            })
            .expect("json"),
            1 => rmp_serde::to_vec_named(&Hub {
                event_type: "signup",
                data: Data { account, app: "shop" },
            })
            .expect("msgpack"),
            _ => {
                text.clear();
                for line in 0..20 {
                    let (metric, n) = LINES[(k + line) % LINES.len()];
                    let _ = writeln!(text, "{account}.{metric}");
                    *expected.entry(account).or_default() += n;
                    events += n;
                }
                messages += 20;
                text.as_bytes().to_vec()
            }
        };
        if k % 10 < 2 {
            *expected.entry(account).or_default() += 1;
            events += 1;
            messages += 1;
        }
        socket.send(&payload).expect("send");
        datagrams += 1;
        k += 1;
        while datagrams > received + IN_FLIGHT {
            let report = stat.wait_for(Duration::from_secs(60), |_| true);
            received = udp_source(&report)["received"].as_u64().expect("received");
        }
    }
    let report = stat.wait_for(Duration::from_secs(120), |r| {
        udp_source(r)["received"].as_u64() == Some(datagrams)
    });
    let udp = udp_source(&report);
    assert_eq!(udp["kernel_drops"], 0, "the kernel dropped datagrams: {udp}");
    let report = stat.wait_for(Duration::from_secs(60), |r| {
        r["totals"]["total"].as_u64() == Some(events)
    });
    for (account, n) in &expected {
        assert_eq!(account_total(&report, account), *n, "{account}");
    }
    assert_eq!(report["totals"]["rejected"], 0);
    eprintln!(
        "soak: {messages} messages ({events} events after sample rates) in {datagrams} datagrams in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
