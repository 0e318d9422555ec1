//! `tally`: the terminal dashboard's binary, and the headless commands.

use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tally_collector::collector::Collector;
use tally_collector::config::{Settings, SourceArgs};
use tally_collector::hub::publish::PublishSettings;
use tally_collector::send::{self, SendOptions};
use tally_collector::stat::{self, StatOptions};
use tally_core::{Engine, Window, human_duration};
use tally_tui::theme::ThemeName;

mod dashboard;

/// A live dashboard of event streams: accounts, rates, types and timings.
///
/// With no subcommand, the terminal dashboard (`tally --demo` shows demo traffic).
#[derive(Parser, Debug)]
#[command(name = "tally", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    sources: SourceArgs,
    /// Redraw at most this many times a second (only when something changed)
    #[arg(long, default_value_t = 4.0)]
    fps: f64,
    /// Colours (NO_COLOR=1 turns them off)
    #[arg(long, value_enum, default_value = "default")]
    theme: ThemeName,
}

/// How the headless commands report.
#[derive(Args, Debug)]
struct ReportArgs {
    /// Time between reports (e.g. 2s, 500ms)
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// One JSON object per report (schema in the README)
    #[arg(long)]
    json: bool,
    /// Exit after this many reports
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// The window that totals cover: 1m, 5m, 1h or 24h
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Accounts named in each table row
    #[arg(long, default_value_t = 3)]
    top: usize,
}

/// The classic hub's ZeroMQ endpoint, loopback only.
const DEFAULT_PUBLISH_ZMQ: &str = "tcp://127.0.0.1:6000";
/// The classic hub's WebSocket port, loopback only.
const DEFAULT_SERVE_WS: &str = "127.0.0.1:5555";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the collector without a UI and print stats every interval
    Stat {
        #[command(flatten)]
        sources: SourceArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Run as a hub: collect, and re-publish every accepted event for dashboards elsewhere
    /// (without --publish-zmq or --serve-ws: both, on their loopback defaults)
    Hub {
        #[command(flatten)]
        sources: SourceArgs,
        /// Publish events on a ZeroMQ PUB socket bound here (frames `<type> <json>`)
        #[arg(long, value_name = "ENDPOINT")]
        publish_zmq: Option<String>,
        /// Serve events to WebSocket clients at ws://ADDR/ws (one text frame per event)
        #[arg(long, value_name = "ADDR")]
        serve_ws: Option<std::net::SocketAddr>,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Send events to a collector (tally, a StatsD server, a classic events hub)
    Send {
        #[command(flatten)]
        options: SendOptions,
        /// Print what was sent as JSON
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() {
        // Headless commands log to stderr; the dashboard logs to a file (see `dashboard`).
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .with_env_filter(tally_collector::logging::filter())
            .init();
    }
    let result = match cli.command {
        None => dashboard::run(&cli.sources, cli.fps, cli.theme),
        Some(Command::Stat { sources, report }) => sources
            .resolve()
            .map_err(|e| e.to_string())
            .and_then(|s| run_stat(&s, &report)),
        Some(Command::Hub {
            sources,
            publish_zmq,
            serve_ws,
            report,
        }) => sources
            .resolve()
            .map_err(|e| e.to_string())
            .and_then(|mut settings| {
                settings.publish = PublishSettings {
                    zmq: publish_zmq.clone(),
                    ws: serve_ws,
                };
                if settings.publish.is_empty() {
                    settings.publish = PublishSettings {
                        zmq: Some(DEFAULT_PUBLISH_ZMQ.to_owned()),
                        ws: Some(DEFAULT_SERVE_WS.parse().expect("valid default address")),
                    };
                }
                run_stat(&settings, &report)
            }),
        Some(Command::Send { options, json }) => run_send(&options, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tally: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The preset window that spans `span`, or a message listing the ones there are.
fn window_for(engine: &Engine, span: Duration) -> Result<Window, String> {
    let presets = engine.window_presets();
    let resolutions = &engine.config().resolutions;
    let span_of = |w: &Window| resolutions[w.level].bucket_ms * w.buckets as u64;
    presets
        .iter()
        .find(|w| span_of(w) as u128 == span.as_millis())
        .copied()
        .ok_or_else(|| {
            let known: Vec<String> = presets.iter().map(|w| human_duration(span_of(w))).collect();
            format!(
                "no window of {}: choose {}",
                humantime::format_duration(span),
                known.join(", ")
            )
        })
}

/// Collects (and, for `tally hub`, publishes) and reports until stopped.
fn run_stat(settings: &Settings, report: &ReportArgs) -> Result<(), String> {
    let collector = Collector::start(settings).map_err(|e| e.to_string())?;
    for output in collector.outputs() {
        eprintln!("tally: publishing on {} ({})", output.address, output.kind);
    }
    let window = window_for(collector.engine(), report.window)?;
    let options = StatOptions {
        interval: report.interval,
        json: report.json,
        count: report.count,
        window,
        top: report.top,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut out = std::io::stdout().lock();
    let result = stat::run(&collector, &options, &mut out, &stop);
    collector.stop();
    match result {
        // A closed pipe (`tally stat | head`) is a normal way to stop.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| e.to_string()),
    }
}

fn run_send(options: &SendOptions, json: bool) -> Result<(), String> {
    let report = send::send(options).map_err(|e| format!("sending to {}: {e}", options.to))?;
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        let rate = report.events as f64 / report.seconds.max(1e-9);
        writeln!(
            out,
            "sent {} events in {} datagrams ({} bytes) to {} in {:.3}s ({:.0} events/s)",
            report.events, report.datagrams, report.bytes, options.to, report.seconds, rate
        )
        .and_then(|()| {
            report
                .accounts
                .iter()
                .try_for_each(|(account, n)| writeln!(out, "  {account:<16} {n}"))
        })
    };
    written.map_err(|e| e.to_string())
}
