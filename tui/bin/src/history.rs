//! `tally history`: the stored counts of one account, by hour, day or month, as a table (one
//! column per type, busiest first) or as JSON; and what the dashboard's history overlay
//! (`h`) reads.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tally_collector::config::Settings;
use tally_collector::health::now;
use tally_collector::history::{ALL, Count, Period};
use tally_core::{Clock, HistoryView};
use tally_tui::app::{App, Overlay};

/// How often an open history overlay reads the store again.
const REREAD_EVERY: Duration = Duration::from_secs(5);

/// Fills the dashboard's history overlay from the state directory's store.
pub struct Reader {
    dir: Option<PathBuf>,
    clock: Clock,
    /// Whose history was read, and when.
    read: Option<(String, Instant)>,
}

impl Reader {
    pub fn new(settings: &Settings) -> Self {
        Reader {
            dir: settings.state.as_ref().map(|state| state.dir.clone()),
            clock: settings.clock.clone(),
            read: None,
        }
    }

    /// Reads the history when the overlay opens, its account changes, or every few seconds
    /// while it is open; whether the app has something new to draw.
    pub fn refresh(&mut self, app: &mut App) -> bool {
        if app.overlay != Overlay::History {
            self.read = None;
            return app.history.take().is_some();
        }
        let account = app.history_account().unwrap_or_else(|| ALL.to_owned());
        if let Some((read, at)) = &self.read
            && *read == account
            && at.elapsed() < REREAD_EVERY
        {
            return false;
        }
        app.history = Some(self.load(&account));
        self.read = Some((account, Instant::now()));
        true
    }

    /// The last 30 days by day and the last 12 months by month.
    fn load(&self, account: &str) -> Result<HistoryView, String> {
        tally_collector::history::view(self.dir.as_deref(), account, &self.clock, now())
    }
}

/// Types shown as columns of their own; the rest are summed in `(rest)`.
const TYPE_COLUMNS: usize = 5;

/// Writes `counts` (oldest first) as a table: a row per period, its total and a column per
/// type.
pub fn table(out: &mut impl Write, account: &str, period: Period, counts: &[Count]) -> std::io::Result<()> {
    if counts.is_empty() {
        return writeln!(out, "no events stored for {account} in that span");
    }
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for count in counts {
        *by_type.entry(&count.kind).or_default() += count.count;
    }
    let mut types: Vec<(&str, u64)> = by_type.into_iter().collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let rest = types.len() > TYPE_COLUMNS;
    let shown: Vec<&str> = (types.iter())
        .take(if rest { TYPE_COLUMNS - 1 } else { TYPE_COLUMNS })
        .map(|(name, _)| *name)
        .collect();
    let mut rows: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for count in counts {
        let row = (rows.entry(&count.period)).or_insert_with(|| vec![0; shown.len() + 2]);
        row[0] += count.count;
        match shown.iter().position(|name| *name == count.kind) {
            Some(column) => row[column + 1] += count.count,
            None => row[shown.len() + 1] += count.count,
        }
    }
    let heading = match period {
        Period::Hour => "hour",
        Period::Day => "day",
        Period::Month => "month",
    };
    let mut names: Vec<&str> = vec!["total"];
    names.extend(&shown);
    if rest {
        names.push("(rest)");
    }
    let width = |name: &str| name.chars().count().max(9);
    let first = counts
        .iter()
        .map(|c| c.period.len())
        .max()
        .unwrap_or(0)
        .max(heading.len());
    write!(out, "{heading:<first$}")?;
    for name in &names {
        write!(out, "  {name:>w$}", w = width(name))?;
    }
    writeln!(out)?;
    for (period, row) in rows {
        write!(out, "{period:<first$}")?;
        for (name, value) in names.iter().zip(&row) {
            write!(out, "  {value:>w$}", w = width(name))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(period: &str, kind: &str, count: u64) -> Count {
        Count {
            period: period.into(),
            account: "acme".into(),
            kind: kind.into(),
            count,
        }
    }

    #[test]
    fn a_row_per_period_and_a_column_per_type_busiest_first() {
        let counts = [
            count("2026-12-01", "pageview", 3),
            count("2026-12-01", "signup", 5),
            count("2026-12-02", "pageview", 4),
        ];
        let mut out = vec![];
        table(&mut out, "acme", Period::Day, &counts).expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "day             total   pageview     signup\n\
             2026-12-01          8          3          5\n\
             2026-12-02          4          4          0\n"
        );
        let mut out = vec![];
        table(&mut out, "acme", Period::Day, &[]).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "no events stored for acme in that span\n"
        );
    }
}
