//! `tally hub`: every accepted event re-published in the classic hub's JSON shape, on a ZeroMQ
//! PUB socket (one frame, `<type> <json>`) and to WebSocket clients (one text frame per event,
//! path `/ws`), so that dashboards elsewhere can subscribe with `--zmq` or `--ws`.
//!
//! Publishing never blocks a listener: the PUB socket has its own thread behind a bounded
//! queue, and WebSocket clients read from a bounded broadcast ring; a client that falls
//! [`WS_CLIENT_BACKLOG`] events behind is disconnected (as the classic hub does) and counted.

use crate::source::{BindError, SourceHealth, SourceState, now};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};
use tally_core::{Event, Value};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// Events a WebSocket client may fall behind before it is dropped. (The classic hub allowed
/// 512; a burst of a few thousand events is normal for a busy hub, and the ring is shared.)
pub const WS_CLIENT_BACKLOG: usize = 8192;
/// A client whose socket takes no data for this long has stopped reading: it is dropped.
const WS_WRITE_STALL: Duration = Duration::from_secs(2);
/// Frames written to a client before a flush.
const WS_BATCH: usize = 256;
/// Frames waiting for the ZeroMQ publisher thread.
const ZMQ_QUEUE: usize = 64 * 1024;
/// Messages the PUB socket keeps per slow subscriber before libzmq drops for it.
const ZMQ_SEND_HWM: i32 = 100_000;
/// WebSocket clients served at once.
const MAX_WS_CLIENTS: usize = 1024;

/// Where to publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishSettings {
    /// A ZeroMQ endpoint to bind a PUB socket on (`tcp://127.0.0.1:6000`).
    pub zmq: Option<String>,
    /// An address to serve WebSocket clients on, at path `/ws`.
    pub ws: Option<SocketAddr>,
}

impl PublishSettings {
    pub fn is_empty(&self) -> bool {
        self.zmq.is_none() && self.ws.is_none()
    }
}

/// The classic hub's event shape, keys in Go's sorted order, plus tally's optional metric
/// fields (see [`crate::decode`]).
#[derive(Serialize)]
struct HubJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    data: HubData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gauge: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms: Option<f64>,
    time: String,
    #[serde(rename = "type")]
    event_type: &'a str,
}

#[derive(Serialize)]
struct HubData<'a> {
    account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
}

/// One event as the classic hub would publish it.
pub fn hub_json(event: &Event<'_>) -> String {
    let mut json = HubJson {
        count: None,
        data: HubData {
            account: event.account,
            app: event.app,
        },
        delta: None,
        gauge: None,
        member: None,
        ms: None,
        time: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(event.time.as_millis()))
            .to_string(),
        event_type: event.event_type,
    };
    match event.value {
        Value::Count(1) => {}
        Value::Count(n) => json.count = Some(n),
        Value::Timing { ms, count } => {
            json.ms = Some(ms);
            json.count = (count != 1).then_some(count);
        }
        Value::Gauge(value) => json.gauge = Some(value),
        Value::GaugeDelta(delta) => json.delta = Some(delta),
        Value::SetMember(member) => json.member = Some(member),
    }
    serde_json::to_string(&json).unwrap_or_default()
}

/// Publishes accepted events; shared by every listener through [`crate::decode::DecodeOptions`].
#[derive(Debug)]
pub struct Republisher {
    zmq: Option<SyncSender<Vec<u8>>>,
    zmq_health: Option<Arc<SourceHealth>>,
    ws: Option<broadcast::Sender<Arc<str>>>,
}

/// Identity: two options are equal when they publish through the same publisher.
impl PartialEq for Republisher {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Republisher {}

impl Republisher {
    pub fn publish(&self, event: &Event<'_>) {
        let json = hub_json(event);
        if let (Some(queue), Some(health)) = (&self.zmq, &self.zmq_health) {
            let mut frame = Vec::with_capacity(event.event_type.len() + 1 + json.len());
            frame.extend_from_slice(event.event_type.as_bytes());
            frame.push(b' ');
            frame.extend_from_slice(json.as_bytes());
            if let Err(TrySendError::Full(_)) = queue.try_send(frame) {
                health.dropped(1);
            }
        }
        if let Some(ws) = &self.ws {
            // No receivers is not an error worth a count: nobody is watching.
            let _ = ws.send(Arc::from(json));
        }
    }
}

/// The running publishers.
#[derive(Debug)]
pub struct Publishers {
    pub republisher: Arc<Republisher>,
    health: Vec<Arc<SourceHealth>>,
    zmq_thread: Option<JoinHandle<()>>,
    ws_local: Option<SocketAddr>,
}

#[derive(Debug)]
pub enum PublishError {
    Zmq(String, zmq::Error),
    Ws(BindError),
    Thread(std::io::Error),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Zmq(endpoint, zmq::Error::EADDRINUSE) => write!(
                f,
                "ZeroMQ {endpoint} is already in use (another hub?): publish elsewhere with --publish-zmq tcp://127.0.0.1:PORT"
            ),
            PublishError::Zmq(endpoint, error) => write!(
                f,
                "cannot publish on ZeroMQ {endpoint}: {error} (expected e.g. tcp://127.0.0.1:6000)"
            ),
            PublishError::Ws(error) => error.fmt(f),
            PublishError::Thread(error) => write!(f, "cannot start the publisher: {error}"),
        }
    }
}

impl std::error::Error for PublishError {}

impl Publishers {
    pub fn start(
        settings: &PublishSettings,
        context: &zmq::Context,
        runtime: Option<&tokio::runtime::Handle>,
        stop: &Arc<AtomicBool>,
    ) -> Result<Self, PublishError> {
        let mut health = vec![];
        let (mut zmq_queue, mut zmq_health, mut zmq_thread) = (None, None, None);
        if let Some(endpoint) = &settings.zmq {
            let fail = |error| PublishError::Zmq(endpoint.clone(), error);
            let socket = context.socket(zmq::PUB).map_err(fail)?;
            socket.set_linger(0).map_err(fail)?;
            socket.set_sndhwm(ZMQ_SEND_HWM).map_err(fail)?;
            socket.bind(endpoint).map_err(fail)?;
            let bound = socket
                .get_last_endpoint()
                .ok()
                .and_then(Result::ok)
                .unwrap_or_else(|| endpoint.clone());
            let source = Arc::new(SourceHealth::new("publish-zmq", bound, SourceState::Listening));
            let (sender, receiver) = sync_channel(ZMQ_QUEUE);
            let (stop, thread_health) = (Arc::clone(stop), Arc::clone(&source));
            let thread = std::thread::Builder::new()
                .name("tally-zmq-pub".into())
                .spawn(move || publish_zmq(&socket, &receiver, &thread_health, &stop))
                .map_err(PublishError::Thread)?;
            health.push(Arc::clone(&source));
            (zmq_queue, zmq_health, zmq_thread) = (Some(sender), Some(source), Some(thread));
        }
        let (mut ws, mut ws_local) = (None, None);
        if let (Some(address), Some(runtime)) = (settings.ws, runtime) {
            let fail = |error| PublishError::Ws(BindError::tcp(address, error));
            let listener = std::net::TcpListener::bind(address).map_err(fail)?;
            listener.set_nonblocking(true).map_err(fail)?;
            let local = listener.local_addr().map_err(fail)?;
            let _entered = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).map_err(fail)?;
            let source = Arc::new(SourceHealth::new(
                "serve-ws",
                format!("ws://{local}/ws"),
                SourceState::Listening,
            ));
            let (sender, _) = broadcast::channel(WS_CLIENT_BACKLOG);
            runtime.spawn(serve_ws(listener, sender.clone(), Arc::clone(&source)));
            health.push(Arc::clone(&source));
            (ws, ws_local) = (Some(sender), Some(local));
        }
        Ok(Publishers {
            republisher: Arc::new(Republisher {
                zmq: zmq_queue,
                zmq_health,
                ws,
            }),
            health,
            zmq_thread,
            ws_local,
        })
    }

    /// The address WebSocket clients connect to (useful when the port was 0).
    pub fn ws_local(&self) -> Option<SocketAddr> {
        self.ws_local
    }

    pub fn health(&self) -> &[Arc<SourceHealth>] {
        &self.health
    }

    /// Waits for the publisher thread, which ends once the stop flag is set.
    pub fn join(self) {
        if let Some(thread) = self.zmq_thread {
            let _ = thread.join();
        }
        for health in &self.health {
            health.set_state(SourceState::Stopped);
        }
    }
}

fn publish_zmq(socket: &zmq::Socket, queue: &Receiver<Vec<u8>>, health: &SourceHealth, stop: &AtomicBool) {
    while !stop.load(Relaxed) {
        let frame = match queue.recv_timeout(Duration::from_millis(200)) {
            Ok(frame) => frame,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let len = frame.len() as u64;
        // A PUB socket never blocks: at its high-water mark libzmq drops for that subscriber.
        match socket.send(frame, zmq::DONTWAIT) {
            Ok(()) => health.received(1, len, 1, 0, now()),
            Err(_) => health.dropped(1),
        }
    }
}

async fn serve_ws(
    listener: tokio::net::TcpListener,
    events: broadcast::Sender<Arc<str>>,
    health: Arc<SourceHealth>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_WS_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!("WebSocket accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            health.set_note(format!("refused WebSocket clients beyond {MAX_WS_CLIENTS}"));
            continue;
        };
        let (events, health) = (events.subscribe(), Arc::clone(&health));
        tokio::spawn(async move {
            health.connected(1);
            serve_client(stream, events, &health).await;
            health.connected(-1);
            drop(slot);
        });
    }
}

/// Only `/ws` is a WebSocket endpoint, as on the classic hub.
#[allow(clippy::result_large_err)] // The signature is tungstenite's.
fn check_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == "/ws" {
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(Some("tally serves WebSocket clients at /ws\n".into()));
    *refusal.status_mut() = StatusCode::NOT_FOUND;
    Err(refusal)
}

async fn serve_client(
    stream: tokio::net::TcpStream,
    mut events: broadcast::Receiver<Arc<str>>,
    health: &SourceHealth,
) {
    let Ok(Ok(client)) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::accept_hdr_async(stream, check_path),
    )
    .await
    else {
        return;
    };
    let (mut outgoing, mut incoming) = client.split();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(first) => {
                    // Whatever else is waiting goes out with it, in one flush.
                    let mut next = Some(first);
                    let (mut sent, mut bytes) = (0u64, 0u64);
                    let write = async {
                        while let Some(json) = next.take() {
                            outgoing.feed(Message::text(&*json)).await?;
                            sent += 1;
                            bytes += json.len() as u64;
                            if sent < WS_BATCH as u64 {
                                next = events.try_recv().ok();
                            }
                        }
                        outgoing.flush().await
                    };
                    match tokio::time::timeout(WS_WRITE_STALL, write).await {
                        Ok(Ok(())) => health.received(sent, bytes, sent, 0, now()),
                        Ok(Err(_)) => return,
                        Err(_) => {
                            health.dropped(events.len() as u64);
                            health.set_note("dropped a client that stopped reading".into());
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    health.dropped(missed);
                    health.set_note(format!(
                        "dropped a client that fell {WS_CLIENT_BACKLOG} events behind"
                    ));
                    let _ = outgoing.close().await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // Client messages are ignored; the read keeps pings answered and notices a close.
            message = incoming.next() => if matches!(message, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                return;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Timestamp;

    fn event(value: Value<'_>) -> Event<'_> {
        Event {
            account: "acme",
            event_type: "pageview",
            app: Some("shop"),
            value,
            time: Timestamp::from_millis(1_394_392_647_500),
        }
    }

    #[test]
    fn events_are_published_in_the_classic_shape() {
        assert_eq!(
            hub_json(&event(Value::Count(1))),
            r#"{"data":{"account":"acme","app":"shop"},"time":"2014-03-09T19:17:27.500Z","type":"pageview"}"#
        );
        assert!(hub_json(&event(Value::Count(5))).starts_with(r#"{"count":5,"data""#));
        assert!(hub_json(&event(Value::Timing { ms: 12.5, count: 2 })).contains(r#""ms":12.5"#));
        assert!(hub_json(&event(Value::SetMember("u1"))).contains(r#""member":"u1""#));
    }

    /// What tally publishes, tally reads back as the same event.
    #[test]
    fn published_events_decode_to_themselves() {
        use crate::decode::{DecodeOptions, decode, testing::Collected};
        for value in [
            Value::Count(1),
            Value::Count(7),
            Value::Timing { ms: 3.25, count: 4 },
            Value::Gauge(-2.5),
            Value::GaugeDelta(4.0),
            Value::SetMember("visitor-9"),
        ] {
            let original = event(value);
            let mut got = Collected::default();
            let json = hub_json(&original);
            decode(
                json.as_bytes(),
                original.time,
                &DecodeOptions::default(),
                &mut got,
            );
            assert_eq!(got.rejects, [], "{json}");
            assert_eq!(
                got.events,
                [(
                    "acme".to_owned(),
                    "pageview".to_owned(),
                    Some("shop".to_owned()),
                    format!("{value:?}")
                )],
                "{json}"
            );
        }
    }
}
