//! The desktop dashboard's state, and what the user's choices do to it. No drawing here: the
//! views in `view` are functions of this state, and [`Feed`] is where the data comes from (the
//! live collector, or fixed data and a fixed clock in tests).

use crate::wall::{KioskConfig, KioskView};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tally_core::{AccountSort, Clock, Engine, Snapshot, SnapshotRequest, Timestamp, Window};
use tally_core::{HistoryView, OutputStatus, SourceState, SourceStatus};

/// How often the data is refreshed; the window is repainted then only if it changed.
pub const TICK_MS: u64 = 250;
/// The window is repainted at least this often (clock, source health), data or not.
pub const HEARTBEAT_MS: u64 = 1000;
/// An open history window reads the store again this often.
pub const HISTORY_REREAD_MS: u64 = 5_000;
/// With no event for this long, the wall screen says the data is stale.
pub const STALE_AFTER_MS: u64 = 10_000;
/// Accounts (busiest first) whose rows get a trend and types; further rows get a flat line.
pub const DETAILED_ACCOUNTS: usize = 50;
/// The window presets' names, finest first (the engine's default resolutions).
pub const WINDOW_NAMES: [&str; 4] = ["1 min", "5 min", "1 h", "24 h"];

/// Reads an account's (or `all`'s) history: its last days and months, or why there is none.
pub type HistoryReader = Box<dyn Fn(&str) -> Result<HistoryView, String> + Send>;

/// Where snapshots, source health and the time come from.
pub struct Feed {
    pub engine: Arc<Engine>,
    pub sources: Box<dyn Fn() -> Vec<SourceStatus> + Send>,
    /// The outputs' health (the history, its Redis mirror, Graphite, a hub's publishers).
    pub outputs: Box<dyn Fn() -> Vec<OutputStatus> + Send>,
    /// An account's (or `all`'s) last days and months from the history store.
    pub history: HistoryReader,
    pub clock: Box<dyn Fn() -> Timestamp + Send>,
    /// The zone times are shown in.
    pub zone: Clock,
    /// Takes snapshots off the UI thread (the app); without one, frames take them (tests).
    pub worker: Option<SnapshotWorker>,
}

/// What the worker is asked for, and what it has.
#[derive(Debug, Default)]
struct Slot {
    wanted: Option<SnapshotRequest>,
    latest: Option<(SnapshotRequest, Arc<Snapshot>)>,
    stop: bool,
}

/// Takes a snapshot for the latest request every [`TICK_MS`] (and at once when the request
/// changes) on its own thread, so that a frame never waits for one: with 10,000 accounts a
/// snapshot costs many frames' worth of time. It wakes the UI only when the data changed:
/// software rendering makes every repaint count on a wall screen without a GPU.
#[derive(Debug)]
pub struct SnapshotWorker {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotWorker {
    /// `woken` is called after every new snapshot (the app asks for a repaint).
    pub fn start(
        engine: Arc<Engine>,
        clock: fn() -> Timestamp,
        woken: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tally-snapshots".into())
            .spawn(move || take_snapshots(&worker, &engine, clock, woken))?;
        Ok(SnapshotWorker {
            shared,
            thread: Some(thread),
        })
    }

    /// The newest snapshot for `request`; asks for one if the request is new.
    fn latest(&self, request: &SnapshotRequest) -> Option<Arc<Snapshot>> {
        let (slot, wake) = &*self.shared;
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.wanted.as_ref() != Some(request) {
            slot.wanted = Some(request.clone());
            wake.notify_one();
        }
        match &slot.latest {
            Some((made_for, snapshot)) if made_for == request => Some(Arc::clone(snapshot)),
            _ => None,
        }
    }
}

/// The worker's loop: a snapshot per tick or new request; a wake-up only for new data.
fn take_snapshots(
    shared: &(Mutex<Slot>, Condvar),
    engine: &Engine,
    clock: fn() -> Timestamp,
    woken: impl Fn(),
) {
    let (slot, wake) = shared;
    let mut shown = None;
    let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
    while !guard.stop {
        if let Some(request) = guard.wanted.clone() {
            drop(guard);
            let snapshot = Arc::new(engine.snapshot(&request, clock()));
            let seen = Some((request.clone(), snapshot.fingerprint()));
            guard = slot.lock().unwrap_or_else(|p| p.into_inner());
            guard.latest = Some((request, snapshot));
            if seen != shown {
                shown = seen;
                woken();
            }
        }
        guard = wake
            .wait_timeout(guard, Duration::from_millis(TICK_MS))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

impl Drop for SnapshotWorker {
    fn drop(&mut self) {
        let (slot, wake) = &*self.shared;
        slot.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum ThemeChoice {
    #[default]
    Dark,
    Light,
    /// The Okabe-Ito palette, on dark.
    ColourBlind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Interactive, for a developer's laptop.
    Laptop,
    /// Fullscreen and hands-off, for a wall screen: views and tiles as configured.
    Kiosk(KioskConfig),
}

/// What is remembered between runs (eframe storage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Remembered {
    pub theme: ThemeChoice,
    pub window: usize,
    pub show_accounts: bool,
    pub show_details: bool,
    pub sort: AccountSort,
}

impl Default for Remembered {
    fn default() -> Self {
        Remembered {
            theme: ThemeChoice::Dark,
            window: 0,
            show_accounts: true,
            show_details: true,
            sort: AccountSort::Rate,
        }
    }
}

#[derive(Debug)]
pub struct State {
    pub mode: Mode,
    /// The zone times are shown in.
    pub zone: Clock,
    pub remembered: Remembered,
    pub windows: Vec<Window>,
    /// The data shown: frozen while paused.
    pub snapshot: Arc<Snapshot>,
    /// The snapshot's accounts in the user's sort order, kept with the snapshot so that frames
    /// do not sort thousands of accounts each.
    account_order: Vec<usize>,
    pub sources: Vec<SourceStatus>,
    pub outputs: Vec<OutputStatus>,
    /// The history window is open, and what it shows (read again every few seconds).
    pub show_history: bool,
    pub history: Option<Result<HistoryView, String>>,
    history_read: Option<(String, Timestamp)>,
    pub paused: bool,
    /// The chart's x range follows the newest bucket; zooming or panning turns it off.
    pub follow_live: bool,
    /// The account the chart is stacked by (its types), with its detail shown.
    pub focus: Option<String>,
    /// The view changed (window, focus): its first snapshot is shown even while paused.
    view_changed: bool,
    /// When the data was last refreshed, and when the view rotated (feed clock).
    refreshed: Option<Timestamp>,
    rotated: Timestamp,
    pub kiosk_view: usize,
    /// When the dashboard started: a source that has not connected, or no event at all, is
    /// an outage once [`STALE_AFTER_MS`] has passed since.
    started: Timestamp,
}

impl State {
    pub fn new(mode: Mode, remembered: Remembered, feed: &Feed) -> Self {
        let windows = feed.engine.window_presets();
        let now = (feed.clock)();
        let mut state = State {
            mode,
            zone: feed.zone.clone(),
            remembered,
            windows,
            snapshot: Arc::new(feed.engine.snapshot(&SnapshotRequest::default(), now)),
            account_order: vec![],
            sources: vec![],
            outputs: vec![],
            show_history: false,
            history: None,
            history_read: None,
            paused: false,
            follow_live: true,
            focus: None,
            view_changed: true,
            refreshed: None,
            rotated: now,
            kiosk_view: 0,
            started: now,
        };
        state.remembered.window = state.remembered.window.min(state.windows.len().saturating_sub(1));
        state.reorder();
        state.refresh(feed);
        state
    }

    /// Indices into the snapshot's accounts, in the user's order (the snapshot's own is
    /// busiest first).
    pub fn account_order(&self) -> &[usize] {
        &self.account_order
    }

    pub fn set_sort(&mut self, sort: AccountSort) {
        if self.remembered.sort != sort {
            self.remembered.sort = sort;
            self.reorder();
        }
    }

    fn reorder(&mut self) {
        self.account_order = self.remembered.sort.order(&self.snapshot.accounts, |_| true);
    }

    pub fn window(&self) -> Window {
        self.windows[self.remembered.window]
    }

    pub fn is_kiosk(&self) -> bool {
        matches!(self.mode, Mode::Kiosk(_))
    }

    /// The wall screen's view now (the chart on a laptop).
    pub fn kiosk_view(&self) -> KioskView {
        match &self.mode {
            Mode::Kiosk(config) if !config.views.is_empty() => {
                config.views[self.kiosk_view % config.views.len()]
            }
            _ => KioskView::Chart,
        }
    }

    /// The account drilled into: the user's choice, or on the wall screen's "top account"
    /// view, the busiest account.
    pub fn focused(&self) -> Option<String> {
        if self.is_kiosk() {
            return (self.kiosk_view() == KioskView::TopAccount)
                .then(|| self.snapshot.accounts.first().map(|a| a.name.to_string()))
                .flatten();
        }
        self.focus.clone()
    }

    pub fn request(&self) -> SnapshotRequest {
        SnapshotRequest {
            window: self.window(),
            top: 10,
            detail: DETAILED_ACCOUNTS,
            focus: self.focused(),
            all_types: true,
            // The wall's "events today" tile.
            since: self
                .is_kiosk()
                .then(|| self.zone.start_of_day(self.snapshot.time)),
            ..SnapshotRequest::default()
        }
    }

    /// Takes the newest snapshot unless paused (the worker's, or a new one without worker).
    pub fn refresh(&mut self, feed: &Feed) {
        let now = (feed.clock)();
        self.sources = (feed.sources)();
        self.outputs = (feed.outputs)();
        if !self.paused || self.view_changed {
            let request = self.request();
            let fresh = match &feed.worker {
                Some(worker) => worker.latest(&request),
                None => Some(Arc::new(feed.engine.snapshot(&request, now))),
            };
            if let Some(snapshot) = fresh {
                if !Arc::ptr_eq(&snapshot, &self.snapshot) {
                    self.snapshot = snapshot;
                    self.reorder();
                }
                self.view_changed = false;
            }
        }
        self.refreshed = Some(now);
    }

    /// Called every frame: refreshes at the data tick, and rotates the wall screen's views.
    pub fn tick(&mut self, feed: &Feed) {
        let now = (feed.clock)();
        if let Mode::Kiosk(config) = &self.mode
            && let Some(every) = config.rotate
            && now.as_millis() >= self.rotated.as_millis() + every.as_millis() as u64
        {
            self.kiosk_view = (self.kiosk_view + 1) % config.views.len().max(1);
            self.rotated = now;
            self.refreshed = None;
        }
        // The worker's snapshots are picked up by the frame its wake-up causes.
        let due = self
            .refreshed
            .is_none_or(|at| now.as_millis() >= at.as_millis() + TICK_MS);
        if due || feed.worker.is_some() {
            self.refresh(feed);
        }
    }

    pub fn set_window(&mut self, index: usize, feed: &Feed) {
        self.remembered.window = index.min(self.windows.len() - 1);
        self.follow_live = true;
        self.force_refresh(feed);
    }

    pub fn set_focus(&mut self, account: Option<String>, feed: &Feed) {
        self.focus = account;
        self.follow_live = true;
        self.force_refresh(feed);
    }

    pub fn toggle_pause(&mut self, feed: &Feed) {
        self.paused = !self.paused;
        self.force_refresh(feed);
    }

    /// A change of view shows as soon as its snapshot exists, even while paused.
    fn force_refresh(&mut self, feed: &Feed) {
        self.view_changed = true;
        self.refresh(feed);
    }

    /// Whose history the window shows: the focused account, or every account (`all`).
    pub fn history_account(&self) -> String {
        self.focus.clone().unwrap_or_else(|| "all".to_owned())
    }

    /// Reads the history while its window is open: when it opens, when the focus changes,
    /// and every [`HISTORY_REREAD_MS`]. Each frame asks; most frames it is fresh.
    pub fn read_history(&mut self, feed: &Feed) {
        let now = (feed.clock)();
        if !self.show_history {
            self.history_read = None;
            self.history = None;
            return;
        }
        let account = self.history_account();
        let fresh = (self.history_read.as_ref()).is_some_and(|(read, at)| {
            *read == account && now.as_millis().saturating_sub(at.as_millis()) < HISTORY_REREAD_MS
        });
        if !fresh {
            self.history = Some((feed.history)(&account));
            self.history_read = Some((account, now));
        }
    }

    /// Why the wall screen should warn, if it should: a source down or not connected, or no
    /// events for a while (or since the start).
    pub fn banner(&self, now: Timestamp) -> Option<String> {
        let booted = now.as_millis().saturating_sub(self.started.as_millis()) > STALE_AFTER_MS;
        let down: Vec<&SourceStatus> = (self.sources.iter())
            .filter(|s| {
                matches!(
                    s.state,
                    SourceState::Disconnected | SourceState::Silent | SourceState::Stopped
                )
            })
            .collect();
        if let Some(source) = down.first() {
            return Some(format!(
                "SOURCE {}: {} {}",
                source.state.as_str().to_uppercase(),
                source.kind,
                source.address
            ));
        }
        let connecting = (self.sources.iter()).find(|s| s.state == SourceState::Connecting);
        if let (true, Some(source)) = (booted, connecting) {
            return Some(format!(
                "SOURCE NOT CONNECTED: {} {}",
                source.kind, source.address
            ));
        }
        match self.last_event() {
            Some(last) => {
                let quiet = now.as_millis().saturating_sub(last.as_millis());
                (quiet > STALE_AFTER_MS).then(|| format!("STALE: no events for {}", seconds(quiet)))
            }
            None => booted.then(|| {
                let up = now.as_millis().saturating_sub(self.started.as_millis());
                format!("NO EVENTS since the start, {} ago", seconds(up))
            }),
        }
    }

    /// When the newest event arrived, as far as any source knows.
    pub fn last_event(&self) -> Option<Timestamp> {
        self.sources.iter().filter_map(|s| s.last_message).max()
    }
}

/// `12s`, `4m 5s`, `2h 3m`.
pub fn seconds(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_snapshots_off_the_ui_thread_for_the_latest_request() {
        let start = Timestamp::from_millis(1_795_406_400_000);
        let engine = Engine::new(tally_core::EngineConfig::default(), start).expect("engine");
        let wakes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&wakes);
        let clock: fn() -> Timestamp = || Timestamp::from_millis(1_795_406_400_000 + 30_000);
        let worker = SnapshotWorker::start(engine, clock, move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .expect("starts");
        let wait_for = |request: &SnapshotRequest| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(snapshot) = worker.latest(request) {
                    return snapshot;
                }
                assert!(std::time::Instant::now() < deadline, "no snapshot");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let minute = SnapshotRequest::default();
        assert_eq!(wait_for(&minute).window.buckets, 60);
        let five = SnapshotRequest {
            window: Window {
                level: 0,
                buckets: 300,
            },
            ..SnapshotRequest::default()
        };
        assert_eq!(wait_for(&five).window.buckets, 300, "a new request is served");
        assert!(wakes.load(std::sync::atomic::Ordering::Relaxed) >= 2);
        drop(worker); // Stops and joins the thread.
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(seconds(12_400), "12s");
        assert_eq!(seconds(245_000), "4m 5s");
        assert_eq!(seconds(7_380_000), "2h 3m");
    }
}
