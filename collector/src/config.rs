//! Source configuration: one set of flags shared by every tally command, each with a key in a
//! TOML file. Flags override the file; the file overrides the defaults.

use crate::decode::{AccountFrom, DecodeOptions, Tokens};
use crate::hub::HubLimits;
use crate::hub::publish::PublishSettings;
use crate::hub::ws_client::WsHeader;
use crate::udp::UdpOptions;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tally_core::EngineConfig;

/// The default listener: StatsD's port, loopback only.
pub const DEFAULT_UDP: &str = "127.0.0.1:8125";

/// The source flags of every command.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SourceArgs {
    /// Listen for UDP datagrams here (repeatable; IPv4 or IPv6) [default: 127.0.0.1:8125]
    #[arg(long = "udp", value_name = "ADDR")]
    pub udp: Vec<SocketAddr>,
    /// Do not listen on the default UDP address (only on those given with --udp)
    #[arg(long)]
    pub no_udp: bool,
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
    #[arg(long = "ws-header", value_name = "'NAME: VALUE'")]
    pub ws_header: Vec<WsHeader>,
    /// Generate demo traffic through a real socket into the listener
    #[arg(long)]
    pub demo: bool,
    /// Read settings from this TOML file [default: tally/config.toml in the user's config dir]
    #[arg(long, value_name = "FILE")]
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
}

/// The configuration file. Every flag of [`SourceArgs`] has a key here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub udp: Vec<SocketAddr>,
    pub no_udp: bool,
    pub tcp: Vec<SocketAddr>,
    pub unix: Vec<PathBuf>,
    pub zmq: Vec<String>,
    pub zmq_topic: Vec<String>,
    pub ws: Vec<String>,
    pub ws_header: Vec<WsHeader>,
    pub demo: bool,
    pub token_file: Option<PathBuf>,
    pub account_tag: Option<String>,
    pub udp_threads: Option<usize>,
    pub recv_buffer: Option<usize>,
    pub engine: EngineConfig,
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
    pub hub_limits: HubLimits,
    /// Re-publish accepted events (`tally hub`); empty for the other commands.
    pub publish: PublishSettings,
    pub udp_options: UdpOptions,
    pub demo: bool,
    pub engine: EngineConfig,
}

#[derive(Debug)]
pub enum ConfigError {
    Read(PathBuf, std::io::Error),
    Parse(PathBuf, toml::de::Error),
    Tokens(PathBuf, std::io::Error),
    NoTokens(PathBuf),
    NoSources,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read(path, error) => write!(f, "cannot read {}: {error}", path.display()),
            ConfigError::Parse(path, error) => write!(f, "{}: {error}", path.display()),
            ConfigError::Tokens(path, error) => {
                write!(f, "cannot read the tokens in {}: {error}", path.display())
            }
            ConfigError::NoTokens(path) => write!(
                f,
                "{} holds no tokens, so every event would be refused: put one token per line",
                path.display()
            ),
            ConfigError::NoSources => write!(
                f,
                "no sources: --no-udp was given without --udp, --tcp, --unix, --zmq, --ws or --demo, so nothing would arrive"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the configuration file is looked for when `--config` is not given.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("tally").join("config.toml"))
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))
    }
}

impl SourceArgs {
    /// Flags over the file over the defaults. The file is `--config`, or the default path if a
    /// file is there.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => match default_config_path().filter(|p| p.exists()) {
                Some(path) => FileConfig::load(&path)?,
                None => FileConfig::default(),
            },
        };
        self.merge(file)
    }

    pub fn merge(&self, file: FileConfig) -> Result<Settings, ConfigError> {
        let no_udp = self.no_udp || file.no_udp;
        let mut udp = if self.udp.is_empty() {
            file.udp
        } else {
            self.udp.clone()
        };
        if udp.is_empty() && !no_udp {
            udp.push(DEFAULT_UDP.parse().expect("valid default address"));
        }
        let demo = self.demo || file.demo;
        let tcp = if self.tcp.is_empty() {
            file.tcp
        } else {
            self.tcp.clone()
        };
        let unix = if self.unix.is_empty() {
            file.unix
        } else {
            self.unix.clone()
        };
        let or_file =
            |flags: &Vec<String>, file: Vec<String>| if flags.is_empty() { file } else { flags.clone() };
        let zmq = or_file(&self.zmq, file.zmq);
        let zmq_topics = or_file(&self.zmq_topic, file.zmq_topic);
        let ws = or_file(&self.ws, file.ws);
        let ws_headers = if self.ws_header.is_empty() {
            file.ws_header
        } else {
            self.ws_header.clone()
        };
        if udp.is_empty() && tcp.is_empty() && unix.is_empty() && zmq.is_empty() && ws.is_empty() && !demo {
            return Err(ConfigError::NoSources);
        }
        let account_tag = self.account_tag.clone().or(file.account_tag);
        let tokens = match self.token_file.clone().or(file.token_file) {
            Some(path) => {
                let tokens = Tokens::load(&path).map_err(|e| ConfigError::Tokens(path.clone(), e))?;
                if tokens.is_empty() {
                    return Err(ConfigError::NoTokens(path));
                }
                Some(std::sync::Arc::new(tokens))
            }
            None => None,
        };
        let defaults = UdpOptions::default();
        let mut engine = file.engine;
        if let Some(max) = self.max_accounts {
            engine.max_accounts = max;
        }
        Ok(Settings {
            udp,
            tcp,
            unix,
            zmq,
            zmq_topics,
            ws,
            ws_headers,
            hub_limits: HubLimits::default(),
            publish: PublishSettings::default(),
            udp_options: UdpOptions {
                threads: self.udp_threads.or(file.udp_threads).unwrap_or(defaults.threads),
                recv_buffer: self
                    .recv_buffer
                    .or(file.recv_buffer)
                    .unwrap_or(defaults.recv_buffer),
                decode: DecodeOptions {
                    accounts: account_tag.map_or(AccountFrom::FirstSegment, AccountFrom::Tag),
                    tokens,
                    ..DecodeOptions::default()
                },
            },
            demo,
            engine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_statsd() {
        let settings = SourceArgs::default().merge(FileConfig::default()).expect("valid");
        assert_eq!(
            settings.udp,
            [DEFAULT_UDP.parse::<SocketAddr>().expect("address")]
        );
        assert!(!settings.demo);
        assert_eq!(settings.udp_options.recv_buffer, 8 << 20);
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            udp = ["127.0.0.1:9000"]
            account_tag = "tenant"
            udp_threads = 3
            [engine]
            max_accounts = 50
            "#,
        )
        .expect("parses");
        let from_file = SourceArgs::default().merge(file.clone()).expect("valid");
        assert_eq!(
            from_file.udp,
            ["127.0.0.1:9000".parse::<SocketAddr>().expect("address")]
        );
        assert_eq!(from_file.udp_options.threads, 3);
        assert_eq!(
            from_file.udp_options.decode.accounts,
            AccountFrom::Tag("tenant".into())
        );
        assert_eq!(from_file.engine.max_accounts, 50);
        let args = SourceArgs {
            udp: vec!["[::1]:8125".parse().expect("address")],
            udp_threads: Some(1),
            max_accounts: Some(7),
            ..SourceArgs::default()
        };
        let merged = args.merge(file).expect("valid");
        assert_eq!(merged.udp, ["[::1]:8125".parse::<SocketAddr>().expect("address")]);
        assert_eq!(merged.udp_options.threads, 1);
        assert_eq!(merged.engine.max_accounts, 7);
    }

    #[test]
    fn every_flag_has_a_file_key_and_mistakes_are_errors() {
        assert!(
            toml::from_str::<FileConfig>("udps = []").is_err(),
            "unknown keys are rejected"
        );
        let all: FileConfig = toml::from_str(
            "udp = []\nno_udp = true\ntcp = []\nunix = []\ndemo = true\ntoken_file = \"t\"\naccount_tag = \"a\"\nudp_threads = 1\nrecv_buffer = 1\n[engine]\nmax_accounts = 1",
        )
        .expect("every key parses");
        assert!(all.demo && all.no_udp);
        let args = SourceArgs {
            no_udp: true,
            ..SourceArgs::default()
        };
        let error = args
            .merge(FileConfig::default())
            .expect_err("nothing to listen to");
        assert!(error.to_string().contains("no sources"));
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The example configuration in assets/ stays valid and means what it says.
    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/config.example.toml");
        let config = FileConfig::load(&path).expect("example parses");
        assert_eq!(config.udp.len(), 2);
        assert_eq!(config.engine, EngineConfig::default());
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
        let settings = args(&good).merge(FileConfig::default()).expect("valid");
        let tokens = settings.udp_options.decode.tokens.expect("tokens");
        assert!(tokens.contains("abc123") && tokens.len() == 1);
        let error = args(&empty).merge(FileConfig::default()).expect_err("refused");
        assert!(error.to_string().contains("holds no tokens"), "{error}");
        let error = args(&dir.join("missing"))
            .merge(FileConfig::default())
            .expect_err("refused");
        assert!(error.to_string().contains("cannot read the tokens"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
