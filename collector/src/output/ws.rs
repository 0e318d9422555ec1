//! A WebSocket server (`--serve-ws`): every accepted event as one text frame in the classic
//! hub's JSON shape, at path `/ws`, for dashboards that subscribe with `--ws`.
//!
//! Clients read from a bounded broadcast ring, so publishing never blocks an input; a client
//! that falls [`WS_CLIENT_BACKLOG`] events behind, or stops reading, is disconnected (as the
//! classic hub does) and counted.
//!
//! Who may subscribe: a browser sends an `Origin`, and any page on any site could otherwise
//! open `ws://127.0.0.1:5555/ws` and read every event, so browser origins are refused unless
//! allowed by name ([`ServeOptions::allowed_origins`]) or the server's own (the `Host` asked
//! for, which is what tally's own hub client sends); clients without an `Origin` are not
//! browsers and are served. With read tokens, a subscriber also needs one
//! (`Authorization: Bearer TOKEN` or `?access_token=TOKEN`). Connections take [`Slots`]: the
//! server pings every half idle timeout, a client that answers nothing for the idle timeout is
//! closed, and at the cap the quietest gives way.

use super::{Output, PublishError};
use crate::bind::BindError;
use crate::decode::Tokens;
use crate::encode::Outgoing;
use crate::health::Health;
use crate::slots::{ConnectionLimits, Slot, Slots};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tally_core::{OutputKind, OutputStatus, SourceState};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Events a WebSocket client may fall behind before it is dropped. (The classic hub allowed
/// 512; a burst of a few thousand events is normal for a busy hub, and the ring is shared.)
pub const WS_CLIENT_BACKLOG: usize = 8192;
/// A client whose socket takes no data for this long has stopped reading: it is dropped.
const WS_WRITE_STALL: Duration = Duration::from_secs(2);
/// Frames written to a client before a flush.
const WS_BATCH: usize = 256;
/// A client has this long to finish its handshake.
const WS_HANDSHAKE: Duration = Duration::from_secs(5);
/// Subscribers send little (pongs, a close): what one may send us, and what we buffer for
/// reading and writing. tungstenite's defaults (128 KiB each way) are sized for one busy
/// connection, and would make a thousand idle subscribers cost 256 MiB.
const WS_MAX_INCOMING: usize = 64 * 1024;
const WS_READ_BUFFER: usize = 4 * 1024;
const WS_WRITE_BUFFER: usize = 16 * 1024;

fn subscriber_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(Some(WS_MAX_INCOMING))
        .max_frame_size(Some(WS_MAX_INCOMING))
}

/// Who may subscribe, and how many at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeOptions {
    pub limits: ConnectionLimits,
    /// Browser origins allowed to subscribe (`https://dash.example.com`; `*` for any).
    pub allowed_origins: Vec<String>,
    /// Tokens subscribers must present, if any (apart from the producers' `--token`).
    pub read_tokens: Option<Arc<Tokens>>,
}

impl ServeOptions {
    /// Whether a handshake may go on: `Err` holds the status and the reason to answer.
    fn admit(&self, request: &Request) -> Result<(), (StatusCode, &'static str)> {
        if request.uri().path() != "/ws" {
            return Err((StatusCode::NOT_FOUND, "tally serves WebSocket clients at /ws\n"));
        }
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(origin) = request
            .headers()
            .get(tokio_tungstenite::tungstenite::http::header::ORIGIN)
        {
            // The server's own origin (what tally's hub client sends) is same-site.
            let own = |origin: &str| {
                let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
                header("host").is_some_and(|host| host.eq_ignore_ascii_case(authority))
            };
            let allowed = origin.to_str().is_ok_and(|origin| {
                own(origin)
                    || (self.allowed_origins.iter()).any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
            });
            if !allowed {
                return Err((
                    StatusCode::FORBIDDEN,
                    "this origin may not subscribe (tally hub --ws-allow-origin ORIGIN)\n",
                ));
            }
        }
        if let Some(tokens) = &self.read_tokens {
            let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
            let query = request.uri().query().unwrap_or_default();
            let in_query = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("access_token="));
            if !bearer
                .or(in_query)
                .is_some_and(|token| tokens.contains(token.trim()))
            {
                return Err((StatusCode::UNAUTHORIZED, "a read token is needed\n"));
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct WsServer {
    events: broadcast::Sender<Arc<str>>,
    health: Arc<Health>,
}

impl WsServer {
    /// Listens on `address`, serving clients on `runtime` (until it shuts down).
    pub fn start(
        runtime: &tokio::runtime::Handle,
        address: SocketAddr,
        options: &ServeOptions,
    ) -> Result<Self, PublishError> {
        let fail = |error| PublishError::Ws(BindError::tcp(address, error));
        let _entered = runtime.enter();
        let listener = crate::bind::listen_tcp(address).map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        let health = Arc::new(Health::new(format!("ws://{local}/ws"), SourceState::Listening));
        let (events, _) = broadcast::channel(WS_CLIENT_BACKLOG);
        let slots = Slots::new(options.limits, Arc::clone(&health));
        runtime.spawn(serve_ws(
            listener,
            events.clone(),
            slots,
            Arc::new(options.clone()),
        ));
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
    slots: Arc<Slots>,
    options: Arc<ServeOptions>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!("WebSocket accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.admit() else {
            continue;
        };
        let (events, options, health) = (
            events.subscribe(),
            Arc::clone(&options),
            Arc::clone(slots.health()),
        );
        tokio::spawn(async move { serve_client(stream, events, &health, &options, slot).await });
    }
}

async fn serve_client(
    stream: tokio::net::TcpStream,
    mut events: broadcast::Receiver<Arc<str>>,
    health: &Health,
    options: &ServeOptions,
    slot: Slot,
) {
    // Only `/ws` is a WebSocket endpoint, as on the classic hub; origins and tokens as above.
    #[allow(clippy::result_large_err)] // The signature is tungstenite's.
    let check = |request: &Request, response: Response| match options.admit(request) {
        Ok(()) => Ok(response),
        Err((status, why)) => {
            if status != StatusCode::NOT_FOUND {
                health.refused();
                health.set_note(format!("refused a client: {}", why.trim_end()));
            }
            let mut refusal = ErrorResponse::new(Some(why.into()));
            *refusal.status_mut() = status;
            Err(refusal)
        }
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(subscriber_config()));
    let Ok(Ok(client)) = tokio::time::timeout(WS_HANDSHAKE, handshake).await else {
        return;
    };
    let (mut outgoing, mut incoming) = client.split();
    let mut ping = tokio::time::interval(ping_interval(&options.limits));
    ping.tick().await;
    // One wait for the whole connection, not one per frame.
    let ended = slot.ended();
    tokio::pin!(ended);
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
            // Client messages are ignored but for their sign of life; the read keeps pings
            // answered and notices a close.
            message = incoming.next() => {
                if matches!(message, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                    return;
                }
                slot.active();
            }
            _ = ping.tick() => {
                if tokio::time::timeout(WS_WRITE_STALL, outgoing.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
            }
            _ = &mut ended => {
                let _ = outgoing.close().await;
                return;
            }
        }
    }
}

/// Pings go out twice per idle timeout, so that a live client's pongs keep it open (and
/// every 30 s without one, so that a dead peer is still noticed by TCP).
fn ping_interval(limits: &ConnectionLimits) -> Duration {
    match limits.idle {
        Duration::ZERO => Duration::from_secs(30),
        idle => (idle / 2).max(Duration::from_millis(100)),
    }
}
