//! What reading a few cache lines of each of 100,000 accounts costs on this machine before any
//! work is done with them: the floor under the 100,000-account snapshot. One GiB of memory,
//! accounts 10 KiB apart (what each takes at 5 types), 1, 3 or 7 lines 256 bytes apart read
//! from each, the accounts in address order and then shuffled.
//! `cargo bench -p tally-core --bench read_floor`.

use std::hint::black_box;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 100_000;
const ACCOUNT_WORDS: usize = 10 * 1024 / 4;
const LINE_STEP_WORDS: usize = 64;

fn read(memory: &[u32], order: &[usize], lines: usize) -> Duration {
    let start = Instant::now();
    let mut sum = 0u64;
    for &account in order {
        let base = account * ACCOUNT_WORDS;
        for line in 0..lines {
            sum = sum.wrapping_add(u64::from(memory[base + line * LINE_STEP_WORDS]));
        }
    }
    black_box(sum);
    start.elapsed()
}

fn main() {
    let memory: Vec<u32> = (0..ACCOUNTS * ACCOUNT_WORDS).map(|i| i as u32).collect();
    let in_order: Vec<usize> = (0..ACCOUNTS).collect();
    let mut shuffled = in_order.clone();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    for (label, order) in [("in address order", &in_order), ("shuffled", &shuffled)] {
        for lines in [1, 3, 7] {
            // The best of five: what the memory system can do, not what a noisy moment gave.
            let best = (0..5)
                .map(|_| read(&memory, order, lines))
                .min()
                .unwrap_or_default();
            println!(
                "{label}, {lines} line(s) an account: {:.1} ms, {:.1} ns a line",
                best.as_secs_f64() * 1e3,
                best.as_nanos() as f64 / (ACCOUNTS * lines) as f64
            );
        }
    }
}
