//! One full dashboard frame: a snapshot of 10,000 active accounts and the draw into a
//! 160x48 buffer. `cargo bench -p tally-tui --bench frame`.

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use tally_core::{Engine, EngineConfig, Event, Timestamp, Value};
use tally_tui::app::App;
use tally_tui::theme::{Depth, Theme, ThemeName};
use tally_tui::ui;

const T0: u64 = 1_700_002_800_000;

fn frame(c: &mut Criterion) {
    let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(T0)).expect("valid");
    let mut recorder = engine.recorder();
    let now = T0 + 3 * 3_600_000;
    for i in 0..10_000u64 {
        let name = format!("account-{i:05}");
        for step in 0..40u64 {
            let time = Timestamp::from_millis(now - step * 7_000 - i % 1000);
            let event_type = if step % 2 == 0 { "pageview" } else { "order" };
            recorder.record(&Event {
                account: &name,
                event_type,
                app: None,
                value: Value::Count(1),
                time,
            });
        }
    }
    recorder.flush();
    let now = Timestamp::from_millis(now);
    let windows = engine.window_presets();
    let mut app = App::new(windows, engine.snapshot(&Default::default(), now));
    app.window = 1; // 5 minutes at 1 s
    let theme = Theme::new(ThemeName::Default, Depth::TrueColour);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let mut group = c.benchmark_group("frame");
    group.sample_size(30);
    group.bench_function("snapshot_and_draw_10000_accounts_5min_160x48", |b| {
        b.iter(|| {
            let snapshot = engine.snapshot(&app.request(), now);
            app.update(snapshot, vec![]);
            terminal.draw(|f| ui::draw(f, &app, &theme)).expect("draws");
            black_box(terminal.backend().buffer().area);
        })
    });
    group.bench_function("draw_only_10000_accounts_160x48", |b| {
        b.iter(|| {
            terminal.draw(|f| ui::draw(f, &app, &theme)).expect("draws");
        })
    });
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
