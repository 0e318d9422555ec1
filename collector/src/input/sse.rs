//! Subscribing to a firehose of Server-Sent Events (`--sse http://hub:8080/firehose`): a
//! classic events hub's, or another tally's.
//!
//! One task per firehose, on the collector's runtime, behaving like the WebSocket client:
//! each event's `data` goes to the decoder's hand-off; a firehose silent for [`SSE_IDLE`]
//! (tally's send a comment every 15 s) is dropped; then it reconnects with the same capped,
//! jittered backoff, and with `Last-Event-ID` so that a firehose that keeps a backlog (tally's
//! does) sends what was missed. Headers from `--sse-header` (a token) are sent and never shown.
//! Plain `http://` only for now.

use super::hub::{Handoff, HubError, HubLimits, TaskSubscriber, start_decoder};
use super::ws::WsHeader;
use crate::backoff::Backoff;
use crate::health::Health;
use crate::health::display_url;
use crate::ingest::Ingest;
use axum::http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tally_core::{Rejection, SourceKind, SourceState};
use tokio::time::Instant;

/// A firehose silent this long is treated as gone (tally's sends a comment every 15 s).
pub const SSE_IDLE: Duration = Duration::from_secs(40);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);
/// How often a waiting task looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Subscribing to one firehose.
#[derive(Debug)]
pub struct SseSubscriber;

impl SseSubscriber {
    /// Starts connecting to `url`; fails only for a URL that can never work.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        url: &str,
        headers: &[WsHeader],
        ingest: &Ingest,
        limits: &HubLimits,
    ) -> Result<TaskSubscriber, HubError> {
        let invalid = |reason: &str| HubError::Url {
            url: display_url(url),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid(
                "an SSE firehose URL starts with http:// or https:// and names a host",
            ));
        }
        let health = Arc::new(Health::new(display_url(url), SourceState::Connecting));
        let (handoff, decoder) =
            start_decoder("tally-sse-decode".into(), &health, ingest, limits).map_err(HubError::Thread)?;
        let client = Client {
            uri,
            headers: headers.to_vec(),
            handoff,
            ingest: ingest.clone(),
            health: Arc::clone(&health),
            max_event: limits.max_message,
            last_id: None,
        };
        let task = runtime.spawn(client.run());
        Ok(TaskSubscriber {
            kind: SourceKind::Sse,
            health,
            task,
            decoder,
        })
    }
}

struct Client {
    uri: Uri,
    headers: Vec<WsHeader>,
    handoff: Handoff,
    ingest: Ingest,
    health: Arc<Health>,
    max_event: usize,
    /// The last event's id, sent back as `Last-Event-ID` when reconnecting.
    last_id: Option<String>,
}

impl Client {
    async fn run(mut self) {
        let mut backoff = Backoff::default();
        while !self.ingest.stopping() {
            let since = Instant::now();
            let why = match self.connect_and_read().await {
                Ok(()) => return,
                Err(why) => why,
            };
            if since.elapsed() >= HEALTHY_AFTER {
                backoff.reset();
            }
            if self.health.state() != SourceState::Connecting {
                self.health.set_state(SourceState::Disconnected);
            }
            self.health.set_note(format!("{why}: reconnecting"));
            tracing::info!("SSE firehose {}: {why}", self.health.address());
            let until = Instant::now() + backoff.wait();
            while Instant::now() < until && !self.ingest.stopping() {
                tokio::time::sleep(STOP_CHECK.min(until - Instant::now())).await;
            }
        }
    }

    /// One connection, read until it ends (`Ok` only when tally stops).
    async fn connect_and_read(&mut self) -> Result<(), String> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect(&self.uri)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(format!("cannot connect: {error}")),
            Err(_) => return Err("connecting timed out".into()),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        tokio::spawn(connection);
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let mut request = Request::get(self.uri.clone())
            .header(header::HOST, authority.rsplit('@').next().unwrap_or_default())
            .header(header::ACCEPT, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache");
        if let Some(id) = &self.last_id {
            request = request.header("last-event-id", id.as_str());
        }
        for given in &self.headers {
            let (name, value) = given.parts();
            request = request.header(name, value);
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let response = (tokio::time::timeout(CONNECT_TIMEOUT, sender.send_request(request)).await)
            .map_err(|_| "the firehose did not answer".to_owned())?
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the firehose refused: HTTP {}", response.status()));
        }
        self.health.set_state(SourceState::Connected);
        self.health.set_note(String::new());
        let mut body = response.into_body();
        let mut parser = Parser::default();
        loop {
            if self.ingest.stopping() {
                return Ok(());
            }
            let frame = match tokio::time::timeout(SSE_IDLE.min(STOP_CHECK * 10), body.frame()).await {
                Err(_) if parser.quiet_for() < SSE_IDLE => continue,
                Err(_) => return Err(format!("firehose silent for {}s", SSE_IDLE.as_secs())),
                Ok(None) => return Err("the firehose closed the stream".into()),
                Ok(Some(Err(error))) => return Err(format!("connection lost: {error}")),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            for event in parser.feed(&data, self.max_event) {
                match event {
                    Parsed::Event { id, data } => {
                        if id.is_some() {
                            self.last_id = id;
                        }
                        self.handoff.offer(data);
                    }
                    Parsed::Oversize => {
                        let detail = format!("SSE event over the {} KiB limit", self.max_event / 1024);
                        self.ingest
                            .reject(&self.health, Rejection::Oversize, &detail, b"");
                    }
                }
            }
        }
    }
}

/// A connection to the firehose: plain, or TLS for `https://`.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

async fn connect(uri: &Uri) -> std::io::Result<Box<dyn Connection>> {
    let host = uri.host().unwrap_or_default();
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // An IPv6 literal comes bracketed in a URI, never to a resolver.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    if !tls {
        return Ok(Box::new(stream));
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a host name for TLS"))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    Ok(Box::new(connector.connect(name, stream).await?))
}

/// The TLS settings for every https firehose: built once, as loading the system's
/// certificates reads files.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        if !native.errors.is_empty() {
            tracing::warn!(
                "some of the system's root certificates could not be read: {:?}",
                native.errors
            );
        }
        roots.add_parsable_certificates(native.certs);
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }))
}

/// What the parser makes of the stream.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Event {
        id: Option<String>,
        data: Vec<u8>,
    },
    /// An event whose data went over the limit (skipped, counted).
    Oversize,
}

/// The text/event-stream format, fed as it arrives: `data:` lines make an event's data
/// (joined by `\n`), `id:` its id, a blank line ends it, `:` lines are comments. A stream of
/// bare JSON lines (tally's `?raw`) is read too: a line that is no field is an event of its own.
#[derive(Debug)]
struct Parser {
    line: Vec<u8>,
    /// The line went over the limit (and was cut there).
    line_over: bool,
    data: Vec<u8>,
    has_data: bool,
    id: Option<String>,
    oversize: bool,
    heard: Instant,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            line: vec![],
            line_over: false,
            data: vec![],
            has_data: false,
            id: None,
            oversize: false,
            heard: Instant::now(),
        }
    }
}

impl Parser {
    fn quiet_for(&self) -> Duration {
        self.heard.elapsed()
    }

    fn feed(&mut self, bytes: &[u8], max: usize) -> Vec<Parsed> {
        self.heard = Instant::now();
        let mut parsed = vec![];
        for &byte in bytes {
            if byte != b'\n' {
                match self.line.len() < max + 16 {
                    true => self.line.push(byte),
                    false => self.line_over = true,
                }
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let over = std::mem::take(&mut self.line_over);
            self.line_done(&line, over, max, &mut parsed);
        }
        parsed
    }

    fn line_done(&mut self, line: &[u8], over: bool, max: usize, parsed: &mut Vec<Parsed>) {
        if line.is_empty() {
            if self.oversize {
                parsed.push(Parsed::Oversize);
            } else if self.has_data {
                let id = self.id.clone();
                parsed.push(Parsed::Event {
                    id,
                    data: std::mem::take(&mut self.data),
                });
            }
            (self.data, self.has_data, self.oversize) = (vec![], false, false);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                if !self.oversize {
                    self.data.extend_from_slice(value);
                }
                self.has_data = true;
                self.oversize |= over || self.data.len() > max;
            }
            b"id" => self.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"event" | b"retry" => {}
            // Not a field: a bare JSON line.
            _ if line.first() == Some(&b'{') || line.first() == Some(&b'[') => {
                if over || line.len() > max {
                    parsed.push(Parsed::Oversize);
                } else {
                    parsed.push(Parsed::Event {
                        id: None,
                        data: line.to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(parsed: Vec<Parsed>) -> Vec<(Option<String>, String)> {
        (parsed.into_iter())
            .map(|p| match p {
                Parsed::Event { id, data } => (id, String::from_utf8_lossy(&data).into_owned()),
                Parsed::Oversize => (None, "(oversize)".to_owned()),
            })
            .collect()
    }

    #[test]
    fn events_are_read_however_the_stream_is_cut() {
        let stream = b": hello\n\nid: 7\ndata: {\"a\":1}\n\nid: 8\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\n";
        let whole = events(Parser::default().feed(stream, 1024));
        assert_eq!(
            whole,
            [
                (Some("7".into()), "{\"a\":1}".into()),
                (Some("8".into()), "{\"b\":\n2}".into())
            ]
        );
        let mut parser = Parser::default();
        let mut pieces = vec![];
        for chunk in stream.chunks(3) {
            pieces.extend(events(parser.feed(chunk, 1024)));
        }
        assert_eq!(pieces, whole, "the same, byte by byte");
    }

    #[test]
    fn raw_json_lines_and_oversize_events() {
        let parsed = events(Parser::default().feed(b"{\"a\":1}\n{\"b\":2}\n", 1024));
        assert_eq!(parsed, [(None, "{\"a\":1}".into()), (None, "{\"b\":2}".into())]);
        let big = format!("data: {}\n\ndata: {{}}\n\n", "x".repeat(100));
        let parsed = events(Parser::default().feed(big.as_bytes(), 50));
        assert_eq!(parsed, [(None, "(oversize)".into()), (None, "{}".into())]);
    }
}
