//! What keeping the state costs (docs/PERFORMANCE.md): a checkpoint (history and windows) of
//! 10,000 active accounts x 5 types, in milliseconds and bytes written, one when nothing
//! moved, restoring it all at start, and the recording rate of an ingest thread while
//! checkpoints run flat out beside it, against the same thread alone, in the same run.
//!
//! `cargo bench -p tally-collector --bench checkpoint`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tally_collector::history::{Checkpointer, StateSettings};
use tally_core::{Clock, Engine, EngineConfig, Event, Timestamp, Value};

const ACCOUNTS: usize = 10_000;
const TYPES: [&str; 5] = ["pageview", "signup", "checkout", "search", "login"];
const REPS: usize = 9;

fn names() -> Vec<String> {
    (0..ACCOUNTS).map(|i| format!("account-{i}")).collect()
}

/// One event for every account x type at `at`.
fn touch_every_series(engine: &Arc<Engine>, names: &[String], at: Timestamp) {
    let mut recorder = engine.recorder();
    for name in names {
        for kind in TYPES {
            recorder.record(&Event {
                account: name,
                event_type: kind,
                app: None,
                value: Value::Count(1),
                time: at,
            });
        }
    }
}

fn bytes_on_disk(dir: &std::path::Path) -> u64 {
    (std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// The state in `dir` and the engine it restores, as of `now`.
fn open(dir: &std::path::Path, now: Timestamp) -> Checkpointer {
    let settings = StateSettings {
        dir: dir.to_owned(),
        interval: Duration::from_secs(5),
        keep_hours: Duration::from_secs(90 * 86_400),
    };
    let (checkpointer, _) =
        Checkpointer::open(&settings, &EngineConfig::default(), Clock::utc(), now).expect("state");
    checkpointer
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("tally-checkpoint-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = Timestamp::from_millis(1_780_000_000_000);
    let mut checkpointer = open(&dir, start);
    let engine = Arc::clone(checkpointer.engine());
    let names = names();

    // The first checkpoint makes every row (an hour, a day and a month per series, and as
    // many for the types over all accounts, and every series of the windows).
    touch_every_series(&engine, &names, start);
    let written = checkpointer
        .checkpoint(start.saturating_add_millis(1))
        .expect("writes");
    let tables = checkpointer.store().table_bytes().expect("dbstat");
    let bytes_of = |names: &[&str]| -> u64 {
        (tables.iter())
            .filter(|(table, _)| names.contains(&table.as_str()))
            .map(|(_, bytes)| bytes)
            .sum()
    };
    let rows = 3.0 * written.added.len() as f64;
    let per_row = bytes_of(&["hours", "days", "months"]) as f64 / rows;
    let windows = bytes_of(&["engine", "series", "ring_chunks", "bodies"]) as f64;
    println!("history: {rows} rows, {per_row:.0} bytes per row in the database");
    println!(
        "windows: {} series, {} ring chunks, {:.1} MiB in the database ({:.0} bytes per series)",
        written.series,
        written.chunks,
        windows / 1048576.0,
        windows / written.series as f64
    );
    // A year of an account with 5 types, every hour busy: hours for --keep-hours (90 days),
    // a day per day, a month per month.
    let account_year = (90.0 * 24.0 + 365.0 + 12.0) * TYPES.len() as f64 * per_row;
    println!(
        "an account-year of history, 5 types busy every hour: {:.0} KiB",
        account_year / 1024.0
    );

    let (mut moved_ms, mut recheck_ms, mut idle_ms, mut bytes) = (vec![], vec![], vec![], vec![]);
    let mut chunks = vec![];
    for rep in 1..=REPS {
        let at = start.saturating_add_millis(rep as u64 * 10_000);
        touch_every_series(&engine, &names, at);
        let before = bytes_on_disk(&dir);
        let timer = Instant::now();
        let written = checkpointer
            .checkpoint(at.saturating_add_millis(1))
            .expect("writes");
        moved_ms.push(timer.elapsed().as_secs_f64() * 1e3);
        assert_eq!(written.events(), (ACCOUNTS * TYPES.len()) as u64);
        chunks.push(written.chunks as f64);
        bytes.push(bytes_on_disk(&dir).saturating_sub(before) as f64);
        // The next one looks again at what moved (a recorder may have been between a total
        // and its buckets); the one after finds nothing to do.
        let timer = Instant::now();
        checkpointer
            .checkpoint(at.saturating_add_millis(2))
            .expect("writes");
        recheck_ms.push(timer.elapsed().as_secs_f64() * 1e3);
        let timer = Instant::now();
        checkpointer
            .checkpoint(at.saturating_add_millis(3))
            .expect("writes");
        idle_ms.push(timer.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "checkpoint, {ACCOUNTS} accounts x {} types all moved: {:.1} ms (median of {REPS}), {:.0} ring chunks, {:.0} KiB more on disk",
        TYPES.len(),
        median(moved_ms),
        median(chunks),
        median(bytes) / 1024.0
    );
    println!(
        "the checkpoint after (a second look, nothing written): {:.1} ms; then nothing moved: {:.2} ms",
        median(recheck_ms),
        median(idle_ms)
    );

    // A restart: the state opened and every series restored before ingest starts.
    let now = start.saturating_add_millis(REPS as u64 * 10_000 + 5_000);
    drop(checkpointer);
    let timer = Instant::now();
    let restored = open(&dir, now);
    println!(
        "restoring {ACCOUNTS} accounts x {} types at start: {:.0} ms",
        TYPES.len(),
        timer.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        restored.engine().snapshot(&Default::default(), now).totals.total,
        engine.snapshot(&Default::default(), now).totals.total
    );
    drop(restored);

    // Ingest beside checkpoints: one thread records over 1,000 rotating accounts while
    // another checkpoints in a loop; the same thread alone, interleaved.
    let rate = |beside: bool| {
        let stop = Arc::new(AtomicBool::new(false));
        let beside_dir = dir.join("beside");
        let _ = std::fs::remove_dir_all(&beside_dir);
        let mut checkpointer = open(&beside_dir, start);
        let engine = Arc::clone(checkpointer.engine());
        let writer = beside.then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    checkpointer
                        .checkpoint(start.saturating_add_millis(200_000))
                        .expect("writes");
                }
            })
        });
        let mut recorder = engine.recorder();
        let (timer, mut events) = (Instant::now(), 0u64);
        while timer.elapsed() < Duration::from_secs(2) {
            for i in 0..10_000 {
                recorder.record(&Event {
                    account: &names[i % 1000],
                    event_type: TYPES[i % TYPES.len()],
                    app: None,
                    value: Value::Count(1),
                    time: start.saturating_add_millis(100_000),
                });
            }
            events += 10_000;
        }
        let rate = events as f64 / timer.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        if let Some(writer) = writer {
            writer.join().expect("checkpoints");
        }
        rate
    };
    let (mut alone, mut beside) = (vec![], vec![]);
    for _ in 0..3 {
        alone.push(rate(false));
        beside.push(rate(true));
    }
    let (alone, beside) = (median(alone), median(beside));
    println!(
        "recording alone: {:.1} M events/s; beside back-to-back checkpoints: {:.1} M events/s ({:.2}x)",
        alone / 1e6,
        beside / 1e6,
        beside / alone
    );
    let _ = std::fs::remove_dir_all(&dir);
}
