//! Drawing: the whole screen as a function of the app state.
//!
//! Layout, top to bottom: summary line, sources (a line or more), the stacked bar chart with
//! its legend, then accounts (left) and types (right). Panels collapse as the terminal
//! shrinks: below 100 columns one list is shown at a time (accounts, or types once `tab` gives
//! them the arrows), and below 20 rows the sources and the legend go.

mod accounts;
mod bars;
mod header;
mod overlays;
mod types;

use crate::app::{App, Overlay, Panel};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Paragraph};

pub use accounts::sparkline;
pub use bars::{AXIS_WIDTH, Columns, Scale, layer_tops};

/// Where everything goes on a screen of `area`; shared by drawing and mouse hit-testing.
#[derive(Debug)]
pub struct Areas {
    pub summary: Rect,
    /// Zero-height when the screen is short, as is `legend`; at most three lines.
    pub sources: Rect,
    pub chart: Rect,
    pub legend: Rect,
    /// On a narrow screen only the list with the arrows (`focus`) has an area.
    pub accounts: Option<Rect>,
    pub types: Option<Rect>,
}

pub fn areas(area: Rect, app: &App) -> Areas {
    let roomy = area.height >= 20;
    let source_lines = if roomy {
        header::source_lines(app, area.width).min(3)
    } else {
        0
    };
    let chart_height = (area.height.saturating_sub(4) / 2).clamp(5, 20);
    let [summary, sources, chart, legend, lists] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(source_lines),
        Constraint::Length(chart_height),
        Constraint::Length(u16::from(roomy)),
        Constraint::Min(3),
    ])
    .areas(area);
    let (accounts, types) = if lists.width >= 100 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(lists);
        (Some(left), Some(right))
    } else if app.panel == Panel::Types {
        (None, Some(lists))
    } else {
        (Some(lists), None)
    };
    Areas {
        summary,
        sources,
        chart,
        legend,
        accounts,
        types,
    }
}

/// The accounts row (an index into [`App::rows`]) drawn at screen row `y`, if any.
pub fn account_at(area: Rect, app: &App, y: u16) -> Option<usize> {
    let table = areas(area, app).accounts?;
    // The table's top border and its header row come first.
    let first = table.y + 2;
    let visible = table.height.saturating_sub(2) as usize;
    if y < first || visible == 0 {
        return None;
    }
    // The table scrolls just enough to show the selected row.
    let offset = app.selected.saturating_sub(visible - 1);
    let index = offset + (y - first) as usize;
    (index < app.rows().len()).then_some(index)
}

pub fn draw(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let areas = areas(frame.area(), app);
    let width = frame.area().width;
    frame.render_widget(Paragraph::new(header::summary(app, theme, width)), areas.summary);
    frame.render_widget(Paragraph::new(header::sources(app, theme, width)), areas.sources);
    let stack = &app.shown().stack;
    let block = Block::default().borders(Borders::TOP);
    let inner = block.inner(areas.chart);
    let plot_width = inner.width.saturating_sub(bars::AXIS_WIDTH) as usize;
    let columns = bars::Columns::fit(stack, plot_width);
    let block = block.title(Span::styled(columns.title(stack), theme.muted()));
    frame.render_widget(block, areas.chart);
    let chart = bars::StackedBars {
        stack,
        annotations: &app.shown().annotations,
        columns: &columns,
        theme,
        clock: &app.clock,
    };
    frame.render_widget(chart, inner);
    let legend = bars::legend(stack, theme, areas.legend.width);
    frame.render_widget(Paragraph::new(legend), areas.legend);
    if let Some(accounts) = areas.accounts {
        accounts::draw(frame, accounts, app, theme);
    }
    if let Some(types) = areas.types {
        types::draw(frame, types, app, theme);
    }
    match app.overlay {
        Overlay::None => {}
        Overlay::Help => overlays::help(frame, theme),
        Overlay::BadInput => overlays::bad_input(frame, app, theme),
        Overlay::Notices => overlays::notices(frame, app, theme),
        Overlay::History => overlays::history(frame, app, theme),
    }
}
