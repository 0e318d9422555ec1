//! `tally-gui`: the desktop dashboard on the embedded collector.

use clap::{CommandFactory, FromArgMatches, Parser};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tally_collector::collector::Collector;
use tally_collector::config::SourceArgs;
use tally_collector::health::now;
use tally_gui::state::{SnapshotWorker, ThemeChoice};
use tally_gui::{Feed, GuiApp, KioskConfig, Mode};

/// A live desktop dashboard of event streams (`tally-gui --demo` shows demo traffic).
#[derive(Parser, Debug)]
#[command(name = "tally-gui", version)]
// The fields' doc comments are the command line's help: written for a terminal, not rustdoc.
#[allow(rustdoc::broken_intra_doc_links)]
struct Cli {
    #[command(flatten)]
    sources: SourceArgs,
    /// Wall-screen mode: fullscreen, large text, tiles, no controls (views and tiles: the
    /// configuration file's [kiosk] table)
    #[arg(long)]
    kiosk: bool,
    /// In kiosk mode, rotate between views this often (e.g. 30s) [default: [kiosk] rotate]
    #[arg(long, value_parser = humantime::parse_duration, requires = "kiosk")]
    rotate: Option<Duration>,
    /// Colours (remembered between runs when not given)
    #[arg(long, value_enum)]
    theme: Option<ThemeChoice>,
}

fn main() -> ExitCode {
    // The matches are kept: configuration layers the flags given over the file.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tally_collector::logging::filter())
        .init();
    match run(&cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tally-gui: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, matches: &clap::ArgMatches) -> Result<(), Box<dyn std::error::Error>> {
    let settings = cli.sources.resolve(matches)?;
    let mut kiosk: KioskConfig = match &settings.kiosk {
        Some(table) => toml::Value::Table(table.clone())
            .try_into()
            .map_err(|error| format!("the configuration's [kiosk] table: {error}"))?,
        None => KioskConfig::default(),
    };
    if cli.rotate.is_some() {
        kiosk.rotate = cli.rotate;
    }
    let collector = Arc::new(Collector::start(&settings)?);
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&quit))?;
    }
    let mode = if cli.kiosk {
        Mode::Kiosk(kiosk)
    } else {
        Mode::Laptop
    };
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("tally")
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([640.0, 400.0]);
    if cli.kiosk {
        viewport = viewport.with_fullscreen(true).with_decorations(false);
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        // The wall screen keeps no window state of the user's.
        persist_window: !cli.kiosk,
        ..eframe::NativeOptions::default()
    };
    // Each mode keeps its settings under its own name: the wall screen's zoom and views must
    // not become the laptop's.
    let app_name = if cli.kiosk { "tally-kiosk" } else { "tally" };
    let feed_collector = Arc::clone(&collector);
    let theme = cli.theme;
    let watcher = Arc::clone(&quit);
    let result = eframe::run_native(
        app_name,
        options,
        Box::new(move |creation| {
            let mut remembered = GuiApp::remembered(creation.storage);
            if let Some(theme) = theme {
                remembered.theme = theme;
            }
            // A signal closes the window even while nothing repaints.
            let ctx = creation.egui_ctx.clone();
            std::thread::spawn(move || {
                while !watcher.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                ctx.request_repaint();
            });
            let repaint = creation.egui_ctx.clone();
            let engine = Arc::clone(feed_collector.engine());
            let worker = SnapshotWorker::start(Arc::clone(&engine), now, move || {
                // A (tiny) delay asks egui for one frame; an immediate request paints two.
                repaint.request_repaint_after(Duration::from_millis(1));
            })?;
            let feed = Feed {
                engine,
                sources: Box::new({
                    let collector = Arc::clone(&feed_collector);
                    move || collector.sources()
                }),
                outputs: Box::new(move || feed_collector.outputs()),
                history: Box::new({
                    let dir = settings.state.as_ref().map(|state| state.dir.clone());
                    let zone = settings.clock.clone();
                    move |account| tally_collector::history::view(dir.as_deref(), account, &zone, now())
                }),
                clock: Box::new(now),
                zone: settings.clock.clone(),
                worker: Some(worker),
            };
            Ok(Box::new(GuiApp::new(feed, mode, remembered, quit)))
        }),
    );
    if let Ok(collector) = Arc::try_unwrap(collector) {
        collector.stop();
    }
    Ok(result.map_err(|e| format!("cannot open the window: {e}"))?)
}
