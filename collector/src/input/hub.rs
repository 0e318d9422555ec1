//! What the hub clients ([`super::zmq`], [`super::ws`]) share.
//!
//! A hub client's receiver (a thread for ZeroMQ, a task for WebSocket) never decodes: it
//! hands each payload to a decoder thread over a bounded `Handoff`, so heartbeats and pings
//! are answered however busy the aggregator is, and a backlog costs a counted drop rather than
//! memory.

use super::Source;
use crate::health::Health;
use crate::ingest::{Ingest, Intake};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use tally_core::{SourceKind, SourceState};

/// Why a hub client could not start (a bad address; anything else is retried, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("cannot subscribe to ZeroMQ {endpoint}: {error} (expected e.g. --zmq tcp://127.0.0.1:6000)")]
    Zmq {
        endpoint: String,
        #[source]
        error: zmq::Error,
    },
    #[error("cannot subscribe to {url}: {reason} (expected e.g. --ws ws://127.0.0.1:5555/ws)")]
    Url { url: String, reason: String },
    #[error("cannot start a hub client: {0}")]
    Thread(#[source] std::io::Error),
}

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

/// The receiver's end of the hand-off to a decoder thread.
#[derive(Debug)]
pub(crate) struct Handoff {
    sender: SyncSender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    health: Arc<Health>,
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

/// A hub client that runs as a task on the collector's runtime (WebSocket, SSE), with its
/// decoder thread.
#[derive(Debug)]
pub struct TaskSubscriber {
    pub(crate) kind: SourceKind,
    pub(crate) health: Arc<Health>,
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) decoder: JoinHandle<()>,
}

impl Source for TaskSubscriber {
    fn kind(&self) -> SourceKind {
        self.kind
    }

    fn health(&self) -> &Health {
        &self.health
    }

    /// Stops the task and waits for the decoder to finish what was received.
    fn stop(self: Box<Self>) {
        self.task.abort();
        // The decoder ends when the task's hand-off is dropped, which the runtime does once the
        // task is cancelled.
        let _ = self.decoder.join();
        self.health.set_state(SourceState::Stopped);
    }
}

/// Messages decoded between two flushes to the engine.
const DECODE_BATCH: usize = 256;

/// Starts the decoder thread of one hub client. It drains what is queued, and ends once the
/// [`Handoff`] is dropped and the queue is empty.
pub(crate) fn start_decoder(
    name: String,
    health: &Arc<Health>,
    ingest: &Ingest,
    limits: &HubLimits,
) -> std::io::Result<(Handoff, JoinHandle<()>)> {
    let (sender, receiver) = sync_channel(limits.queue_messages);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let handoff = Handoff {
        sender,
        queued_bytes: Arc::clone(&queued_bytes),
        max_bytes: limits.queue_bytes,
        health: Arc::clone(health),
    };
    let intake = ingest.intake(health);
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || decode_queued(&receiver, &queued_bytes, intake))?;
    Ok((handoff, thread))
}

fn decode_queued(receiver: &Receiver<Vec<u8>>, queued_bytes: &AtomicUsize, mut intake: Intake) {
    while let Ok(first) = receiver.recv() {
        intake.batch(|batch| {
            let mut next = Some(first);
            let mut messages = 0;
            while let Some(payload) = next {
                queued_bytes.fetch_sub(payload.len(), Relaxed);
                batch.decode(&payload);
                batch.received(payload.len());
                messages += 1;
                next = if messages < DECODE_BATCH {
                    receiver.try_recv().ok()
                } else {
                    None
                };
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeOptions;
    use crate::health::now;
    use tally_core::{Engine, EngineConfig, SourceKind, SourceState};

    #[test]
    fn a_full_handoff_drops_and_counts_instead_of_growing() {
        let engine = Engine::new(EngineConfig::default(), now()).expect("engine");
        let health = Arc::new(Health::new("tcp://x".into(), SourceState::Connected));
        let dropped = || health.source_status(SourceKind::Zmq).dropped;
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
        assert_eq!(dropped(), Some(6));
        assert_eq!(receiver.try_iter().count(), 4);
        // And by bytes: one message larger than what may wait is dropped too.
        handoff.offer(vec![b' '; 2 << 20]);
        assert_eq!(dropped(), Some(7));
        drop(engine);
    }

    #[test]
    fn the_decoder_counts_everything_queued_before_it_ends() {
        let engine = Engine::new(EngineConfig::default(), now()).expect("engine");
        let health = Arc::new(Health::new("ws://x".into(), SourceState::Connected));
        let ingest = Ingest::new(Arc::clone(&engine), DecodeOptions::default());
        let (handoff, thread) =
            start_decoder("test-decoder".into(), &health, &ingest, &HubLimits::default()).expect("starts");
        for _ in 0..1000 {
            handoff.offer(br#"{"type":"pageview","data":{"account":"acme"}}"#.to_vec());
        }
        handoff.offer(b"{not json".to_vec());
        drop(handoff);
        thread.join().expect("decoder ends");
        let status = health.source_status(SourceKind::Ws);
        assert_eq!((status.received, status.events, status.bad), (1001, 1000, 1));
        let snapshot = engine.snapshot(&tally_core::SnapshotRequest::default(), now());
        assert_eq!((snapshot.totals.total, snapshot.totals.rejected), (1000, 1));
    }
}
