//! The UDP listener over real loopback sockets.

mod common;

use common::{total, wait_for};

use std::net::UdpSocket;
use std::sync::Arc;
use tally_collector::decode::DecodeOptions;
use tally_collector::health::now;
use tally_collector::ingest::Ingest;
use tally_collector::input::Source;
use tally_collector::input::udp::{UdpListener, UdpOptions};
use tally_core::{Engine, EngineConfig, Rejection};

/// What a listener feeds: a fresh engine, default rules, and the stop flag.
fn ingest() -> (Arc<Engine>, Ingest) {
    let engine = Engine::new(EngineConfig::default(), now()).expect("valid");
    (Arc::clone(&engine), Ingest::new(engine, DecodeOptions::default()))
}

/// Sets the stop flag and waits for the listener.
fn stop(ingest: &Ingest, listener: UdpListener) {
    ingest.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    Box::new(listener).stop();
}

fn start(threads: usize) -> (Arc<Engine>, UdpListener, Ingest) {
    let (engine, ingest) = ingest();
    let options = UdpOptions {
        threads,
        ..UdpOptions::default()
    };
    let listener = UdpListener::start("127.0.0.1:0".parse().expect("address"), &ingest, &options)
        .expect("binds an ephemeral port");
    (engine, listener, ingest)
}

#[test]
fn counts_every_format_and_rejects_bad_datagrams() {
    let (engine, listener, ingest) = start(2);
    let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
    let target = listener.local_addr();
    let good: [&[u8]; 4] = [
        br#"{"type":"pageview","data":{"account":"acme","app":"shop"}}"#,
        b"acme.checkout:5|c|@0.5\nglobex.api:12|ms",
        &[
            0x81, 0xa7, b'a', b'c', b'c', b'o', b'u', b'n', b't', 0xa6, b'g', b'l', b'o', b'b', b'e', b'x',
        ],
        b"acme.x:1|c:2|c",
    ];
    let bad: [&[u8]; 3] = [br#"{"type":"pagev"#, b"acme.bad:1|c|@9", b"\xff\xfe"];
    for _ in 0..100 {
        for payload in good.iter().chain(&bad) {
            sender.send_to(payload, target).expect("send");
        }
    }
    // acme: 1 + 10 + 3 per round; globex: 1 (timing) + 1 (msgpack) per round.
    let snapshot = wait_for(&engine, |s| s.totals.total >= 1600 && s.totals.rejected >= 300);
    assert_eq!(total(&snapshot, "acme"), 1400);
    assert_eq!(total(&snapshot, "globex"), 200);
    let reasons: Vec<(Rejection, u64)> = snapshot.rejections.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        reasons,
        [
            (Rejection::Json, 100),
            (Rejection::Utf8, 100),
            (Rejection::Statsd, 100)
        ]
    );
    let status = listener.status();
    assert_eq!(status.received, 700);
    assert_eq!(status.bad, 300);
    assert_eq!(status.kernel_drops, Some(0));
    assert!(status.last_message.is_some());
    stop(&ingest, listener);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    let (_, ingest) = ingest();
    let error = UdpListener::start(address, &ingest, &UdpOptions::default()).expect_err("in use");
    let message = error.to_string();
    assert!(message.contains("already in use"), "{message}");
    assert!(message.contains("--udp"), "{message}");
    // Not even another tally may share a port (SO_REUSEPORT would let it, silently).
    let free = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address");
    let first = UdpListener::start(free, &ingest, &UdpOptions::default()).expect("free port");
    let error = UdpListener::start(free, &ingest, &UdpOptions::default()).expect_err("taken by tally");
    assert!(error.to_string().contains("already in use"), "{error}");
    stop(&ingest, first);
    let error = UdpListener::start(
        "10.255.255.1:8125".parse().expect("address"),
        &ingest,
        &UdpOptions::default(),
    )
    .expect_err("not ours");
    assert!(
        error.to_string().contains("not an address of this machine"),
        "{error}"
    );
}

#[test]
fn ipv6_loopback_works() {
    let (engine, ingest) = ingest();
    let Ok(listener) = UdpListener::start(
        "[::1]:0".parse().expect("address"),
        &ingest,
        &UdpOptions::default(),
    ) else {
        eprintln!("no IPv6 loopback on this machine; skipped");
        return;
    };
    let sender = UdpSocket::bind("[::1]:0").expect("sender");
    sender
        .send_to(b"acme.v6:3|c", listener.local_addr())
        .expect("send");
    let snapshot = wait_for(&engine, |s| s.totals.total >= 3);
    assert_eq!(total(&snapshot, "acme"), 3);
    stop(&ingest, listener);
}

/// Issue 11, items 1-3, over a real socket: counts past 2^53 are refused with their own reason
/// (so the exact totals never wrap), a corrupt zlib stream is a compression error, and an array
/// of bad items is one rejection, not one per item.
#[test]
fn huge_counts_corrupt_streams_and_bad_arrays_are_refused_once_each() {
    let (engine, listener, ingest) = start(1);
    let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
    let target = listener.local_addr();
    let huge: [&[u8]; 5] = [
        b"ovf.x:1e19|c",
        b"ovf.x:1e19|c",
        b"ovf.x:1|c|@1e-300",
        b"ovf.t:1|ms|@1e-300",
        br#"{"type":"x","count":18446744073709549568,"data":{"account":"ovf"}}"#,
    ];
    for payload in huge {
        sender.send_to(payload, target).expect("send");
    }
    sender.send_to(b"ovf.x:9007199254740992|c", target).expect("send");
    sender.send_to(b"ovf.x:1|c", target).expect("send");
    // A zlib header (0x78 0x9c) on binary that does not inflate.
    sender
        .send_to(&[0x78, 0x9c, 0xff, 0xfe, 0xfd, 0x80, 0x81], target)
        .expect("send");
    let items = vec!["{}"; 21_000].join(",");
    sender
        .send_to(format!("[{items}]").as_bytes(), target)
        .expect("send");
    let mixed = br#"[{"type":"a","account":"ok"},{"type":"b"},{"type":"c"}]"#;
    sender.send_to(mixed, target).expect("send");

    let snapshot = wait_for(&engine, |s| {
        s.totals.rejected >= 8 && s.totals.total >= (1 << 53) + 2
    });
    assert_eq!(
        snapshot.totals.total,
        (1 << 53) + 2,
        "2^53 + 1 + the good array item"
    );
    assert_eq!(total(&snapshot, "ovf"), (1 << 53) + 1);
    assert_eq!(total(&snapshot, "ok"), 1);
    let reasons: Vec<(Rejection, u64)> = snapshot.rejections.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        reasons,
        [
            (Rejection::NoAccount, 2),
            (Rejection::Compression, 1),
            (Rejection::CountTooLarge, 5)
        ]
    );
    let evidence = engine.snapshot(&Default::default(), now()).recent_rejects;
    assert!(
        evidence.iter().any(|r| r.detail.contains("21000 of 21000 items")),
        "{evidence:?}"
    );
    assert!(
        evidence.iter().any(|r| r.detail.contains("2 of 3 items")),
        "{evidence:?}"
    );
    stop(&ingest, listener);
}
