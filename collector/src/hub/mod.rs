//! Remote hubs: subscribing to one ([`zmq_client`], [`ws_client`]) and being one
//! ([`publish`]).
//!
//! A hub client's receiver (a thread for ZeroMQ, a task for WebSocket) never decodes: it
//! hands each payload to a decoder thread over a bounded [`Handoff`], so heartbeats and pings
//! are answered however busy the aggregator is, and a backlog costs a counted drop rather than
//! memory.

pub mod publish;
pub mod ws_client;
pub mod zmq_client;

use crate::decode::{self, DecodeOptions, Recording};
use crate::source::{SourceHealth, now};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use tally_core::Engine;

/// Why a hub client could not start (a bad address; anything else is retried, not fatal).
#[derive(Debug)]
pub enum HubError {
    Zmq { endpoint: String, error: zmq::Error },
    Url { url: String, reason: String },
    Thread(std::io::Error),
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubError::Zmq { endpoint, error } => write!(
                f,
                "cannot subscribe to ZeroMQ {endpoint}: {error} (expected e.g. --zmq tcp://127.0.0.1:6000)"
            ),
            HubError::Url { url, reason } => write!(
                f,
                "cannot subscribe to {url}: {reason} (expected e.g. --ws ws://127.0.0.1:5555/ws)"
            ),
            HubError::Thread(error) => write!(f, "cannot start a hub client: {error}"),
        }
    }
}

impl std::error::Error for HubError {}

/// Bounds on what one hub connection may make tally hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubLimits {
    /// The largest message (ZeroMQ) or WebSocket message accepted.
    pub max_message: usize,
    /// Messages waiting between the receiver and the decoder.
    pub queue_messages: usize,
    /// Bytes waiting between the receiver and the decoder.
    pub queue_bytes: usize,
    /// Messages libzmq queues for a ZeroMQ subscription before it drops (0: no limit).
    pub receive_hwm: i32,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            max_message: 1 << 20,
            queue_messages: 16 * 1024,
            queue_bytes: 32 << 20,
            receive_hwm: 10_000,
        }
    }
}

/// What every hub client feeds, by which rules, and when to stop.
#[derive(Clone, Debug)]
pub struct Intake {
    pub engine: Arc<Engine>,
    pub decode: DecodeOptions,
    pub limits: HubLimits,
    pub stop: Arc<AtomicBool>,
}

/// The receiver's end of the hand-off to a decoder thread.
#[derive(Debug)]
pub(crate) struct Handoff {
    sender: SyncSender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    health: Arc<SourceHealth>,
}

impl Handoff {
    /// Queues `payload` for decoding, or counts it as dropped if the queue is full.
    pub fn offer(&self, payload: Vec<u8>) {
        let len = payload.len();
        if self.queued_bytes.fetch_add(len, Relaxed) + len > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Relaxed);
            self.health.dropped(1);
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.sender.try_send(payload) {
            self.queued_bytes.fetch_sub(len, Relaxed);
            self.health.dropped(1);
        }
    }
}

/// Messages decoded between two flushes to the engine.
const DECODE_BATCH: usize = 256;

/// Starts the decoder thread of one hub client. It drains what is queued, and ends once the
/// [`Handoff`] is dropped and the queue is empty.
pub(crate) fn start_decoder(
    name: String,
    health: &Arc<SourceHealth>,
    intake: &Intake,
) -> std::io::Result<(Handoff, JoinHandle<()>)> {
    let (sender, receiver) = sync_channel(intake.limits.queue_messages);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let handoff = Handoff {
        sender,
        queued_bytes: Arc::clone(&queued_bytes),
        max_bytes: intake.limits.queue_bytes,
        health: Arc::clone(health),
    };
    let (engine, health, options) = (
        Arc::clone(&intake.engine),
        Arc::clone(health),
        intake.decode.clone(),
    );
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || decode_queued(&receiver, &queued_bytes, &engine, &health, &options))?;
    Ok((handoff, thread))
}

fn decode_queued(
    receiver: &Receiver<Vec<u8>>,
    queued_bytes: &AtomicUsize,
    engine: &Arc<Engine>,
    health: &SourceHealth,
    options: &DecodeOptions,
) {
    let mut recorder = engine.recorder();
    while let Ok(first) = receiver.recv() {
        let time = now();
        let mut sink = Recording::new(&mut recorder, time).tapped(options.republish.as_deref());
        let (mut messages, mut bytes) = (0, 0);
        let mut next = Some(first);
        while let Some(payload) = next {
            queued_bytes.fetch_sub(payload.len(), Relaxed);
            decode::decode(&payload, time, options, &mut sink);
            messages += 1;
            bytes += payload.len() as u64;
            next = if messages < DECODE_BATCH as u64 {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        let (events, bad) = (sink.events, sink.bad);
        recorder.flush();
        health.received(messages, bytes, events, bad, time);
    }
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
    use crate::source::SourceState;
    use tally_core::EngineConfig;

    #[test]
    fn urls_are_shown_without_credentials_or_queries() {
        assert_eq!(display_url("ws://127.0.0.1:5555/ws"), "ws://127.0.0.1:5555/ws");
        assert_eq!(
            display_url("wss://user:hunter2@hub.example:443/ws?access_token=s3cret#x"),
            "wss://hub.example:443/ws"
        );
        assert_eq!(display_url("tcp://10.0.0.1:6000"), "tcp://10.0.0.1:6000");
    }

    #[test]
    fn a_full_handoff_drops_and_counts_instead_of_growing() {
        let engine = Engine::new(EngineConfig::default(), now()).expect("engine");
        let health = Arc::new(SourceHealth::new("zmq", "tcp://x".into(), SourceState::Connected));
        let limits = HubLimits {
            queue_messages: 4,
            queue_bytes: 1 << 20,
            ..HubLimits::default()
        };
        let (sender, receiver) = sync_channel(limits.queue_messages);
        let handoff = Handoff {
            sender,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes: limits.queue_bytes,
            health: Arc::clone(&health),
        };
        for _ in 0..10 {
            handoff.offer(br#"{"account":"acme"}"#.to_vec());
        }
        assert_eq!(health.status(None).dropped, Some(6));
        assert_eq!(receiver.try_iter().count(), 4);
        // And by bytes: one message larger than what may wait is dropped too.
        handoff.offer(vec![b' '; 2 << 20]);
        assert_eq!(health.status(None).dropped, Some(7));
        drop(engine);
    }

    #[test]
    fn the_decoder_counts_everything_queued_before_it_ends() {
        let engine = Engine::new(EngineConfig::default(), now()).expect("engine");
        let health = Arc::new(SourceHealth::new("ws", "ws://x".into(), SourceState::Connected));
        let intake = Intake {
            engine: Arc::clone(&engine),
            decode: DecodeOptions::default(),
            limits: HubLimits::default(),
            stop: Arc::default(),
        };
        let (handoff, thread) = start_decoder("test-decoder".into(), &health, &intake).expect("starts");
        for _ in 0..1000 {
            handoff.offer(br#"{"type":"pageview","data":{"account":"acme"}}"#.to_vec());
        }
        handoff.offer(b"{not json".to_vec());
        drop(handoff);
        thread.join().expect("decoder ends");
        let status = health.status(None);
        assert_eq!((status.received, status.events, status.bad), (1001, 1000, 1));
        let snapshot = engine.snapshot(&tally_core::SnapshotRequest::default(), now());
        assert_eq!((snapshot.totals.total, snapshot.totals.rejected), (1000, 1));
    }
}
