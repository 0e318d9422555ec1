//! Event types of the selected (or drilled-into) account, or of all accounts: counts, rates,
//! timing percentiles, gauges, distinct counts.

use crate::app::{App, Panel};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};
use tally_core::TypeStats;
use tally_core::short_number;

fn measure(t: &TypeStats) -> String {
    if let Some(timing) = &t.timing {
        return format!(
            "p50 {} p90 {} p99 {} max {}",
            ms(timing.p50),
            ms(timing.p90),
            ms(timing.p99),
            ms(timing.max)
        );
    }
    if let Some(gauge) = t.gauge {
        return format!("gauge {}", short_number(gauge));
    }
    if let Some(distinct) = t.distinct {
        return format!("~{} distinct", short_number(distinct as f64));
    }
    String::new()
}

fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1}s", value / 1000.0)
    } else {
        format!("{value:.0}ms")
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let (account, types) = app.types();
    let title = match account {
        Some(name) => format!(" types of {name} "),
        None => " types, all accounts ".to_owned(),
    };
    let focused = app.panel == Panel::Types;
    let title_style = if focused { theme.title() } else { theme.muted() };
    let measures: Vec<String> = types.iter().map(measure).collect();
    let rows: Vec<Row<'_>> = types
        .iter()
        .zip(measures.iter())
        .map(|(t, measure)| {
            Row::new(vec![
                Cell::from(if t.name.is_empty() {
                    "-".to_owned()
                } else {
                    t.name.to_string()
                }),
                Cell::from(format!("{:>7}", short_number(t.rate))),
                Cell::from(format!("{:>7}", short_number(t.window_total as f64))),
                Cell::from(Span::styled(measure.as_str(), theme.muted())),
            ])
        })
        .collect();
    // Names give way before percentiles do, down to 12 columns.
    let measure_width = measures.iter().map(|m| m.chars().count()).max().unwrap_or(0);
    let widths = [
        Constraint::Min(12),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(measure_width as u16),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["type", " rate/s", " window", ""]).style(theme.muted()))
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title(Span::styled(title, title_style)),
        );
    if focused {
        // Header and border take two lines; the selected row stays in view.
        let visible = (area.height as usize).saturating_sub(2).max(1);
        let offset = app.type_selected.saturating_sub(visible - 1);
        let table = table.row_highlight_style(theme.selected());
        let mut state = TableState::default()
            .with_offset(offset)
            .with_selected(Some(app.type_selected));
        frame.render_stateful_widget(table, area, &mut state);
    } else {
        frame.render_widget(table, area);
    }
}
