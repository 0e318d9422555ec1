//! The cost of one desktop frame with 10,000 active accounts and the 5-minute window
//! (docs/PERFORMANCE.md): building and tessellating the UI (the UI thread's work per frame),
//! and the snapshot the worker thread takes per data tick. Headless: no window.
//!
//! `cargo bench -p tally-gui --bench frame`

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tally_core::{Engine, EngineConfig, Event, Timestamp, Value};
use tally_gui::{Feed, GuiApp, Mode, Remembered};

const NOW: u64 = 1_795_406_400_000 + 30 * 60_000;
const ACCOUNTS: usize = 10_000;

fn app(clock: &Arc<AtomicU64>) -> GuiApp {
    let engine =
        Engine::new(EngineConfig::default(), Timestamp::from_millis(NOW - 3_600_000)).expect("engine");
    let mut recorder = engine.recorder();
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("account-{i}")).collect();
    for second in (0..300u64).step_by(10) {
        let time = Timestamp::from_millis(NOW - 300_000 + second * 1000);
        for (i, account) in names.iter().enumerate() {
            let event_type = if i % 2 == 0 { "pageview" } else { "order.create" };
            let value = Value::Count(1 + (i % 7) as u64);
            recorder.record(&Event {
                account,
                event_type,
                app: None,
                value,
                time,
            });
        }
    }
    recorder.flush();
    let clock_now = Arc::clone(clock);
    let feed = Feed {
        engine,
        sources: Box::new(Vec::new),
        outputs: Box::new(Vec::new),
        history: Box::new(|_| Err("no history here".into())),
        clock: Box::new(move || Timestamp::from_millis(clock_now.load(Relaxed))),
        zone: tally_core::Clock::utc(),
        worker: None,
    };
    let remembered = Remembered {
        window: 1,
        ..Remembered::default()
    };
    GuiApp::new(feed, Mode::Laptop, remembered, Arc::default())
}

fn input() -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1280.0, 800.0),
        )),
        ..egui::RawInput::default()
    }
}

fn frame(c: &mut Criterion) {
    let clock = Arc::new(AtomicU64::new(NOW));
    let mut app = app(&clock);
    assert_eq!(app.state.snapshot.totals.active_accounts, ACCOUNTS);
    assert_eq!(app.state.snapshot.stack.totals.len(), 300);
    let ctx = egui::Context::default();
    // Warm up layout caches (fonts, galleys) as a running app has them.
    for _ in 0..3 {
        let _ = ctx.run_ui(input(), |ui| app.frame(ui));
    }
    let mut group = c.benchmark_group("frame");
    group.bench_function("ui_10k_accounts_5m", |b| {
        b.iter(|| {
            let output = ctx.run_ui(input(), |ui| app.frame(ui));
            ctx.tessellate(output.shapes, output.pixels_per_point)
        })
    });
    // What the snapshot worker does at every data tick, off the UI thread.
    let request = app.state.request();
    group.bench_function("snapshot_for_the_gui_10k_accounts_5m", |b| {
        b.iter(|| app.feed.engine.snapshot(&request, Timestamp::from_millis(NOW)))
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
