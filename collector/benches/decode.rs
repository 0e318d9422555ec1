//! Decoder costs per event, for each format: `cargo bench -p tally-collector --bench decode`.
//! `decode/*` counts events in a trivial sink (the decoder alone); `decode_record/*` records
//! them into an engine (the whole per-datagram path minus the socket); `rotating/*` does so
//! for 1,000 keys round-robin (the UDP bench's payloads: the hard case for the recorder's
//! cache and for publishing), publishing every 5,000 payloads (a burst of the UDP bench).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use std::hint::black_box;
use std::io::Write;
use tally_collector::decode::{DecodeOptions, Sink, decode};
use tally_collector::ingest::Recording;
use tally_core::{Engine, EngineConfig, Event, Notice, Rejection, Timestamp};

const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

#[derive(Default)]
struct Count(u64);

impl Sink for Count {
    fn event(&mut self, event: &Event<'_>) {
        black_box(event);
        self.0 += 1;
    }

    fn notice(&mut self, _: Notice) {
        panic!("benchmark payloads are metrics");
    }

    fn reject(&mut self, _: Rejection, _: &str, _: &[u8]) {
        panic!("benchmark payloads are valid");
    }
}

fn payloads() -> Vec<(&'static str, Vec<u8>, u64)> {
    let statsd_20: String = (0..20)
        .map(|i| format!("acct{}.api.latency:{}|ms|@0.5\n", i % 4, 10 + i))
        .collect();
    let zlib_10 = {
        let items: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"name":"web{i}.cpu","value":0.{i},"time":1417000000.5}}"#))
            .collect();
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(format!("[{}]", items.join(",")).as_bytes())
            .expect("compresses");
        encoder.finish().expect("compresses")
    };
    let msgpack = {
        let event = serde_json::json!({"type": "pageview", "time": "2014-03-09T19:17:27.5Z", "data": {"account": "acme", "app": "shop", "unq": "1"}});
        rmp_serde::to_vec_named(&event).expect("encodes")
    };
    vec![
        ("statsd_1_line", b"acme.checkout:1|c".to_vec(), 1),
        ("statsd_20_common_lines", common_statsd(0, 20).into_bytes(), 20),
        ("hub_json_common", common_json(0).into_bytes(), 1),
        ("statsd_20_lines", statsd_20.into_bytes(), 20),
        (
            "hub_json",
            br#"{"type":"pageview","time":"2014-03-09T19:17:27.5Z","data":{"account":"acme","app":"shop","tz":"-3","unq":"1","browser":{"name":"Chrome","os":"Mac","version":"23"}}}"#.to_vec(),
            1,
        ),
        ("hub_msgpack", msgpack, 1),
        ("zlib_list_10", zlib_10, 10),
    ]
}

/// `lines` StatsD counters from key `k` on, as the UDP bench sends them.
fn common_statsd(k: usize, lines: usize) -> String {
    let lines: Vec<String> = (0..lines)
        .map(|l| format!("acct{}.key{}:1|c", (k + l) % 50, (k + l) % 1000))
        .collect();
    lines.join("\n")
}

/// A classic event of key `k`, as the UDP bench sends it.
fn common_json(k: usize) -> String {
    format!(
        r#"{{"type":"key{}","data":{{"account":"acct{}","app":"shop"}}}}"#,
        k % 1000,
        k % 50
    )
}

fn rotating(c: &mut Criterion) {
    let options = DecodeOptions::default();
    let cases: [(&str, Vec<Vec<u8>>, u64); 3] = [
        (
            "statsd_1_line",
            (0..1000).map(|k| common_statsd(k, 1).into_bytes()).collect(),
            1,
        ),
        (
            "statsd_20_lines",
            (0..1000).map(|k| common_statsd(k, 20).into_bytes()).collect(),
            20,
        ),
        (
            "hub_json",
            (0..1000).map(|k| common_json(k).into_bytes()).collect(),
            1,
        ),
    ];
    let mut group = c.benchmark_group("rotating");
    for (name, payloads, events) in cases {
        let engine = Engine::new(EngineConfig::default(), NOW).expect("valid");
        let mut recorder = engine.recorder();
        let mut next = 0;
        group.throughput(Throughput::Elements(events));
        group.bench_function(name, |b| {
            b.iter(|| {
                let payload = &payloads[next % payloads.len()];
                decode(
                    black_box(payload),
                    NOW,
                    &options,
                    &mut Recording::new(&mut recorder, NOW),
                );
                next += 1;
                if next % 5000 == 0 {
                    recorder.flush();
                }
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let options = DecodeOptions::default();
    let mut group = c.benchmark_group("decode");
    for (name, payload, events) in payloads() {
        let mut sink = Count::default();
        decode(&payload, NOW, &options, &mut sink);
        assert_eq!(sink.0, events, "{name}");
        group.throughput(Throughput::Elements(events));
        group.bench_function(name, |b| {
            b.iter(|| decode(black_box(&payload), NOW, &options, &mut sink))
        });
    }
    group.finish();

    let engine = Engine::new(EngineConfig::default(), NOW).expect("valid");
    let mut recorder = engine.recorder();
    let mut group = c.benchmark_group("decode_record");
    for (name, payload, events) in payloads() {
        group.throughput(Throughput::Elements(events));
        group.bench_function(name, |b| {
            b.iter(|| {
                decode(
                    black_box(&payload),
                    NOW,
                    &options,
                    &mut Recording::new(&mut recorder, NOW),
                );
                recorder.flush();
            })
        });
    }
    group.finish();
}

criterion_group!(decoders, benches, rotating);
criterion_main!(decoders);
