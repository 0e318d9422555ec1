//! The physical limit for the ingest benchmark (bench/udp_ingest.py): a receiver that only
//! drains the socket. Binds 127.0.0.1:PORT with an 8 MiB receive buffer, loops `recvmmsg` with
//! 64 buffers and MSG_WAITFORONE, counts datagrams, and prints the count every 100 ms.
//!
//! `cargo run --release -p tally-collector --example udp_drain -- PORT`

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{IoSliceMut, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const BATCH: usize = 64;
const SIZE: usize = 2048;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: udp_drain PORT");
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
    let mut count: u64 = 0;
    let mut printed = Instant::now();
    loop {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            buffers.chunks_mut(SIZE).map(|b| [IoSliceMut::new(b)]).collect();
        if let Ok(results) = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            count += results.count() as u64;
        }
        if printed.elapsed() >= Duration::from_millis(100) {
            println!("{count}");
            let _ = std::io::stdout().flush();
            printed = Instant::now();
        }
    }
}
