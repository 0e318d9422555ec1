//! A ZeroMQ PUB socket (`--publish-zmq`): every accepted event as one frame
//! `<type> <json>`, the classic hub's shape, for dashboards that subscribe with `--zmq`.
//!
//! The socket has its own thread behind a bounded queue, so publishing never blocks an input;
//! a full queue is a counted drop.

use super::{Output, PublishError};
use crate::encode::Outgoing;
use crate::health::Health;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tally_core::{OutputKind, OutputStatus, SourceState};

/// Frames waiting for the publisher thread.
const QUEUE: usize = 64 * 1024;
/// Messages the PUB socket keeps per slow subscriber before libzmq drops for it.
const SEND_HWM: i32 = 100_000;

#[derive(Debug)]
pub struct ZmqPublisher {
    queue: SyncSender<Vec<u8>>,
    health: Arc<Health>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ZmqPublisher {
    /// Binds a PUB socket on `endpoint`; its thread ends once `stop` is set.
    pub fn start(
        context: &zmq::Context,
        endpoint: &str,
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
        socket.bind(endpoint).map_err(fail)?;
        let bound = socket
            .get_last_endpoint()
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| endpoint.to_owned());
        let health = Arc::new(Health::new(bound, SourceState::Listening));
        let (queue, receiver) = sync_channel(QUEUE);
        let (stop, thread_health) = (Arc::clone(stop), Arc::clone(&health));
        let thread = std::thread::Builder::new()
            .name("tally-zmq-pub".into())
            .spawn(move || publish_zmq(&socket, &receiver, &thread_health, &stop))
            .map_err(PublishError::Thread)?;
        Ok(ZmqPublisher {
            queue,
            health,
            thread: Mutex::new(Some(thread)),
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
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
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
