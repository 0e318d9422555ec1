//! The UDP listener: one receive thread per `SO_REUSEPORT` socket, batched receives
//! (`recvmmsg`), each batch into the engine through an [`Intake`].

use super::Source;
use crate::bind::BindError;
use crate::health::Health;
use crate::ingest::{Ingest, Intake};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;
use tally_core::{SourceKind, SourceState, SourceStatus};

/// The largest UDP payload; every datagram up to it is read whole.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// Datagrams one receive call may return.
const BATCH: usize = 64;
/// What each receive thread holds for its batch of datagrams.
pub const UDP_BUFFERS: u64 = (BATCH * MAX_DATAGRAM) as u64;
/// How often an idle receive thread looks at the stop flag, and publishes what its recorder
/// holds.
const STOP_CHECK: Duration = Duration::from_millis(tally_core::PUBLISH_EVERY_MS);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpOptions {
    /// Receive threads (and sockets) per address; 0 means one per core.
    pub threads: usize,
    /// Receive buffer to ask the kernel for, per socket.
    pub recv_buffer: usize,
}

impl UdpOptions {
    /// Receive threads per address, `0` resolved to the number of cores.
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            threads: 0,
            recv_buffer: 8 << 20,
        }
    }
}

/// A running UDP listener.
#[derive(Debug)]
pub struct UdpListener {
    local: SocketAddr,
    health: Arc<Health>,
    inodes: Vec<u64>,
    threads: Vec<JoinHandle<()>>,
}

fn bind_one(address: SocketAddr, recv_buffer: usize) -> io::Result<(Socket, usize)> {
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Linux reports twice what it applied (the rest is bookkeeping).
    let _ = socket.set_recv_buffer_size(recv_buffer);
    let granted = socket.recv_buffer_size().map_or(0, |doubled| doubled / 2);
    socket.bind(&address.into())?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    Ok((socket, granted))
}

impl UdpListener {
    /// Binds `address` (`threads` sockets sharing the port) and starts receiving.
    pub fn start(address: SocketAddr, ingest: &Ingest, options: &UdpOptions) -> Result<Self, BindError> {
        let threads = options.thread_count();
        let fail = |error| BindError::udp(address, error);
        if address.port() != 0 {
            // Our sockets share their port with each other (SO_REUSEPORT), and would silently
            // share it with another tally too, each seeing part of the traffic. A plain socket
            // bound first makes that case the error it should be.
            drop(UdpSocket::bind(address).map_err(fail)?);
        }
        let (first, granted) = bind_one(address, options.recv_buffer).map_err(fail)?;
        let local = first
            .local_addr()
            .map_err(fail)?
            .as_socket()
            .ok_or_else(|| fail(io::Error::other("not an internet address")))?;
        let mut sockets = vec![first];
        for _ in 1..threads {
            // Bind the port the first socket got (it may have been 0, "any free port").
            let (socket, _) =
                bind_one(local, options.recv_buffer).map_err(|error| BindError::udp(local, error))?;
            sockets.push(socket);
        }
        let health = Arc::new(Health::new(local.to_string(), SourceState::Listening));
        if granted < options.recv_buffer {
            let note = format!(
                "receive buffer {} KiB of {} KiB asked: raise it with `sysctl -w net.core.rmem_max={}`",
                granted / 1024,
                options.recv_buffer / 1024,
                options.recv_buffer
            );
            tracing::warn!("UDP {local}: {note}");
            health.set_note(note);
        }
        let inodes = sockets
            .iter()
            .filter_map(|s| socket_inode(s.as_raw_fd()))
            .collect();
        let threads = sockets
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let receiver = Receiver {
                    socket: socket.into(),
                    intake: ingest.intake(&health).deferring(),
                    stop: Arc::clone(&ingest.stop),
                };
                std::thread::Builder::new()
                    .name(format!("udp-{}-{i}", local.port()))
                    .spawn(move || receiver.run())
                    .map_err(|error| BindError::udp(local, error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UdpListener {
            local,
            health,
            inodes,
            threads,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams the kernel dropped on this listener's sockets since they were opened.
    pub fn kernel_drops(&self) -> Option<u64> {
        kernel_drops(&self.inodes)
    }
}

impl Source for UdpListener {
    fn kind(&self) -> SourceKind {
        SourceKind::Udp
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn status(&self) -> SourceStatus {
        SourceStatus {
            kernel_drops: self.kernel_drops(),
            ..self.health.source_status(self.kind())
        }
    }

    fn stop(self: Box<Self>) {
        for thread in self.threads {
            let _ = thread.join();
        }
        self.health.set_state(SourceState::Stopped);
    }
}

struct Receiver {
    socket: UdpSocket,
    intake: Intake,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn run(mut self) {
        // Zeroed on demand by the kernel: only the bytes datagrams fill become resident.
        let mut buffers = vec![0u8; BATCH * MAX_DATAGRAM];
        // No source addresses: nothing uses them, and the kernel need not copy them out.
        let mut headers = MultiHeaders::<()>::preallocate(BATCH, None);
        let mut lengths = [0usize; BATCH];
        while !self.stop.load(Relaxed) {
            let received = {
                // On the stack: rebuilt per call (they borrow the buffers that the datagrams are
                // then read from), but not allocated per call.
                let mut chunks = buffers.chunks_mut(MAX_DATAGRAM);
                let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                    std::array::from_fn(|_| [IoSliceMut::new(chunks.next().expect("BATCH buffers"))]);
                let fd = self.socket.as_raw_fd();
                match recvmmsg(
                    fd,
                    &mut headers,
                    slices.iter_mut(),
                    MsgFlags::MSG_WAITFORONE,
                    None,
                ) {
                    Ok(results) => {
                        let mut n = 0;
                        for (length, message) in lengths.iter_mut().zip(results) {
                            *length = message.bytes;
                            n += 1;
                        }
                        n
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {
                        self.intake.publish();
                        continue;
                    }
                    Err(error) => {
                        tracing::error!("UDP receive failed: {error}");
                        std::thread::sleep(STOP_CHECK);
                        continue;
                    }
                }
            };
            let datagrams = || {
                (lengths[..received].iter().enumerate())
                    .map(|(i, &length)| &buffers[i * MAX_DATAGRAM..i * MAX_DATAGRAM + length])
            };
            self.intake.batch(|batch| {
                batch.warm(datagrams());
                for datagram in datagrams() {
                    batch.decode(datagram);
                    batch.received(datagram.len());
                }
            });
            if received < BATCH {
                // The socket ran dry: publish now if it is time (else at the next receive, or
                // within STOP_CHECK if nothing more comes).
                self.intake.publish_if_due();
            }
        }
    }
}

fn socket_inode(fd: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|m| m.ino())
}

/// Sums the `drops` column of `/proc/net/udp{,6}` for the sockets with these inodes.
fn kernel_drops(inodes: &[u64]) -> Option<u64> {
    let mut found = false;
    let mut drops = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode = fields.get(9).and_then(|f| f.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                found = true;
                drops += fields.last().and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    found.then_some(drops)
}
