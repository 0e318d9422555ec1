//! Configuration in layers, each over the one before: the defaults, the TOML file, the flags.
//!
//! The flags and the file's keys are one struct ([`SourceArgs`], and [`HubArgs`] for the
//! file's `[hub]` table), so every flag has a key. Layering is generic: the file is read into
//! the struct, and clap overwrites just the fields whose flags were given
//! ([`clap::FromArgMatches::update_from_arg_matches`]). Defaults fill what neither set, in
//! [`SourceArgs::settings`].

use crate::decode::{AccountFrom, DecodeOptions, Tokens};
use crate::history::StateSettings;
use crate::input::http::{DEFAULT_BODY_LIMIT, HttpSettings};
use crate::input::hub::HubLimits;
use crate::input::stream::{CONNECTION_BUFFER, CONNECTION_CACHED_NAMES};
use crate::input::udp::{UDP_BUFFERS, UdpOptions};
use crate::input::ws::{WsHeader, WsHeaderParser};
use crate::output::graphite::GraphiteSettings;
use crate::output::ws::ServeOptions;
use crate::slots::ConnectionLimits;
use clap::{ArgMatches, FromArgMatches};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tally_core::{Clock, EngineConfig, Recorder};

/// The default listener: StatsD's port, loopback only.
pub const DEFAULT_UDP: &str = "127.0.0.1:8125";
/// `tally hub`'s default ZeroMQ endpoint (the classic hub's), loopback only.
pub const DEFAULT_PUBLISH_ZMQ: &str = "tcp://127.0.0.1:6000";
/// Where `--http`'s settings start from before an address is given.
const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// `tally hub`'s default WebSocket address (the classic hub's port), loopback only.
pub const DEFAULT_SERVE_WS: &str = "127.0.0.1:5555";

/// Where the classic stats API answers unless `--stats-prefix` says otherwise.
pub const DEFAULT_STATS_PREFIX: &str = "/stats";
/// How often aggregates go to carbon unless `--graphite-interval` says otherwise.
pub const DEFAULT_GRAPHITE_INTERVAL: Duration = Duration::from_secs(10);
/// How often the history is written unless `--checkpoint-interval` says otherwise.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// How long hours are kept unless `--keep-hours` says otherwise.
pub const DEFAULT_KEEP_HOURS: Duration = Duration::from_secs(90 * 24 * 3600);

/// `$XDG_STATE_HOME/tally` (`~/.local/state/tally`), or where the platform keeps such data.
pub fn default_state_dir() -> Option<PathBuf> {
    (dirs::state_dir().or_else(dirs::data_local_dir)).map(|dir| dir.join("tally"))
}

/// The source flags of every command, and the keys of the configuration file.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
// The fields' doc comments are the command line's help: written for a terminal, not rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]
pub struct SourceArgs {
    /// Listen for UDP datagrams here (repeatable; IPv4 or IPv6) [default: 127.0.0.1:8125,
    /// unless --zmq or --ws subscribes to a hub]
    #[arg(long = "udp", value_name = "ADDR")]
    pub udp: Vec<SocketAddr>,
    /// Do not listen on the default UDP address (only on those given with --udp)
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub no_udp: Option<bool>,
    /// Accept newline-separated payloads over TCP here (repeatable)
    #[arg(long = "tcp", value_name = "ADDR")]
    pub tcp: Vec<SocketAddr>,
    /// Accept newline-separated payloads on this Unix-domain socket (repeatable)
    #[arg(long = "unix", value_name = "PATH")]
    pub unix: Vec<PathBuf>,
    /// Subscribe to a ZeroMQ hub's PUB socket (repeatable; e.g. tcp://10.0.0.5:6000)
    #[arg(long = "zmq", value_name = "ENDPOINT")]
    pub zmq: Vec<String>,
    /// Only ZeroMQ messages whose topic starts with this (repeatable) [default: everything]
    #[arg(long = "zmq-topic", value_name = "PREFIX")]
    pub zmq_topic: Vec<String>,
    /// Subscribe to a WebSocket hub (repeatable; ws://HOST:PORT/ws or wss://...)
    #[arg(long = "ws", value_name = "URL")]
    pub ws: Vec<String>,
    /// Send this header with every WebSocket handshake (repeatable; e.g. 'Authorization:
    /// Bearer TOKEN'). Values are never logged or shown.
    #[arg(long = "ws-header", value_name = "'NAME: VALUE'", value_parser = WsHeaderParser)]
    pub ws_header: Vec<WsHeader>,
    /// Subscribe to an SSE firehose (repeatable; a classic hub's or another tally's, e.g.
    /// http://hub:8080/firehose, or https:// verified against the system's trust store)
    #[arg(long = "sse", value_name = "URL")]
    pub sse: Vec<String>,
    /// Send this header with every firehose request (repeatable; e.g. 'Authorization: Bearer
    /// TOKEN'). Values are never logged or shown.
    #[arg(long = "sse-header", value_name = "'NAME: VALUE'", value_parser = WsHeaderParser)]
    pub sse_header: Vec<WsHeader>,
    /// Generate demo traffic through a real socket into the listener
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Show clock times in UTC [default: the local zone, from TZ or the system]
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub utc: Option<bool>,
    /// Read settings from this TOML file [default: tally/config.toml in the user's config dir]
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Require a known token on every line and event (one token per line in FILE; StatsD:
    /// `<token>.name:1|c`, hub events: a `token` field)
    #[arg(long = "token", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Take StatsD accounts from this tag (`#account:acme`) instead of the first name segment
    #[arg(long, value_name = "TAG")]
    pub account_tag: Option<String>,
    /// UDP receive threads per address (0: one per core)
    #[arg(long, value_name = "N")]
    pub udp_threads: Option<usize>,
    /// UDP receive buffer to ask the kernel for, in bytes
    #[arg(long, value_name = "BYTES")]
    pub recv_buffer: Option<usize>,
    /// Accounts tracked by name before the rest are counted as (other)
    #[arg(long, value_name = "N")]
    pub max_accounts: Option<usize>,
    /// The most memory the counts may take (e.g. 256MiB, 2GB): the account cap is lowered
    /// to fit [default: no budget: the caps' own ceiling, about 1.6 GiB]
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<bytesize::ByteSize>,
    /// Connections each TCP/Unix listener (and `tally hub`'s WebSocket server) holds at once;
    /// when full, the one quiet longest gives way to a new one [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Close a connection that sends nothing for this long (e.g. 60s, 5m; 0s: never)
    /// [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// Serve HTTP here: the tracking pixel (GET /r/APP/ACCOUNT/TYPE), POST /events, /healthz,
    /// /api/snapshot and /metrics (off by default; e.g. 127.0.0.1:8080)
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// The largest POST /events body (e.g. 1MiB, 16MiB) [default: 1MiB]
    #[arg(long, value_name = "SIZE")]
    pub http_body_limit: Option<bytesize::ByteSize>,
    /// Let web pages from this origin POST to --http (repeatable; e.g.
    /// https://shop.example.com, or * for any). Other browser origins are refused.
    #[arg(long = "http-allow-origin", value_name = "ORIGIN")]
    pub http_allow_origin: Vec<String>,
    /// Also serve the SSE firehose on a listener of its own, on any path, as the classic hub's
    /// own port did (e.g. 127.0.0.1:5556)
    #[arg(long, value_name = "ADDR")]
    pub sse_listen: Option<SocketAddr>,
    /// Serve the SSE firehose at --http's /firehose: every accepted event, as the classic hub
    /// streamed them [default: only for `tally hub`]
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub serve_sse: Option<bool>,
    /// Keep the history (counts by hour, day and month, for years) in this directory
    /// [default: $XDG_STATE_HOME/tally, i.e. ~/.local/state/tally]
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Keep no history (nor with --demo, unless --state is given)
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub no_state: Option<bool>,
    /// Mirror the history into Redis as the classic aggregator laid it out (HINCRBY
    /// track:ACCOUNT:TYPE:Y[:M[:D]]; e.g. redis://127.0.0.1:6379)
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Send aggregates to carbon here (plaintext protocol, statsd's names; e.g.
    /// graphite.internal:2003)
    #[arg(long, value_name = "HOST:PORT")]
    pub graphite: Option<String>,
    /// How often aggregates go to carbon [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub graphite_interval: Option<Duration>,
    /// Metric paths begin `stats.PREFIX.` (statsd's globalPrefix)
    #[arg(long, value_name = "PREFIX")]
    pub graphite_prefix: Option<String>,
    /// How often the history is written: a crash loses at most this much (e.g. 5s, 1m)
    /// [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Option<Duration>,
    /// How long the history keeps hours (days and months are kept for ever) [default: 90d]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub keep_hours: Option<Duration>,
    /// Where --http answers the classic stats API over the history [default: /stats]
    #[arg(long, value_name = "PATH")]
    pub stats_prefix: Option<String>,
    /// Accounts named in --http's /metrics (the busiest; the rest are summed as `(other)`,
    /// so that Prometheus' series stay bounded; `?top=N` asks for other numbers) [default: 100]
    #[arg(long, value_name = "N")]
    pub metrics_top: Option<usize>,
    /// Require a reader's token for --http's /api/snapshot, /metrics and /firehose (one per line in FILE)
    /// [default for `tally hub`: its --read-token]
    #[arg(long = "http-read-token", value_name = "FILE")]
    pub http_read_token_file: Option<PathBuf>,
    /// The rolling windows and caps (the file's `[engine]` table; no flags but
    /// `--max-accounts`).
    #[arg(skip)]
    pub engine: Option<EngineConfig>,
    /// `tally hub`'s outputs (the file's `[hub]` table; the flags are `tally hub`'s).
    #[arg(skip)]
    pub hub: Option<HubArgs>,
    /// The desktop app's wall screen (the file's `[kiosk]` table), passed on unread: its keys
    /// are `tally-gui`'s to check.
    #[arg(skip)]
    pub kiosk: Option<toml::Table>,
}

/// `tally hub`'s flags, and the keys of the file's `[hub]` table. Without either output,
/// both on their loopback defaults.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
// The fields' doc comments are the command line's help: written for a terminal, not rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]
pub struct HubArgs {
    /// Publish events on a ZeroMQ PUB socket bound here (frames `<type> <json>`)
    #[arg(long, value_name = "ENDPOINT")]
    pub publish_zmq: Option<String>,
    /// Serve events to WebSocket clients at ws://ADDR/ws (one text frame per event)
    #[arg(long, value_name = "ADDR")]
    pub serve_ws: Option<SocketAddr>,
    /// Let web pages from this origin subscribe to --serve-ws (repeatable; e.g.
    /// https://dash.example.com, or * for any). Other browser origins are refused.
    #[arg(long = "ws-allow-origin", value_name = "ORIGIN")]
    pub ws_allow_origin: Vec<String>,
    /// Require a read token from --serve-ws subscribers (one per line in FILE; sent as
    /// `Authorization: Bearer TOKEN` or `?access_token=TOKEN`), apart from producers' --token
    #[arg(long = "read-token", value_name = "FILE")]
    pub read_token_file: Option<PathBuf>,
}

/// Where `tally hub` publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishSettings {
    /// A ZeroMQ endpoint to bind a PUB socket on (`tcp://127.0.0.1:6000`).
    pub zmq: Option<String>,
    /// An address to serve WebSocket clients on, at path `/ws`.
    pub ws: Option<SocketAddr>,
    /// Who may subscribe there (the connection limits are filled in from [`Settings`]).
    pub ws_options: ServeOptions,
}

impl HubArgs {
    fn publish(self, limits: ConnectionLimits) -> Result<PublishSettings, ConfigError> {
        let both = self.publish_zmq.is_none() && self.serve_ws.is_none();
        let default_ws = || DEFAULT_SERVE_WS.parse().expect("valid default address");
        Ok(PublishSettings {
            zmq: match both {
                true => Some(DEFAULT_PUBLISH_ZMQ.to_owned()),
                false => self.publish_zmq,
            },
            ws: match both {
                true => Some(default_ws()),
                false => self.serve_ws,
            },
            ws_options: ServeOptions {
                limits,
                allowed_origins: self.ws_allow_origin,
                read_tokens: self.read_token_file.as_deref().map(load_tokens).transpose()?,
            },
        })
    }
}

/// A TOML error as `line L, column C: message`, with every quoted value in the message
/// replaced by `"…"`. toml's own rendering quotes the offending line, which may hold a
/// `ws_header` value or a URL with credentials.
pub fn masked_parse_error(text: &str, error: &toml::de::Error) -> String {
    let mut masked = String::new();
    for (index, part) in error.message().split('"').enumerate() {
        match index {
            0 => {}
            odd if odd % 2 == 1 => masked.push_str("\"…"),
            _ => masked.push('"'),
        }
        if index % 2 == 0 {
            masked.push_str(part);
        }
    }
    let Some(span) = error.span() else {
        return masked;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("line {line}, column {column}: {masked}")
}

/// A token file that must hold at least one token.
fn load_tokens(path: &Path) -> Result<Arc<Tokens>, ConfigError> {
    let tokens = Tokens::load(path).map_err(|source| ConfigError::Tokens {
        path: path.to_owned(),
        source,
    })?;
    if tokens.is_empty() {
        return Err(ConfigError::NoTokens(path.to_owned()));
    }
    Ok(Arc::new(tokens))
}

/// Everything the collector needs to start, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub unix: Vec<PathBuf>,
    pub zmq: Vec<String>,
    pub zmq_topics: Vec<String>,
    pub ws: Vec<String>,
    pub ws_headers: Vec<WsHeader>,
    pub sse: Vec<String>,
    pub sse_headers: Vec<WsHeader>,
    pub hub_limits: HubLimits,
    /// Re-publish accepted events (`tally hub`); empty for the other commands.
    pub publish: PublishSettings,
    pub udp_options: UdpOptions,
    /// Stream listeners' and the WebSocket server's connection caps.
    pub connections: ConnectionLimits,
    pub decode: DecodeOptions,
    pub demo: bool,
    pub engine: EngineConfig,
    /// The zone clock times are shown in.
    pub clock: Clock,
    /// The file's `[kiosk]` table, for `tally-gui`.
    pub kiosk: Option<toml::Table>,
    /// The HTTP input (`--http`), if asked for.
    pub http: Option<HttpSettings>,
    /// The SSE firehose's own listener (`--sse-listen`), if asked for.
    pub sse_listen: Option<HttpSettings>,
    /// Serve the SSE firehose on the HTTP server (`--serve-sse`; always for `tally hub`).
    pub serve_sse: bool,
    /// Where the history is kept, unless `--no-state`.
    pub state: Option<StateSettings>,
    /// The history's Redis mirror (`--redis`).
    pub redis: Option<String>,
    /// Aggregates to carbon (`--graphite`).
    pub graphite: Option<GraphiteSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Where the file is wrong and why, without the offending text: it may hold a header
    /// value or a URL's credentials (see [`masked_parse_error`]).
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("cannot read the tokens in {}: {source}", .path.display())]
    Tokens { path: PathBuf, source: std::io::Error },
    #[error(
        "{} holds no tokens, so every event would be refused: put one token per line",
        .0.display()
    )]
    NoTokens(PathBuf),
    #[error(
        "no sources: --no-udp was given without --udp, --tcp, --unix, --http, --zmq, --ws, --sse or --demo, so nothing would arrive"
    )]
    NoSources,
    #[error("--max-connections must be at least 1")]
    NoConnections,
    #[error("--redis mirrors the history, which --no-state (or --demo without --state) turns off")]
    RedisWithoutState,
    #[error(transparent)]
    Flags(#[from] clap::Error),
    #[error("--max-memory: {0}")]
    Budget(#[from] tally_core::BudgetError),
}

/// Where the configuration file is looked for when `--config` is not given.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("tally").join("config.toml"))
}

impl SourceArgs {
    /// A configuration file, as a layer.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: masked_parse_error(&text, &error),
        })
    }

    /// These flags (parsed into `matches`, which say which were given) over the file over
    /// the defaults. The file is `--config`, or the default path if a file is there.
    pub fn resolve(&self, matches: &ArgMatches) -> Result<Settings, ConfigError> {
        self.layered(matches)?.settings()
    }

    /// Like [`SourceArgs::resolve`], with `tally hub`'s outputs ([`HubArgs`] in `matches`
    /// over the file's `[hub]` table).
    pub fn resolve_hub(&self, matches: &ArgMatches) -> Result<Settings, ConfigError> {
        let mut layered = self.layered(matches)?;
        let mut hub = layered.hub.take().unwrap_or_default();
        hub.update_from_arg_matches(matches)?;
        let mut settings = layered.settings()?;
        let publish = hub.publish(settings.connections)?;
        settings.serve_sse = true;
        // The hub's readers read its HTTP API too, unless it has readers of its own.
        for http in settings.http.iter_mut().chain(&mut settings.sse_listen) {
            if http.read_tokens.is_none() {
                http.read_tokens = publish.ws_options.read_tokens.clone();
            }
        }
        Ok(Settings { publish, ..settings })
    }

    fn layered(&self, matches: &ArgMatches) -> Result<Self, ConfigError> {
        let mut layered = match &self.config {
            Some(path) => SourceArgs::load(path)?,
            None => match default_config_path().filter(|p| p.exists()) {
                Some(path) => SourceArgs::load(&path)?,
                None => SourceArgs::default(),
            },
        };
        layered.update_from_arg_matches(matches)?;
        Ok(layered)
    }

    /// This layer, with defaults for what it leaves unset.
    pub fn settings(self) -> Result<Settings, ConfigError> {
        let mut udp = self.udp;
        // Watching a hub is the whole job of a subscriber: it must not take (or fail on) the
        // port the hub on the same machine listens on.
        let subscribes = !(self.zmq.is_empty() && self.ws.is_empty() && self.sse.is_empty());
        if udp.is_empty() && !self.no_udp.unwrap_or(false) && !subscribes {
            udp.push(DEFAULT_UDP.parse().expect("valid default address"));
        }
        let demo = self.demo.unwrap_or(false);
        let sources = [
            udp.len(),
            usize::from(self.http.is_some()),
            usize::from(self.sse_listen.is_some()),
            self.tcp.len(),
            self.unix.len(),
            self.zmq.len(),
            self.ws.len(),
            self.sse.len(),
        ];
        if sources.iter().all(|&n| n == 0) && !demo {
            return Err(ConfigError::NoSources);
        }
        let tokens = self.token_file.as_deref().map(load_tokens).transpose()?;
        if self.max_connections == Some(0) {
            return Err(ConfigError::NoConnections);
        }
        let udp_defaults = UdpOptions::default();
        let connection_defaults = ConnectionLimits::default();
        let mut engine = self.engine.unwrap_or_default();
        if let Some(max) = self.max_accounts {
            engine.max_accounts = max;
        }
        let clock = match self.utc.unwrap_or(false) {
            true => Clock::utc(),
            false => Clock::new(jiff::tz::TimeZone::system()),
        };
        // Demo traffic stays out of the history, unless a directory is given for it.
        let keep_state = !self.no_state.unwrap_or(false) && (self.state.is_some() || !demo);
        let state = match (keep_state, self.state.or_else(default_state_dir)) {
            (true, Some(dir)) => Some(StateSettings {
                dir,
                interval: self.checkpoint_interval.unwrap_or(DEFAULT_CHECKPOINT_INTERVAL),
                keep_hours: self.keep_hours.unwrap_or(DEFAULT_KEEP_HOURS),
            }),
            _ => None,
        };
        // What the HTTP server and the firehose's own listener share.
        let http = HttpSettings {
            address: DEFAULT_HTTP.parse().expect("valid address"),
            body_limit: (self.http_body_limit).map_or(DEFAULT_BODY_LIMIT, |limit| limit.as_u64() as usize),
            allow_origins: self.http_allow_origin,
            metrics_top: self.metrics_top.unwrap_or(crate::metrics::DEFAULT_TOP),
            history: state.as_ref().map(|state| state.dir.clone()),
            stats_prefix: self
                .stats_prefix
                .unwrap_or_else(|| DEFAULT_STATS_PREFIX.to_owned()),
            clock: clock.clone(),
            read_tokens: self
                .http_read_token_file
                .as_deref()
                .map(load_tokens)
                .transpose()?,
        };
        let mut settings = Settings {
            udp,
            tcp: self.tcp,
            unix: self.unix,
            zmq: self.zmq,
            zmq_topics: self.zmq_topic,
            ws: self.ws,
            ws_headers: self.ws_header,
            sse: self.sse,
            sse_headers: self.sse_header,
            hub_limits: HubLimits::default(),
            publish: PublishSettings::default(),
            udp_options: UdpOptions {
                threads: self.udp_threads.unwrap_or(udp_defaults.threads),
                recv_buffer: self.recv_buffer.unwrap_or(udp_defaults.recv_buffer),
            },
            connections: ConnectionLimits {
                max: self.max_connections.unwrap_or(connection_defaults.max),
                idle: self.idle_timeout.unwrap_or(connection_defaults.idle),
            },
            decode: DecodeOptions {
                accounts: self
                    .account_tag
                    .map_or(AccountFrom::FirstSegment, AccountFrom::Tag),
                tokens,
                ..DecodeOptions::default()
            },
            demo,
            engine,
            clock,
            kiosk: self.kiosk,
            http: self.http.map(|address| HttpSettings {
                address,
                ..http.clone()
            }),
            sse_listen: self.sse_listen.map(|address| HttpSettings { address, ..http }),
            serve_sse: self.serve_sse.unwrap_or(false),
            state,
            redis: self.redis,
            graphite: self.graphite.map(|address| GraphiteSettings {
                address,
                interval: self.graphite_interval.unwrap_or(DEFAULT_GRAPHITE_INTERVAL),
                prefix: self.graphite_prefix,
            }),
        };
        if settings.redis.is_some() && settings.state.is_none() {
            return Err(ConfigError::RedisWithoutState);
        }
        if let Some(budget) = self.max_memory {
            settings.fit(budget.as_u64())?;
        }
        Ok(settings)
    }
}

/// What one stream connection can hold: its name cache and its line buffer.
const CONNECTION_CEILING: u64 = Recorder::cache_ceiling(CONNECTION_CACHED_NAMES) + CONNECTION_BUFFER as u64;

impl Settings {
    /// The most memory the inputs hold besides the engine: each UDP thread's and each stream
    /// connection's name cache and buffers, each hub client's hand-off queue.
    pub fn inputs_ceiling(&self) -> u64 {
        self.streams_ceiling() + self.other_inputs_ceiling()
    }

    fn streams_ceiling(&self) -> u64 {
        self.stream_listeners() * self.connections.max as u64 * CONNECTION_CEILING
    }

    /// Listeners whose connections each hold a buffer and (HTTP: pooled) name caches.
    fn stream_listeners(&self) -> u64 {
        (self.tcp.len() + self.unix.len() + usize::from(self.http.is_some())) as u64
    }

    /// UDP threads and hub clients: what no cap of the budget's changes.
    fn other_inputs_ceiling(&self) -> u64 {
        let udp_threads = (self.udp.len() * self.udp_options.thread_count()) as u64;
        let udp = udp_threads * (Recorder::cache_ceiling(Recorder::MAX_CACHED_NAMES) + UDP_BUFFERS);
        let hub_client = Recorder::cache_ceiling(Recorder::MAX_CACHED_NAMES)
            + self.hub_limits.queue_bytes as u64
            + self.hub_limits.max_message as u64;
        udp + (self.zmq.len() + self.ws.len() + self.sse.len()) as u64 * hub_client
    }

    /// Lowers the caps to fit `budget` bytes: what the inputs hold comes out of it first (the
    /// stream connections fewer if they would take more than a quarter of it), and the counts
    /// get the rest.
    fn fit(&mut self, budget: u64) -> Result<(), ConfigError> {
        let listeners = self.stream_listeners();
        if listeners > 0 {
            let room =
                (budget / 4).saturating_sub(self.other_inputs_ceiling()) / (listeners * CONNECTION_CEILING);
            self.connections.max = self.connections.max.min(room.max(16) as usize);
        }
        let rest = budget.saturating_sub(self.inputs_ceiling());
        self.engine = self.engine.within_budget(rest)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    /// The flags of a command line, and which were given.
    fn matches(args: &[&str]) -> (SourceArgs, ArgMatches) {
        let command = HubArgs::augment_args(SourceArgs::augment_args(Command::new("tally")));
        let matches = command
            .try_get_matches_from(std::iter::once("tally").chain(args.iter().copied()))
            .expect("valid flags");
        (SourceArgs::from_arg_matches(&matches).expect("flags"), matches)
    }

    /// Issue 14: the history is kept by default, in the state directory or `--state`; not
    /// with `--no-state`, nor for demo traffic unless a directory is given for it.
    #[test]
    fn the_history_is_kept_unless_told_or_a_demo() {
        let dir = |args: &[&str]| resolve(args).expect("valid").state.map(|s| s.dir);
        let own = PathBuf::from("/var/lib/tally");
        assert_eq!(dir(&[]), default_state_dir());
        assert_eq!(dir(&["--state", "/var/lib/tally"]), Some(own.clone()));
        assert_eq!(dir(&["--no-state"]), None);
        assert_eq!(dir(&["--demo"]), None, "demo traffic is not history");
        assert_eq!(dir(&["--demo", "--state", "/var/lib/tally"]), Some(own));
        let error = resolve(&["--demo", "--redis", "redis://127.0.0.1:6379"]).expect_err("nothing to mirror");
        assert!(
            error.to_string().contains("--redis mirrors the history"),
            "{error}"
        );
    }

    /// `tally hub`'s readers read its HTTP API too, unless it has readers of its own.
    #[test]
    fn the_hubs_readers_read_the_http_api() {
        let dir = std::env::temp_dir().join(format!("tally-readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (hub, own) = (dir.join("hub"), dir.join("own"));
        std::fs::write(&hub, "hub-reader\n").expect("writes");
        std::fs::write(&own, "own-reader\n").expect("writes");
        let (hub, own) = (hub.to_str().expect("utf-8"), own.to_str().expect("utf-8"));
        let readers = |args: &[&str]| {
            let settings = resolve_hub(args).expect("valid");
            let tokens = settings.http.and_then(|h| h.read_tokens);
            tokens.map(|t| (t.contains("hub-reader"), t.contains("own-reader")))
        };
        let http = ["--http", "127.0.0.1:0"];
        assert_eq!(
            readers(&[&http[..], &["--read-token", hub]].concat()),
            Some((true, false))
        );
        let both = [&http[..], &["--read-token", hub, "--http-read-token", own]].concat();
        assert_eq!(readers(&both), Some((false, true)));
        assert_eq!(readers(&http), None, "open, on loopback by default");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn resolve(args: &[&str]) -> Result<Settings, ConfigError> {
        let (flags, matches) = matches(args);
        flags.resolve(&matches)
    }

    fn resolve_hub(args: &[&str]) -> Result<Settings, ConfigError> {
        let (flags, matches) = matches(args);
        flags.resolve_hub(&matches)
    }

    /// A file with `text`, for `--config`.
    fn config_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("tally-config-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("writes");
        path
    }

    #[test]
    fn defaults_listen_on_loopback_statsd() {
        let settings = SourceArgs::default().settings().expect("valid");
        assert_eq!(
            settings.udp,
            [DEFAULT_UDP.parse::<SocketAddr>().expect("address")]
        );
        assert!(!settings.demo);
        assert_eq!(settings.udp_options.recv_buffer, 8 << 20);
    }

    /// Issue 12 (headless): `tally --zmq URL` beside a hub on the same machine must not
    /// bind the hub's UDP port.
    #[test]
    fn a_subscriber_binds_no_default_listener() {
        let settings = resolve(&["--zmq", "tcp://127.0.0.1:6000"]).expect("valid");
        assert!(settings.udp.is_empty(), "{:?}", settings.udp);
        let settings =
            resolve(&["--ws", "ws://127.0.0.1:5555/ws", "--udp", "127.0.0.1:9125"]).expect("valid");
        assert_eq!(settings.udp.len(), 1, "an explicit --udp still listens");
    }

    #[test]
    fn flags_override_the_file() {
        let path = config_file(
            "layers",
            r#"
            udp = ["127.0.0.1:9000"]
            account_tag = "tenant"
            udp_threads = 3
            demo = true
            [engine]
            max_accounts = 50
            "#,
        );
        let config = path.display().to_string();
        let from_file = resolve(&["--config", &config]).expect("valid");
        assert_eq!(
            from_file.udp,
            ["127.0.0.1:9000".parse::<SocketAddr>().expect("address")]
        );
        assert_eq!(from_file.udp_options.threads, 3);
        assert_eq!(from_file.decode.accounts, AccountFrom::Tag("tenant".into()));
        assert_eq!(from_file.engine.max_accounts, 50);
        assert!(from_file.demo, "a flag not given leaves the file's value");
        let args = [
            "--config",
            &config,
            "--udp",
            "[::1]:8125",
            "--udp-threads",
            "1",
            "--max-accounts",
            "7",
        ];
        let merged = resolve(&args).expect("valid");
        assert_eq!(merged.udp, ["[::1]:8125".parse::<SocketAddr>().expect("address")]);
        assert_eq!(merged.udp_options.threads, 1);
        assert_eq!(merged.engine.max_accounts, 7);
        assert_eq!(merged.decode.accounts, AccountFrom::Tag("tenant".into()));
        let _ = std::fs::remove_file(path);
    }

    /// Every flag (the hub clients' and `tally hub`'s included) is a key of the file, because
    /// flags and keys are one struct; this holds it to that.
    #[test]
    fn every_flag_has_a_file_key_and_mistakes_are_errors() {
        let flag_ids = |command: Command| -> Vec<String> {
            (command.get_arguments())
                .map(|a| a.get_id().to_string())
                .filter(|id| id != "config")
                .collect()
        };
        let sources = flag_ids(SourceArgs::augment_args(Command::new("t")));
        let hub = flag_ids(HubArgs::augment_args(Command::new("t")));
        for wanted in ["zmq", "zmq_topic", "ws", "ws_header", "demo", "max_accounts"] {
            assert!(sources.iter().any(|id| id == wanted), "{wanted} is a flag");
        }
        assert_eq!(
            hub,
            ["publish_zmq", "serve_ws", "ws_allow_origin", "read_token_file"]
        );
        // A key the file does not know is an error naming it; a known key with a value of
        // the wrong type is an error of another kind.
        let unknown = |text: &str| {
            toml::from_str::<SourceArgs>(text)
                .err()
                .is_some_and(|e| e.to_string().contains("unknown field"))
        };
        assert!(unknown("udps = []"));
        assert!(unknown("config = \"x\""), "--config names the file: no key");
        for id in &sources {
            assert!(!unknown(&format!("{id} = {{}}")), "--{id} has no file key");
        }
        for id in &hub {
            assert!(
                !unknown(&format!("[hub]\n{id} = {{}}")),
                "--{id} has no [hub] key"
            );
        }
        let all: SourceArgs = toml::from_str(
            "udp = []\nno_udp = true\ntcp = []\nunix = []\nzmq = [\"tcp://127.0.0.1:6000\"]\nzmq_topic = [\"order\"]\nws = [\"ws://127.0.0.1:5555/ws\"]\nws_header = [\"X-Team: ops\"]\nsse = [\"http://127.0.0.1:8080/firehose\"]\nsse_header = [\"X-Team: ops\"]\ndemo = true\nutc = true\ntoken_file = \"t\"\naccount_tag = \"a\"\nudp_threads = 1\nrecv_buffer = 1\nmax_accounts = 1\nmax_memory = \"512MiB\"\nmax_connections = 8\nidle_timeout = \"90s\"\nhttp = \"127.0.0.1:8080\"\nhttp_body_limit = \"2MiB\"\nhttp_allow_origin = [\"https://shop.example.com\"]\nhttp_read_token_file = \"r\"\nserve_sse = true\nsse_listen = \"127.0.0.1:5556\"\nmetrics_top = 5\nstats_prefix = \"/api/stats\"\nstate = \"s\"\nno_state = true\nredis = \"redis://127.0.0.1:6379\"\ngraphite = \"127.0.0.1:2003\"\ngraphite_interval = \"10s\"\ngraphite_prefix = \"eu\"\ncheckpoint_interval = \"10s\"\nkeep_hours = \"30d\"\n[engine]\nmax_accounts = 1\n[hub]\npublish_zmq = \"tcp://127.0.0.1:6001\"\nserve_ws = \"127.0.0.1:5556\"\nws_allow_origin = [\"https://dash.example.com\"]\nread_token_file = \"r\"",
        )
        .expect("every key parses");
        assert_eq!((all.demo, all.no_udp), (Some(true), Some(true)));
        assert_eq!(all.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(all.max_memory, Some(bytesize::ByteSize::mib(512)));
        assert_eq!(
            (
                all.zmq.len(),
                all.zmq_topic.len(),
                all.ws.len(),
                all.ws_header.len()
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(all.hub.and_then(|h| h.serve_ws).map(|a| a.port()), Some(5556));
        let args = SourceArgs {
            no_udp: Some(true),
            ..SourceArgs::default()
        };
        let error = args.settings().expect_err("nothing to listen to");
        assert!(error.to_string().contains("no sources"));
    }

    /// Issue 11, item 8: a budget makes caps that fit it, inputs included; the README states
    /// the ceiling of the defaults as computed here.
    #[test]
    fn a_memory_budget_sets_the_caps() {
        let budget = 256 << 20;
        let settings = resolve(&["--max-memory", "256MiB", "--tcp", "127.0.0.1:0"]).expect("fits");
        assert!(settings.engine.memory_ceiling() + settings.inputs_ceiling() <= budget);
        assert!(settings.connections.max < 1024, "fewer connections fit 256 MiB");
        assert!(settings.engine.max_accounts < EngineConfig::default().max_accounts);
        let error = resolve(&["--max-connections", "0"]).expect_err("no connections at all");
        assert!(error.to_string().contains("at least 1"), "{error}");
        let error = resolve(&["--max-memory", "8MiB"]).expect_err("too small");
        assert!(
            error.to_string().starts_with("--max-memory: a memory budget of"),
            "{error}"
        );
        let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README");
        let ceiling = EngineConfig::default().memory_ceiling() as f64 / f64::from(1 << 30);
        let stated = format!("{ceiling:.2} GiB");
        assert!(
            readme.contains(&stated),
            "the README states the default ceiling, {stated}"
        );
    }

    #[test]
    fn hub_outputs_layer_like_the_rest() {
        let path = config_file("hub", "[hub]\nserve_ws = \"127.0.0.1:5600\"\n");
        let config = path.display().to_string();
        let from_file = resolve_hub(&["--config", &config]).expect("valid");
        assert_eq!(from_file.publish.ws.map(|a| a.port()), Some(5600));
        assert_eq!(from_file.publish.zmq, None, "one output named: only that one");
        let both =
            resolve_hub(&["--config", &config, "--publish-zmq", "tcp://127.0.0.1:7000"]).expect("valid");
        assert_eq!(both.publish.zmq.as_deref(), Some("tcp://127.0.0.1:7000"));
        assert_eq!(both.publish.ws.map(|a| a.port()), Some(5600));
        let empty = config_file("empty", "");
        let defaults = resolve_hub(&["--config", &empty.display().to_string()])
            .expect("valid")
            .publish;
        assert_eq!(defaults.zmq.as_deref(), Some(DEFAULT_PUBLISH_ZMQ));
        assert!(
            resolve(&["--config", &config])
                .expect("valid")
                .publish
                .zmq
                .is_none()
        );
        let _ = (std::fs::remove_file(path), std::fs::remove_file(empty));
    }

    #[test]
    fn a_config_error_keeps_its_cause() {
        use std::error::Error;
        let error = resolve(&["--config", "/nonexistent/tally.toml"]).expect_err("no file");
        assert!(
            error
                .to_string()
                .starts_with("cannot read /nonexistent/tally.toml: "),
            "{error}"
        );
        let cause = error.source().and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The example configuration in assets/ stays valid and means what it says.
    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/config.example.toml");
        let config = SourceArgs::load(&path).expect("example parses");
        assert_eq!(config.udp.len(), 2);
        assert_eq!(config.engine, Some(EngineConfig::default()));
        assert_eq!(config.recv_buffer, Some(8 << 20));
    }
}

#[cfg(test)]
mod tokens {
    use super::*;

    #[test]
    fn a_token_file_is_loaded_and_an_empty_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("tally-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (good, empty) = (dir.join("tokens"), dir.join("empty"));
        std::fs::write(&good, "# team a\nabc123\n").expect("writes");
        std::fs::write(&empty, "# nothing yet\n").expect("writes");
        let args = |path: &Path| SourceArgs {
            token_file: Some(path.to_owned()),
            ..SourceArgs::default()
        };
        let settings = args(&good).settings().expect("valid");
        let tokens = settings.decode.tokens.expect("tokens");
        assert!(tokens.contains("abc123") && tokens.len() == 1);
        let error = args(&empty).settings().expect_err("refused");
        assert!(error.to_string().contains("holds no tokens"), "{error}");
        let error = args(&dir.join("missing")).settings().expect_err("refused");
        assert!(error.to_string().contains("cannot read the tokens"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
