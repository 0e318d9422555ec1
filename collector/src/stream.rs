//! TCP and Unix-domain stream listeners: newline-separated payloads (StatsD lines, hub JSON
//! documents), each line decoded like a datagram. A partial line waits for the next read; a
//! line longer than [`MAX_LINE`] is rejected and skipped up to its newline, and the connection
//! stays open. One task and one recorder per connection, on the collector's runtime.

use crate::decode::{self, DecodeOptions, Recording, Sink};
use crate::source::{BindError, SourceHealth, SourceState, now};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tally_core::{Engine, Rejection};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The longest line kept; longer ones are rejected as oversize.
pub const MAX_LINE: usize = 64 * 1024;
/// Connections served at once per listener; more are closed on arrival (and noted).
pub const MAX_CONNECTIONS: usize = 1024;
const READ_CHUNK: usize = 16 * 1024;

/// Where a stream listener listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug)]
pub struct StreamListener {
    health: Arc<SourceHealth>,
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
        engine: &Arc<Engine>,
        decode: &DecodeOptions,
    ) -> Result<Self, BindError> {
        let _entered = runtime.enter();
        let (listener, local, health) = match address {
            StreamAddress::Tcp(address) => {
                let fail = |error| BindError::tcp(*address, error);
                let std_listener = std::net::TcpListener::bind(address).map_err(fail)?;
                std_listener.set_nonblocking(true).map_err(fail)?;
                let local = std_listener.local_addr().map_err(fail)?;
                let listener = tokio::net::TcpListener::from_std(std_listener).map_err(fail)?;
                let health = SourceHealth::new("tcp", local.to_string(), SourceState::Listening);
                (Listener::Tcp(listener), StreamAddress::Tcp(local), health)
            }
            StreamAddress::Unix(path) => {
                let fail = |error| BindError::unix(path, error);
                let std_listener = bind_unix(path).map_err(fail)?;
                std_listener.set_nonblocking(true).map_err(fail)?;
                let listener = tokio::net::UnixListener::from_std(std_listener).map_err(fail)?;
                let health = SourceHealth::new("unix", path.display().to_string(), SourceState::Listening);
                (
                    Listener::Unix(listener),
                    StreamAddress::Unix(path.clone()),
                    health,
                )
            }
        };
        let health = Arc::new(health);
        let accept = runtime.spawn(accept_loop(
            listener,
            Arc::clone(engine),
            Arc::clone(&health),
            decode.clone(),
        ));
        Ok(StreamListener {
            health,
            local,
            accept,
        })
    }

    pub fn local(&self) -> &StreamAddress {
        &self.local
    }

    pub fn health(&self) -> &Arc<SourceHealth> {
        &self.health
    }

    /// Stops accepting (connections end with the runtime) and removes a Unix socket file.
    pub fn stop(self) {
        self.accept.abort();
        if let StreamAddress::Unix(path) = &self.local {
            let _ = std::fs::remove_file(path);
        }
        self.health.set_state(SourceState::Stopped);
    }
}

async fn accept_loop(
    listener: Listener,
    engine: Arc<Engine>,
    health: Arc<SourceHealth>,
    decode: DecodeOptions,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            health.set_note(format!("refused connections beyond {MAX_CONNECTIONS}"));
            continue;
        };
        health.connected(1);
        let (engine, health, decode) = (Arc::clone(&engine), Arc::clone(&health), decode.clone());
        tokio::spawn(async move {
            read_lines(stream, &engine, &health, &decode).await;
            health.connected(-1);
            drop(slot);
        });
    }
}

/// Reads one connection to its end, decoding each line.
async fn read_lines(
    mut stream: impl AsyncRead + Unpin,
    engine: &Arc<Engine>,
    health: &SourceHealth,
    options: &DecodeOptions,
) {
    let mut recorder = engine.recorder();
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Inside an over-long line, discarding up to its newline.
    let mut skipping = false;
    loop {
        let filled = buffer.len();
        buffer.resize(filled + READ_CHUNK, 0);
        let read = stream.read(&mut buffer[filled..]).await.unwrap_or(0);
        buffer.truncate(filled + read);
        let at_end = read == 0;
        let time = now();
        let mut sink = Recording::new(&mut recorder, time).tapped(options.republish.as_deref());
        let mut lines = 0;
        let mut consumed = 0;
        while let Some(newline) = buffer[consumed..].iter().position(|&b| b == b'\n') {
            let line = &buffer[consumed..consumed + newline];
            consumed += newline + 1;
            if std::mem::take(&mut skipping) {
                continue;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                decode::decode(line, time, options, &mut sink);
                lines += 1;
            }
        }
        buffer.drain(..consumed);
        if at_end && !buffer.is_empty() && !skipping {
            // The last line needs no newline.
            decode::decode(&buffer, time, options, &mut sink);
            lines += 1;
            buffer.clear();
        }
        if buffer.len() > MAX_LINE {
            if !skipping {
                sink.reject(
                    Rejection::Oversize,
                    "line longer than 64 KiB (skipped to its newline)",
                    &buffer,
                );
            }
            skipping = true;
            buffer.clear();
        }
        let (events, bad) = (sink.events, sink.bad);
        recorder.flush();
        if lines > 0 || bad > 0 || read > 0 {
            health.received(lines, read as u64, events, bad, time);
        }
        if at_end {
            return;
        }
    }
}
