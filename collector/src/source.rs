//! What every source (listener or hub client) reports about itself, for the UIs and `stat`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use tally_core::Timestamp;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    Listening,
    Connecting,
    Connected,
    /// Connected, but nothing has arrived for a while.
    Silent,
    Disconnected,
    Stopped,
}

impl SourceState {
    const ALL: [SourceState; 6] = [
        SourceState::Listening,
        SourceState::Connecting,
        SourceState::Connected,
        SourceState::Silent,
        SourceState::Disconnected,
        SourceState::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Listening => "listening",
            SourceState::Connecting => "connecting",
            SourceState::Connected => "connected",
            SourceState::Silent => "silent",
            SourceState::Disconnected => "disconnected",
            SourceState::Stopped => "stopped",
        }
    }
}

/// A source's live counters, shared by its threads and read by the UIs.
#[derive(Debug)]
pub struct SourceHealth {
    kind: &'static str,
    address: String,
    state: AtomicU8,
    /// Datagrams, lines or messages received.
    received: AtomicU64,
    events: AtomicU64,
    bad: AtomicU64,
    bytes: AtomicU64,
    last_message_ms: AtomicU64,
    connections: AtomicI64,
    note: Mutex<String>,
}

/// A source's state at one moment: what `stat --json` prints and the UIs draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub kind: String,
    pub address: String,
    pub state: SourceState,
    pub received: u64,
    pub events: u64,
    pub bad: u64,
    pub bytes: u64,
    pub last_message: Option<Timestamp>,
    /// Open connections (stream listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// Datagrams the kernel dropped on this source's sockets (receive buffer full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_drops: Option<u64>,
    /// Anything the user should know (e.g. a receive buffer smaller than asked for).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl SourceHealth {
    pub fn new(kind: &'static str, address: String, state: SourceState) -> Self {
        SourceHealth {
            kind,
            address,
            state: AtomicU8::new(state as u8),
            received: AtomicU64::new(0),
            events: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_message_ms: AtomicU64::new(0),
            connections: AtomicI64::new(0),
            note: Mutex::new(String::new()),
        }
    }

    pub fn set_state(&self, state: SourceState) {
        self.state.store(state as u8, Relaxed);
    }

    pub fn state(&self) -> SourceState {
        SourceState::ALL[self.state.load(Relaxed) as usize]
    }

    /// Counts one batch of received messages.
    pub fn received(&self, messages: u64, bytes: u64, events: u64, bad: u64, now: Timestamp) {
        self.received.fetch_add(messages, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.events.fetch_add(events, Relaxed);
        self.bad.fetch_add(bad, Relaxed);
        self.last_message_ms.store(now.as_millis(), Relaxed);
    }

    /// A connection opened (`1`) or closed (`-1`).
    pub fn connected(&self, change: i64) {
        self.connections.fetch_add(change, Relaxed);
    }

    pub fn set_note(&self, note: String) {
        *self.note.lock().unwrap_or_else(|p| p.into_inner()) = note;
    }

    pub fn status(&self, kernel_drops: Option<u64>) -> SourceStatus {
        let last = self.last_message_ms.load(Relaxed);
        SourceStatus {
            kind: self.kind.to_owned(),
            address: self.address.clone(),
            state: self.state(),
            received: self.received.load(Relaxed),
            events: self.events.load(Relaxed),
            bad: self.bad.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            last_message: (last > 0).then(|| Timestamp::from_millis(last)),
            connections: matches!(self.kind, "tcp" | "unix")
                .then(|| self.connections.load(Relaxed).max(0) as u64),
            kernel_drops,
            note: self.note.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// The wall clock, as the engine counts time.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_millis(since_epoch.as_millis() as u64)
}

/// Why an address could not be listened on, worded for the person who typed it.
#[derive(Debug)]
pub struct BindError {
    /// `UDP`, `TCP` or `Unix socket`.
    pub kind: &'static str,
    pub address: String,
    /// The flag that sets such an address, for the hint.
    pub flag: &'static str,
    pub error: io::Error,
}

impl BindError {
    pub fn udp(address: std::net::SocketAddr, error: io::Error) -> Self {
        BindError {
            kind: "UDP",
            address: address.to_string(),
            flag: "--udp 127.0.0.1:PORT",
            error,
        }
    }

    pub fn tcp(address: std::net::SocketAddr, error: io::Error) -> Self {
        BindError {
            kind: "TCP",
            address: address.to_string(),
            flag: "--tcp 127.0.0.1:PORT",
            error,
        }
    }

    pub fn unix(path: &std::path::Path, error: io::Error) -> Self {
        BindError {
            kind: "Unix socket",
            address: path.display().to_string(),
            flag: "--unix PATH",
            error,
        }
    }
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let BindError {
            kind, address, flag, ..
        } = self;
        match self.error.kind() {
            io::ErrorKind::AddrInUse => write!(
                f,
                "{kind} {address} is already in use (another collector?): stop it, or listen elsewhere with {flag}"
            ),
            io::ErrorKind::AddrNotAvailable => write!(
                f,
                "{kind} {address} is not an address of this machine: use 127.0.0.1, 0.0.0.0, [::1] or one of its interfaces"
            ),
            io::ErrorKind::PermissionDenied => write!(
                f,
                "{kind} {address}: permission denied (ports below 1024 need privileges; a socket path needs a writable directory)"
            ),
            _ => write!(f, "{kind} {address}: {}", self.error),
        }
    }
}

impl std::error::Error for BindError {}
