//! The accounts table: rank, colour swatch, name, rate, window total, share, sparkline.

use crate::app::{App, Panel};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};
use tally_core::palette::OTHER_COLOUR;
use tally_core::short_number;

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` squeezed into `width` characters (maximum of each group), oldest first.
pub fn sparkline(values: &[u64], width: usize) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let group = values.len().div_ceil(width);
    let maxima: Vec<u64> = values
        .chunks(group)
        .map(|c| c.iter().copied().max().unwrap_or(0))
        .collect();
    let top = maxima.iter().copied().max().unwrap_or(0).max(1);
    maxima
        .iter()
        .map(|&v| {
            if v == 0 {
                ' '
            } else {
                SPARKS[((v * 7) / top) as usize]
            }
        })
        .collect()
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, theme: &Theme) {
    let rows = app.rows();
    let wide = area.width >= 60;
    let title = format!(
        " accounts ({}, sort: {}{}{}) ",
        rows.len(),
        app.sort.label(),
        if app.reversed { " reversed" } else { "" },
        if app.filter.is_empty() && !app.editing_filter {
            String::new()
        } else {
            format!(", filter: {}", app.filter)
        }
    );
    let title_style = if app.panel == Panel::Accounts {
        theme.title()
    } else {
        theme.muted()
    };
    // Rows are built only for what fits (there may be 10,000 accounts): the table scrolls just
    // enough to show the selected row, as `ui::account_at` assumes.
    let visible = area.height.saturating_sub(2) as usize;
    let offset = app.selected.saturating_sub(visible.saturating_sub(1));
    let body: Vec<Row<'_>> = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(rank, account)| {
            let colour = account.colour.unwrap_or(OTHER_COLOUR);
            let mut cells = vec![
                Cell::from(format!("{:>3}", rank + 1)),
                Cell::from(Span::styled(theme.fill(colour), theme.layer(colour))),
                Cell::from(account.name.to_string()),
                Cell::from(format!("{:>7}", short_number(account.rate))),
                Cell::from(format!("{:>7}", short_number(account.window_total as f64))),
                Cell::from(format!("{:>5.1}%", account.share * 100.0)),
            ];
            if wide {
                let spark = account
                    .detail
                    .as_ref()
                    .map(|d| sparkline(&d.sparkline, 12))
                    .unwrap_or_default();
                cells.push(Cell::from(Span::styled(spark, theme.layer(colour))));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
    ];
    if wide {
        widths.push(Constraint::Length(12));
    }
    let mut header = vec!["  #", "", "account", " rate/s", " window", " share"];
    if wide {
        header.push("trend");
    }
    let table = Table::new(body, widths)
        .header(Row::new(header).style(theme.muted()))
        .block(
            Block::default()
                .borders(Borders::TOP | Borders::RIGHT)
                .title(Span::styled(title, title_style)),
        )
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(app.selected - offset));
    frame.render_stateful_widget(table, area, &mut state);
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparklines_keep_the_peaks() {
        assert_eq!(sparkline(&[0, 1, 2, 4, 8, 0], 6), " ▁▂▄█ ");
        assert_eq!(sparkline(&[1, 9, 1, 1], 2), "█▁");
        assert_eq!(sparkline(&[], 5), "");
    }
}
