//! Memory per account at the default windows: what the engine allocates (its own count) and
//! what the process actually has resident (RSS from /proc), for 10,000 accounts x 5 types, or
//! as many accounts as the argument says (the account cap raised to fit them).
//! `cargo bench -p tally-core --bench memory [-- 100000]`.

use std::hint::black_box;
use tally_core::{Engine, EngineConfig, Event, Timestamp, Value};

const T0: u64 = 1_700_002_800_000;
const ACCOUNTS: usize = 10_000;
const TYPES: [&str; 5] = ["pageview", "order.create", "order.update", "signup", "api"];

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    // `cargo bench` passes `--bench` too: the first number is the count.
    let accounts = (std::env::args().skip(1))
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(ACCOUNTS);
    let names: Vec<String> = (0..accounts).map(|i| format!("account-{i:06}")).collect();
    let before = resident_bytes();
    let config = EngineConfig {
        max_accounts: accounts.max(EngineConfig::default().max_accounts),
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, Timestamp::from_millis(T0)).expect("valid");
    let mut recorder = engine.recorder();
    // Touch every bucket of every resolution (a day of traffic), so all of it is resident.
    let day_ms = 24 * 3_600_000;
    for name in &names {
        for (t, event_type) in TYPES.iter().enumerate() {
            for k in 0..300u64 {
                let time = T0 + (k * 1000 + t as u64) + if k % 2 == 0 { 0 } else { k * day_ms / 300 };
                recorder.record(&Event {
                    account: name,
                    event_type,
                    app: None,
                    value: Value::Count(1),
                    time: Timestamp::from_millis(time),
                });
            }
        }
    }
    let after = resident_bytes();
    let heap = engine.heap_bytes();
    println!("accounts: {accounts}, types per account: {}", TYPES.len());
    println!(
        "engine heap: {heap} bytes = {:.0} bytes per account",
        heap as f64 / accounts as f64
    );
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after - before;
        println!(
            "resident growth (engine + recorder cache): {grown} bytes = {:.0} bytes per account",
            grown as f64 / accounts as f64
        );
    }
    black_box((&engine, &recorder));
}
