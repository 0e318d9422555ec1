//! A ZeroMQ PUB socket (`--publish-zmq`): every accepted event as one frame
//! `<type> <json>`, the classic hub's shape, for dashboards that subscribe with `--zmq`.
//!
//! The socket has its own thread behind a bounded queue, so publishing never blocks an input;
//! a full queue is a counted drop.
//!
//! # What one subscriber can cost
//! libzmq keeps a queue per subscriber and, at its high-water mark, silently drops for that
//! subscriber alone. So the mark is sized in bytes ([`SUBSCRIBER_BYTES`] over a typical frame,
//! [`SEND_HWM`] messages), heartbeats disconnect a subscriber that stops reading (its pings go
//! unanswered for [`HEARTBEAT_TIMEOUT_MS`]), and subscribers are capped: a second thread
//! watches the socket's monitor (who connected, who left) and answers libzmq's ZAP requests,
//! refusing newcomers at the cap (counted as `refused`). libzmq does not say how many messages
//! it dropped for a slow subscriber: at most [`SEND_HWM`] are held for it, and it is gone
//! within [`HEARTBEAT_TIMEOUT_MS`] of falling silent, which `connections` shows.

use super::{Output, PublishError};
use crate::encode::Outgoing;
use crate::health::Health;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tally_core::{OutputKind, OutputStatus, SourceState};

/// Frames waiting for the publisher thread.
const QUEUE: usize = 64 * 1024;
/// What libzmq may hold for one subscriber that is not keeping up.
pub const SUBSCRIBER_BYTES: usize = 1 << 20;
/// A frame as libzmq holds it: a classic event (~200 bytes) and its message header.
const TYPICAL_FRAME: usize = 256;
/// Messages the PUB socket keeps per slow subscriber before libzmq drops for it.
pub const SEND_HWM: i32 = (SUBSCRIBER_BYTES / TYPICAL_FRAME) as i32;
/// A subscriber is pinged this often, and dropped when it has not answered for
/// [`HEARTBEAT_TIMEOUT_MS`] (a stopped process, or one that stopped reading).
const HEARTBEAT_MS: i32 = 1000;
pub const HEARTBEAT_TIMEOUT_MS: i32 = 5000;
/// The largest message a subscriber may send us (subscriptions are a few bytes).
const MAX_INCOMING: i64 = 4096;
/// The ZAP domain that makes libzmq ask our handler about each subscriber.
const ZAP_DOMAIN: &str = "tally-publish";
/// Where libzmq sends ZAP requests (fixed by the ZAP specification, one per context).
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
/// Monitor sockets need unique in-process names.
static MONITORS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub struct ZmqPublisher {
    queue: SyncSender<Vec<u8>>,
    health: Arc<Health>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ZmqPublisher {
    /// Binds a PUB socket on `endpoint` for at most `max_subscribers`; its threads end once
    /// `stop` is set.
    pub fn start(
        context: &zmq::Context,
        endpoint: &str,
        max_subscribers: usize,
        stop: &Arc<AtomicBool>,
    ) -> Result<Self, PublishError> {
        let fail = |error| match error {
            zmq::Error::EADDRINUSE => PublishError::ZmqInUse(endpoint.to_owned()),
            error => PublishError::Zmq {
                endpoint: endpoint.to_owned(),
                error,
            },
        };
        let socket = context.socket(zmq::PUB).map_err(fail)?;
        socket.set_linger(0).map_err(fail)?;
        socket.set_sndhwm(SEND_HWM).map_err(fail)?;
        socket.set_maxmsgsize(MAX_INCOMING).map_err(fail)?;
        socket.set_heartbeat_ivl(HEARTBEAT_MS).map_err(fail)?;
        socket.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS).map_err(fail)?;
        let gate = Gate::start(context, &socket, max_subscribers).map_err(fail)?;
        socket.bind(endpoint).map_err(fail)?;
        let bound = socket
            .get_last_endpoint()
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| endpoint.to_owned());
        let health = Arc::new(Health::new(bound, SourceState::Listening));
        let (queue, receiver) = sync_channel(QUEUE);
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(PublishError::Thread)
        };
        let (stop_publish, publish_health) = (Arc::clone(stop), Arc::clone(&health));
        let publisher = spawn(
            "tally-zmq-pub",
            Box::new(move || publish_zmq(&socket, &receiver, &publish_health, &stop_publish)),
        )?;
        let (stop_gate, gate_health) = (Arc::clone(stop), Arc::clone(&health));
        let gatekeeper = spawn(
            "tally-zmq-gate",
            Box::new(move || gate.run(&gate_health, &stop_gate)),
        )?;
        Ok(ZmqPublisher {
            queue,
            health,
            threads: Mutex::new(vec![publisher, gatekeeper]),
        })
    }
}

impl Output for ZmqPublisher {
    fn kind(&self) -> OutputKind {
        OutputKind::PublishZmq
    }

    fn publish(&self, event: &mut Outgoing<'_>) {
        let event_type = event.event.event_type;
        let json = event.hub_json();
        let mut frame = Vec::with_capacity(event_type.len() + 1 + json.len());
        frame.extend_from_slice(event_type.as_bytes());
        frame.push(b' ');
        frame.extend_from_slice(json.as_bytes());
        if let Err(TrySendError::Full(_)) = self.queue.try_send(frame) {
            self.health.dropped(1);
        }
    }

    fn status(&self) -> OutputStatus {
        self.health.output_status(self.kind())
    }

    fn stop(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
        self.health.set_state(SourceState::Stopped);
    }
}

fn publish_zmq(socket: &zmq::Socket, queue: &Receiver<Vec<u8>>, health: &Health, stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        let frame = match queue.recv_timeout(Duration::from_millis(200)) {
            Ok(frame) => frame,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let len = frame.len() as u64;
        // A PUB socket never blocks: at its high-water mark libzmq drops for that subscriber.
        match socket.send(frame, zmq::DONTWAIT) {
            Ok(()) => health.published(1, len),
            Err(_) => health.dropped(1),
        }
    }
}

/// Who is subscribed: the PUB socket's monitor, and the ZAP handler that admits subscribers.
struct Gate {
    monitor: zmq::Socket,
    zap: zmq::Socket,
    max_subscribers: usize,
    /// Connections accepted and not yet gone, by the descriptor libzmq reports (handshake
    /// events carry none, so a connection counts from its accept).
    connections: HashSet<i32>,
}

impl Gate {
    /// Must run before `socket` binds, so that no subscriber arrives unwatched.
    fn start(context: &zmq::Context, socket: &zmq::Socket, max_subscribers: usize) -> zmq::Result<Gate> {
        let zap = context.socket(zmq::REP)?;
        zap.set_linger(0)?;
        zap.bind(ZAP_ENDPOINT)?;
        socket.set_zap_domain(ZAP_DOMAIN)?;
        let endpoint = format!("inproc://tally-pub-monitor-{}", MONITORS.fetch_add(1, Relaxed));
        let events = zmq::SocketEvent::ACCEPTED as i32 | zmq::SocketEvent::DISCONNECTED as i32;
        socket.monitor(&endpoint, events)?;
        let monitor = context.socket(zmq::PAIR)?;
        monitor.set_linger(0)?;
        monitor.connect(&endpoint)?;
        Ok(Gate {
            monitor,
            zap,
            max_subscribers,
            connections: HashSet::new(),
        })
    }

    fn run(mut self, health: &Health, stop: &AtomicBool) {
        while !stop.load(Relaxed) {
            let mut items = [
                self.monitor.as_poll_item(zmq::POLLIN),
                self.zap.as_poll_item(zmq::POLLIN),
            ];
            if zmq::poll(&mut items, 200).is_err() {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let requests = items[1].is_readable();
            // Always the monitor first: libzmq reports a connection's accept before it asks
            // about it, and a departure frees a slot for the next request.
            self.connection_changes(health);
            if requests {
                self.answer(health);
            }
        }
    }

    fn connection_changes(&mut self, health: &Health) {
        while let Ok(frames) = self.monitor.recv_multipart(zmq::DONTWAIT) {
            let Some(header) = frames.first().filter(|f| f.len() >= 6) else {
                continue;
            };
            let event = zmq::SocketEvent::from_raw(u16::from_ne_bytes([header[0], header[1]]));
            let fd = i32::from_ne_bytes([header[2], header[3], header[4], header[5]]);
            match event {
                zmq::SocketEvent::ACCEPTED if self.connections.insert(fd) => health.connected(1),
                zmq::SocketEvent::DISCONNECTED if self.connections.remove(&fd) => health.connected(-1),
                _ => {}
            }
        }
    }

    /// Answers ZAP requests (RFC 27): `200` while there is room, `400` at the cap. The asking
    /// connection is already counted, so there is room while the count is within the cap.
    fn answer(&mut self, health: &Health) {
        while let Ok(request) = self.zap.recv_multipart(zmq::DONTWAIT) {
            let request_id = request.get(1).cloned().unwrap_or_default();
            let (status, text): (&[u8], &[u8]) = if self.connections.len() <= self.max_subscribers {
                (b"200", b"OK")
            } else {
                health.refused();
                health.set_note(format!("refused subscribers beyond {}", self.max_subscribers));
                (b"400", b"too many subscribers")
            };
            let reply: [&[u8]; 6] = [b"1.0", &request_id, status, text, b"", b""];
            if self.zap.send_multipart(reply, 0).is_err() {
                return;
            }
        }
    }
}
