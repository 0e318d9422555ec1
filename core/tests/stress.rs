//! Several writer threads and a reader taking snapshots all the while: the totals must be exact
//! and every window must hold exactly the model's counts once the writers are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use tally_core::{Engine, EngineConfig, Event, Resolution, SnapshotRequest, Timestamp, Value, Window};

const T0: u64 = 1_700_002_800_000;
const WRITERS: usize = 4;
const EVENTS_PER_WRITER: u64 = 150_000;
const ACCOUNTS: usize = 12;
/// Events per millisecond of fake time per writer: the writers sweep 3 s of fake time together,
/// wrapping the finest ring (20 x 10 ms) about 15 times while racing on the same slots. A writer
/// that falls more than a ring behind the others has some writes refused as too old; those
/// buckets are outside the final windows, which must still be exact.
const EVENTS_PER_MS: u64 = 50;

fn resolutions() -> Vec<Resolution> {
    vec![
        Resolution::new(10, 20),
        Resolution::new(100, 10),
        Resolution::new(1000, 5),
    ]
}

/// The deterministic event `j` of writer `w`: (account, count, time offset in ms).
fn event(w: usize, j: u64) -> (usize, u64, u64) {
    let account = (w * 5 + j as usize * 7) % ACCOUNTS;
    (account, 1 + j % 3, j / EVENTS_PER_MS)
}

/// The type of event `j` of `account`. `late` is one account's alone for the first half, so
/// that its counts over all accounts are handed over from that account's series while every
/// writer is recording it.
fn kind(account: usize, j: u64) -> &'static str {
    if j.is_multiple_of(2) {
        "even"
    } else if account == 0 || j > EVENTS_PER_WRITER / 2 {
        "late"
    } else {
        "odd"
    }
}

const KINDS: [&str; 3] = ["even", "late", "odd"];

#[test]
fn concurrent_writers_and_a_reader_give_exact_counts() {
    let names: Arc<Vec<String>> = Arc::new((0..ACCOUNTS).map(|i| format!("account-{i}")).collect());
    let config = EngineConfig {
        resolutions: resolutions(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, Timestamp::from_millis(T0)).expect("valid");
    let done = Arc::new(AtomicBool::new(false));
    let end_ms = (EVENTS_PER_WRITER - 1) / EVENTS_PER_MS;

    let reader = {
        let (engine, done) = (Arc::clone(&engine), Arc::clone(&done));
        thread::spawn(move || {
            let mut snapshots = 0;
            let mut last_total = 0;
            while !done.load(Ordering::Acquire) {
                let snap = engine.snapshot(&SnapshotRequest::default(), Timestamp::from_millis(T0 + end_ms));
                assert!(snap.totals.total >= last_total, "totals never go back");
                last_total = snap.totals.total;
                for account in &snap.accounts {
                    assert!(account.window_total <= account.total);
                }
                for column in 0..snap.stack.totals.len() {
                    let stacked: u64 = snap.stack.layers.iter().map(|l| l.values[column]).sum();
                    assert_eq!(stacked, snap.stack.totals[column], "layers add up to the bar");
                }
                snapshots += 1;
            }
            snapshots
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (engine, names) = (Arc::clone(&engine), Arc::clone(&names));
            thread::spawn(move || {
                let mut recorder = engine.recorder();
                for j in 0..EVENTS_PER_WRITER {
                    let (account, n, offset) = event(w, j);
                    recorder.record(&Event {
                        account: &names[account],
                        event_type: kind(account, j),
                        app: None,
                        value: Value::Count(n),
                        time: Timestamp::from_millis(T0 + offset),
                    });
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    done.store(true, Ordering::Release);
    let snapshots = reader.join().expect("reader");
    assert!(snapshots > 0);

    let mut totals = [0u64; ACCOUNTS];
    let mut kind_totals = [0u64; KINDS.len()];
    for w in 0..WRITERS {
        for j in 0..EVENTS_PER_WRITER {
            let (account, n, _) = event(w, j);
            totals[account] += n;
            kind_totals[KINDS.iter().position(|&k| k == kind(account, j)).expect("listed")] += n;
        }
    }
    let now = Timestamp::from_millis(T0 + end_ms);
    for (level, resolution) in resolutions().into_iter().enumerate() {
        let request = SnapshotRequest {
            window: Window {
                level,
                buckets: resolution.buckets,
            },
            detail: ACCOUNTS,
            all_types: true,
            ..SnapshotRequest::default()
        };
        let snap = engine.snapshot(&request, now);
        let last = end_ms / resolution.bucket_ms;
        let mut kind_windows = [0u64; KINDS.len()];
        for w in 0..WRITERS {
            for j in 0..EVENTS_PER_WRITER {
                let (account, n, offset) = event(w, j);
                if offset / resolution.bucket_ms + resolution.buckets as u64 > last {
                    kind_windows[KINDS.iter().position(|&k| k == kind(account, j)).expect("listed")] += n;
                }
            }
        }
        for (i, name) in KINDS.iter().enumerate() {
            let stats = snap.types.iter().find(|t| &*t.name == *name).expect("type");
            assert_eq!(
                (stats.total, stats.window_total),
                (kind_totals[i], kind_windows[i]),
                "{name} over all accounts at {resolution}"
            );
        }
        for (i, name) in names.iter().enumerate() {
            let stats = snap
                .accounts
                .iter()
                .find(|a| &a.name[..] == name)
                .expect("account");
            assert_eq!(stats.total, totals[i], "{name} total");
            let mut expected = vec![0u64; resolution.buckets as usize];
            for w in 0..WRITERS {
                for j in 0..EVENTS_PER_WRITER {
                    let (account, n, offset) = event(w, j);
                    let epoch = offset / resolution.bucket_ms;
                    if account == i && epoch + resolution.buckets as u64 > last {
                        expected[(epoch + resolution.buckets as u64 - 1 - last) as usize] += n;
                    }
                }
            }
            let detail = stats.detail.as_ref().expect("detail");
            assert_eq!(detail.sparkline, expected, "{name} buckets at {resolution}");
        }
    }
}
