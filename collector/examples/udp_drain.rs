//! The physical limit for the ingest benchmark (bench/udp_ingest.py): a receiver that only
//! drains the socket. Binds 127.0.0.1:PORT with an 8 MiB receive buffer, loops `recvmmsg` with
//! 64 buffers and MSG_WAITFORONE, counts datagrams, and prints the count every 100 ms.
//!
//! With `aggregate`, a second reference: the least a StatsD aggregator must do, with no
//! windows, no health and no checks beyond what parsing needs. Each StatsD line's name is
//! hashed and its integer value added to its total (a classic JSON event: its `data.account`
//! and `type`, read with serde_json, add one).
//!
//! `cargo run --release -p tally-collector --example udp_drain -- PORT [aggregate]`

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use serde::Deserialize;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io::{IoSliceMut, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const BATCH: usize = 64;
const SIZE: usize = 2048;

type Totals = HashMap<Box<[u8]>, u64, foldhash::fast::FixedState>;

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    account: &'a str,
}

#[derive(Deserialize)]
struct Classic<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    data: Data<'a>,
}

fn add(totals: &mut Totals, name: &[u8], n: u64) {
    match totals.get_mut(name) {
        Some(total) => *total += n,
        None => {
            totals.insert(name.into(), n);
        }
    }
}

fn aggregate(totals: &mut Totals, payload: &[u8]) {
    if payload.first() == Some(&b'{') {
        if let Ok(event) = serde_json::from_slice::<Classic<'_>>(payload) {
            let name = [event.data.account.as_bytes(), b".", event.kind.as_bytes()].concat();
            add(totals, &name, 1);
        }
        return;
    }
    for line in payload.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let digits = value.iter().take_while(|b| b.is_ascii_digit());
        let n = digits.fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        add(totals, &line[..colon], n);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: udp_drain PORT [aggregate]");
    let mut totals = (args.next().as_deref() == Some("aggregate")).then(Totals::default);
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    socket.set_recv_buffer_size(8 << 20).expect("buffer");
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buffers = vec![0u8; BATCH * SIZE];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut lengths = [0usize; BATCH];
    let mut count: u64 = 0;
    let mut printed = Instant::now();
    loop {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            buffers.chunks_mut(SIZE).map(|b| [IoSliceMut::new(b)]).collect();
        let received = match recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            Ok(results) => (lengths.iter_mut().zip(results))
                .map(|(length, message)| *length = message.bytes)
                .count(),
            Err(_) => 0,
        };
        if let Some(totals) = &mut totals {
            for (i, &length) in lengths[..received].iter().enumerate() {
                aggregate(totals, &buffers[i * SIZE..i * SIZE + length]);
            }
        }
        count += received as u64;
        if printed.elapsed() >= Duration::from_millis(100) {
            println!("{count}");
            let _ = std::io::stdout().flush();
            printed = Instant::now();
        }
    }
}
