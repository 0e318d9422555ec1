//! The live counters of one source or output, shared by its threads and read as a status by
//! the UIs and `stat`; and the wall clock that stamps them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use tally_core::status::SILENT_AFTER_MS;
use tally_core::{OutputKind, OutputStatus, SourceKind, SourceState, SourceStatus, Timestamp};

/// A source's (or output's) counters. Which of them a status shows depends on its kind.
#[derive(Debug)]
pub struct Health {
    address: String,
    state: AtomicU8,
    /// Datagrams, lines or messages received (for an output: events published).
    received: AtomicU64,
    events: AtomicU64,
    bad: AtomicU64,
    bytes: AtomicU64,
    last_message_ms: AtomicU64,
    /// When the state last became connected (hub clients).
    connected_ms: AtomicU64,
    connections: AtomicI64,
    /// Connections refused at the cap, and closed for silence or to make room (servers).
    refused: AtomicU64,
    closed_idle: AtomicU64,
    /// Messages dropped because a queue was full (hub clients' hand-off, outputs).
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

impl Health {
    /// `address` is shown as is: it must hold no secret (see [`display_url`]).
    pub fn new(address: String, state: SourceState) -> Self {
        Health {
            address,
            state: AtomicU8::new(state as u8),
            received: AtomicU64::new(0),
            events: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_message_ms: AtomicU64::new(0),
            connected_ms: AtomicU64::new(0),
            connections: AtomicI64::new(0),
            refused: AtomicU64::new(0),
            closed_idle: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            rate: Mutex::new(RateMeter::default()),
            note: Mutex::new(String::new()),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
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

    /// Counts messages dropped because a queue was full.
    pub fn dropped(&self, messages: u64) {
        self.dropped.fetch_add(messages, Relaxed);
    }

    /// Counts one batch of received messages.
    pub fn received(&self, messages: u64, bytes: u64, events: u64, bad: u64, now: Timestamp) {
        self.received.fetch_add(messages, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.events.fetch_add(events, Relaxed);
        self.bad.fetch_add(bad, Relaxed);
        self.last_message_ms.store(now.as_millis(), Relaxed);
    }

    /// Counts events an output published.
    pub fn published(&self, events: u64, bytes: u64) {
        self.received(events, bytes, events, 0, now());
    }

    /// A connection opened (`1`) or closed (`-1`).
    pub fn connected(&self, change: i64) {
        self.connections.fetch_add(change, Relaxed);
    }

    /// A connection was refused because the server was full.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    /// A connection was closed because it was silent, or gave way to a newer one.
    pub fn closed_idle(&self) {
        self.closed_idle.fetch_add(1, Relaxed);
    }

    pub fn set_note(&self, note: String) {
        *self.note.lock().unwrap_or_else(|p| p.into_inner()) = note;
    }

    fn note(&self) -> String {
        self.note.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn connections(&self) -> u64 {
        self.connections.load(Relaxed).max(0) as u64
    }

    /// The status of a source of this kind (without kernel drops, which only UDP knows).
    pub fn source_status(&self, kind: SourceKind) -> SourceStatus {
        let last = self.last_message_ms.load(Relaxed);
        let received = self.received.load(Relaxed);
        let rate = (self.rate.lock().unwrap_or_else(|p| p.into_inner())).update(now().as_millis(), received);
        SourceStatus {
            kind,
            address: self.address.clone(),
            state: self.state(),
            received,
            events: self.events.load(Relaxed),
            bad: self.bad.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            rate,
            last_message: (last > 0).then(|| Timestamp::from_millis(last)),
            connections: kind.has_connections().then(|| self.connections()),
            refused: kind.has_connections().then(|| self.refused.load(Relaxed)),
            closed_idle: kind.has_connections().then(|| self.closed_idle.load(Relaxed)),
            kernel_drops: None,
            dropped: kind.is_hub_client().then(|| self.dropped.load(Relaxed)),
            reconnects: kind.is_hub_client().then(|| self.reconnects.load(Relaxed)),
            note: self.note(),
        }
    }

    /// The status of an output of this kind.
    pub fn output_status(&self, kind: OutputKind) -> OutputStatus {
        OutputStatus {
            kind,
            address: self.address.clone(),
            state: self.state(),
            published: self.received.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            connections: self.connections(),
            refused: self.refused.load(Relaxed),
            closed_idle: kind.closes_idle().then(|| self.closed_idle.load(Relaxed)),
            dropped: self.dropped.load(Relaxed),
            note: self.note(),
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

/// `url` without what may be a secret (user info, query string), for display and logs.
pub fn display_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = match rest.split_once('/') {
        Some((authority, path)) => format!("{}/{path}", authority.rsplit('@').next().unwrap_or_default()),
        None => rest.rsplit('@').next().unwrap_or_default().to_owned(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_health_reads_as_a_user_needs_it() {
        let health = Health::new("tcp://hub:6000".into(), SourceState::Connecting);
        let status = || health.source_status(SourceKind::Zmq);
        assert_eq!(status().state, SourceState::Connecting);
        health.set_state(SourceState::Connected);
        let time = now();
        health.received(10, 1000, 9, 1, time);
        health.dropped(4);
        assert_eq!(status().state, SourceState::Connected);
        assert_eq!((status().dropped, status().reconnects), (Some(4), Some(0)));
        assert_eq!(status().details(time), "0/s, 1 bad, 4 dropped");

        health.set_state(SourceState::Disconnected);
        let later = Timestamp::from_millis(time.as_millis() + 12_400);
        assert_eq!(status().details(later), "last 12s ago, 1 bad, 4 dropped");
        health.set_state(SourceState::Connected);
        assert_eq!(status().reconnects, Some(1));
        // Listeners have no hub counters.
        let udp = Health::new("127.0.0.1:8125".into(), SourceState::Listening);
        let status = udp.source_status(SourceKind::Udp);
        assert_eq!((status.dropped, status.reconnects), (None, None));
    }

    #[test]
    fn a_connected_source_with_nothing_arriving_turns_silent() {
        let health = Health::new("ws://hub/ws".into(), SourceState::Connecting);
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

    #[test]
    fn outputs_report_what_they_published_and_dropped() {
        let health = Health::new("ws://127.0.0.1:5555/ws".into(), SourceState::Listening);
        health.published(3, 300);
        health.dropped(2);
        health.connected(1);
        let status = health.output_status(OutputKind::ServeWs);
        assert_eq!((status.published, status.bytes, status.dropped), (3, 300, 2));
        assert_eq!(
            (status.connections, status.refused, status.closed_idle),
            (1, 0, Some(0))
        );
        let json = serde_json::to_value(&status).expect("serializes");
        assert_eq!(
            (json["kind"].as_str(), json["received"].as_u64()),
            (Some("serve-ws"), Some(3))
        );
    }

    #[test]
    fn urls_are_shown_without_credentials_or_queries() {
        assert_eq!(display_url("ws://127.0.0.1:5555/ws"), "ws://127.0.0.1:5555/ws");
        assert_eq!(
            display_url("wss://user:hunter2@hub.example:443/ws?access_token=s3cret#x"),
            "wss://hub.example:443/ws"
        );
        assert_eq!(display_url("tcp://10.0.0.1:6000"), "tcp://10.0.0.1:6000");
        // A password may hold '@'; a Unix socket's password comes as a query.
        assert_eq!(display_url("redis://:p@ss@cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(
            display_url("redis+unix:///run/redis.sock?pass=s3cret"),
            "redis+unix:///run/redis.sock"
        );
    }
}
