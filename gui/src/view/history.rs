//! The history window (`History` in the top bar): the focused account's (or every account's)
//! last 30 days and 12 months, each a bar stacked by type, from the history store.

use crate::state::State;
use crate::theme::layer_colour;
use egui_plot::{Bar, BarChart, Legend, Plot, uniform_grid_spacer};
use tally_core::{HistoryView, PeriodCounts};

/// Draws the window while it is open; closing it clears `state.show_history`.
pub fn show(ctx: &egui::Context, state: &mut State) {
    let mut open = state.show_history;
    let title = format!("History: {}", state.history_account());
    egui::Window::new(title)
        .id(egui::Id::unique("history"))
        .open(&mut open)
        .default_size([720.0, 520.0])
        // Below the top bar, over the chart.
        .default_pos([60.0, 90.0])
        .show(ctx, |ui| match &state.history {
            None => {
                ui.label("reading the history...");
            }
            Some(Err(why)) => {
                ui.label(why);
            }
            Some(Ok(view)) => {
                let theme = state.remembered.theme;
                let half = (ui.available_height() / 2.0 - 24.0).max(80.0);
                ui.label(egui::RichText::new("By day, the last 30 days").strong());
                periods(ui, "history_days", view, &view.days, theme, half);
                ui.label(egui::RichText::new("By month, the last 12 months").strong());
                periods(ui, "history_months", view, &view.months, theme, half);
            }
        });
    state.show_history = open;
}

/// One span's periods as bars stacked by type, the busiest type at the bottom.
fn periods(
    ui: &mut egui::Ui,
    id: &str,
    view: &HistoryView,
    periods: &[PeriodCounts],
    theme: crate::state::ThemeChoice,
    height: f32,
) {
    let names: Vec<&str> = view.types.iter().map(String::as_str).collect();
    let colours = tally_core::palette::assign(&names);
    let labels: Vec<String> = periods.iter().map(|p| p.label.clone()).collect();
    Plot::new(id)
        .height(height)
        .legend(Legend::default().follow_insertion_order(true))
        .include_y(0.0)
        .include_y(1.0)
        .y_grid_spacer(uniform_grid_spacer(super::count_steps))
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .show_crosshair(false)
        .x_axis_formatter(move |mark, _| {
            let index = mark.value.round();
            let exact = (mark.value - index).abs() < 1e-6 && index >= 0.0;
            match exact.then(|| labels.get(index as usize)).flatten() {
                Some(label) => label.clone(),
                None => String::new(),
            }
        })
        .show(ui, |plot| {
            let mut below = vec![0.0; periods.len()];
            for (kind, (name, colour)) in names.iter().zip(&colours).enumerate() {
                let colour = layer_colour(theme, *colour);
                let bars = (periods.iter().zip(&mut below).enumerate())
                    .map(|(i, (period, base))| {
                        let count = period.counts.get(kind).copied().unwrap_or(0) as f64;
                        let bar = Bar::new(i as f64, count)
                            .width(0.8)
                            .base_offset(*base)
                            .fill(colour);
                        *base += count;
                        bar
                    })
                    .collect();
                plot.bar_chart(BarChart::new(name.to_string(), bars).color(colour));
            }
        });
}
