//! Help, the bad-input view, and DogStatsD events and service checks, drawn over the dashboard.

use crate::app::App;
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

const KEYS: [(&str, &str); 14] = [
    ("q", "quit"),
    ("Esc", "leave a drill-down, clear a filter or the selection"),
    ("space, p", "pause / resume the view (data keeps coming)"),
    ("+ / -", "longer / shorter window (1m, 5m, 1h, 24h)"),
    ("tab", "switch between accounts and types"),
    ("↑ ↓, j k", "select an account"),
    ("Enter", "chart the selected account by type"),
    ("/", "filter accounts (Enter keeps, Esc clears)"),
    ("s / S", "sort by rate, window total, name / reverse it"),
    ("b", "bad input: reasons, payloads, source warnings (!)"),
    ("e", "events (▼ on the chart) and service checks"),
    ("?", "this help"),
    ("mouse", "wheel scrolls, click selects"),
    ("", "any key closes this"),
];

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

pub fn help(frame: &mut Frame<'_>, theme: &Theme) {
    let lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<10}"), theme.title()),
                Span::raw(*what),
            ])
        })
        .collect();
    let area = centered(frame.area(), 66, KEYS.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        area,
    );
}

pub fn bad_input(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let snapshot = app.shown();
    let mut lines = vec![];
    // What the header marks with (!): a source's warning, such as a receive buffer too small to
    // ride out a burst, which costs data without any payload being rejected.
    let warnings: Vec<_> = app.sources.iter().filter(|s| !s.note.is_empty()).collect();
    if !warnings.is_empty() {
        lines.push(Line::styled(" source warnings", theme.title()));
        for source in warnings {
            lines.push(Line::from(vec![
                Span::styled(format!("   {} {} ", source.kind, source.address), theme.bad()),
                Span::raw(source.note.clone()),
            ]));
        }
        lines.push(Line::raw(""));
    }
    let warnings: Vec<_> = app.outputs.iter().filter(|o| !o.note.is_empty()).collect();
    if !warnings.is_empty() {
        lines.push(Line::styled(" output warnings", theme.title()));
        for output in warnings {
            lines.push(Line::from(vec![
                Span::styled(format!("   {} {} ", output.kind, output.address), theme.bad()),
                Span::raw(output.note.clone()),
            ]));
        }
        lines.push(Line::raw(""));
    }
    lines.push(Line::styled(" rejected, by reason", theme.title()));
    if snapshot.rejections.is_empty() {
        lines.push(Line::raw("   nothing rejected"));
    }
    for reason in &snapshot.rejections {
        lines.push(Line::raw(format!(
            "   {:<14} {}",
            reason.reason.as_str(),
            reason.count
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " latest rejected payloads (escaped), newest last",
        theme.title(),
    ));
    for sample in &snapshot.recent_rejects {
        lines.push(Line::from(vec![
            Span::styled(format!("   {:<12} ", sample.reason.as_str()), theme.bad()),
            Span::raw(format!("{} ", sample.detail)),
            Span::styled(
                format!("[{} bytes] {}", sample.len, sample.payload),
                theme.muted(),
            ),
        ]));
    }
    nearly_full_screen(frame, " bad input (any key closes) ", lines);
}

/// DogStatsD events in the window (newest first) and every service check's last status.
pub fn notices(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let snapshot = app.shown();
    let clock = |time| app.clock.time_of_day(time);
    let mut lines = vec![Line::styled(
        " service checks, the most troubled first",
        theme.title(),
    )];
    if snapshot.checks.is_empty() {
        lines.push(Line::raw("   none reported (DogStatsD `_sc|name|status`)"));
    }
    for check in &snapshot.checks {
        let mut spans = vec![
            Span::styled(
                format!("   {:<9}", check.status.as_str()),
                theme.check(check.status),
            ),
            Span::raw(format!("{} ", check.name)),
            Span::styled(format!("{} ", clock(check.time)), theme.muted()),
        ];
        if let Some(host) = &check.host {
            spans.push(Span::styled(format!("{host} "), theme.muted()));
        }
        if let Some(message) = &check.message {
            spans.push(Span::raw(message.replace('\n', " / ")));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(" events in the window, newest first", theme.title()));
    if snapshot.annotations.is_empty() {
        lines.push(Line::raw("   none (DogStatsD `_e{title,text}:...`)"));
    }
    for event in snapshot.annotations.iter().rev() {
        lines.push(Line::from(vec![
            Span::styled(format!("   ▼ {} ", clock(event.time)), theme.notice(event.alert)),
            Span::styled(format!("{:<8}", event.alert.as_str()), theme.notice(event.alert)),
            Span::styled(event.title.clone(), theme.title()),
        ]));
        let mut about = vec![];
        if let Some(host) = &event.host {
            about.push(format!("host {host}"));
        }
        if let Some(source) = &event.source {
            about.push(format!("from {source}"));
        }
        if !event.tags.is_empty() {
            about.push(event.tags.join(", "));
        }
        for text in event
            .text
            .lines()
            .chain((!about.is_empty()).then_some(about.join(" · ").as_str()))
        {
            lines.push(Line::styled(format!("       {text}"), theme.muted()));
        }
    }
    nearly_full_screen(frame, " events and service checks (any key closes) ", lines);
}

/// `lines` in a bordered box over all but the screen's edges, wrapped.
fn nearly_full_screen(frame: &mut Frame<'_>, title: &str, lines: Vec<Line<'_>>) {
    let area = centered(
        frame.area(),
        frame.area().width.saturating_sub(4),
        frame.area().height.saturating_sub(2),
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(title))
            .wrap(Wrap { trim: false }),
        area,
    );
}
