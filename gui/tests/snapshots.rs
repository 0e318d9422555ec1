//! Pictures of the laptop view and the wall screen, at 1x and 2x pixels per point, rendered
//! with wgpu (Mesa's software Vulkan in CI) from fixed data. `UPDATE_SNAPSHOTS=1 cargo test`
//! refreshes them after an intended change; look at the PNGs before committing.

mod common;

use common::fixture;
use egui_kittest::Harness;
use tally_gui::{GuiApp, KioskConfig, Mode};

fn picture(mode: Mode, pixels_per_point: f32, name: &str) {
    let fixture = fixture();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .with_pixels_per_point(pixels_per_point)
        .build_ui_state(|ui, app: &mut GuiApp| app.frame(ui), fixture.app(mode));
    harness.run_steps(4);
    harness.snapshot(name);
}

#[test]
fn laptop_view_1x() {
    picture(Mode::Laptop, 1.0, "laptop_1x");
}

#[test]
fn laptop_view_2x() {
    picture(Mode::Laptop, 2.0, "laptop_2x");
}

#[test]
fn kiosk_view_1x() {
    picture(Mode::Kiosk(KioskConfig::default()), 1.0, "kiosk_1x");
}

#[test]
fn kiosk_view_2x() {
    picture(Mode::Kiosk(KioskConfig::default()), 2.0, "kiosk_2x");
}

#[test]
fn history_window_1x() {
    use egui_kittest::kittest::Queryable;
    let fixture = fixture();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut GuiApp| app.frame(ui), fixture.app(Mode::Laptop));
    harness.run_steps(2);
    harness.get_by_label("History").click();
    harness.run_steps(4);
    harness.snapshot("history_1x");
}
