//! TCP and Unix-domain stream listeners: newline-separated payloads (StatsD lines, hub JSON
//! documents), each line decoded like a datagram. A partial line waits for the next read; a
//! line of more than [`MAX_LINE`] bytes before its `\n` is rejected and skipped up to
//! its newline, and the connection stays open. One task and one [`Intake`] per connection, on
//! the collector's runtime, in one of a bounded number of [`Slots`]: a connection silent for
//! the idle timeout is closed, and at the cap the quietest gives way to a new one.

use super::Source;
use crate::bind::BindError;
use crate::health::Health;
use crate::ingest::{Ingest, Intake};
use crate::slots::{ConnectionLimits, Slot, Slots};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tally_core::{Rejection, SourceKind, SourceState};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The most bytes a line may have before its `\n`; longer ones are rejected as oversize.
pub const MAX_LINE: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Names each connection's recorder remembers: small, since there may be a thousand
/// connections (each a recorder), and a producer's connection seldom sends many names.
pub const CONNECTION_CACHED_NAMES: usize = 64;
/// What one connection can hold besides its name cache: its line buffer, at most a line and
/// a read.
pub const CONNECTION_BUFFER: usize = MAX_LINE + 2 * READ_CHUNK;

/// Where a stream listener listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug)]
pub struct StreamListener {
    health: Arc<Health>,
    local: StreamAddress,
    accept: JoinHandle<()>,
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

fn bind_unix(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    if path.exists() {
        // A socket file nobody answers on is left over from a crash: replace it. One that
        // answers belongs to a running program: refuse, as a TCP port in use would.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::ErrorKind::AddrInUse.into());
        }
        std::fs::remove_file(path)?;
    }
    std::os::unix::net::UnixListener::bind(path)
}

impl StreamListener {
    pub fn start(
        runtime: &Handle,
        address: &StreamAddress,
        ingest: &Ingest,
        limits: ConnectionLimits,
    ) -> Result<Self, BindError> {
        let _entered = runtime.enter();
        let (listener, local, shown) = match address {
            StreamAddress::Tcp(address) => {
                let fail = |error| BindError::tcp(*address, error);
                let listener = crate::bind::listen_tcp(*address).map_err(fail)?;
                let local = listener.local_addr().map_err(fail)?;
                (
                    Listener::Tcp(listener),
                    StreamAddress::Tcp(local),
                    local.to_string(),
                )
            }
            StreamAddress::Unix(path) => {
                let fail = |error| BindError::unix(path, error);
                let std_listener = bind_unix(path).map_err(fail)?;
                std_listener.set_nonblocking(true).map_err(fail)?;
                let listener = tokio::net::UnixListener::from_std(std_listener).map_err(fail)?;
                let shown = path.display().to_string();
                (Listener::Unix(listener), StreamAddress::Unix(path.clone()), shown)
            }
        };
        let health = Arc::new(Health::new(shown, SourceState::Listening));
        let slots = Slots::new(limits, Arc::clone(&health));
        let accept = runtime.spawn(accept_loop(listener, ingest.clone(), slots));
        Ok(StreamListener {
            health,
            local,
            accept,
        })
    }
}

impl Source for StreamListener {
    fn kind(&self) -> SourceKind {
        match self.local {
            StreamAddress::Tcp(_) => SourceKind::Tcp,
            StreamAddress::Unix(_) => SourceKind::Unix,
        }
    }

    fn health(&self) -> &Health {
        &self.health
    }

    /// Stops accepting (connections end with the runtime) and removes a Unix socket file.
    fn stop(self: Box<Self>) {
        self.accept.abort();
        if let StreamAddress::Unix(path) = &self.local {
            let _ = std::fs::remove_file(path);
        }
        self.health.set_state(SourceState::Stopped);
    }
}

async fn accept_loop(listener: Listener, ingest: Ingest, slots: Arc<Slots>) {
    loop {
        let accepted: std::io::Result<Box<dyn AsyncRead + Send + Unpin>> = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Box::new(s) as _),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Box::new(s) as _),
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Refused: the stream is dropped, so the client sees the connection closed.
        let Some(slot) = slots.admit() else {
            continue;
        };
        let intake = ingest.intake_caching(slots.health(), CONNECTION_CACHED_NAMES);
        tokio::spawn(read_lines(stream, intake, slot));
    }
}

/// Reads one connection to its end (or until its slot is taken back), decoding each line.
async fn read_lines(mut stream: impl AsyncRead + Unpin, mut intake: Intake, slot: Slot) {
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Inside an over-long line, discarding up to its newline.
    let mut skipping = false;
    // One wait for the whole connection: it sleeps until the idle deadline, not per read.
    let ended = slot.ended();
    tokio::pin!(ended);
    loop {
        let filled = buffer.len();
        buffer.resize(filled + READ_CHUNK, 0);
        let read = tokio::select! {
            read = stream.read(&mut buffer[filled..]) => read.unwrap_or(0),
            _ = &mut ended => return,
        };
        slot.active();
        buffer.truncate(filled + read);
        let at_end = read == 0;
        intake.batch(|batch| {
            batch.received(read);
            let mut consumed = 0;
            while let Some(newline) = buffer[consumed..].iter().position(|&b| b == b'\n') {
                let line = &buffer[consumed..consumed + newline];
                consumed += newline + 1;
                if std::mem::take(&mut skipping) {
                    continue;
                }
                if line.len() > MAX_LINE {
                    batch.reject(Rejection::Oversize, TOO_LONG, line);
                    continue;
                }
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    batch.decode(line);
                }
            }
            buffer.drain(..consumed);
            if buffer.len() > MAX_LINE {
                if !skipping {
                    batch.reject(Rejection::Oversize, TOO_LONG, &buffer);
                }
                skipping = true;
                buffer.clear();
            }
            if at_end && !buffer.is_empty() && !skipping {
                // The last line needs no newline.
                batch.decode(&buffer);
                buffer.clear();
            }
        });
        if at_end {
            return;
        }
    }
}

const TOO_LONG: &str = "line longer than 64 KiB (skipped to its newline)";
