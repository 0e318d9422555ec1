//! The dashboard as a function of [`State`]: laptop mode (top bar, chart, side panels) or the
//! wall screen (`kiosk`).

pub mod chart;
mod history;
mod kiosk;
mod tables;
mod top_bar;

use crate::state::{Feed, State};
use crate::theme;
use egui_plot::GridInput;

/// Draws one frame and applies what the user did to `state`.
pub fn show(ui: &mut egui::Ui, state: &mut State, feed: &Feed) {
    let ctx = ui.ctx().clone();
    // Only on a change: setting the style asks for another frame.
    let visuals = theme::visuals(state.remembered.theme, state.is_kiosk());
    if ctx.global_style().visuals != visuals {
        ctx.set_visuals(visuals);
    }
    if state.is_kiosk() {
        kiosk::show(ui, state, feed);
        return;
    }
    egui::Panel::top("top_bar").show(ui, |ui| top_bar::show(ui, state, feed));
    if state.remembered.show_accounts {
        egui::Panel::right("side")
            .resizable(true)
            .default_size(430.0)
            .show(ui, |ui| tables::side_panel(ui, state, feed));
    }
    if state.remembered.show_details {
        egui::Panel::bottom("details")
            .resizable(true)
            .default_size(ui.available_height() * 0.32)
            .show(ui, |ui| tables::details_panel(ui, state));
    }
    egui::CentralPanel::default().show(ui, |ui| chart::show(ui, state));
    state.read_history(feed);
    if state.show_history {
        history::show(&ctx, state);
    }
}

/// A count axis' grid steps (for `egui_plot::uniform_grid_spacer`): 1, 2 or 5 times a power of
/// ten, never below 1 (counts are whole). egui_plot's default steps by powers of ten only, so a
/// plot reaching 95 in 190 points labelled nothing but 0 (10s too close, 100 out of range).
pub(crate) fn count_steps(input: GridInput) -> [f64; 3] {
    let finest = round_step(input.base_step_size.max(1.0));
    let next = round_step(finest * 1.5);
    [finest, next, round_step(next * 1.5)]
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `value` (which is >= 1).
fn round_step(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    let round = [1.0, 2.0, 5.0].into_iter().map(|m| m * power);
    // A hair of tolerance: 1000's log10 may land just below 3.
    round
        .into_iter()
        .find(|&step| step >= value * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(base_step_size: f64) -> [f64; 3] {
        count_steps(GridInput {
            bounds: (0.0, 100.0),
            base_step_size,
        })
    }

    #[test]
    fn count_axes_step_at_round_numbers() {
        assert_eq!(steps(4.0), [5.0, 10.0, 20.0]);
        assert_eq!(steps(0.3), [1.0, 2.0, 5.0], "never below one event");
        assert_eq!(steps(20.0), [20.0, 50.0, 100.0]);
        assert_eq!(steps(1000.0), [1000.0, 2000.0, 5000.0]);
        assert_eq!(steps(6.0), [10.0, 20.0, 50.0]);
    }
}
