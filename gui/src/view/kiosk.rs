//! The wall screen: no controls, large text, a clock and the age of the newest event, a banner
//! when a source is down or the data is stale, and views that rotate by themselves.

use super::{chart, tables};
use crate::state::{Feed, KioskView, State};
use crate::theme::{self, BAD, account_colour};
use egui::RichText;
use tally_core::short_number;

pub fn show(ui: &mut egui::Ui, state: &mut State, _feed: &Feed) {
    let ctx = ui.ctx().clone();
    let height_px = ctx.content_rect().height() * ctx.pixels_per_point();
    let zoom = theme::kiosk_zoom(height_px, ctx.native_pixels_per_point().unwrap_or(1.0));
    if (ctx.zoom_factor() - zoom).abs() > 0.05 {
        ctx.set_zoom_factor(zoom);
    }
    let now = state.snapshot.time;
    egui::Panel::top("kiosk_top").show(ui, |ui| {
        ui.horizontal(|ui| {
            let clock = format!("{} {}", state.zone.time_of_day(now), state.zone.zone_label(now));
            ui.heading(RichText::new(clock).strong());
            ui.heading(format!("{}/s", short_number(state.snapshot.totals.rate)));
            ui.heading(format!(
                "total {}",
                short_number(state.snapshot.totals.total as f64)
            ));
            let age = match state.last_event() {
                Some(last) => format!(
                    "last event {} ago",
                    crate::state::seconds(now.as_millis().saturating_sub(last.as_millis()))
                ),
                None => "no events yet".to_owned(),
            };
            ui.heading(age);
            // Name the account that the "top account" view charts by type.
            let view = match (state.kiosk_view(), &state.snapshot.stack.focus) {
                (KioskView::TopAccount, Some(account)) => format!("Top account: {account}, by type"),
                (view, _) => view.title().to_owned(),
            };
            ui.heading(RichText::new(view).weak());
        });
        if let Some(banner) = state.banner(now) {
            egui::Frame::new().fill(BAD).inner_margin(8.0).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.heading(RichText::new(banner).strong().color(egui::Color32::WHITE));
            });
        }
    });
    match state.kiosk_view() {
        KioskView::Types => {
            egui::CentralPanel::default().show(ui, |ui| tables::types_large(ui, state));
        }
        KioskView::AllAccounts | KioskView::TopAccount => {
            egui::Panel::right("kiosk_accounts")
                .exact_size(360.0)
                .show(ui, |ui| top_list(ui, state));
            egui::CentralPanel::default().show(ui, |ui| chart::show_static(ui, state));
        }
    }
}

/// The busiest accounts, large.
fn top_list(ui: &mut egui::Ui, state: &State) {
    egui::Grid::new("kiosk_top_accounts")
        .num_columns(2)
        .spacing([16.0, 8.0])
        .show(ui, |ui| {
            for account in state.snapshot.accounts.iter().take(10) {
                let colour = account_colour(state.remembered.theme, account);
                ui.label(RichText::new(&*account.name).color(colour).size(18.0).strong());
                ui.label(RichText::new(format!("{}/s", short_number(account.rate))).size(18.0));
                ui.end_row();
            }
        });
}
