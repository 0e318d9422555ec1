//! Engine costs: recording (1 and 2 threads) and snapshots of 10,000 and 100,000 accounts.
//! `cargo bench -p tally-core --bench engine`; figures go to docs/PERFORMANCE.md.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use tally_core::{Engine, EngineConfig, Event, SnapshotRequest, Timestamp, Value, Window};

const T0: u64 = 1_700_002_800_000;

fn count<'a>(account: &'a str, event_type: &'a str, time: Timestamp) -> Event<'a> {
    Event {
        account,
        event_type,
        app: None,
        value: Value::Count(1),
        time,
    }
}

fn engine() -> Arc<Engine> {
    Engine::new(EngineConfig::default(), Timestamp::from_millis(T0)).expect("valid")
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    let engine = engine();
    let mut recorder = engine.recorder();
    let now = Timestamp::from_millis(T0 + 1234);
    recorder.record(&count("acme", "pageview", now));
    group.bench_function("warm_account", |b| {
        b.iter(|| recorder.record(black_box(&count("acme", "pageview", now))))
    });

    let names: Vec<String> = (0..1000).map(|i| format!("account-{i}")).collect();
    for name in &names {
        recorder.record(&count(name, "pageview", now));
    }
    let mut next = 0;
    group.bench_function("1000_accounts_round_robin", |b| {
        b.iter(|| {
            next = (next + 1) % names.len();
            recorder.record(black_box(&count(&names[next], "pageview", now)));
        })
    });
    // The same, as StatsD's common lines come: each pair under its bucket as sent.
    let buckets: Vec<String> = names.iter().map(|name| format!("{name}.pageview")).collect();
    group.bench_function("1000_accounts_round_robin_spelled", |b| {
        b.iter(|| {
            next = (next + 1) % names.len();
            let event = count(&names[next], "pageview", now);
            recorder.record_spelled(black_box(&event), black_box(&buckets[next]));
        })
    });

    // A UI snapshotting 10,000 accounts back to back on the other core (far more often than
    // any UI does): recording must not slow down beyond cache effects.
    let (busy, busy_now) = busy_engine(10_000);
    let mut busy_recorder = busy.recorder();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (busy, stop) = (Arc::clone(&busy), Arc::clone(&stop));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(busy.snapshot(&SnapshotRequest::default(), busy_now));
            }
        })
    };
    group.bench_function("warm_account_while_snapshotting", |b| {
        b.iter(|| busy_recorder.record(black_box(&count("account-000042", "pageview", busy_now))))
    });
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader");

    // Publishing pairs whose series are not in any cache (5,000 of 20,000 accounts at a time,
    // as a burst of datagrams over many keys leaves them): the flush alone, per pair.
    let cold = Engine::new(EngineConfig::default(), Timestamp::from_millis(T0)).expect("valid");
    let mut cold_recorder = cold.recorder();
    let names: Vec<String> = (0..20_000).map(|i| format!("account-{i:05}")).collect();
    let mut batches = names.chunks(5_000).cycle();
    group.bench_function("publish_5000_cold_pairs", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                for name in batches.next().into_iter().flatten() {
                    cold_recorder.record(&count(name, "pageview", now));
                }
                let start = Instant::now();
                cold_recorder.flush();
                spent += start.elapsed();
            }
            spent / 5_000
        })
    });

    for (label, same) in [
        ("2_threads_different_accounts", false),
        ("2_threads_same_account", true),
    ] {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| two_threads(&engine, iters, same, now));
        });
    }
    group.finish();
}

/// Wall time per event while two threads record `iters` events each.
fn two_threads(engine: &Arc<Engine>, iters: u64, same_account: bool, now: Timestamp) -> Duration {
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (engine, barrier) = (Arc::clone(engine), Arc::clone(&barrier));
            thread::spawn(move || {
                let account = if same_account {
                    "shared".to_owned()
                } else {
                    format!("thread-{t}")
                };
                let mut recorder = engine.recorder();
                recorder.record(&count(&account, "pageview", now));
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    recorder.record(black_box(&count(&account, "pageview", now)));
                }
                start.elapsed()
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .max()
        .unwrap_or_default()
}

/// `accounts` accounts, each with events in the last 5 minutes and the last day.
fn busy_engine(accounts: usize) -> (Arc<Engine>, Timestamp) {
    let engine = engine();
    let mut recorder = engine.recorder();
    let names: Vec<String> = (0..accounts).map(|i| format!("account-{i:06}")).collect();
    let now_ms = T0 + 3 * 3_600_000;
    for (i, name) in names.iter().enumerate() {
        for step in 0..40u64 {
            // Spread over the last 5 minutes, plus a few events hours ago.
            let age = if step < 36 {
                step * 8_000 + i as u64 % 1000
            } else {
                step * 2_000_000
            };
            recorder.record(&count(
                name,
                if step % 2 == 0 { "pageview" } else { "order" },
                Timestamp::from_millis(now_ms - age),
            ));
        }
    }
    (engine, Timestamp::from_millis(now_ms))
}

fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_10000_accounts");
    group.sample_size(30);
    let (engine, now) = busy_engine(10_000);
    for window in engine.window_presets() {
        let request = SnapshotRequest {
            window,
            top: 20,
            ..SnapshotRequest::default()
        };
        let label = format!("top20_level{}_x{}", window.level, window.buckets);
        group.bench_function(label, |b| b.iter(|| black_box(engine.snapshot(&request, now))));
    }
    let five_minutes = five_minutes_top_20();
    // `now` above is on a whole minute, where a window's oldest edge is longest (59 one-second
    // buckets before its first whole minute); half a minute later it is 29.
    let mid_minute = Timestamp::from_millis(now.as_millis() + 30_500);
    group.bench_function("top20_level0_x300_mid_minute", |b| {
        b.iter(|| black_box(engine.snapshot(&five_minutes, mid_minute)))
    });
    let with_all_types = SnapshotRequest {
        all_types: true,
        ..five_minutes.clone()
    };
    group.bench_function("top20_5min_with_all_types", |b| {
        b.iter(|| black_box(engine.snapshot(&with_all_types, now)))
    });
    // The same engine an hour after the last event: nothing in the 5-minute window.
    let idle = Timestamp::from_millis(now.as_millis() + 3_600_000);
    group.bench_function("idle_5min", |b| {
        b.iter(|| black_box(engine.snapshot(&five_minutes, idle)))
    });
    group.finish();
}

/// What the terminal asks for each frame.
fn five_minutes_top_20() -> SnapshotRequest {
    SnapshotRequest {
        window: Window {
            level: 0,
            buckets: 300,
        },
        top: 20,
        ..SnapshotRequest::default()
    }
}

/// The terminal frame's snapshot (5 minutes, top 20) of 100,000 active accounts.
fn snapshot_100000(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_100000_accounts");
    group.sample_size(20);
    let (engine, now) = busy_engine(100_000);
    let five_minutes = five_minutes_top_20();
    let mid_minute = Timestamp::from_millis(now.as_millis() + 30_500);
    for (label, at) in [
        ("top20_5min_whole_minute", now),
        ("top20_5min_mid_minute", mid_minute),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| black_box(engine.snapshot(&five_minutes, at)))
        });
    }
    group.finish();
}

criterion_group!(benches, record, snapshot, snapshot_100000);
criterion_main!(benches);
