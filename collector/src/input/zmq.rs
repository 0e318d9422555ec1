//! Subscribing to a ZeroMQ PUB hub through libzmq.
//!
//! libzmq does the hard parts in its own I/O thread: connecting in the background (starting
//! before the hub exists is fine), reconnecting quickly ([`RECONNECT_MS`] up to
//! [`RECONNECT_MAX_MS`]), heartbeats that notice a frozen hub, and a hard message size limit
//! ([`HARD_LIMIT_FACTOR`] times the configured one: a peer that sends more is disconnected,
//! and reconnected to, without saying why). Below that, a message over the configured limit
//! is received, counted as `oversize` and dropped, as over WebSocket. Our thread polls the SUB
//! socket and a monitor socket (for the connection state), splits messages into payloads, and
//! hands them to the decoder.

use super::Source;
use super::hub::{Handoff, HubError, HubLimits, start_decoder};
use crate::health::Health;
use crate::health::display_url;
use crate::ingest::Ingest;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use tally_core::{Rejection, SourceKind, SourceState};

/// The first reconnect attempt after a hub goes away.
pub const RECONNECT_MS: i32 = 100;
/// Reconnect attempts back off to at most this.
pub const RECONNECT_MAX_MS: i32 = 1000;
/// A heartbeat is sent this often; no answer within [`HEARTBEAT_TIMEOUT_MS`] is a dead hub.
const HEARTBEAT_MS: i32 = 1000;
const HEARTBEAT_TIMEOUT_MS: i32 = 3000;
/// How often the thread looks at the stop flag when nothing arrives.
const POLL_MS: i64 = 200;
/// Messages taken from the socket before the monitor is looked at again.
const RECEIVE_BATCH: usize = 1024;
/// libzmq's own limit is this many times [`HubLimits::max_message`], so that an oversize
/// message is usually seen, and counted, rather than only cause a silent disconnect.
pub const HARD_LIMIT_FACTOR: usize = 16;

/// Monitor sockets need unique in-process names.
static MONITORS: AtomicU64 = AtomicU64::new(0);

/// A running subscription to one hub.
#[derive(Debug)]
pub struct ZmqSubscriber {
    health: Arc<Health>,
    receiver: JoinHandle<()>,
    decoder: JoinHandle<()>,
}

/// A message's frames as the payloads they carry: the classic hub's single frame
/// `<type> <payload>`, or `[topic, payload, ...]`.
pub(crate) fn payloads(mut frames: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, &'static str> {
    if frames.len() > 1 {
        frames.remove(0);
        return Ok(frames);
    }
    let Some(mut frame) = frames.pop() else {
        return Err("empty message");
    };
    // A bare document (a publisher that sends payloads without a topic) is its own payload.
    if matches!(frame.first(), Some(b'{' | b'[' | 0x80..=0x8f | 0xde | 0xdf)) {
        return Ok(vec![frame]);
    }
    match frame.iter().position(|&b| b == b' ') {
        Some(space) => {
            frame.drain(..=space);
            Ok(vec![frame])
        }
        None => Err("message has a topic but no payload (expected `<type> <payload>`)"),
    }
}

/// Whether a message is one we asked for. libzmq filters by prefix already; a hub that sends
/// everything anyway (or a libzmq bug) must not get other topics counted.
fn wanted(first_frame: &[u8], topics: &[String]) -> bool {
    topics.is_empty() || topics.iter().any(|t| first_frame.starts_with(t.as_bytes()))
}

impl ZmqSubscriber {
    /// Connects (in the background) to `endpoint` and subscribes to `topics` (all if empty).
    /// Fails only for an endpoint libzmq cannot use.
    pub fn start(
        context: &zmq::Context,
        endpoint: &str,
        topics: &[String],
        ingest: &Ingest,
        limits: &HubLimits,
    ) -> Result<Self, HubError> {
        let fail = |error| HubError::Zmq {
            endpoint: display_url(endpoint),
            error,
        };
        let (socket, monitor) = Self::subscribe(context, endpoint, topics, limits).map_err(fail)?;
        let health = Arc::new(Health::new(display_url(endpoint), SourceState::Connecting));
        let (handoff, decoder) =
            start_decoder("tally-zmq-decode".into(), &health, ingest, limits).map_err(HubError::Thread)?;
        let receive = Receive {
            socket,
            endpoint: endpoint.to_owned(),
            monitor,
            topics: topics.to_vec(),
            handoff,
            ingest: ingest.clone(),
            health: Arc::clone(&health),
            max_message: limits.max_message,
            reconnect_at: None,
            backoff_ms: RECONNECT_MS,
        };
        let receiver = std::thread::Builder::new()
            .name("tally-zmq".into())
            .spawn(move || receive.run())
            .map_err(HubError::Thread)?;
        Ok(ZmqSubscriber {
            health,
            receiver,
            decoder,
        })
    }

    /// A SUB socket connecting to `endpoint`, and a monitor socket reporting its connection.
    fn subscribe(
        context: &zmq::Context,
        endpoint: &str,
        topics: &[String],
        limits: &HubLimits,
    ) -> Result<(zmq::Socket, zmq::Socket), zmq::Error> {
        let socket = context.socket(zmq::SUB)?;
        socket.set_linger(0)?;
        socket.set_rcvhwm(limits.receive_hwm)?;
        socket.set_maxmsgsize((limits.max_message * HARD_LIMIT_FACTOR) as i64)?;
        socket.set_reconnect_ivl(RECONNECT_MS)?;
        socket.set_reconnect_ivl_max(RECONNECT_MAX_MS)?;
        socket.set_heartbeat_ivl(HEARTBEAT_MS)?;
        socket.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS)?;
        if topics.is_empty() {
            socket.set_subscribe(b"")?;
        }
        for topic in topics {
            socket.set_subscribe(topic.as_bytes())?;
        }
        let monitor_endpoint = format!("inproc://tally-monitor-{}", MONITORS.fetch_add(1, Relaxed));
        let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::DISCONNECTED as i32
            | zmq::SocketEvent::CONNECT_RETRIED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32;
        socket.monitor(&monitor_endpoint, events)?;
        let monitor = context.socket(zmq::PAIR)?;
        monitor.set_linger(0)?;
        monitor.connect(&monitor_endpoint)?;
        socket.connect(endpoint)?;
        Ok((socket, monitor))
    }
}

impl Source for ZmqSubscriber {
    fn kind(&self) -> SourceKind {
        SourceKind::Zmq
    }

    fn health(&self) -> &Health {
        &self.health
    }

    /// Waits for the threads; what was received is decoded.
    fn stop(self: Box<Self>) {
        let _ = self.receiver.join();
        let _ = self.decoder.join();
        self.health.set_state(SourceState::Stopped);
    }
}

struct Receive {
    socket: zmq::Socket,
    endpoint: String,
    monitor: zmq::Socket,
    topics: Vec<String>,
    handoff: Handoff,
    ingest: Ingest,
    health: Arc<Health>,
    max_message: usize,
    /// A fresh connect waiting for its time, and the wait before the next one.
    reconnect_at: Option<std::time::Instant>,
    backoff_ms: i32,
}

impl Receive {
    fn run(mut self) {
        while !self.ingest.stopping() {
            let now = std::time::Instant::now();
            if self.reconnect_at.is_some_and(|at| at <= now) {
                self.reconnect_at = None;
                self.reconnect();
            }
            let until_reconnect = self.reconnect_at.map_or(POLL_MS, |at| {
                at.saturating_duration_since(now).as_millis().min(POLL_MS as u128) as i64
            });
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.monitor.as_poll_item(zmq::POLLIN),
            ];
            if let Err(error) = zmq::poll(&mut items, until_reconnect) {
                tracing::warn!("ZeroMQ poll failed: {error}");
                std::thread::sleep(std::time::Duration::from_millis(POLL_MS as u64));
                continue;
            }
            let (messages, changes) = (items[0].is_readable(), items[1].is_readable());
            if changes {
                self.connection_changes();
            }
            if messages {
                self.receive_batch();
            }
        }
    }

    /// libzmq reconnects after a lost connection, but not after a protocol error (an
    /// oversize message is one, and so is a hub refusing us): a fresh connect covers both.
    fn reconnect(&self) {
        let _ = self.socket.disconnect(&self.endpoint);
        if let Err(error) = self.socket.connect(&self.endpoint) {
            tracing::warn!("ZeroMQ reconnect to {} failed: {error}", self.health.address());
        }
    }

    fn connection_changes(&mut self) {
        while let Ok(frames) = self.monitor.recv_multipart(zmq::DONTWAIT) {
            let Some(event) = frames.first().and_then(|f| f.get(..2)) else {
                continue;
            };
            let event = zmq::SocketEvent::from_raw(u16::from_ne_bytes([event[0], event[1]]));
            match event {
                zmq::SocketEvent::HANDSHAKE_SUCCEEDED => {
                    self.health.set_state(SourceState::Connected);
                    self.health.set_note(String::new());
                    self.backoff_ms = RECONNECT_MS;
                    // libzmq got there first (after a plain disconnect it reconnects itself).
                    self.reconnect_at = None;
                }
                zmq::SocketEvent::DISCONNECTED => {
                    self.health.set_state(SourceState::Disconnected);
                    let hard_mib = (self.max_message * HARD_LIMIT_FACTOR) >> 20;
                    self.health.set_note(format!(
                        "hub went away (or sent a message over {hard_mib} MiB): reconnecting"
                    ));
                    // Not at once: a hub that refuses us (full, say) is asked again after a
                    // backoff that doubles up to RECONNECT_MAX_MS while it keeps refusing.
                    let wait = std::time::Duration::from_millis(self.backoff_ms as u64);
                    self.reconnect_at = Some(std::time::Instant::now() + wait);
                    self.backoff_ms = (self.backoff_ms * 2).min(RECONNECT_MAX_MS);
                }
                zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL
                | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL => {
                    self.health.set_state(SourceState::Disconnected);
                    self.health
                        .set_note("the peer does not speak ZeroMQ (ZMTP 3): retrying".into());
                }
                zmq::SocketEvent::CONNECT_RETRIED if self.health.state() == SourceState::Connecting => {
                    self.health.set_note("no hub answers yet: retrying".into());
                }
                _ => {}
            }
        }
    }

    fn receive_batch(&self) {
        for _ in 0..RECEIVE_BATCH {
            let frames = match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN) => return,
                Err(error) => {
                    tracing::warn!("ZeroMQ receive failed: {error}");
                    return;
                }
            };
            if !frames.first().is_some_and(|f| wanted(f, &self.topics)) {
                continue;
            }
            let evidence = frames.first().cloned().unwrap_or_default();
            let size: usize = frames.iter().map(Vec::len).sum();
            if size > self.max_message {
                let detail = format!("ZeroMQ message over the {} KiB limit", self.max_message / 1024);
                self.ingest
                    .reject(&self.health, Rejection::Oversize, &detail, &evidence);
                continue;
            }
            match payloads(frames) {
                Ok(payloads) => payloads.into_iter().for_each(|p| self.handoff.offer(p)),
                Err(detail) => self
                    .ingest
                    .reject(&self.health, Rejection::Json, detail, &evidence),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_into_payloads() {
        let one = |frame: &[u8]| payloads(vec![frame.to_vec()]);
        assert_eq!(one(b"pageview {\"a\":1}"), Ok(vec![b"{\"a\":1}".to_vec()]));
        assert_eq!(one(b" {\"a\":1}"), Ok(vec![b"{\"a\":1}".to_vec()]), "no type");
        assert_eq!(one(b"{\"a\": 1}"), Ok(vec![b"{\"a\": 1}".to_vec()]), "bare JSON");
        assert_eq!(
            one(&[0x81, 0xa1, b'a', 1]),
            Ok(vec![vec![0x81, 0xa1, b'a', 1]]),
            "bare msgpack"
        );
        assert!(one(b"pageview").is_err());
        let two = payloads(vec![b"pageview".to_vec(), b"{}".to_vec()]);
        assert_eq!(two, Ok(vec![b"{}".to_vec()]));
        assert!(payloads(vec![]).is_err());
    }

    #[test]
    fn topics_are_byte_prefixes_like_libzmq() {
        let topics = ["order".to_owned()];
        assert!(wanted(b"order.create {}", &topics));
        assert!(!wanted(b"pageview {}", &topics));
        assert!(wanted(b"anything", &[]));
    }
}
