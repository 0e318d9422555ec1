//! The sender for the ingest benchmark (bench/udp_ingest.py): pre-built payloads (1000 keys
//! round-robin: StatsD counters, LINES lines per datagram, or with FORMAT `json` one classic
//! events-hub JSON event per datagram), COUNT datagrams to 127.0.0.1:PORT, either as fast as
//! possible (RATE 0) or paced at RATE datagrams per second. Prints what it sent.
//!
//! `cargo run --release -p tally-collector --example udp_send -- PORT COUNT LINES RATE [FORMAT]`

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.len() == 5 && args.pop().as_deref() == Some("json");
    let args: Vec<u64> = args.iter().map(|a| a.parse().expect("numbers")).collect();
    let [port, count, lines, rate] = args[..] else {
        panic!("usage: udp_send PORT COUNT LINES RATE [FORMAT]");
    };
    let payloads: Vec<Vec<u8>> = (0..1000)
        .map(|k| {
            if json {
                let event = format!(
                    r#"{{"type":"key{}","data":{{"account":"acct{}","app":"shop"}}}}"#,
                    k % 1000,
                    k % 50
                );
                return event.into_bytes();
            }
            let lines: Vec<String> = (0..lines)
                .map(|l| format!("acct{}.key{}:1|c", (k + l) % 50, (k + l) % 1000))
                .collect();
            lines.join("\n").into_bytes()
        })
        .collect();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(("127.0.0.1", port as u16)).expect("connect");
    let start = Instant::now();
    let mut failed = 0u64;
    for i in 0..count {
        if rate > 0 && i % 64 == 0 {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if socket.send(&payloads[(i % 1000) as usize]).is_err() {
            failed += 1;
        }
    }
    println!(
        "sent {} datagrams ({} lines each) in {:.3}s, {failed} send errors",
        count,
        lines,
        start.elapsed().as_secs_f64()
    );
}
