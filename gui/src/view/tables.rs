//! The side panel (accounts, and the drilled-down account's types and timings) and the bottom
//! panel (event types, gauges, bad input).

use crate::state::{Feed, State};
use crate::theme::{self, BAD, account_colour};
use egui::{RichText, Sense, Vec2};
use tally_core::{AccountSort, TimingSummary, TypeStats, short_number};

const ROW_HEIGHT: f32 = 22.0;

fn sort_header(ui: &mut egui::Ui, sort: &mut AccountSort, by: AccountSort, text: &str) {
    if ui
        .selectable_label(*sort == by, text)
        .on_hover_text("sort by this")
        .clicked()
    {
        *sort = by;
    }
}

/// A small square of an account's colour.
pub(crate) fn swatch(ui: &mut egui::Ui, colour: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, colour);
}

fn sparkline(ui: &mut egui::Ui, values: &[u64], colour: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(90.0, 16.0), Sense::hover());
    if values.is_empty() {
        let flat = [rect.left_bottom(), rect.right_bottom()];
        ui.painter().line_segment(flat, egui::Stroke::new(1.5, colour));
        return;
    }
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f32;
    let step = rect.width() / values.len().max(2).saturating_sub(1) as f32;
    let points: Vec<egui::Pos2> = (values.iter().enumerate())
        .map(|(i, &v)| {
            egui::pos2(
                rect.left() + i as f32 * step,
                rect.bottom() - v as f32 / max * rect.height(),
            )
        })
        .collect();
    ui.painter()
        .add(egui::Shape::line(points, egui::Stroke::new(1.5, colour)));
}

pub fn side_panel(ui: &mut egui::Ui, state: &mut State, feed: &Feed) {
    if let Some(account) = state.focus.clone() {
        if ui.button("All accounts").clicked() {
            state.set_focus(None, feed);
            return;
        }
        account_detail(ui, state, &account);
        ui.separator();
    }
    ui.label(RichText::new("Top accounts").strong());
    let theme = state.remembered.theme;
    let mut sort = state.remembered.sort;
    let mut clicked = None;
    egui::Grid::new("accounts_header")
        .num_columns(5)
        .min_col_width(60.0)
        .show(ui, |ui| {
            sort_header(ui, &mut sort, AccountSort::Name, "account");
            sort_header(ui, &mut sort, AccountSort::Rate, "rate/s");
            sort_header(ui, &mut sort, AccountSort::Total, "total");
            sort_header(ui, &mut sort, AccountSort::Window, "share");
            ui.label("trend");
            ui.end_row();
        });
    state.set_sort(sort);
    let accounts = &state.snapshot.accounts;
    let order = state.account_order();
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show_rows(ui, ROW_HEIGHT, order.len(), |ui, rows| {
            egui::Grid::new("accounts")
                .num_columns(5)
                .min_col_width(60.0)
                .striped(true)
                .show(ui, |ui| {
                    for &i in &order[rows] {
                        let account = &accounts[i];
                        let colour = account_colour(theme, account);
                        ui.horizontal(|ui| {
                            swatch(ui, colour);
                            let selected = state.focus.as_deref() == Some(&*account.name);
                            if ui
                                .selectable_label(selected, &*account.name)
                                .on_hover_text("show its types")
                                .clicked()
                            {
                                clicked = Some(account.name.to_string());
                            }
                        });
                        ui.label(short_number(account.rate));
                        ui.label(short_number(account.total as f64));
                        ui.label(format!("{:.1}%", account.share * 100.0));
                        // Beyond the detailed accounts, a flat line: the row keeps its shape.
                        let trend = account.detail.as_ref().map(|d| &d.sparkline[..]);
                        sparkline(ui, trend.unwrap_or(&[]), colour);
                        ui.end_row();
                    }
                });
        });
    if let Some(account) = clicked {
        state.set_focus(Some(account), feed);
    }
}

fn percentiles(timing: &TimingSummary) -> String {
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1} ms",
        timing.p50, timing.p90, timing.p99
    )
}

fn account_detail(ui: &mut egui::Ui, state: &State, name: &str) {
    ui.label(RichText::new(name).heading());
    let Some(account) = state.snapshot.accounts.iter().find(|a| &*a.name == name) else {
        ui.label("no events in this window");
        return;
    };
    ui.label(format!(
        "{}/s · {} in window · {} total",
        short_number(account.rate),
        short_number(account.window_total as f64),
        short_number(account.total as f64)
    ));
    if let Some(detail) = &account.detail {
        if let Some(timing) = &detail.timing {
            ui.label(format!("timings: {}", percentiles(timing)));
        }
        types_grid(ui, "account_types", &detail.types);
    }
}

/// Types with their rates and counts, and timings or values when any type has them.
fn types_grid(ui: &mut egui::Ui, id: &str, types: &[TypeStats]) {
    let extras: Vec<String> = (types.iter())
        .map(|kind| match (&kind.timing, kind.gauge, kind.distinct) {
            (Some(timing), ..) => percentiles(timing),
            (_, Some(gauge), _) => format!("gauge {}", short_number(gauge)),
            (_, _, Some(distinct)) => format!("{distinct} distinct"),
            _ => String::new(),
        })
        .collect();
    let with_extras = extras.iter().any(|e| !e.is_empty());
    let columns = if with_extras { 4 } else { 3 };
    egui::Grid::new(id)
        .num_columns(columns)
        .striped(true)
        .show(ui, |ui| {
            ui.strong("type");
            ui.strong("rate/s");
            ui.strong("in window");
            if with_extras {
                ui.strong("timings / value");
            }
            ui.end_row();
            for (kind, extra) in types.iter().zip(extras) {
                ui.label(if kind.name.is_empty() {
                    "(none)"
                } else {
                    &kind.name
                });
                ui.label(short_number(kind.rate));
                ui.label(short_number(kind.window_total as f64));
                if with_extras {
                    ui.label(extra);
                }
                ui.end_row();
            }
        });
}

pub fn details_panel(ui: &mut egui::Ui, state: &State) {
    // Types (with percentiles) take half the width; gauges and DogStatsD events, and bad input,
    // a quarter each.
    ui.columns(2, |halves| {
        let [types, rest] = halves else { return };
        rest.columns(2, |quarters| {
            let [gauges, bad] = quarters else { return };
            gauges_and_bad_input(gauges, bad, state);
        });
        types.label(RichText::new("Event types").strong());
        egui::ScrollArea::vertical().id_salt("types").show(types, |ui| {
            types_grid(ui, "all_types", &state.snapshot.types);
        });
    });
}

fn gauges_and_bad_input(gauges: &mut egui::Ui, bad: &mut egui::Ui, state: &State) {
    gauges.label(RichText::new("Gauges").strong());
    egui::ScrollArea::vertical().id_salt("gauges").show(gauges, |ui| {
        let mut any = false;
        for account in &state.snapshot.accounts {
            for kind in account.detail.iter().flat_map(|d| &d.types) {
                if let Some(value) = kind.gauge {
                    ui.label(format!(
                        "{}.{} = {}",
                        account.name,
                        kind.name,
                        short_number(value)
                    ));
                    any = true;
                }
            }
        }
        if !any {
            ui.weak("no gauges");
        }
        ui.add_space(8.0);
        events(ui, state);
    });

    bad.label(RichText::new(format!("Bad input ({})", state.snapshot.totals.rejected)).strong());
    egui::ScrollArea::vertical().id_salt("bad").show(bad, |ui| {
        for reason in &state.snapshot.rejections {
            ui.label(RichText::new(format!("{}: {}", reason.reason.as_str(), reason.count)).color(BAD));
        }
        for sample in state.snapshot.recent_rejects.iter().rev() {
            ui.label(format!(
                "{} {} — {}",
                state.zone.time_of_day(sample.time),
                sample.reason.as_str(),
                sample.detail
            ));
            ui.monospace(&sample.payload);
        }
    });
}

/// DogStatsD events in the window, newest first (the chart's dashed lines).
fn events(ui: &mut egui::Ui, state: &State) {
    ui.label(RichText::new("Events").strong());
    if state.snapshot.annotations.is_empty() {
        ui.weak("no events in this window");
    }
    for event in state.snapshot.annotations.iter().rev() {
        let heading = format!(
            "{} {} {}",
            state.zone.time_of_day(event.time),
            event.alert.as_str(),
            event.title
        );
        let label = ui.label(RichText::new(heading).color(theme::alert_colour(event.alert)));
        let mut about = vec![event.text.clone()];
        about.extend(event.host.as_ref().map(|host| format!("host {host}")));
        if !event.tags.is_empty() {
            about.push(event.tags.join(", "));
        }
        label.on_hover_text(about.join("\n"));
    }
}

/// The types table, large (wall screen).
pub fn types_large(ui: &mut egui::Ui, state: &State) {
    types_grid(ui, "kiosk_types", &state.snapshot.types);
}
