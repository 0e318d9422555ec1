//! The top line (rates, totals, bad input, window, clock, `PAUSED`, help), laid out by what
//! matters most when it does not all fit; then each source's health, wrapped over as many
//! lines as the sources need.

use crate::app::App;
use crate::theme::Theme;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use tally_core::{human_duration, short_number};

/// How much a part of the summary matters: on a narrow screen the least goes first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Low,
    Medium,
    High,
    /// What the user must never miss: paused, the rate, bad input, a source down.
    Always,
}

struct Part {
    priority: Priority,
    text: String,
    style: Style,
}

impl Part {
    fn new(priority: Priority, text: impl Into<String>, style: Style) -> Part {
        Part {
            priority,
            text: text.into(),
            style,
        }
    }
}

pub fn summary<'a>(app: &App, theme: &Theme, width: u16) -> Line<'a> {
    use Priority::*;
    let snapshot = app.shown();
    let totals = &snapshot.totals;
    let window = &snapshot.window;
    let plain = Style::default();
    let mut parts = vec![Part::new(Low, "tally", theme.title())];
    if app.paused() {
        parts.push(Part::new(Always, " PAUSED ", theme.alert()));
    }
    parts.push(Part::new(
        Always,
        format!("{}/s", short_number(totals.rate)),
        plain,
    ));
    parts.push(Part::new(
        Low,
        format!("peak {}/s", short_number(totals.peak_rate)),
        theme.muted(),
    ));
    parts.push(Part::new(
        Medium,
        format!("total {}", short_number(totals.total as f64)),
        plain,
    ));
    parts.push(Part::new(Low, format!("{} accts", totals.active_accounts), plain));
    let bad = format!("bad {}", short_number(totals.rejected as f64));
    parts.push(match totals.rejected {
        0 => Part::new(Medium, bad, plain),
        _ => Part::new(Always, bad, theme.bad()),
    });
    if totals.folded_accounts > 0 {
        let folded = format!("folded {}", totals.folded_accounts);
        parts.push(Part::new(High, folded, theme.bad()));
    }
    if totals.saturated > 0 {
        let saturated = format!("saturated {}", short_number(totals.saturated as f64));
        parts.push(Part::new(High, saturated, theme.bad()));
    }
    let down = app.sources.iter().filter(|s| !s.is_healthy()).count();
    if down > 0 {
        let sources = if down == 1 { "source" } else { "sources" };
        parts.push(Part::new(Always, format!("{down} {sources} down"), theme.bad()));
    }
    let outputs_down = app.outputs.iter().filter(|o| !o.is_healthy()).count();
    if outputs_down > 0 {
        let outputs = if outputs_down == 1 { "output" } else { "outputs" };
        let text = format!("{outputs_down} {outputs} down");
        parts.push(Part::new(Always, text, theme.bad()));
    }
    let checks = &snapshot.checks;
    if !checks.is_empty() {
        let failing = checks.iter().filter(|c| c.status.is_trouble()).count();
        parts.push(match checks.first() {
            Some(worst) if failing > 0 => {
                let more = if failing > 1 {
                    format!(" +{}", failing - 1)
                } else {
                    String::new()
                };
                let text = format!("{} {}{more}", worst.name, worst.status.as_str());
                Part::new(Always, text, theme.check(worst.status))
            }
            _ => Part::new(Low, format!("{} checks ok", checks.len()), theme.good()),
        });
    }
    let span = human_duration(window.buckets as u64 * window.resolution.bucket_ms);
    parts.push(Part::new(High, span, plain));
    let time = snapshot.time;
    let clock = format!("{} {}", app.clock.time_of_day(time), app.clock.zone_label(time));
    parts.push(Part::new(Medium, clock, plain));
    parts.push(Part::new(High, "? help", theme.muted()));
    fit(parts, width)
}

/// The parts that fit in `width`, most important first, shown in their own order.
fn fit<'a>(parts: Vec<Part>, width: u16) -> Line<'a> {
    const GAP: usize = 3; // " │ "
    let mut by_priority: Vec<usize> = (0..parts.len()).collect();
    by_priority.sort_by_key(|&i| std::cmp::Reverse(parts[i].priority));
    let mut keep = vec![false; parts.len()];
    let mut used = 1; // the leading space
    for i in by_priority {
        let needed = parts[i].text.chars().count() + GAP;
        if used + needed <= width as usize + GAP {
            used += needed;
            keep[i] = true;
        }
    }
    let mut spans = vec![Span::raw(" ")];
    for (part, _) in parts.into_iter().zip(keep).filter(|(_, keep)| *keep) {
        if spans.len() > 1 {
            spans.push(Span::raw(" │ "));
        }
        spans.push(Span::styled(part.text, part.style));
    }
    Line::from(spans)
}

/// One source as the sources line shows it.
struct SourceItem {
    healthy: bool,
    /// Kind, address and state: `udp 127.0.0.1:8125 listening`.
    name: String,
    /// A hub client's rate, age and trouble.
    details: String,
    /// It has a warning, spelled out in the bad-input view.
    note: bool,
}

impl SourceItem {
    fn width(&self) -> usize {
        // " ● " + name + " details" + " (!)" + "  "
        3 + self.name.chars().count()
            + if self.details.is_empty() {
                0
            } else {
                1 + self.details.chars().count()
            }
            + if self.note { 4 } else { 0 }
            + 2
    }
}

/// The sources, then the outputs (`→ redis`, with their state only when they are down: the
/// history's path is long, and fine most of the time).
fn source_items(app: &App) -> Vec<SourceItem> {
    let sources = (app.sources.iter()).map(|source| SourceItem {
        healthy: source.is_healthy(),
        name: format!("{} {} {}", source.kind, source.address, source.state.as_str()),
        details: match source.kind.is_hub_client() {
            true => source.details(app.shown().time),
            false => String::new(),
        },
        note: !source.note.is_empty(),
    });
    let outputs = (app.outputs.iter()).map(|output| SourceItem {
        healthy: output.is_healthy(),
        name: match output.is_healthy() {
            true => format!("→ {}", output.kind),
            false => format!("→ {} {} {}", output.kind, output.address, output.state.as_str()),
        },
        details: match output.dropped {
            0 => String::new(),
            dropped => format!("{} dropped", short_number(dropped as f64)),
        },
        note: !output.note.is_empty(),
    });
    sources.chain(outputs).collect()
}

/// The sources on each line: as many as fit in `width`, a source never split.
fn wrap(items: &[SourceItem], width: u16) -> Vec<std::ops::Range<usize>> {
    let mut lines = vec![];
    let (mut first, mut used) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if i > first && used + item.width() > width as usize {
            lines.push(first..i);
            (first, used) = (i, 0);
        }
        used += item.width();
    }
    if first < items.len() {
        lines.push(first..items.len());
    }
    lines
}

/// How many lines the sources (and outputs) take at `width`.
pub fn source_lines(app: &App, width: u16) -> u16 {
    wrap(&source_items(app), width).len() as u16
}

/// Each source's health, on [`source_lines`] lines.
pub fn sources<'a>(app: &App, theme: &Theme, width: u16) -> Vec<Line<'a>> {
    let items = source_items(app);
    (wrap(&items, width).into_iter())
        .map(|line| {
            let mut spans = vec![];
            for item in &items[line] {
                let dot = if item.healthy { theme.good() } else { theme.bad() };
                spans.push(Span::styled(" ● ", dot));
                spans.push(Span::raw(item.name.clone()));
                if !item.details.is_empty() {
                    spans.push(Span::styled(format!(" {}", item.details), theme.muted()));
                }
                if item.note {
                    spans.push(Span::styled(" (!)", theme.muted()));
                }
                spans.push(Span::raw("  "));
            }
            Line::from(spans)
        })
        .collect()
}
