//! The stacked bar chart: a bar per time bucket, stacked by account (or, drilled down, by the
//! account's types), in the accounts' stable colours.

use crate::state::State;
use crate::theme::layer_colour;
use egui::Stroke;
use egui_plot::{Bar, BarChart, Corner, Legend, Plot};
use std::sync::Arc;
use tally_core::{Clock, Timestamp};

/// `HH:MM:SS` in the shown zone of a chart position (seconds since the Unix epoch).
fn clock(zone: &Clock, seconds: f64) -> String {
    zone.time_of_day(Timestamp::from_millis((seconds.max(0.0) * 1000.0) as u64))
}

/// A bar's tooltip: its bucket's time, the layer's count and its share of the bucket.
fn describe(zone: &Clock, layer: &str, bucket_start_s: f64, count: f64, bucket_total: u64) -> String {
    let share = if bucket_total > 0 {
        count / bucket_total as f64 * 100.0
    } else {
        0.0
    };
    format!(
        "{}\n{layer}: {count} ({share:.0}% of {bucket_total})",
        clock(zone, bucket_start_s)
    )
}

/// The chart's bars, bottom layer first, each stacked on the ones before it.
pub fn bar_charts(state: &State, hover: bool) -> Vec<BarChart> {
    let stack = &state.snapshot.stack;
    let bucket_s = stack.bucket_ms as f64 / 1000.0;
    let start_s = stack.start.as_millis() as f64 / 1000.0;
    let totals: Arc<[u64]> = stack.totals.clone().into();
    let mut charts: Vec<BarChart> = Vec::with_capacity(stack.layers.len());
    for layer in &stack.layers {
        let colour = layer_colour(state.remembered.theme, layer.colour);
        let bars = (layer.values.iter().enumerate())
            .map(|(i, &count)| {
                Bar::new(start_s + (i as f64 + 0.5) * bucket_s, count as f64)
                    .width(bucket_s * 0.85)
                    .fill(colour)
                    .stroke(Stroke::NONE)
            })
            .collect();
        let (totals, name, zone) = (Arc::clone(&totals), Arc::clone(&layer.name), state.zone.clone());
        let tooltip = move |bar: &Bar, _: &BarChart| {
            let bucket = ((bar.argument - start_s) / bucket_s).floor().max(0.0) as usize;
            let total = totals.get(bucket).copied().unwrap_or(0);
            describe(&zone, &name, bar.argument - bucket_s / 2.0, bar.value, total)
        };
        let others: Vec<&BarChart> = charts.iter().collect();
        let chart = BarChart::new(layer.name.to_string(), bars)
            .color(colour)
            .allow_hover(hover)
            .element_formatter(Box::new(tooltip))
            .stack_on(&others);
        charts.push(chart);
    }
    charts
}

/// The interactive chart (laptop). Zooming or panning stops following the newest data;
/// a double click or the top bar's "Live" returns to it.
pub fn show(ui: &mut egui::Ui, state: &mut State) {
    let title = match &state.snapshot.stack.focus {
        Some(account) => format!("{account}: events by type"),
        None => "Events by account".to_owned(),
    };
    ui.label(egui::RichText::new(title).strong());
    let follow = state.follow_live;
    let response = plot(ui, state, true, follow);
    let user_moved = response.dragged()
        || (response.hovered()
            && ui.input(|i| i.smooth_scroll_delta != egui::Vec2::ZERO || i.zoom_delta() != 1.0));
    if response.double_clicked() {
        state.follow_live = true;
    } else if user_moved {
        state.follow_live = false;
    }
}

/// The chart without interaction (wall screen).
pub fn show_static(ui: &mut egui::Ui, state: &State) {
    plot(ui, state, false, true);
}

fn plot(ui: &mut egui::Ui, state: &State, interactive: bool, follow: bool) -> egui::Response {
    let charts = bar_charts(state, interactive);
    let legend = Legend::default()
        .follow_insertion_order(true)
        .position(Corner::LeftTop)
        .background_alpha(0.85);
    Plot::new("stack")
        .legend(legend)
        .x_axis_formatter(|mark, _| clock(&state.zone, mark.value))
        .y_axis_min_width(48.0)
        .include_y(0.0)
        .allow_zoom(interactive)
        .allow_drag(interactive)
        .allow_scroll(interactive)
        .allow_boxed_zoom(interactive)
        .allow_double_click_reset(interactive)
        .show_crosshair(interactive)
        .show(ui, |plot_ui| {
            if follow {
                plot_ui.set_auto_bounds(true);
            }
            for chart in charts {
                plot_ui.bar_chart(chart);
            }
        })
        .response
}

#[cfg(test)]
mod tests {
    use super::describe;
    use tally_core::Clock;

    #[test]
    fn a_bars_tooltip_gives_time_count_and_share() {
        let utc = Clock::utc();
        assert_eq!(
            describe(&utc, "acme", 1_795_408_215.0, 74.0, 296),
            "04:30:15\nacme: 74 (25% of 296)"
        );
        assert_eq!(describe(&utc, "acme", 0.0, 0.0, 0), "00:00:00\nacme: 0 (0% of 0)");
        let tokyo = Clock::new(jiff::tz::TimeZone::get("Asia/Tokyo").expect("tzdb"));
        assert!(describe(&tokyo, "acme", 1_795_408_215.0, 74.0, 296).starts_with("13:30:15"));
    }
}
