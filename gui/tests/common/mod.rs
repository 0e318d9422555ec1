//! Fixed data and a fixed clock for the GUI tests.

#![allow(dead_code)] // Each test file uses part of it.

use egui_kittest::Harness;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tally_core::{Engine, EngineConfig, Event, Timestamp, Value};
use tally_core::{SourceState, SourceStatus};
use tally_gui::{Feed, GuiApp, Mode, Remembered};

/// Half past an hour, so that every window starts after the engine's origin.
pub const NOW: u64 = 1_795_406_400_000 + 30 * 60_000;

pub struct Fixture {
    pub engine: Arc<Engine>,
    pub clock: Arc<AtomicU64>,
    pub sources: Arc<Mutex<Vec<SourceStatus>>>,
    pub outputs: Arc<Mutex<Vec<tally_core::OutputStatus>>>,
}

pub fn source(state: SourceState, last_message: u64) -> SourceStatus {
    SourceStatus {
        kind: tally_core::SourceKind::Zmq,
        address: "tcp://hub:6000".into(),
        state,
        received: 360,
        events: 360,
        bad: 0,
        bytes: 36_000,
        rate: 6.0,
        last_message: Some(Timestamp::from_millis(last_message)),
        connections: None,
        refused: None,
        closed_idle: None,
        kernel_drops: None,
        dropped: Some(0),
        reconnects: Some(0),
        note: String::new(),
    }
}

/// acme 3 events/s, globex 2/s, initech 1/s over the last minute; acme has timings.
pub fn fixture() -> Fixture {
    let engine =
        Engine::new(EngineConfig::default(), Timestamp::from_millis(NOW - 3_600_000)).expect("engine");
    let mut recorder = engine.recorder();
    for second in 0..60u64 {
        let time = Timestamp::from_millis(NOW - 60_000 + second * 1000);
        for (account, per_second) in [("acme", 3), ("globex", 2), ("initech", 1)] {
            for _ in 0..per_second {
                let value = Value::Count(1);
                recorder.record(&Event {
                    account,
                    event_type: "pageview",
                    app: None,
                    value,
                    time,
                });
            }
        }
        let value = Value::Timing {
            ms: 10.0 + second as f64,
            count: 1,
        };
        recorder.record(&Event {
            account: "acme",
            event_type: "api.latency",
            app: None,
            value,
            time,
        });
    }
    recorder.flush();
    Fixture {
        engine,
        clock: Arc::new(AtomicU64::new(NOW)),
        sources: Arc::new(Mutex::new(vec![source(SourceState::Connected, NOW)])),
        outputs: Arc::default(),
    }
}

/// What the history store would answer: two days and a month of pageviews and signups.
fn history(account: &str) -> Result<tally_core::HistoryView, String> {
    let row = |period: &str, kind: &str, count| (period.to_owned(), kind.to_owned(), count);
    let days = [
        row("2026-12-01", "pageview", 40),
        row("2026-12-01", "signup", 3),
        row("2026-12-02", "pageview", 50),
    ];
    let months = [row("2026-12", "pageview", 90), row("2026-12", "signup", 3)];
    Ok(tally_core::HistoryView::new(account, &days, &months))
}

impl Fixture {
    pub fn app(&self, mode: Mode) -> GuiApp {
        let (clock, sources) = (Arc::clone(&self.clock), Arc::clone(&self.sources));
        let outputs = Arc::clone(&self.outputs);
        let feed = Feed {
            engine: Arc::clone(&self.engine),
            sources: Box::new(move || sources.lock().expect("not poisoned").clone()),
            outputs: Box::new(move || outputs.lock().expect("not poisoned").clone()),
            history: Box::new(history),
            clock: Box::new(move || Timestamp::from_millis(clock.load(Relaxed))),
            zone: tally_core::Clock::utc(),
            worker: None,
        };
        GuiApp::new(feed, mode, Remembered::default(), Arc::default())
    }

    pub fn harness(&self, mode: Mode) -> Harness<'static, GuiApp> {
        let mut harness = Harness::builder()
            .with_size([1280.0, 800.0])
            .build_ui_state(|ui, app: &mut GuiApp| app.frame(ui), self.app(mode));
        harness.run_steps(3);
        harness
    }

    pub fn record(&self, account: &str, n: u64) {
        let mut recorder = self.engine.recorder();
        let time = Timestamp::from_millis(self.clock.load(Relaxed));
        let event = Event {
            account,
            event_type: "pageview",
            app: None,
            value: Value::Count(n),
            time,
        };
        recorder.record(&event);
    }

    /// Moves the clock past the next data tick.
    pub fn advance(&self, harness: &mut Harness<'_, GuiApp>) {
        self.clock.fetch_add(1000, Relaxed);
        harness.run_steps(2);
    }
}
