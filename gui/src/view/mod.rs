//! The dashboard as a function of [`State`]: laptop mode (top bar, chart, side panels) or the
//! wall screen (`kiosk`).

pub mod chart;
mod history;
mod kiosk;
mod tables;
mod top_bar;

use crate::state::{Feed, State};
use crate::theme;

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
