//! The stacked bar chart: a bar per time bucket, stacked by account (or, drilled down, by the
//! account's types) in the accounts' stable colours, the legend in stack order; DogStatsD
//! events as dashed lines in their alert's colour, titled.
//!
//! The stacking is ours, not egui_plot's `stack_on`: a layer hidden from the legend must take
//! its height out of the bars above it, or they float where it was and read wrong.

use crate::state::State;
use crate::theme::{self, layer_colour};
use egui::{Color32, RichText, Stroke};
use egui_plot::{
    Bar, BarChart, Corner, ItemId, ItemIdSet, Legend, LineStyle, Plot, PlotMemory, PlotPoint, Text, VLine,
    uniform_grid_spacer,
};
use std::sync::Arc;
use tally_core::{Clock, Stack, Timestamp, short_number};

/// The chart's id, where egui_plot keeps which legend entries are hidden.
const PLOT_ID: &str = "tally-stack";

/// `HH:MM:SS` in the shown zone of a chart position (seconds since the Unix epoch).
fn clock(zone: &Clock, seconds: f64) -> String {
    zone.time_of_day(Timestamp::from_millis((seconds.max(0.0) * 1000.0) as u64))
}

/// One layer's bars, each resting on the visible layers below it.
#[derive(Debug)]
pub struct LayerBars {
    pub name: Arc<str>,
    pub colour: Color32,
    pub hidden: bool,
    pub bars: Vec<Bar>,
}

/// The layers hidden from the legend (by clicking their entry).
pub fn hidden_layers(ctx: &egui::Context) -> ItemIdSet {
    PlotMemory::load(ctx, egui::Id::unique(PLOT_ID))
        .map(|memory| memory.hidden_items)
        .unwrap_or_default()
}

fn is_hidden(hidden: &ItemIdSet, name: &str) -> bool {
    hidden.contains(&ItemId::new(name.to_owned()))
}

/// The chart's bars, bottom layer first; a hidden layer adds nothing to the bars above it.
pub fn stacked_bars(state: &State, hidden: &ItemIdSet) -> Vec<LayerBars> {
    let stack = &state.snapshot.stack;
    let bucket_s = stack.bucket_ms as f64 / 1000.0;
    let start_s = stack.start.as_millis() as f64 / 1000.0;
    let mut below = vec![0.0; stack.totals.len()];
    let mut layers = Vec::with_capacity(stack.layers.len());
    for layer in &stack.layers {
        let colour = layer_colour(state.remembered.theme, layer.colour);
        let hidden = is_hidden(hidden, &layer.name);
        let bars = (layer.values.iter().zip(&mut below).enumerate())
            .map(|(i, (&count, base))| {
                let bar = Bar::new(start_s + (i as f64 + 0.5) * bucket_s, count as f64)
                    .width(bucket_s * 0.85)
                    .base_offset(*base)
                    .fill(colour)
                    .stroke(Stroke::NONE);
                if !hidden {
                    *base += count as f64;
                }
                bar
            })
            .collect();
        layers.push(LayerBars {
            name: Arc::clone(&layer.name),
            colour,
            hidden,
            bars,
        });
    }
    layers
}

/// What a bucket's tooltip says: its time range, and each shown layer's count and share.
#[derive(Debug, PartialEq)]
pub struct BucketSummary {
    pub range: String,
    pub total: u64,
    /// Top layer first, as they are stacked; hidden layers left out.
    pub layers: Vec<(Arc<str>, u8, u64, f64)>,
}

pub fn bucket_summary(
    stack: &Stack,
    bucket: usize,
    zone: &Clock,
    hidden: &ItemIdSet,
) -> Option<BucketSummary> {
    let total = *stack.totals.get(bucket)?;
    let from = stack.start.as_millis() + bucket as u64 * stack.bucket_ms;
    let to = Timestamp::from_millis(from + stack.bucket_ms);
    let range = format!(
        "{} – {} {}",
        zone.time_of_day(Timestamp::from_millis(from)),
        zone.time_of_day(to),
        zone.zone_label(to)
    );
    let layers = (stack.layers.iter().rev())
        .filter(|layer| !is_hidden(hidden, &layer.name))
        .map(|layer| {
            let count = layer.values[bucket];
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            (Arc::clone(&layer.name), layer.colour, count, share)
        })
        .collect();
    Some(BucketSummary { range, total, layers })
}

fn tooltip(ui: &mut egui::Ui, state: &State, summary: &BucketSummary) {
    ui.label(RichText::new(&summary.range).strong());
    egui::Grid::new("bucket_tooltip").num_columns(3).show(ui, |ui| {
        for (name, colour, count, share) in &summary.layers {
            ui.horizontal(|ui| {
                super::tables::swatch(ui, layer_colour(state.remembered.theme, *colour));
                ui.label(&**name);
            });
            ui.label(short_number(*count as f64));
            ui.label(format!("{:.0}%", share * 100.0));
            ui.end_row();
        }
        ui.label(RichText::new("all").strong());
        ui.label(RichText::new(short_number(summary.total as f64)).strong());
        ui.end_row();
    });
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

/// The chart without interaction or legend (wall screen).
pub fn show_static(ui: &mut egui::Ui, state: &State) {
    plot(ui, state, false, true);
}

fn plot(ui: &mut egui::Ui, state: &State, interactive: bool, follow: bool) -> egui::Response {
    let hidden = hidden_layers(ui.ctx());
    let layers = stacked_bars(state, &hidden);
    let stack = &state.snapshot.stack;
    let top = (0..stack.totals.len())
        .map(|i| {
            layers
                .iter()
                .filter(|l| !l.hidden)
                .map(|l| l.bars[i].value)
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    // The whole window, and a y axis from 0 to at least 1: an empty chart still reads as one.
    let start_s = stack.start.as_millis() as f64 / 1000.0;
    let end_s = start_s + (stack.totals.len() as u64 * stack.bucket_ms) as f64 / 1000.0;
    let chart = Plot::new("stack").id(egui::Id::unique(PLOT_ID));
    // The wall screen names the layers beside the chart, in large type: a legend would only
    // cover the bars there.
    let chart = if interactive {
        let legend = Legend::default()
            .follow_insertion_order(true)
            .position(Corner::LeftTop)
            .background_alpha(0.85);
        chart.legend(legend)
    } else {
        chart
    };
    let shown = chart
        .x_axis_formatter(|mark, _| clock(&state.zone, mark.value))
        .y_axis_min_width(48.0)
        .y_grid_spacer(uniform_grid_spacer(super::count_steps))
        .include_y(0.0)
        .include_y(1.0)
        .include_x(start_s)
        .include_x(end_s)
        .allow_zoom(interactive)
        .allow_drag(interactive)
        .allow_scroll(interactive)
        .allow_boxed_zoom(interactive)
        .allow_double_click_reset(interactive)
        .show_crosshair(false)
        .show(ui, |plot_ui| {
            if follow {
                plot_ui.set_auto_bounds(true);
            }
            // The legend lists layers bottom first: the stack's order.
            for layer in layers {
                let chart = BarChart::new(layer.name.to_string(), layer.bars)
                    .color(layer.colour)
                    .allow_hover(false);
                plot_ui.bar_chart(chart);
            }
            for annotation in &state.snapshot.annotations {
                let x = annotation.time.as_millis() as f64 / 1000.0;
                let colour = theme::alert_colour(annotation.alert);
                // Unnamed, so that they stay out of the legend.
                plot_ui.vline(
                    VLine::new("", x)
                        .color(colour)
                        .width(2.0)
                        .style(LineStyle::dashed_loose()),
                );
                let label = RichText::new(&annotation.title).color(colour).strong();
                let at = PlotPoint::new(x, top * 1.05);
                plot_ui.text(Text::new("", at, label).anchor(egui::Align2::LEFT_BOTTOM));
            }
            plot_ui.pointer_coordinate()
        });
    let response = shown.response;
    if let (true, Some(point)) = (interactive && response.hovered(), shown.inner) {
        let bucket_s = stack.bucket_ms as f64 / 1000.0;
        let offset = point.x - stack.start.as_millis() as f64 / 1000.0;
        let bucket = (offset / bucket_s).floor();
        let summary = (bucket >= 0.0)
            .then(|| bucket_summary(stack, bucket as usize, &state.zone, &hidden))
            .flatten();
        // At once, as the pointer moves over the bars (a widget's tooltip waits for it to rest).
        if let Some(summary) = summary {
            egui::Popup::from_response(&response)
                .kind(egui::PopupKind::Tooltip)
                .at_pointer()
                .gap(12.0)
                .open(true)
                .show(|ui| tooltip(ui, state, &summary));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Layer;

    fn stack() -> Stack {
        let layer = |name: &str, colour, values: Vec<u64>| Layer {
            name: Arc::from(name),
            colour,
            values,
        };
        Stack {
            focus: None,
            filter: None,
            start: Timestamp::from_millis(1_795_408_200_000),
            bucket_ms: 1000,
            totals: vec![10, 20],
            layers: vec![layer("acme", 0, vec![6, 5]), layer("globex", 1, vec![4, 15])],
        }
    }

    #[test]
    fn a_buckets_tooltip_gives_its_time_range_counts_and_shares() {
        let utc = Clock::utc();
        let summary = bucket_summary(&stack(), 1, &utc, &ItemIdSet::default()).expect("a bucket");
        assert_eq!(summary.range, "04:30:01 – 04:30:02 UTC");
        assert_eq!(summary.total, 20);
        let layers: Vec<(String, u64, f64)> = (summary.layers.iter())
            .map(|(name, _, count, share)| (name.to_string(), *count, *share))
            .collect();
        assert_eq!(
            layers,
            [("globex".to_owned(), 15, 0.75), ("acme".to_owned(), 5, 0.25)]
        );
        let mut hidden = ItemIdSet::default();
        hidden.insert(ItemId::new("acme".to_owned()));
        let summary = bucket_summary(&stack(), 1, &utc, &hidden).expect("a bucket");
        assert_eq!(summary.layers.len(), 1, "a hidden layer is left out");
        assert!(
            bucket_summary(&stack(), 2, &utc, &hidden).is_none(),
            "past the end"
        );
        let tokyo = Clock::new(jiff::tz::TimeZone::get("Asia/Tokyo").expect("tzdb"));
        let summary = bucket_summary(&stack(), 0, &tokyo, &hidden).expect("a bucket");
        assert_eq!(summary.range, "13:30:00 – 13:30:01 JST");
    }
}
