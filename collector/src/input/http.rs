//! The HTTP input (`--http ADDR`, off by default): what the classic events hub's web side
//! took in, on axum.
//!
//! - `GET /r/{app}/{account}/{type}`: the tracking pixel. Answers a 1x1 GIF that no cache
//!   keeps, and records one event `{type, time, data: {app, account, browser: {name, version,
//!   os}, ...}}`. Every query parameter but `ua` is copied into `data` as a string (its first
//!   value), after the path's, so `?account=x` overrides the path, as the classic hub did.
//!   `ua` stands in for the `User-Agent` header; `unq=1` marks a unique visitor, counted under
//!   the type `unique` too. The GIF is sent even when the event is refused: a broken page must
//!   never show a broken image.
//! - `POST /events`: a JSON event, a JSON array, newline-delimited JSON
//!   (`application/json`, `application/x-ndjson`), msgpack (`application/msgpack`) or StatsD
//!   lines (`text/plain`). Answers `202 {"accepted", "rejected"}`, or `400` with the reasons
//!   when nothing was accepted; a body over the limit is `413`, an unknown type `415`.
//! - `GET /healthz`: `200 ok`, for load balancers and kiosk supervisors.
//! - `GET /api/snapshot?window=5m&top=100`: the document of a `tally stat --json` line.
//! - `GET /metrics?top=100`: Prometheus' text exposition (`--metrics-top` accounts by default) (see [`crate::metrics`]).
//! - `GET /stats/...`: the classic stats API over the history (see
//!   [`crate::history::classic`]); `?callback=fn` for JSONP.
//! - `GET /firehose` (with `--serve-sse`, or `tally hub`): every accepted event as Server-Sent
//!   Events (see [`crate::firehose`]); `--sse-listen` serves it alone, on any path.
//!
//! With `--http-read-token` (or `tally hub`'s `--read-token`), the read routes want a
//! reader's token, as the classic hub took them: `Authorization: Bearer TOKEN`,
//! `Authorization: Basic base64(user:TOKEN)` (the user is ignored) or `access_token=TOKEN` in
//! the query or, `POST`ed, in a form body.
//!
//! With `--token`, a request carries a producer's token (`Authorization: Bearer TOKEN` or
//! `?access_token=TOKEN`), or each payload carries its own as on the other listeners. Browsers
//! may POST only from origins named with `--http-allow-origin` (the pixel is an image: any
//! page may show it). Connections take the listeners' slots: `--max-connections`,
//! `--idle-timeout`, the quietest giving way at the cap.

use super::{Source, SourceList};
use crate::bind::BindError;
use crate::decode::{DecodeOptions, Tokens};
use crate::firehose::{Firehose, SSE_HEARTBEAT, frame};
use crate::health::Health;
use crate::history::Store;
use crate::history::classic::{self, Refusal};
use crate::ingest::{Ingest, Intake, Outcome};
use crate::report::Report;
use crate::slots::{ConnectionLimits, Slot, Slots};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tally_core::{Clock, Rejection, SourceKind, SourceState};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// What a listener serves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Routes {
    /// Everything above (`--http`).
    All,
    /// The SSE firehose on any path, as the classic hub's own port did (`--sse-listen`).
    FirehoseOnly,
}

/// `POST /events` bodies larger than this are refused (`--http-body-limit`).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// The HTTP server's own settings (the connection limits are the listeners').
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    pub address: SocketAddr,
    pub body_limit: usize,
    /// Web pages from these origins may POST or read (`*`: any); other browser origins are
    /// refused.
    pub allow_origins: Vec<String>,
    /// Accounts `/metrics` names unless `?top=N` asks otherwise (`--metrics-top`).
    pub metrics_top: usize,
    /// The history's directory, which the classic stats API reads (none: `--no-state`).
    pub history: Option<PathBuf>,
    /// Where the classic stats API answers (`--stats-prefix`, `/stats`).
    pub stats_prefix: String,
    /// The zone of the classic stats API's dates.
    pub clock: Clock,
    /// Readers' tokens for `/api/snapshot` and `/metrics`; without them, anyone who reaches
    /// the address may read (loopback by default).
    pub read_tokens: Option<Arc<Tokens>>,
}

/// A transparent 1x1 GIF, the smallest there is.
const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00\x21\xf9\x04\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b";

/// Recorders kept between requests (each holds a small cache of names).
const POOLED_INTAKES: usize = 64;
/// Names each pooled recorder caches (as a stream connection's).
const CACHED_NAMES: usize = 64;

#[derive(Debug)]
pub struct HttpServer {
    health: Arc<Health>,
    accept: JoinHandle<()>,
}

/// What every request handler shares.
struct Shared {
    ingest: Ingest,
    /// The same ingest without payload tokens, for requests that presented a good one.
    trusted: Ingest,
    health: Arc<Health>,
    settings: HttpSettings,
    /// Every source of the collector, for the read routes.
    sources: Arc<SourceList>,
    /// The SSE firehose, when served.
    firehose: Option<Arc<Firehose>>,
    /// How often a quiet firehose sends a comment: often enough that the idle timeout never
    /// closes a client that is keeping up.
    heartbeat: Duration,
    /// The history, opened for reading at the first classic stats request.
    history: Arc<Mutex<Option<Store>>>,
    /// Recorders for requests, so that one is not built per request.
    intakes: Mutex<Vec<Intake>>,
    trusted_intakes: Mutex<Vec<Intake>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl HttpServer {
    pub fn start(
        runtime: &Handle,
        settings: &HttpSettings,
        ingest: &Ingest,
        limits: ConnectionLimits,
        sources: &Arc<SourceList>,
        firehose: Option<Arc<Firehose>>,
        routes: Routes,
    ) -> Result<Self, BindError> {
        let _entered = runtime.enter();
        let address = settings.address;
        let fail = |error| BindError::http(address, error);
        let listener = crate::bind::listen_tcp(address).map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        let health = Arc::new(Health::new(local.to_string(), SourceState::Listening));
        let slots = Slots::new(limits, Arc::clone(&health));
        let trusted = Ingest {
            decode: DecodeOptions {
                tokens: None,
                ..ingest.decode.clone()
            },
            ..ingest.clone()
        };
        let shared = Arc::new(Shared {
            ingest: ingest.clone(),
            trusted,
            health: Arc::clone(&health),
            settings: HttpSettings {
                address: local,
                ..settings.clone()
            },
            sources: Arc::clone(sources),
            firehose,
            heartbeat: match limits.idle {
                Duration::ZERO => SSE_HEARTBEAT,
                idle => SSE_HEARTBEAT.min(idle / 2),
            },
            history: Arc::default(),
            intakes: Mutex::default(),
            trusted_intakes: Mutex::default(),
        });
        let accept = runtime.spawn(accept_loop(listener, router(shared, routes), slots));
        Ok(HttpServer { health, accept })
    }
}

impl Source for HttpServer {
    fn kind(&self) -> SourceKind {
        SourceKind::Http
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn stop(self: Box<Self>) {
        self.accept.abort();
        self.health.set_state(SourceState::Stopped);
    }
}

fn router(shared: Arc<Shared>, routes: Routes) -> Router {
    if routes == Routes::FirehoseOnly {
        return Router::new()
            .fallback(get(firehose).post(firehose))
            .with_state(shared);
    }
    let prefix = shared.settings.stats_prefix.trim_end_matches('/').to_owned();
    let mut router = Router::new().route(&format!("{prefix}/"), get(classic_stats));
    if !prefix.is_empty() {
        router = router.route(&prefix, get(classic_stats));
    }
    router
        .route(&format!("{prefix}/{{*path}}"), get(classic_stats))
        .route("/r/{app}/{account}/{kind}", get(pixel))
        .route("/events", post(events).options(preflight))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/snapshot", get(api_snapshot).post(api_snapshot))
        .route("/metrics", get(metrics).post(metrics))
        .route("/firehose", get(firehose).post(firehose))
        .with_state(shared)
}

async fn accept_loop(listener: tokio::net::TcpListener, router: Router, slots: Arc<Slots>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!("HTTP accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.admit() else {
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let slot = Arc::new(slot);
            let io = TokioIo::new(Watched {
                stream,
                slot: Arc::clone(&slot),
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, service);
            let ended = slot.ended();
            tokio::pin!(connection, ended);
            tokio::select! {
                _ = &mut connection => {}
                _ = &mut ended => {}
            }
        });
    }
}

/// A connection whose every read and write counts as activity for its slot: a client that
/// stops reading a stream falls idle, one that keeps reading does not.
struct Watched {
    stream: tokio::net::TcpStream,
    slot: Arc<Slot>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.slot.active();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        // A reader that keeps taking what is sent (a firehose client) is not idle.
        if matches!(polled, Poll::Ready(Ok(sent)) if sent > 0) {
            self.slot.active();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Shared {
    /// Runs `work` with a recorder from the pool (trusted: the request showed a good token).
    fn with_intake<R>(&self, trusted: bool, work: impl FnOnce(&mut Intake) -> R) -> R {
        let (pool, ingest) = match trusted {
            true => (&self.trusted_intakes, &self.trusted),
            false => (&self.intakes, &self.ingest),
        };
        let pooled = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut intake = pooled.unwrap_or_else(|| ingest.intake_caching(&self.health, CACHED_NAMES));
        let result = work(&mut intake);
        let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOLED_INTAKES {
            pool.push(intake);
        }
        result
    }

    /// Whether the request presented a known producer's token; `None` when none is needed.
    fn token(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> Option<bool> {
        let tokens = self.ingest.decode.tokens.as_deref()?;
        let bearer = (headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let given = bearer.or(query.get("access_token").map(String::as_str));
        Some(given.is_some_and(|token| tokens.contains(token.trim())))
    }

    /// A browser page from an origin not allowed to POST (no `Origin`: not a browser).
    fn refused_origin(&self, headers: &HeaderMap) -> Option<String> {
        let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("").to_owned();
        let allowed = &self.settings.allow_origins;
        let own = format!("http://{}", self.settings.address);
        let ok = origin == own || allowed.iter().any(|a| a == "*" || *a == origin);
        (!ok).then_some(origin)
    }

    fn cors(&self, headers: &HeaderMap, response: &mut Response) {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return;
        };
        if self.refused_origin(headers).is_none() {
            let answer = response.headers_mut();
            answer.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            answer.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

async fn pixel(
    State(shared): State<Arc<Shared>>,
    Path((app, account, kind)): Path<(String, String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let first: HashMap<String, String> = query.iter().rev().cloned().collect();
    let user_agent = (first.get("ua").map(String::as_str))
        .or_else(|| headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    let time = jiff::Timestamp::now().to_string();
    let payloads = pixel_events(&app, &account, &kind, &query, user_agent, &time);
    let trusted = shared.token(&headers, &first) == Some(true);
    shared.with_intake(trusted, |intake| {
        intake.batch(|batch| {
            for payload in &payloads {
                batch.received(payload.len());
                batch.decode(payload.as_bytes());
            }
        })
    });
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (
                header::CACHE_CONTROL,
                "no-store, no-cache, must-revalidate, private, proxy-revalidate",
            ),
            (header::PRAGMA, "no-cache"),
            (header::EXPIRES, "Fri, 24 Nov 2000 01:00:00 GMT"),
        ],
        PIXEL,
    )
        .into_response()
}

/// The classic hub's events for one pixel request: the page view, and a `unique` one for a
/// unique visitor (`unq=1`).
fn pixel_events(
    app: &str,
    account: &str,
    kind: &str,
    query: &[(String, String)],
    user_agent: &str,
    time: &str,
) -> Vec<String> {
    let browser = woothee::parser::Parser::new().parse(user_agent);
    let mut data = serde_json::Map::new();
    data.insert("app".into(), app.into());
    data.insert("account".into(), account.into());
    data.insert(
        "browser".into(),
        serde_json::json!({
            "name": browser.as_ref().map_or("UNKNOWN", |b| b.name),
            "version": browser.as_ref().map_or("UNKNOWN", |b| b.version),
            "os": browser.as_ref().map_or("UNKNOWN", |b| b.os),
        }),
    );
    // Each parameter's first value, after the path's: `?account=x` wins, as it did.
    let mut seen = std::collections::HashSet::new();
    for (key, value) in query {
        if key != "ua" && key != "access_token" && seen.insert(key.as_str()) {
            data.insert(key.clone(), value.clone().into());
        }
    }
    let unique = query
        .iter()
        .find(|(k, _)| k == "unq")
        .is_some_and(|(_, v)| v == "1");
    let event = |kind: &str| serde_json::json!({ "type": kind, "time": time, "data": data }).to_string();
    let mut events = vec![event(kind)];
    if unique {
        events.push(event("unique"));
    }
    events
}

/// The formats `POST /events` takes, by `Content-Type`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum BodyFormat {
    /// Objects, arrays, or several of them one after another (NDJSON).
    Json,
    Msgpack,
    Statsd,
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, String> {
    let given = (headers.get(header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
            Ok(BodyFormat::Json)
        }
        "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => {
            Ok(BodyFormat::Msgpack)
        }
        // curl's `-d` sends a form type: its lines are StatsD's all the same.
        "text/plain" | "application/x-www-form-urlencoded" | "" => Ok(BodyFormat::Statsd),
        _ => Err(format!(
            "unknown content type {essence:?}: send application/json, application/x-ndjson, application/msgpack or text/plain (StatsD)"
        )),
    }
}

/// The JSON values of `body`, one after another (a single document, or NDJSON); what cannot
/// be read is the last slice, whole, for the decoder to refuse with its reason.
fn json_values(body: &[u8]) -> Vec<&[u8]> {
    let mut values = vec![];
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    loop {
        match stream.next() {
            None => break,
            Some(Ok(_)) => {
                let end = stream.byte_offset();
                values.push(body[start..end].trim_ascii());
                start = end;
            }
            Some(Err(_)) => {
                values.push(body[start..].trim_ascii());
                break;
            }
        }
    }
    values
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text + "\n",
    )
        .into_response()
}

async fn events(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut response = answer_events(&shared, &query, &headers, body).await;
    shared.cors(&headers, &mut response);
    response
}

async fn answer_events(
    shared: &Shared,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let ingest = &shared.ingest;
    if let Some(origin) = shared.refused_origin(headers) {
        let why = format!("origin {origin} may not post here (see --http-allow-origin)");
        ingest.reject(&shared.health, Rejection::Auth, &why, b"");
        return plain(StatusCode::FORBIDDEN, why);
    }
    let trusted = match shared.token(headers, query) {
        Some(false) if headers.contains_key(header::AUTHORIZATION) || query.contains_key("access_token") => {
            let why = "unknown token".to_owned();
            ingest.reject(&shared.health, Rejection::Auth, &why, b"");
            return plain(StatusCode::UNAUTHORIZED, why);
        }
        given => given == Some(true),
    };
    let format = match body_format(headers) {
        Ok(format) => format,
        Err(why) => {
            ingest.reject(&shared.health, Rejection::UnknownType, &why, b"");
            return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, why);
        }
    };
    let limit = shared.settings.body_limit;
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => {
            let why = format!("body over {limit} bytes (see --http-body-limit)");
            ingest.reject(&shared.health, Rejection::Oversize, &why, b"");
            return plain(StatusCode::PAYLOAD_TOO_LARGE, why);
        }
    };
    let outcome = shared.with_intake(trusted, |intake| {
        intake.batch(|batch| {
            batch.received(body.len());
            let payloads = match format {
                BodyFormat::Json => json_values(&body),
                BodyFormat::Msgpack | BodyFormat::Statsd => vec![&body[..]],
            };
            let mut sum = Outcome::default();
            for payload in payloads.into_iter().filter(|p| !p.is_empty()) {
                let outcome = batch.decode_reporting(payload);
                sum.accepted += outcome.accepted;
                sum.rejected += outcome.rejected;
                let room = crate::ingest::REPORTED_REASONS.saturating_sub(sum.reasons.len());
                sum.reasons.extend(outcome.reasons.into_iter().take(room));
            }
            sum
        })
    });
    let status = match (outcome.accepted, outcome.rejected) {
        (0, 0) => {
            return plain(StatusCode::BAD_REQUEST, "no events in the body".to_owned());
        }
        (0, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::ACCEPTED,
    };
    let answer = serde_json::json!({
        "accepted": outcome.accepted,
        "rejected": outcome.rejected,
        "reasons": outcome.reasons,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// The largest form a reader may POST (its parameters: a token, `top`, `window`, `raw`).
const READ_FORM_LIMIT: usize = 8 * 1024;

/// A read route's parameters: the query's, and on a `POST` those of its form body
/// (`application/x-www-form-urlencoded`), which win, as the classic hub read them: a client
/// may keep `access_token` out of URLs and logs that way.
struct ReadParams(HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ReadParams {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let mut params = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(query)| query)
            .map_err(|error| plain(StatusCode::BAD_REQUEST, error.body_text()))?;
        if parts.method != Method::POST {
            return Ok(ReadParams(params));
        }
        let content_type = (parts.headers.get(header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            let why =
                format!("a reader POSTs a form (application/x-www-form-urlencoded), not {content_type:?}");
            return Err(plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, why));
        }
        let form = axum::body::to_bytes(body, READ_FORM_LIMIT).await.map_err(|_| {
            let why = format!("a reader's form is at most {READ_FORM_LIMIT} bytes");
            plain(StatusCode::PAYLOAD_TOO_LARGE, why)
        })?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&form)
            .map_err(|error| plain(StatusCode::BAD_REQUEST, format!("a broken form: {error}")))?;
        params.extend(fields);
        Ok(ReadParams(params))
    }
}

/// Why a reader may not read, if it may not: no token, or not a known one.
fn refused_reader(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<&'static str> {
    use base64::Engine as _;
    let tokens = shared.settings.read_tokens.as_deref()?;
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let given = match authorization.and_then(|v| v.split_once(' ')) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim().to_owned()),
        Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok();
            let pair = decoded.and_then(|d| String::from_utf8(d).ok());
            pair.and_then(|p| p.split_once(':').map(|(_, token)| token.to_owned()))
        }
        _ => query.get("access_token").cloned(),
    };
    match given {
        None => Some("a reader's token is needed: Authorization: Bearer TOKEN, Basic, or ?access_token="),
        Some(token) if !tokens.contains(&token) => Some("unknown token"),
        Some(_) => None,
    }
}

/// What the read routes check first: the page's origin and the reader's token.
fn admit_reader(
    shared: &Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), (StatusCode, String)> {
    if let Some(origin) = shared.refused_origin(headers) {
        let why = format!("origin {origin} may not read here (see --http-allow-origin)");
        return Err((StatusCode::FORBIDDEN, why));
    }
    match refused_reader(shared, headers, query) {
        Some(why) => Err((StatusCode::UNAUTHORIZED, why.to_owned())),
        None => Ok(()),
    }
}

/// A read route's answer: never cached, and readable by the allowed origins' pages.
fn fresh(shared: &Shared, headers: &HeaderMap, content_type: &'static str, body: String) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store, no-cache, must-revalidate"),
        ],
        body,
    )
        .into_response();
    shared.cors(headers, &mut response);
    response
}

/// `top=N` (at most [`MAX_TOP`]), or `default`.
fn top(query: &HashMap<String, String>, default: usize) -> Result<usize, (StatusCode, String)> {
    match query.get("top") {
        None => Ok(default),
        Some(n) => match n.parse::<usize>() {
            Ok(n) => Ok(n.min(MAX_TOP)),
            Err(_) => Err((
                StatusCode::BAD_REQUEST,
                format!("top must be a number, not {n:?}"),
            )),
        },
    }
}

/// The most accounts a read route lists.
const MAX_TOP: usize = 10_000;

async fn api_snapshot(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ReadParams(query): ReadParams,
) -> Response {
    let top = match admit_reader(&shared, &headers, &query).and_then(|()| top(&query, 100)) {
        Ok(top) => top,
        Err((status, why)) => return plain(status, why),
    };
    let engine = &shared.ingest.engine;
    let presets = engine.window_presets();
    let window = match query.get("window") {
        None => presets.get(1).or(presets.first()).copied(),
        Some(asked) => {
            let ms = humantime::parse_duration(asked)
                .ok()
                .map(|d| d.as_millis() as u64);
            let span = |w: &tally_core::Window| {
                let level = &engine.config().resolutions[w.level];
                u64::from(w.buckets) * level.bucket_ms
            };
            presets.iter().find(|w| Some(span(w)) == ms).copied()
        }
    };
    let Some(window) = window else {
        let why = "window must be one of the dashboard's: 1m, 5m, 1h or 24h".to_owned();
        return plain(StatusCode::BAD_REQUEST, why);
    };
    let request = tally_core::SnapshotRequest {
        window,
        top,
        detail: top,
        ..tally_core::SnapshotRequest::default()
    };
    let snapshot = engine.snapshot(&request, crate::health::now());
    let (sources, outputs) = (shared.sources.statuses(), output_statuses(&shared));
    let report = Report::new(&snapshot, top, &sources, &outputs);
    let body = serde_json::to_string(&report).unwrap_or_default();
    fresh(&shared, &headers, "application/json", body)
}

async fn metrics(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ReadParams(query): ReadParams,
) -> Response {
    let admitted = admit_reader(&shared, &headers, &query);
    let top = match admitted.and_then(|()| top(&query, shared.settings.metrics_top)) {
        Ok(top) => top,
        Err((status, why)) => return plain(status, why),
    };
    let request = tally_core::SnapshotRequest {
        top,
        detail: top,
        ..tally_core::SnapshotRequest::default()
    };
    let snapshot = shared.ingest.engine.snapshot(&request, crate::health::now());
    let (sources, outputs) = (shared.sources.statuses(), output_statuses(&shared));
    let body = crate::metrics::exposition(&snapshot, top, &sources, &outputs);
    fresh(
        &shared,
        &headers,
        "text/plain; version=0.0.4; charset=utf-8",
        body,
    )
}

/// `GET /firehose`: every accepted event from now on (or from after `Last-Event-ID`), as
/// Server-Sent Events, or with `?raw` as JSON lines.
async fn firehose(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ReadParams(query): ReadParams,
) -> Response {
    let Some(firehose) = shared.firehose.clone() else {
        let why = "no firehose here: start tally with --serve-sse (tally hub serves one)";
        return plain(StatusCode::NOT_FOUND, why.to_owned());
    };
    if let Err((status, why)) = admit_reader(&shared, &headers, &query) {
        firehose.health().refused();
        return plain(status, why);
    }
    let raw = query.contains_key("raw");
    let last_seen = (headers.get("last-event-id"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (missed, live) = firehose.subscribe(last_seen);
    let stream = FirehoseStream {
        missed: missed.into(),
        live,
        raw,
        heartbeat: shared.heartbeat,
        health: Arc::clone(firehose.health()),
    };
    stream.health.connected(1);
    let body = Body::from_stream(futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), stream))
    }));
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                if raw {
                    "application/x-ndjson"
                } else {
                    "text/event-stream"
                },
            ),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONNECTION, "keep-alive"),
        ],
        body,
    )
        .into_response();
    shared.cors(&headers, &mut response);
    response
}

/// A JSONP callback: a JavaScript name (`fn`, `jQuery123_456`, `app.stats`), nothing that
/// could smuggle script into the answer.
fn jsonp_callback(name: &str) -> bool {
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
    first && name.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'))
}

/// The classic stats API (see [`crate::history::classic`]), with JSONP (`?callback=fn`) and
/// the classic no-cache headers on every answer.
async fn classic_stats(
    State(shared): State<Arc<Shared>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
    ReadParams(query): ReadParams,
) -> Response {
    if let Err((status, why)) = admit_reader(&shared, &headers, &query) {
        return plain(status, why);
    }
    let callback = query.get("callback").cloned();
    if callback.as_deref().is_some_and(|name| !jsonp_callback(name)) {
        return plain(
            StatusCode::BAD_REQUEST,
            "callback must be a JavaScript name".into(),
        );
    }
    let Some(dir) = shared.settings.history.clone() else {
        let why = "no history is kept here: tally was started with --no-state, or with --demo and no --state";
        return plain(StatusCode::NOT_FOUND, why.into());
    };
    let host = (headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .map_or_else(|| shared.settings.address.to_string(), str::to_owned);
    let base = format!(
        "http://{host}{}",
        shared.settings.stats_prefix.trim_end_matches('/')
    );
    let path = path.map(|Path(path)| path).unwrap_or_default();
    let (history, clock) = (Arc::clone(&shared.history), shared.settings.clock.clone());
    let answered = tokio::task::spawn_blocking(move || {
        let mut store = history.lock().unwrap_or_else(|p| p.into_inner());
        if store.is_none() {
            *store = Some(Store::open_read_only(&dir).map_err(|e| Refusal::NotFound(e.to_string()))?);
        }
        let segments: Vec<&str> = path.split('/').collect();
        classic::answer(store.as_ref().expect("just opened"), &clock, &base, &segments)
    })
    .await;
    let mut response = match answered {
        Ok(Ok(payload)) => {
            let json = serde_json::to_string(&payload).unwrap_or_default();
            match callback {
                Some(name) => (
                    [(header::CONTENT_TYPE, "text/javascript")],
                    format!("{name}({json})"),
                )
                    .into_response(),
                None => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            }
        }
        Ok(Err(Refusal::NotFound(why))) => plain(StatusCode::NOT_FOUND, why),
        Ok(Err(Refusal::Store(why))) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the history cannot be read: {why}"),
        ),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the history's reader failed".into(),
        ),
    };
    let answer = response.headers_mut();
    answer.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate, private, proxy-revalidate"),
    );
    answer.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    answer.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 24 Nov 2000 01:00:00 GMT"),
    );
    shared.cors(&headers, &mut response);
    response
}

/// One client's firehose: what it missed, then the live events, with heartbeats between.
struct FirehoseStream {
    missed: std::collections::VecDeque<crate::firehose::Numbered>,
    live: tokio::sync::broadcast::Receiver<crate::firehose::Numbered>,
    raw: bool,
    heartbeat: Duration,
    health: Arc<Health>,
}

impl FirehoseStream {
    /// The next bytes to send, or `None` to end the stream (a client too far behind).
    async fn next(&mut self) -> Option<Bytes> {
        use tokio::sync::broadcast::error::RecvError;
        if let Some((id, json)) = self.missed.pop_front() {
            return Some(Bytes::from(frame(id, &json, self.raw)));
        }
        match tokio::time::timeout(self.heartbeat, self.live.recv()).await {
            Ok(Ok((id, json))) => {
                // Whatever else is waiting goes out with it.
                let mut chunk = frame(id, &json, self.raw);
                while chunk.len() < 64 * 1024 {
                    match self.live.try_recv() {
                        Ok((id, json)) => chunk.push_str(&frame(id, &json, self.raw)),
                        Err(_) => break,
                    }
                }
                Some(Bytes::from(chunk))
            }
            Ok(Err(RecvError::Lagged(missed))) => {
                self.health.dropped(missed);
                self.health
                    .set_note(format!("cut off a client {missed} events behind"));
                None
            }
            Ok(Err(RecvError::Closed)) => None,
            // A comment: keeps the connection (and its slot) alive through proxies.
            Err(_) => Some(Bytes::from_static(if self.raw {
                b"\n"
            } else {
                b": heartbeat\n\n"
            })),
        }
    }
}

impl Drop for FirehoseStream {
    fn drop(&mut self) {
        self.health.connected(-1);
    }
}

fn output_statuses(shared: &Shared) -> Vec<tally_core::OutputStatus> {
    shared.ingest.outputs.iter().map(|o| o.status()).collect()
}

/// A browser's preflight for a cross-origin POST: allowed only for the origins named.
async fn preflight(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if shared.refused_origin(&headers).is_some() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    shared.cors(&headers, &mut response);
    let answer = response.headers_mut();
    answer.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(Method::POST.as_str()),
    );
    answer.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_split_into_their_values() {
        let body = b"{\"a\":1}\n{\"b\":[1,2]}\n[{\"c\":3}]\n";
        assert_eq!(
            json_values(body),
            [&b"{\"a\":1}"[..], b"{\"b\":[1,2]}", b"[{\"c\":3}]"]
        );
        let pretty = b"{\n  \"type\": \"x\"\n}\n";
        assert_eq!(json_values(pretty).len(), 1, "one document over several lines");
        let broken = b"{\"a\":1}\n{\"b\":";
        assert_eq!(
            json_values(broken),
            [&b"{\"a\":1}"[..], b"{\"b\":"],
            "the rest, for the decoder"
        );
    }

    #[test]
    fn a_pixel_is_a_page_view_with_the_browser_and_the_query() {
        let query: Vec<(String, String)> = [
            ("ref", "home"),
            ("account", "globex"),
            ("unq", "1"),
            ("ref", "later"),
            ("ua", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let events = pixel_events("shop", "acme", "pageview", &query, chrome, "2026-12-02T04:00:00Z");
        let parsed: Vec<serde_json::Value> = (events.iter())
            .map(|e| serde_json::from_str(e).expect("JSON"))
            .collect();
        assert_eq!(parsed.len(), 2, "a unique visitor counts under unique too");
        assert_eq!(
            (parsed[0]["type"].as_str(), parsed[1]["type"].as_str()),
            (Some("pageview"), Some("unique"))
        );
        let data = &parsed[0]["data"];
        assert_eq!(data["app"], "shop");
        assert_eq!(data["account"], "globex", "the query overrides the path");
        assert_eq!(data["ref"], "home", "the first value");
        assert!(data.get("ua").is_none());
        assert_eq!(data["browser"]["name"], "Chrome");
        assert_eq!(data["browser"]["version"], "120.0.0.0");
        assert_eq!(data["browser"]["os"], "Linux");
        assert_eq!(parsed[0]["time"], "2026-12-02T04:00:00Z");
    }

    #[test]
    fn content_types_choose_the_format() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).expect("ascii"));
            body_format(&headers)
        };
        assert_eq!(with("application/json; charset=utf-8"), Ok(BodyFormat::Json));
        assert_eq!(with("application/x-ndjson"), Ok(BodyFormat::Json));
        assert_eq!(with("application/msgpack"), Ok(BodyFormat::Msgpack));
        assert_eq!(with("text/plain"), Ok(BodyFormat::Statsd));
        assert!(with("image/png").is_err_and(|e| e.contains("unknown content type \"image/png\"")));
        assert_eq!(
            body_format(&HeaderMap::new()),
            Ok(BodyFormat::Statsd),
            "curl --data-binary"
        );
    }
}
