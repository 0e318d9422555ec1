//! Help, the bad-input view, DogStatsD events and service checks, and the history, drawn over
//! the dashboard.

use crate::app::App;
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use tally_core::short_number;

const KEYS: [(&str, &str); 15] = [
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
    ("h", "history: the selected account's days and months"),
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

/// Under `title`, each (kind, address, note) whose note says something; nothing if none does.
fn warnings<'a>(
    lines: &mut Vec<Line<'_>>,
    title: &'static str,
    items: impl Iterator<Item = (String, &'a String, &'a String)>,
    theme: &Theme,
) {
    let noted: Vec<_> = items.filter(|(_, _, note)| !note.is_empty()).collect();
    if noted.is_empty() {
        return;
    }
    lines.push(Line::styled(title, theme.title()));
    for (kind, address, note) in noted {
        lines.push(Line::from(vec![
            Span::styled(format!("   {kind} {address} "), theme.bad()),
            Span::raw(note.clone()),
        ]));
    }
    lines.push(Line::raw(""));
}

pub fn bad_input(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let snapshot = app.shown();
    let mut lines = vec![];
    // What the header marks with (!): a source's warning, such as a receive buffer too small to
    // ride out a burst, which costs data without any payload being rejected; an output's, such
    // as a history another tally holds.
    let sources = app
        .sources
        .iter()
        .map(|s| (s.kind.to_string(), &s.address, &s.note));
    warnings(&mut lines, " source warnings", sources, theme);
    let outputs = app
        .outputs
        .iter()
        .map(|o| (o.kind.to_string(), &o.address, &o.note));
    warnings(&mut lines, " output warnings", outputs, theme);
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

/// One period's bar: a run of cells per type, stacked left to right in the types' order and
/// cut where the running total rounds to, so that every type keeps its share.
fn stacked_bar<'a>(counts: &[u64], colours: &[u8], theme: &Theme, scale: f64, width: usize) -> Vec<Span<'a>> {
    let mut spans = vec![];
    let (mut sum, mut drawn) = (0u64, 0usize);
    for (count, colour) in counts.iter().zip(colours) {
        sum += count;
        let end = ((sum as f64 * scale).round() as usize).min(width);
        if end > drawn {
            let fill = theme.fill(*colour).repeat(end - drawn);
            spans.push(Span::styled(fill, theme.layer(*colour)));
            drawn = end;
        }
    }
    spans.push(Span::raw(" ".repeat(width - drawn)));
    spans
}

/// The history (`h`): the last days and months of the selected account, each a bar stacked
/// by type, newest at the bottom, days on the left and months on the right.
pub fn history(frame: &mut Frame<'_>, app: &App, theme: &Theme) {
    let account = app.history_account().unwrap_or_else(|| "every account".into());
    let title = format!(" history: {account} ");
    let view = match &app.history {
        None => return nearly_full_screen(frame, &title, vec![Line::raw(" reading the history...")]),
        Some(Err(why)) => return nearly_full_screen(frame, &title, vec![Line::raw(format!(" {why}"))]),
        Some(Ok(view)) => view,
    };
    let inner_width = frame.area().width.saturating_sub(6) as usize;
    let rows = frame.area().height.saturating_sub(7) as usize;
    let names: Vec<&str> = view.types.iter().map(String::as_str).collect();
    let colours = tally_core::palette::assign(&names);
    let mut legend = vec![Span::raw(" ")];
    for (name, colour) in names.iter().zip(&colours) {
        let fill = theme.fill(*colour);
        legend.push(Span::styled(format!("{fill}{fill} "), theme.layer(*colour)));
        legend.push(Span::raw(format!("{name}  ")));
    }
    let half = inner_width / 2;
    let column = |periods: &[tally_core::PeriodCounts], heading: &str| -> Vec<Vec<Span<'static>>> {
        let shown = &periods[periods.len().saturating_sub(rows)..];
        let label_width = shown.iter().map(|p| p.label.len()).max().unwrap_or(0);
        let number_width = shown
            .iter()
            .map(|p| short_number(p.total() as f64).len())
            .max()
            .unwrap_or(1);
        let bar_width = half.saturating_sub(label_width + number_width + 4).max(1);
        let max = shown.iter().map(|p| p.total()).max().unwrap_or(0).max(1);
        let scale = bar_width as f64 / max as f64;
        let mut lines = vec![vec![Span::styled(
            format!(" {heading:<w$}", w = half - 1),
            theme.title(),
        )]];
        if shown.is_empty() {
            lines.push(vec![Span::raw(format!(
                " {:<w$}",
                "nothing stored",
                w = half - 1
            ))]);
        }
        for period in shown {
            let mut spans = vec![Span::raw(format!(" {:<label_width$} ", period.label))];
            spans.extend(stacked_bar(&period.counts, &colours, theme, scale, bar_width));
            let total = short_number(period.total() as f64);
            spans.push(Span::raw(format!(" {total:>number_width$} ")));
            lines.push(spans);
        }
        lines
    };
    let days = column(&view.days, "by day");
    let months = column(&view.months, "by month");
    let mut lines = vec![Line::from(legend), Line::raw("")];
    for i in 0..days.len().max(months.len()) {
        let mut spans = days
            .get(i)
            .cloned()
            .unwrap_or_else(|| vec![Span::raw(" ".repeat(half))]);
        spans.extend(months.get(i).cloned().unwrap_or_default());
        lines.push(Line::from(spans));
    }
    nearly_full_screen(frame, &title, lines);
}
