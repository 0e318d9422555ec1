//! A recorder's publication as a saturated UDP receiver makes it: 1,000 pairs of 50 accounts
//! (each pair's type its own over all accounts, the UDP bench's keys), a few events each, then
//! as many bytes read as the kernel's receive path streams through the caches meanwhile, so
//! that the pairs' table lines and series are all cold. Times the flush alone, per pair: the
//! median of many rounds. `cargo bench -p tally-core --bench publish_evicted [-- ROUNDS]`.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tally_core::{Engine, EngineConfig, Event, Timestamp, Value};

const T0: u64 = 1_700_002_800_000;
const PAIRS: usize = 1000;
const EVENTS_PER_PAIR: usize = 5;
/// More than the last-level cache: the 5,000 one-line datagrams of a burst and the kernel's
/// buffers for them leave nothing of the pairs cached in the UDP bench either.
const STREAMED: usize = 64 << 20;

fn main() {
    let rounds = (std::env::args().skip(1))
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(200);
    let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(T0)).expect("valid");
    let mut recorder = engine.recorder();
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|k| (format!("acct{}", k % 50), format!("key{k}")))
        .collect();
    let streamed = vec![1u8; STREAMED];
    let mut spent: Vec<Duration> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Every round in the same second-long bucket, as a burst's publication is.
        let time = Timestamp::from_millis(T0 + 10_000 + (round as u64 % 500));
        for _ in 0..EVENTS_PER_PAIR {
            for (account, event_type) in &pairs {
                recorder.record(&Event {
                    account,
                    event_type,
                    app: None,
                    value: Value::Count(1),
                    time,
                });
            }
        }
        black_box(streamed.iter().step_by(64).fold(0u8, |sum, &b| sum ^ b));
        let start = Instant::now();
        recorder.flush();
        spent.push(start.elapsed());
    }
    spent.sort();
    let per_pair = |d: Duration| d.as_nanos() as f64 / PAIRS as f64;
    println!(
        "flush after a burst, {PAIRS} pairs, {rounds} rounds: median {:.0} ns a pair (quartiles {:.0} - {:.0})",
        per_pair(spent[rounds / 2]),
        per_pair(spent[rounds / 4]),
        per_pair(spent[rounds * 3 / 4]),
    );
}
