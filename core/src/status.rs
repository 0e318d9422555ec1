//! What sources (where events come from) and outputs (where `tally hub` re-publishes them)
//! report about themselves: plain data that `stat --json` prints and both UIs draw.

use crate::format::{human_duration, short_number};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A connected source with nothing arriving for this long is shown as silent.
pub const SILENT_AFTER_MS: u64 = 5_000;

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
    pub const ALL: [SourceState; 6] = [
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

/// Where a source's events come from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Udp,
    Tcp,
    Unix,
    Demo,
    /// Subscribed to a ZeroMQ hub.
    Zmq,
    /// Subscribed to a WebSocket hub.
    Ws,
    /// The HTTP server's ingest: the tracking pixel and `POST /events`.
    Http,
    /// Subscribed to an SSE firehose.
    Sse,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Udp => "udp",
            SourceKind::Tcp => "tcp",
            SourceKind::Unix => "unix",
            SourceKind::Demo => "demo",
            SourceKind::Zmq => "zmq",
            SourceKind::Ws => "ws",
            SourceKind::Http => "http",
            SourceKind::Sse => "sse",
        }
    }

    /// Hub clients connect out, and count reconnects and hand-off drops.
    pub fn is_hub_client(self) -> bool {
        matches!(self, SourceKind::Zmq | SourceKind::Ws | SourceKind::Sse)
    }

    /// Stream listeners count their open connections.
    pub fn has_connections(self) -> bool {
        matches!(self, SourceKind::Tcp | SourceKind::Unix | SourceKind::Http)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where accepted events go besides the engine: what `tally hub` re-publishes on, and the
/// history.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// A ZeroMQ PUB socket (`--publish-zmq`).
    PublishZmq,
    /// A WebSocket server (`--serve-ws`).
    ServeWs,
    /// The HTTP server's SSE firehose (`--serve-sse`).
    ServeSse,
    /// The history kept in the state directory (`--state`).
    History,
    /// The history's Redis mirror (`--redis`).
    Redis,
    /// Aggregates flushed to carbon (`--graphite`).
    Graphite,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::PublishZmq => "publish-zmq",
            OutputKind::ServeWs => "serve-ws",
            OutputKind::ServeSse => "serve-sse",
            OutputKind::History => "history",
            OutputKind::Redis => "redis",
            OutputKind::Graphite => "graphite",
        }
    }

    /// Servers that close silent clients themselves (libzmq closes ZeroMQ subscribers that
    /// stop answering heartbeats, and does not say so).
    pub fn closes_idle(self) -> bool {
        matches!(self, OutputKind::ServeWs | OutputKind::ServeSse)
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OutputStatus {
    /// Whether it is doing its job, or can (not cut off from where it writes: the history's
    /// database, Redis, carbon). Quiet is fine: an output is silent when nothing arrives.
    pub fn is_healthy(&self) -> bool {
        self.state != SourceState::Disconnected
    }
}

/// A source's state at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub kind: SourceKind,
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
    /// Connections refused because every slot was busy (stream listeners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<u64>,
    /// Connections closed after the idle timeout, or to make room for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_idle: Option<u64>,
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
    /// Whether it is receiving (or ready to): listening, or connected and not silent.
    pub fn is_healthy(&self) -> bool {
        matches!(self.state, SourceState::Listening | SourceState::Connected)
    }

    /// What a hub client's line in a UI adds after its state: rate, age of the last message
    /// when it matters, and what went wrong (`250/s`, `last 12s ago, 3 bad, 40 dropped`).
    pub fn details(&self, now: Timestamp) -> String {
        let mut parts = vec![];
        if self.is_healthy() {
            parts.push(format!("{}/s", short_number(self.rate)));
        } else if let Some(last) = self.last_message {
            let ago = now.as_millis().saturating_sub(last.as_millis());
            parts.push(format!("last {} ago", human_duration(ago / 1000 * 1000)));
        }
        if self.bad > 0 {
            parts.push(format!("{} bad", short_number(self.bad as f64)));
        }
        if let Some(dropped) = self.dropped.filter(|&n| n > 0) {
            parts.push(format!("{} dropped", short_number(dropped as f64)));
        }
        parts.join(", ")
    }
}

/// An output's state at one moment (`tally hub`'s `outputs` in `stat --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputStatus {
    pub kind: OutputKind,
    pub address: String,
    pub state: SourceState,
    /// Events published (named as a source's count is, so reports read alike).
    #[serde(rename = "received")]
    pub published: u64,
    pub bytes: u64,
    /// Connected clients (WebSocket clients, ZeroMQ subscribers).
    pub connections: u64,
    /// Clients refused because every slot was busy, or (WebSocket) for their origin or token.
    pub refused: u64,
    /// Clients closed after the idle timeout, or to make room for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_idle: Option<u64>,
    /// Events that could not be published (a full queue, a slow client).
    pub dropped: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_client(state: SourceState) -> SourceStatus {
        SourceStatus {
            kind: SourceKind::Zmq,
            address: "tcp://hub:6000".into(),
            state,
            received: 10,
            events: 9,
            bad: 1,
            bytes: 1000,
            rate: 250.0,
            last_message: Some(Timestamp::from_millis(1_000_000)),
            connections: None,
            refused: None,
            closed_idle: None,
            kernel_drops: None,
            dropped: Some(4),
            reconnects: Some(0),
            note: String::new(),
        }
    }

    #[test]
    fn hub_details_read_as_a_user_needs_them() {
        let later = Timestamp::from_millis(1_012_400);
        assert_eq!(
            hub_client(SourceState::Connected).details(later),
            "250/s, 1 bad, 4 dropped"
        );
        assert_eq!(
            hub_client(SourceState::Disconnected).details(later),
            "last 12s ago, 1 bad, 4 dropped"
        );
    }

    #[test]
    fn kinds_are_named_as_the_reports_name_them() {
        for kind in [
            SourceKind::Udp,
            SourceKind::Tcp,
            SourceKind::Unix,
            SourceKind::Demo,
            SourceKind::Zmq,
            SourceKind::Ws,
        ] {
            let named = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(named, format!("\"{kind}\""));
        }
        for kind in [OutputKind::PublishZmq, OutputKind::ServeWs] {
            let named = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(named, format!("\"{kind}\""));
        }
        assert_eq!(OutputKind::ServeWs.to_string(), "serve-ws");
        assert!(SourceKind::Ws.is_hub_client() && !SourceKind::Udp.is_hub_client());
    }
}
