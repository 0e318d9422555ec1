//! A WebSocket server (`--serve-ws`): every accepted event as one text frame in the classic
//! hub's JSON shape, at path `/ws`, for dashboards that subscribe with `--ws`.
//!
//! Clients read from a bounded broadcast ring, so publishing never blocks an input; a client
//! that falls [`WS_CLIENT_BACKLOG`] events behind, or stops reading, is disconnected (as the
//! classic hub does) and counted.

use super::{Output, PublishError};
use crate::bind::BindError;
use crate::encode::Outgoing;
use crate::health::Health;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tally_core::{OutputKind, OutputStatus, SourceState};
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
/// WebSocket clients served at once.
const MAX_WS_CLIENTS: usize = 1024;

#[derive(Debug)]
pub struct WsServer {
    events: broadcast::Sender<Arc<str>>,
    health: Arc<Health>,
}

impl WsServer {
    /// Listens on `address`, serving clients on `runtime` (until it shuts down).
    pub fn start(runtime: &tokio::runtime::Handle, address: SocketAddr) -> Result<Self, PublishError> {
        let fail = |error| PublishError::Ws(BindError::tcp(address, error));
        let listener = std::net::TcpListener::bind(address).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        let _entered = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(fail)?;
        let health = Arc::new(Health::new(format!("ws://{local}/ws"), SourceState::Listening));
        let (events, _) = broadcast::channel(WS_CLIENT_BACKLOG);
        runtime.spawn(serve_ws(listener, events.clone(), Arc::clone(&health)));
        Ok(WsServer { events, health })
    }
}

impl Output for WsServer {
    fn kind(&self) -> OutputKind {
        OutputKind::ServeWs
    }

    fn publish(&self, event: &mut Outgoing<'_>) {
        // No receivers is not an error worth a count: nobody is watching.
        let _ = self.events.send(Arc::from(event.hub_json()));
    }

    fn status(&self) -> OutputStatus {
        self.health.output_status(self.kind())
    }

    /// Clients are served until the runtime shuts down.
    fn stop(&self) {
        self.health.set_state(SourceState::Stopped);
    }
}

async fn serve_ws(
    listener: tokio::net::TcpListener,
    events: broadcast::Sender<Arc<str>>,
    health: Arc<Health>,
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
    health: &Health,
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
                        Ok(Ok(())) => health.published(sent, bytes),
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
