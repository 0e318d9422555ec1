//! Memory of the desktop dashboard's own code over a long run, without a window
//! (docs/PERFORMANCE.md): 36 accounts sending counts and timings, a frame every 250 ms of
//! simulated time, each built and tessellated as the app does, and the process's RSS printed
//! every 1,000 simulated seconds. It should level off once the rolling windows have filled.
//!
//! `cargo run --release -p tally-gui --example frame_memory [-- FRAMES]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tally_core::{Engine, EngineConfig, Event, Timestamp, Value};
use tally_gui::{Feed, GuiApp, Mode, Remembered};

const FRAME_MS: u64 = 250;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let frames: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(40_000);
    let start = 1_795_406_400_000u64;
    let clock = Arc::new(AtomicU64::new(start + 60_000));
    let engine = Engine::new(EngineConfig::default(), Timestamp::from_millis(start)).expect("engine");
    let now = Arc::clone(&clock);
    let feed = Feed {
        engine: Arc::clone(&engine),
        sources: Box::new(Vec::new),
        outputs: Box::new(Vec::new),
        history: Box::new(|_| Err("no history here".into())),
        clock: Box::new(move || Timestamp::from_millis(now.load(Relaxed))),
        zone: tally_core::Clock::utc(),
        worker: None,
    };
    let mut app = GuiApp::new(feed, Mode::Laptop, Remembered::default(), Arc::default());
    let ctx = egui::Context::default();
    let accounts: Vec<String> = (0..36).map(|i| format!("account-{i}")).collect();
    let mut recorder = engine.recorder();
    for frame in 0..frames {
        let time = Timestamp::from_millis(clock.fetch_add(FRAME_MS, Relaxed) + FRAME_MS);
        for (i, account) in accounts.iter().enumerate() {
            let (event_type, value) = if i % 2 == 0 {
                ("pageview", Value::Count(1 + frame % 5))
            } else {
                (
                    "api.latency",
                    Value::Timing {
                        ms: (frame % 97) as f64,
                        count: 1,
                    },
                )
            };
            recorder.record(&Event {
                account,
                event_type,
                app: None,
                value,
                time,
            });
        }
        recorder.flush();
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1280.0, 800.0),
            )),
            time: Some((frame * FRAME_MS) as f64 / 1000.0),
            ..egui::RawInput::default()
        };
        let output = ctx.run_ui(input, |ui| app.frame(ui));
        let _ = ctx.tessellate(output.shapes, output.pixels_per_point);
        if frame % 4000 == 0 {
            println!(
                "after {:>5} s simulated: {:>6} KiB",
                frame * FRAME_MS / 1000,
                rss_kib()
            );
        }
    }
}
