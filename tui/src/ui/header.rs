//! The top line: rates, totals, bad input, window, clock, `PAUSED`; then each source's health.

use crate::app::App;
use crate::theme::Theme;
use ratatui::text::{Line, Span};
use tally_core::human_duration;
use tally_core::short_number;

pub fn summary<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let snapshot = app.shown();
    let totals = &snapshot.totals;
    let window = &snapshot.window;
    let clock = format!(
        "{} {}",
        app.clock.time_of_day(snapshot.time),
        app.clock.zone_label(snapshot.time)
    );
    let mut spans = vec![
        Span::styled(" tally ", theme.title()),
        Span::raw(format!("{}/s ", short_number(totals.rate))),
        Span::styled(
            format!("peak {}/s ", short_number(totals.peak_rate)),
            theme.muted(),
        ),
        Span::raw(format!("│ total {} ", short_number(totals.total as f64))),
        Span::raw(format!("│ {} accts ", totals.active_accounts)),
    ];
    let bad = format!("bad {}", short_number(totals.rejected as f64));
    spans.push(Span::raw("│ "));
    spans.push(if totals.rejected > 0 {
        Span::styled(bad, theme.bad())
    } else {
        Span::raw(bad)
    });
    if totals.folded_accounts > 0 {
        spans.push(Span::styled(
            format!(" folded {}", totals.folded_accounts),
            theme.bad(),
        ));
    }
    if totals.saturated > 0 {
        spans.push(Span::styled(
            format!(" saturated {}", short_number(totals.saturated as f64)),
            theme.bad(),
        ));
    }
    spans.push(Span::raw(format!(
        " │ {} @{} │ {clock} ",
        human_duration(window.buckets as u64 * window.resolution.bucket_ms),
        human_duration(window.resolution.bucket_ms)
    )));
    if app.paused() {
        spans.push(Span::styled(" PAUSED ", theme.alert()));
    }
    Line::from(spans)
}

pub fn sources<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    for source in &app.sources {
        let dot = if source.is_healthy() {
            Span::styled("● ", theme.good())
        } else {
            Span::styled("● ", theme.bad())
        };
        spans.push(dot);
        spans.push(Span::raw(format!(
            "{} {} {}",
            source.kind,
            source.address,
            source.state.as_str()
        )));
        if source.kind.is_hub_client() {
            let details = source.details(app.shown().time);
            spans.push(Span::styled(format!(" {details}"), theme.muted()));
        }
        if !source.note.is_empty() {
            spans.push(Span::styled(" (!)", theme.muted()));
        }
        spans.push(Span::raw("   "));
    }
    spans.push(Span::styled("? help", theme.muted()));
    Line::from(spans)
}
