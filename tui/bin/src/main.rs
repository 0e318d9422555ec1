//! `tally`: the terminal dashboard's binary, and the headless commands.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tally_collector::collector::Collector;
use tally_collector::config::{HubArgs, Settings, SourceArgs};
use tally_collector::history::{Period, Store};
use tally_collector::send::{self, SendOptions};
use tally_collector::stat::{self, StatOptions};
use tally_core::{Clock, Engine, OutputKind, Window, human_duration};
use tally_tui::theme::ThemeName;

mod dashboard;
mod history;

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
    /// Accounts named in each table row, or listed in each JSON report (the rest are summed
    /// in `left_out`) [default: 3 in the table, 100 in JSON]
    #[arg(long, value_name = "N")]
    top: Option<usize>,
}

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
        #[command(flatten)]
        publish: HubArgs,
        #[command(flatten)]
        report: ReportArgs,
    },
    /// Show the counts kept for years: by hour, day or month, of one account (or `all`)
    History {
        /// The account (`all`: every account together)
        #[arg(default_value = tally_collector::history::ALL)]
        account: String,
        /// Only this type
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Count by hour, day or month
        #[arg(long, value_enum, default_value = "day")]
        by: Period,
        /// From this long ago (e.g. 48h, 30d, 1y)
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        since: Duration,
        /// One JSON document: {"account", "by", "counts": [{"period", "account", "type", "count"}]}
        #[arg(long)]
        json: bool,
        /// The state directory tally keeps the history in [default: $XDG_STATE_HOME/tally]
        #[arg(long, value_name = "DIR")]
        state: Option<std::path::PathBuf>,
        /// Dates and hours in UTC rather than local time
        #[arg(long)]
        utc: bool,
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
    // The matches are kept: configuration layers the flags given over the file.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if cli.command.is_some() {
        // Headless commands log to stderr; the dashboard logs to a file (see `dashboard`).
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .with_env_filter(tally_collector::logging::filter())
            .init();
    }
    let subcommand = |name| matches.subcommand_matches(name).unwrap_or(&matches);
    let result = match cli.command {
        None => dashboard::run(&cli.sources, &matches, cli.fps, cli.theme),
        Some(Command::Stat { sources, report }) => (sources.resolve(subcommand("stat")))
            .map_err(Failure::from)
            .and_then(|settings| run_stat(&settings, &report)),
        // `publish` is read through the matches, over the file's `[hub]` table.
        Some(Command::Hub {
            sources,
            publish: _,
            report,
        }) => (sources.resolve_hub(subcommand("hub")))
            .map_err(Failure::from)
            .and_then(|settings| run_stat(&settings, &report)),
        Some(Command::Send { options, json }) => run_send(&options, json),
        Some(Command::History {
            account,
            kind,
            by,
            since,
            json,
            state,
            utc,
        }) => run_history(&account, kind.as_deref(), by, since, json, state, utc),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tally: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What ends a command early; its message is what the user reads (causes included).
type Failure = Box<dyn std::error::Error>;

/// A flag that the signals asking a program to end (from a supervisor, a terminal, `kill`)
/// set instead of killing it, so that every command stops the way `q` or `--count` does:
/// the terminal restored, a last report printed, socket files removed.
fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
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
fn run_stat(settings: &Settings, report: &ReportArgs) -> Result<(), Failure> {
    let collector = Collector::start(settings)?;
    for output in collector.outputs() {
        match output.kind {
            OutputKind::History => {
                eprintln!("tally: keeping state (windows and history) in {}", output.address)
            }
            OutputKind::Redis => eprintln!("tally: mirroring the history to {}", output.address),
            OutputKind::Graphite => eprintln!("tally: sending aggregates to carbon at {}", output.address),
            kind => eprintln!("tally: publishing on {} ({kind})", output.address),
        }
    }
    let window = window_for(collector.engine(), report.window)?;
    let options = StatOptions {
        interval: report.interval,
        json: report.json,
        count: report.count,
        window,
        top: report.top.unwrap_or(if report.json { 100 } else { 3 }),
        clock: settings.clock.clone(),
    };
    let stop = stop_on_signals()?;
    let mut out = std::io::stdout().lock();
    let result = stat::run(&collector, &options, &mut out, &stop);
    collector.stop();
    match result {
        // A closed pipe (`tally stat | head`) is a normal way to stop.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn run_history(
    account: &str,
    kind: Option<&str>,
    by: Period,
    since: Duration,
    json: bool,
    state: Option<std::path::PathBuf>,
    utc: bool,
) -> Result<(), Failure> {
    let dir = (state.or_else(tally_collector::config::default_state_dir))
        .ok_or("no state directory known here: give one with --state DIR")?;
    let store = Store::open_read_only(&dir)?;
    let clock = match utc {
        true => Clock::utc(),
        false => Clock::new(jiff::tz::TimeZone::system()),
    };
    let from = tally_collector::health::now().saturating_sub_millis(since.as_millis() as u64);
    let counts = (store.counts(account, kind, by, from, &clock))
        .map_err(|error| format!("{}: {error}", store.path().display()))?;
    let mut out = std::io::stdout().lock();
    if json {
        let document = serde_json::json!({"account": account, "by": by, "counts": counts});
        writeln!(out, "{document}")?;
    } else {
        history::table(&mut out, account, by, &counts)?;
    }
    Ok(())
}

fn run_send(options: &SendOptions, json: bool) -> Result<(), Failure> {
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
    Ok(written?)
}
