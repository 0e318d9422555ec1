//! The wall screen, read from across a room: a header with the clock and the age of the
//! newest event, a red banner when something is down, big-number tiles, and the view of the
//! moment (the stacked chart, the busiest account, accounts or types as large bars). Every
//! text is at least 3% of the screen's height (`theme::kiosk_text`).

use super::{chart, tables};
use crate::state::{Feed, State};
use crate::theme::{self, BAD, KIOSK_NUMBER, account_colour, layer_colour};
use crate::wall::{KioskView, TileReading};
use egui::{Color32, RichText, Sense, Vec2};
use tally_core::{OTHER, short_number};

pub fn show(ui: &mut egui::Ui, state: &mut State, _feed: &Feed) {
    let ctx = ui.ctx().clone();
    fill_the_monitor(&ctx);
    let height_px = ctx.content_rect().height() * ctx.pixels_per_point();
    let zoom = theme::kiosk_zoom(height_px, ctx.native_pixels_per_point().unwrap_or(1.0));
    if (ctx.zoom_factor() - zoom).abs() > 0.05 {
        ctx.set_zoom_factor(zoom);
    }
    theme::kiosk_text(ui.style_mut());
    let now = state.snapshot.time;
    egui::Panel::top("kiosk_top").show(ui, |ui| {
        theme::kiosk_text(ui.style_mut());
        ui.horizontal(|ui| {
            let clock = format!("{} {}", state.zone.time_of_day(now), state.zone.zone_label(now));
            ui.heading(RichText::new(clock).strong());
            ui.separator();
            let age = match state.last_event() {
                Some(last) => format!(
                    "last event {} ago",
                    crate::state::seconds(now.as_millis().saturating_sub(last.as_millis()))
                ),
                None => "no events yet".to_owned(),
            };
            ui.heading(age);
            ui.separator();
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
                ui.heading(RichText::new(banner).strong().color(Color32::WHITE));
            });
        }
        tiles(ui, state);
        ui.add_space(4.0);
    });
    let side = ui.available_width() * 0.34;
    match state.kiosk_view() {
        KioskView::Chart => {
            egui::Panel::right("kiosk_side")
                .exact_size(side)
                .show(ui, |ui| stacked_account_bars(ui, state));
            egui::CentralPanel::default().show(ui, |ui| chart::show_static(ui, state));
        }
        KioskView::TopAccount => {
            egui::Panel::right("kiosk_side")
                .exact_size(side)
                .show(ui, |ui| focus_type_bars(ui, state));
            egui::CentralPanel::default().show(ui, |ui| chart::show_static(ui, state));
        }
        KioskView::Accounts => {
            egui::CentralPanel::default().show(ui, |ui| account_bars(ui, state, 12));
        }
        KioskView::Types => {
            egui::CentralPanel::default().show(ui, |ui| type_bars(ui, state));
        }
    }
}

/// Without a window manager, asking for fullscreen does nothing: the window is sized to its
/// monitor and put in its corner instead (a window manager's fullscreen already is).
fn fill_the_monitor(ctx: &egui::Context) {
    let (monitor, inner, outer) = ctx.input(|i| {
        let viewport = i.viewport();
        (viewport.monitor_size, viewport.inner_rect, viewport.outer_rect)
    });
    let (Some(monitor), Some(inner)) = (monitor, inner) else {
        return;
    };
    let at_corner = outer.is_none_or(|outer| outer.min.to_vec2().length() < 1.0);
    if (inner.size() - monitor).length() > 1.0 || !at_corner {
        ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::Pos2::ZERO));
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(monitor));
    }
}

/// The tiles, side by side across the screen.
fn tiles(ui: &mut egui::Ui, state: &State) {
    let Some(config) = (match &state.mode {
        crate::Mode::Kiosk(config) => Some(config),
        crate::Mode::Laptop => None,
    }) else {
        return;
    };
    let readings: Vec<TileReading> = config.tiles.iter().map(|tile| tile.read(state)).collect();
    if readings.is_empty() {
        return;
    }
    ui.columns(readings.len(), |columns| {
        for (ui, reading) in columns.iter_mut().zip(&readings) {
            tile(ui, reading);
        }
    });
}

fn tile(ui: &mut egui::Ui, reading: &TileReading) {
    egui::Frame::new()
        .fill(theme::mood_fill(reading.mood))
        .corner_radius(6.0)
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new(&reading.label).color(Color32::from_gray(0xd0)));
            ui.label(
                RichText::new(&reading.value)
                    .size(KIOSK_NUMBER)
                    .strong()
                    .color(Color32::WHITE),
            );
            let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), 28.0), Sense::hover());
            if reading.sparkline.len() > 1 {
                let max = reading.sparkline.iter().copied().max().unwrap_or(0).max(1) as f32;
                let step = rect.width() / (reading.sparkline.len() - 1) as f32;
                let points = (reading.sparkline.iter().enumerate())
                    .map(|(i, &v)| {
                        egui::pos2(
                            rect.left() + i as f32 * step,
                            rect.bottom() - v as f32 / max * rect.height(),
                        )
                    })
                    .collect();
                ui.painter().add(egui::Shape::line(
                    points,
                    egui::Stroke::new(2.0, Color32::from_gray(0xe0)),
                ));
            }
        });
}

/// Large horizontal bars, one a row: the name, a bar as long as its share of the longest,
/// the number. The rows close up to fit the height there is (a banner takes some).
fn bars(ui: &mut egui::Ui, id: &str, rows: &[(&str, f64, Color32, String)]) {
    let longest = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let bar_width = ui.available_width() * 0.45;
    let height = ui.text_style_height(&egui::TextStyle::Body) * 1.1;
    let room = ui.available_height() / rows.len().max(1) as f32 - height;
    egui::Grid::new(id)
        .num_columns(3)
        .spacing([16.0, room.clamp(0.0, 10.0)])
        .show(ui, |ui| {
            for (name, value, colour, text) in rows {
                ui.label(RichText::new(*name).color(*colour).strong());
                let (rect, _) = ui.allocate_exact_size(Vec2::new(bar_width, height), Sense::hover());
                let share = if longest > 0.0 {
                    (value / longest).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let filled = egui::Rect::from_min_size(
                    rect.min,
                    Vec2::new(rect.width() * share as f32, rect.height()),
                );
                ui.painter().rect_filled(rect, 3.0, Color32::from_gray(0x1a));
                ui.painter().rect_filled(filled, 3.0, *colour);
                ui.label(RichText::new(text).strong());
                ui.end_row();
            }
        });
}

/// The busiest accounts in the window, as bars of their events in it, with their rate.
fn account_bars(ui: &mut egui::Ui, state: &State, count: usize) {
    theme::kiosk_text(ui.style_mut());
    let rows: Vec<(&str, f64, Color32, String)> = (state.snapshot.accounts.iter())
        .filter(|a| a.window_total > 0)
        .take(count)
        .map(|a| {
            let colour = account_colour(state.remembered.theme, a);
            (
                &*a.name,
                a.window_total as f64,
                colour,
                format!("{}/s", short_number(a.rate)),
            )
        })
        .collect();
    if rows.is_empty() {
        ui.label(RichText::new("no events in this window").weak());
    }
    bars(ui, "wall_account_bars", &rows);
}

/// The chart's legend, large: every account it stacks and its `(other)`, as bars of their
/// events in the window, with their rate (the rows add up to the events/s tile).
fn stacked_account_bars(ui: &mut egui::Ui, state: &State) {
    theme::kiosk_text(ui.style_mut());
    let snapshot = &state.snapshot;
    let mut shown_rate = 0.0;
    let mut rows: Vec<(&str, f64, Color32, String)> = vec![];
    let mut other = None;
    for layer in &snapshot.stack.layers {
        let total = layer.values.iter().sum::<u64>() as f64;
        let colour = layer_colour(state.remembered.theme, layer.colour);
        if &*layer.name == OTHER {
            other = Some((OTHER, total, colour));
            continue;
        }
        // The stacked accounts rank first, so this finds them near the start.
        let rate = (snapshot.accounts.iter())
            .find(|a| a.name == *layer.name)
            .map_or(0.0, |a| a.rate);
        shown_rate += rate;
        rows.push((&layer.name, total, colour, format!("{}/s", short_number(rate))));
    }
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some((name, total, colour)) = other {
        let rate = (snapshot.totals.rate - shown_rate).max(0.0);
        rows.push((name, total, colour, format!("{}/s", short_number(rate))));
    }
    if rows.is_empty() {
        ui.label(RichText::new("no events in this window").weak());
    }
    bars(ui, "wall_stack_bars", &rows);
}

/// The charted account's types, as bars of their events in the window.
fn focus_type_bars(ui: &mut egui::Ui, state: &State) {
    theme::kiosk_text(ui.style_mut());
    let mut rows: Vec<(&str, f64, Color32, String)> = (state.snapshot.stack.layers.iter())
        .map(|l| {
            let total = l.values.iter().sum::<u64>();
            let name = if l.name.is_empty() { "(none)" } else { &*l.name };
            let colour = layer_colour(state.remembered.theme, l.colour);
            (name, total as f64, colour, short_number(total as f64))
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    bars(ui, "wall_focus_type_bars", &rows);
}

/// Event types over all accounts, as bars of their events in the window, with their rate
/// and, where they have timings, p99.
fn type_bars(ui: &mut egui::Ui, state: &State) {
    theme::kiosk_text(ui.style_mut());
    let rows: Vec<(&str, f64, Color32, String)> = (state.snapshot.types.iter())
        .filter(|t| t.window_total > 0)
        .take(12)
        .map(|t| {
            let mut text = format!("{}/s", short_number(t.rate));
            if let Some(timing) = &t.timing {
                text.push_str(&format!("  p99 {} ms", short_number(timing.p99)));
            }
            let name = if t.name.is_empty() { "(none)" } else { &*t.name };
            (name, t.window_total as f64, TYPE_BAR, text)
        })
        .collect();
    if rows.is_empty() {
        tables::types_large(ui, state);
    }
    bars(ui, "wall_type_bars", &rows);
}

/// The types view's bars: types have no colour of their own over all accounts.
const TYPE_BAR: Color32 = Color32::from_rgb(0x58, 0xa6, 0xff);
