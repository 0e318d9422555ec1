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

/// A connected source with nothing arriving for this long is shown as silent.
pub const SILENT_AFTER_MS: u64 = 5_000;

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
    /// When the state last became connected (hub clients).
    connected_ms: AtomicU64,
    connections: AtomicI64,
    /// Messages a hub client received but had to drop because the hand-off was full.
    dropped: AtomicU64,
    reconnects: AtomicU64,
    rate: Mutex<RateMeter>,
    note: Mutex<String>,
}

/// Messages per second, from samples of the received count taken at least a second apart:
/// readers at any pace (one UI per frame, `stat` per interval) see the same figure.
#[derive(Debug, Default)]
struct RateMeter {
    sample: Option<(u64, u64)>,
    rate: f64,
}

impl RateMeter {
    fn update(&mut self, now_ms: u64, received: u64) -> f64 {
        match self.sample {
            Some((at, _)) if now_ms < at + 1000 => {}
            Some((at, count)) => {
                self.rate = received.saturating_sub(count) as f64 * 1000.0 / (now_ms - at) as f64;
                self.sample = Some((now_ms, received));
            }
            None => self.sample = Some((now_ms, received)),
        }
        self.rate
    }
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
    /// Messages (datagrams, lines) per second, over the last second or more.
    pub rate: f64,
    pub last_message: Option<Timestamp>,
    /// Open connections (stream listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// Datagrams the kernel dropped on this source's sockets (receive buffer full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_drops: Option<u64>,
    /// Messages a hub client had to drop because the aggregator fell behind (hub clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// Connections lost and made again (hub clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnects: Option<u64>,
    /// Anything the user should know (e.g. a receive buffer smaller than asked for).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl SourceStatus {
    /// Whether this is a hub client (`--zmq`, `--ws`): only they count reconnects.
    pub fn is_hub_client(&self) -> bool {
        self.reconnects.is_some()
    }

    /// Whether it is receiving (or ready to): listening, or connected and not silent.
    pub fn is_healthy(&self) -> bool {
        matches!(self.state, SourceState::Listening | SourceState::Connected)
    }

    /// What a hub client's line in a UI adds after its state: rate, age of the last message
    /// when it matters, and what went wrong (`250/s`, `last 12s ago, 3 bad, 40 dropped`).
    pub fn details(&self, now: Timestamp) -> String {
        let mut parts = vec![];
        if self.is_healthy() {
            parts.push(format!("{}/s", crate::stat::short_number(self.rate)));
        } else if let Some(last) = self.last_message {
            let ago = now.as_millis().saturating_sub(last.as_millis());
            parts.push(format!(
                "last {} ago",
                tally_core::human_duration(ago / 1000 * 1000)
            ));
        }
        if self.bad > 0 {
            parts.push(format!("{} bad", crate::stat::short_number(self.bad as f64)));
        }
        if let Some(dropped) = self.dropped.filter(|&n| n > 0) {
            parts.push(format!("{} dropped", crate::stat::short_number(dropped as f64)));
        }
        parts.join(", ")
    }
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
            connected_ms: AtomicU64::new(0),
            connections: AtomicI64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            rate: Mutex::new(RateMeter::default()),
            note: Mutex::new(String::new()),
        }
    }

    /// Sets the state; becoming connected again counts a reconnect.
    pub fn set_state(&self, state: SourceState) {
        if state == SourceState::Connected && self.connected_ms.swap(now().as_millis(), Relaxed) > 0 {
            self.reconnects.fetch_add(1, Relaxed);
        }
        self.state.store(state as u8, Relaxed);
    }

    /// The state as set, except that a connected source with nothing for
    /// [`SILENT_AFTER_MS`] is [`SourceState::Silent`].
    pub fn state(&self) -> SourceState {
        let state = SourceState::ALL[self.state.load(Relaxed) as usize];
        let quiet_since = self
            .last_message_ms
            .load(Relaxed)
            .max(self.connected_ms.load(Relaxed));
        if state == SourceState::Connected && now().as_millis() > quiet_since + SILENT_AFTER_MS {
            return SourceState::Silent;
        }
        state
    }

    /// Counts messages a hub client dropped at the hand-off.
    pub fn dropped(&self, messages: u64) {
        self.dropped.fetch_add(messages, Relaxed);
    }

    fn is_hub_client(&self) -> bool {
        matches!(self.kind, "zmq" | "ws")
    }

    fn is_publisher(&self) -> bool {
        matches!(self.kind, "publish-zmq" | "serve-ws")
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
        let received = self.received.load(Relaxed);
        let rate = (self.rate.lock().unwrap_or_else(|p| p.into_inner())).update(now().as_millis(), received);
        let hub_client = self.is_hub_client();
        SourceStatus {
            kind: self.kind.to_owned(),
            address: self.address.clone(),
            state: self.state(),
            received,
            events: self.events.load(Relaxed),
            bad: self.bad.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            rate,
            last_message: (last > 0).then(|| Timestamp::from_millis(last)),
            connections: matches!(self.kind, "tcp" | "unix" | "serve-ws")
                .then(|| self.connections.load(Relaxed).max(0) as u64),
            kernel_drops,
            dropped: (hub_client || self.is_publisher()).then(|| self.dropped.load(Relaxed)),
            reconnects: hub_client.then(|| self.reconnects.load(Relaxed)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_health_reads_as_a_user_needs_it() {
        let health = SourceHealth::new("zmq", "tcp://hub:6000".into(), SourceState::Connecting);
        assert_eq!(health.status(None).state, SourceState::Connecting);
        health.set_state(SourceState::Connected);
        let time = now();
        health.received(10, 1000, 9, 1, time);
        health.dropped(4);
        let status = health.status(None);
        assert_eq!(status.state, SourceState::Connected);
        assert_eq!((status.dropped, status.reconnects), (Some(4), Some(0)));
        assert_eq!(status.details(time), "0/s, 1 bad, 4 dropped");

        health.set_state(SourceState::Disconnected);
        let later = Timestamp::from_millis(time.as_millis() + 12_400);
        assert_eq!(
            health.status(None).details(later),
            "last 12s ago, 1 bad, 4 dropped"
        );
        health.set_state(SourceState::Connected);
        assert_eq!(health.status(None).reconnects, Some(1));
        // Listeners have no hub counters.
        let udp = SourceHealth::new("udp", "127.0.0.1:8125".into(), SourceState::Listening);
        assert_eq!(
            (udp.status(None).dropped, udp.status(None).reconnects),
            (None, None)
        );
    }

    #[test]
    fn a_connected_source_with_nothing_arriving_turns_silent() {
        let health = SourceHealth::new("ws", "ws://hub/ws".into(), SourceState::Connecting);
        health.set_state(SourceState::Connected);
        // Pretend the connection and the last message were long ago.
        health.connected_ms.store(1, Relaxed);
        assert_eq!(health.state(), SourceState::Silent);
        health.received(1, 10, 1, 0, now());
        assert_eq!(health.state(), SourceState::Connected);
    }

    #[test]
    fn the_rate_is_measured_over_a_second_or_more() {
        let mut meter = RateMeter::default();
        assert_eq!(meter.update(10_000, 0), 0.0);
        assert_eq!(meter.update(10_500, 300), 0.0, "too soon to say");
        assert_eq!(meter.update(12_000, 1000), 500.0);
        assert_eq!(meter.update(12_100, 5000), 500.0);
    }
}
