//! Sources and their health, service checks, rates and totals, bad input, and the controls.

use crate::state::{Feed, State, ThemeChoice, WINDOW_NAMES};
use crate::theme::{self, BAD, GOOD};
use egui::RichText;
use tally_core::short_number;

pub fn show(ui: &mut egui::Ui, state: &mut State, feed: &Feed) {
    ui.horizontal_wrapped(|ui| {
        ui.heading(RichText::new("tally").strong());
        let totals = &state.snapshot.totals;
        ui.label(RichText::new(format!("{}/s", short_number(totals.rate))).strong())
            .on_hover_text("events per second now");
        ui.label(format!("peak {}/s", short_number(totals.peak_rate)));
        ui.label(format!("total {}", short_number(totals.total as f64)));
        ui.label(format!("{} accounts", totals.active_accounts));
        let bad = RichText::new(format!("bad {}", short_number(totals.rejected as f64)));
        ui.label(if totals.rejected > 0 { bad.color(BAD) } else { bad });
        ui.separator();
        for (index, name) in WINDOW_NAMES.iter().enumerate().take(state.windows.len()) {
            if ui
                .selectable_label(state.remembered.window == index, *name)
                .clicked()
            {
                state.set_window(index, feed);
            }
        }
        ui.separator();
        let pause = if state.paused { "Resume" } else { "Pause" };
        if ui.button(pause).clicked() {
            state.toggle_pause(feed);
        }
        if !state.follow_live
            && ui
                .button("Back to live")
                .on_hover_text("follow the newest data")
                .clicked()
        {
            state.follow_live = true;
        }
        let theme = &mut state.remembered.theme;
        egui::ComboBox::from_label("theme")
            .selected_text(format!("{theme:?}"))
            .show_ui(ui, |ui| {
                for choice in [ThemeChoice::Dark, ThemeChoice::Light, ThemeChoice::ColourBlind] {
                    ui.selectable_value(theme, choice, format!("{choice:?}"));
                }
            });
        ui.toggle_value(&mut state.remembered.show_accounts, "Accounts");
        ui.toggle_value(&mut state.remembered.show_details, "Details");
        ui.toggle_value(&mut state.show_history, "History");
    });
    ui.horizontal_wrapped(|ui| {
        let now = state.snapshot.time;
        for source in &state.sources {
            let colour = if source.is_healthy() { GOOD } else { BAD };
            let (dot, _) = ui.allocate_exact_size(egui::Vec2::splat(10.0), egui::Sense::hover());
            ui.painter().circle_filled(dot.center(), 4.5, colour);
            let mut text = format!("{} {} {}", source.kind, source.address, source.state.as_str());
            let details = source.details(now);
            if !details.is_empty() && source.kind.is_hub_client() {
                text.push_str(&format!(" ({details})"));
            }
            let label = ui.label(text);
            if !source.note.is_empty() {
                label.on_hover_text(&source.note);
            }
        }
        // Outputs after the sources, marked `»` (the app's font has no arrow): just named
        // while they work (the history's path is long), with where and what state when not.
        for output in &state.outputs {
            let healthy = output.is_healthy();
            let (dot, _) = ui.allocate_exact_size(egui::Vec2::splat(10.0), egui::Sense::hover());
            ui.painter()
                .circle_filled(dot.center(), 4.5, if healthy { GOOD } else { BAD });
            let mut text = match healthy {
                true => format!("» {}", output.kind),
                false => format!("» {} {} {}", output.kind, output.address, output.state.as_str()),
            };
            if output.dropped > 0 {
                text.push_str(&format!(" ({} dropped)", short_number(output.dropped as f64)));
            }
            let label = ui.label(text);
            if !output.note.is_empty() {
                label.on_hover_text(&output.note);
            }
        }
        for check in &state.snapshot.checks {
            let (dot, _) = ui.allocate_exact_size(egui::Vec2::splat(10.0), egui::Sense::hover());
            ui.painter()
                .circle_filled(dot.center(), 4.5, theme::check_colour(check.status));
            let label = ui.label(format!("{} {}", check.name, check.status.as_str()));
            if let Some(message) = &check.message {
                label.on_hover_text(message);
            }
        }
        if state.paused {
            ui.label(RichText::new("PAUSED").strong().color(BAD));
        }
    });
}
