//! Subscribing to a WebSocket hub (`ws://` or `wss://` through rustls).
//!
//! One task per hub, on the collector's runtime: connect (always with an `Origin` header: the
//! classic hub refuses handshakes without one), read frames into the decoder's hand-off,
//! ping the hub and give up on it after [`IDLE_TIMEOUT`] of silence, then reconnect with
//! capped, jittered exponential backoff. A hub whose connections keep ending in oversize or
//! invalid frames trips a breaker that waits [`BREAKER_PAUSE`] before trying again.

use super::hub::{Handoff, HubError, HubLimits, TaskSubscriber, start_decoder};
use crate::backoff::Backoff;
use crate::health::Health;
use crate::health::display_url;
use crate::ingest::Ingest;
use futures_util::{SinkExt, StreamExt};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tally_core::{Rejection, SourceKind, SourceState};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

/// A connection that lasted this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);
/// A hub silent this long (not even answering pings) is treated as dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const PING_EVERY: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in a row ending in oversize or invalid frames before the breaker trips.
const BREAKER_AFTER: u32 = 3;
pub const BREAKER_PAUSE: Duration = Duration::from_secs(30);
/// How often a waiting task looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// A header sent with the handshake (`Authorization: Bearer ...`). Its value never appears in
/// `Debug` output, logs or the UIs.
#[derive(Clone, PartialEq, Eq)]
pub struct WsHeader {
    name: HeaderName,
    value: HeaderValue,
}

impl WsHeader {
    /// Its name and value, to send (never to show: see `Debug`).
    pub fn parts(&self) -> (&HeaderName, &HeaderValue) {
        (&self.name, &self.value)
    }
}

impl fmt::Debug for WsHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ***", self.name)
    }
}

impl FromStr for WsHeader {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, value) = text
            .split_once(':')
            .ok_or("expected `Name: value`, e.g. `Authorization: Bearer TOKEN`")?;
        // Errors never repeat the text: it may hold a secret.
        let name = HeaderName::from_str(name.trim())
            .map_err(|_| "what comes before `:` is not a header name".to_owned())?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of {name} holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok(WsHeader { name, value })
    }
}

/// Parses `--ws-header` for clap without the value in the error (clap's own message for a
/// bad value repeats it, and a header value is often a token).
#[derive(Clone, Copy, Debug, Default)]
pub struct WsHeaderParser;

impl clap::builder::TypedValueParser for WsHeaderParser {
    type Value = WsHeader;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<WsHeader, clap::Error> {
        let flag = arg.and_then(clap::Arg::get_long).unwrap_or("ws-header");
        let refuse = |why: &str| {
            let message = format!("invalid value for --{flag} (not shown: it may hold a secret): {why}\n");
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(command)
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        text.parse().map_err(|why: String| refuse(&why))
    }
}

impl serde::Serialize for WsHeader {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}: ***", self.name))
    }
}

impl<'de> serde::Deserialize<'de> for WsHeader {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The handshake request for `url`, with `headers` and an `Origin` unless one is given.
pub fn handshake_request(url: &str, headers: &[WsHeader]) -> Result<Request, HubError> {
    let invalid = |reason: String| HubError::Url {
        url: display_url(url),
        reason,
    };
    let mut request = url.into_client_request().map_err(|e| invalid(e.to_string()))?;
    if !matches!(request.uri().scheme_str(), Some("ws" | "wss")) || request.uri().host().is_none() {
        return Err(invalid(
            "a WebSocket URL starts with ws:// or wss:// and names a host".into(),
        ));
    }
    let origin = {
        let uri = request.uri();
        let scheme = if uri.scheme_str() == Some("wss") {
            "https"
        } else {
            "http"
        };
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        HeaderValue::from_str(&format!("{scheme}://{host}")).map_err(|e| invalid(e.to_string()))?
    };
    for header in headers {
        request
            .headers_mut()
            .insert(header.name.clone(), header.value.clone());
    }
    request.headers_mut().entry(header::ORIGIN).or_insert(origin);
    Ok(request)
}

/// Subscribing to one WebSocket hub.
#[derive(Debug)]
pub struct WsSubscriber;

impl WsSubscriber {
    /// Starts connecting to `url`; fails only for a URL that can never work.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        url: &str,
        headers: &[WsHeader],
        ingest: &Ingest,
        limits: &HubLimits,
    ) -> Result<TaskSubscriber, HubError> {
        let request = handshake_request(url, headers)?;
        // wss:// needs a process-wide crypto provider; another part of the program may
        // have installed one already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let health = Arc::new(Health::new(display_url(url), SourceState::Connecting));
        let (handoff, decoder) =
            start_decoder("tally-ws-decode".into(), &health, ingest, limits).map_err(HubError::Thread)?;
        let client = Client {
            request,
            handoff,
            ingest: ingest.clone(),
            health: Arc::clone(&health),
            max_message: limits.max_message,
        };
        let task = runtime.spawn(client.run());
        Ok(TaskSubscriber {
            kind: SourceKind::Ws,
            health,
            task,
            decoder,
        })
    }
}

/// How a connection ended.
enum End {
    Stopped,
    /// The hub closed it, went away, or went quiet: reconnect.
    Lost(String),
    /// The hub sent what it must not (oversize or invalid frames): count toward the breaker.
    Abuse(String),
}

struct Client {
    request: Request,
    handoff: Handoff,
    ingest: Ingest,
    health: Arc<Health>,
    max_message: usize,
}

impl Client {
    async fn run(self) {
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message));
        let mut backoff = Backoff::default();
        let mut abusive = 0;
        while !self.ingest.stopping() {
            let connect =
                tokio_tungstenite::connect_async_with_config(self.request.clone(), Some(config), true);
            let note = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect).await {
                Ok(Ok((stream, _))) => {
                    self.health.set_state(SourceState::Connected);
                    self.health.set_note(String::new());
                    let since = Instant::now();
                    let end = self.read(stream).await;
                    if since.elapsed() >= HEALTHY_AFTER {
                        backoff.reset();
                    }
                    match end {
                        End::Stopped => return,
                        End::Lost(why) => {
                            abusive = 0;
                            why
                        }
                        End::Abuse(why) => {
                            abusive += 1;
                            why
                        }
                    }
                }
                Ok(Err(WsError::Http(response))) => {
                    format!("hub refused the handshake: HTTP {}", response.status())
                }
                Ok(Err(error)) => format!("cannot connect: {error}"),
                Err(_) => "handshake timed out".to_owned(),
            };
            if self.health.state() != SourceState::Connecting {
                self.health.set_state(SourceState::Disconnected);
            }
            let wait = if abusive >= BREAKER_AFTER {
                abusive = 0;
                self.health.set_note(format!(
                    "{note}; the hub keeps sending oversize or invalid frames: paused {}s",
                    BREAKER_PAUSE.as_secs()
                ));
                BREAKER_PAUSE
            } else {
                self.health.set_note(format!("{note}: reconnecting"));
                backoff.wait()
            };
            tracing::info!("WebSocket hub {}: {note}", self.health.address());
            self.sleep(wait).await;
        }
    }

    async fn sleep(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while Instant::now() < until && !self.ingest.stopping() {
            tokio::time::sleep(STOP_CHECK.min(until - Instant::now())).await;
        }
    }

    /// Reads one connection until it ends. Never waits for the decoder: the hand-off drops
    /// (and counts) when full, so pings are answered however busy the aggregator is.
    async fn read<S>(&self, stream: tokio_tungstenite::WebSocketStream<S>) -> End
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut outgoing, mut incoming) = stream.split();
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut stop_check = tokio::time::interval(STOP_CHECK);
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                frame = tokio::time::timeout_at(heard + IDLE_TIMEOUT, incoming.next()) => {
                    heard = Instant::now();
                    let message = match frame {
                        Err(_) => return End::Lost(format!("hub silent for {}s", IDLE_TIMEOUT.as_secs())),
                        Ok(None) => return End::Lost("hub closed the connection".into()),
                        Ok(Some(Ok(message))) => message,
                        Ok(Some(Err(error))) => return self.failed(error),
                    };
                    match message {
                        Message::Text(text) => self.handoff.offer(Bytes::from(text).to_vec()),
                        Message::Binary(bytes) => self.handoff.offer(bytes.to_vec()),
                        Message::Close(frame) => {
                            let why = frame.map(|f| format!(" ({})", f.code)).unwrap_or_default();
                            return End::Lost(format!("hub closed the connection{why}"));
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                _ = ping.tick() => {
                    if outgoing.send(Message::Ping(Bytes::new())).await.is_err() {
                        return End::Lost("cannot write to the hub".into());
                    }
                }
                _ = stop_check.tick() => if self.ingest.stopping() {
                    let _ = outgoing.close().await;
                    return End::Stopped;
                },
            }
        }
    }

    /// Counts a frame the hub should not have sent, and says how the connection ended.
    fn failed(&self, error: WsError) -> End {
        let (reason, detail) = match &error {
            WsError::Capacity(_) => (
                Rejection::Oversize,
                format!("WebSocket message over the {} KiB limit", self.max_message / 1024),
            ),
            WsError::Utf8(_) => (
                Rejection::Utf8,
                "WebSocket text frame that is not UTF-8".to_owned(),
            ),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                return End::Lost("hub went away".into());
            }
            WsError::Protocol(error) => (Rejection::Json, format!("WebSocket protocol error: {error}")),
            _ => return End::Lost(format!("connection lost: {error}")),
        };
        self.ingest.reject(&self.health, reason, &detail, b"");
        End::Abuse(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_carry_an_origin_and_the_given_headers() {
        let auth: WsHeader = "Authorization: Bearer s3cret".parse().expect("parses");
        let request = handshake_request("ws://127.0.0.1:5555/ws", &[auth]).expect("valid");
        assert_eq!(request.headers()[header::ORIGIN], "http://127.0.0.1:5555");
        assert_eq!(request.headers()[header::AUTHORIZATION], "Bearer s3cret");
        let own: WsHeader = "Origin: https://ops.example".parse().expect("parses");
        let request = handshake_request("wss://hub.example/ws", &[own]).expect("valid");
        assert_eq!(request.headers()[header::ORIGIN], "https://ops.example");
        assert!(handshake_request("http://x/ws", &[]).is_err());
        assert!(handshake_request("not a url", &[]).is_err());
    }

    #[test]
    fn header_values_never_show() {
        let auth: WsHeader = "Authorization: Bearer s3cret".parse().expect("parses");
        assert_eq!(format!("{auth:?}"), "authorization: ***");
        assert!(
            !serde_json::to_string(&auth)
                .expect("serializes")
                .contains("s3cret")
        );
        assert!("no colon".parse::<WsHeader>().is_err());
        assert!("Bad Name: x".parse::<WsHeader>().is_err());
    }
}
