//! Running the dashboard: the terminal, the collector, and the loop between them.

use crossterm::event::{self, Event, KeyEventKind, MouseEventKind};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tally_collector::collector::Collector;
use tally_collector::config::SourceArgs;
use tally_collector::health::now;
use tally_core::{Fingerprint, Snapshot};
use tally_tui::app::App;
use tally_tui::terminal::Session;
use tally_tui::theme::{Theme, ThemeName};
use tally_tui::ui;

/// Logs go to a file: the screen belongs to the dashboard.
fn log_to_file() {
    let Some(dir) = dirs::cache_dir().map(|d| d.join("tally")) else {
        return;
    };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tally.log"))
    {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_env_filter(tally_collector::logging::filter())
            .try_init();
    }
}

/// What decides whether a new snapshot needs a redraw: what every view compares, and the
/// clock on screen, which shows whole seconds.
fn fingerprint(snapshot: &Snapshot) -> (Fingerprint, u64) {
    (snapshot.fingerprint(), snapshot.time.as_millis() / 1000)
}

/// Exits when the terminal hangs up (an SSH connection drops, a tmux pane closes). The
/// hangup signal does not always arrive, and crossterm's event reader retries a hung-up
/// terminal's end-of-file forever, so the main loop cannot notice by itself: it would spin,
/// unseen, at full speed. There is no terminal left to restore; the exit code is SIGHUP's.
fn exit_on_hangup() -> std::io::Result<()> {
    std::thread::Builder::new().name("hangup".into()).spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            if terminal_gone() {
                tracing::warn!("the terminal hung up; exiting");
                std::process::exit(129);
            }
        }
    })?;
    Ok(())
}

/// Whether standard input (the terminal) reports a hangup.
fn terminal_gone() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)),
        Err(_) => false,
    }
}

/// `matches` says which of the `sources` flags were given (see [`SourceArgs::resolve`]).
pub fn run(
    sources: &SourceArgs,
    matches: &clap::ArgMatches,
    fps: f64,
    theme: ThemeName,
) -> Result<(), crate::Failure> {
    log_to_file();
    let settings = sources.resolve(matches)?;
    let collector = Collector::start(&settings)?;
    // SIGTERM, SIGINT, SIGHUP and SIGQUIT end the loop like `q`, so the terminal is restored.
    let stop = crate::stop_on_signals()?;
    let windows = collector.engine().window_presets();
    let first = collector.engine().snapshot(&Default::default(), now());
    let mut app = App::new(windows, first);
    app.clock = settings.clock.clone();
    let theme = Theme::from_env(theme);

    exit_on_hangup()?;
    let mut session = Session::enter().map_err(|e| format!("cannot use the terminal: {e}"))?;
    let mut history = crate::history::Reader::new(&settings);
    let result = run_loop(
        session.terminal(),
        &mut app,
        &collector,
        &theme,
        fps,
        &stop,
        &mut history,
    );
    drop(session);
    collector.stop();
    Ok(result?)
}

fn run_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    collector: &Collector,
    theme: &Theme,
    fps: f64,
    stop: &AtomicBool,
    history: &mut crate::history::Reader,
) -> std::io::Result<()> {
    let tick = Duration::from_secs_f64(1.0 / fps.clamp(0.5, 60.0));
    let mut next_tick = Instant::now();
    let mut dirty = true;
    let mut last = None;
    while !app.quit && !stop.load(Relaxed) {
        if Instant::now() >= next_tick {
            let snapshot = collector.engine().snapshot(&app.request(), now());
            let seen = fingerprint(&snapshot);
            if last != Some(seen) {
                last = Some(seen);
                app.update(snapshot, collector.sources());
                app.outputs = collector.outputs();
                dirty = true;
            }
            dirty |= history.refresh(app);
            next_tick += tick;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + tick;
            }
        }
        if dirty {
            terminal.draw(|frame| ui::draw(frame, app, theme))?;
            dirty = false;
        }
        // Sleep in the kernel until input arrives or the next tick is due.
        if event::poll(next_tick.saturating_duration_since(Instant::now()))? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    app.handle_key(key);
                    // What a key changes (window, drill-down, filter) may need new data now.
                    next_tick = Instant::now();
                    last = None;
                    dirty = true;
                }
                Event::Mouse(mouse) => {
                    match mouse.kind {
                        MouseEventKind::ScrollDown => app.move_selection(3),
                        MouseEventKind::ScrollUp => app.move_selection(-3),
                        MouseEventKind::Down(_) => {
                            let size = terminal.size()?;
                            let screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                            match ui::account_at(screen, app, mouse.row) {
                                Some(row) => app.selected = row,
                                None => continue,
                            }
                        }
                        _ => continue,
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    Ok(())
}
