//! A history to draw: one account's events by day and by month, each period split by type,
//! as a history store answered (the dashboards draw it; the binaries fill it in).

/// One period (a day, a month) and its events per type, in [`HistoryView::types`]' order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodCounts {
    /// `2026-12-03`, `2026-12`.
    pub label: String,
    pub counts: Vec<u64>,
}

impl PeriodCounts {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryView {
    pub account: String,
    /// Busiest over both spans first.
    pub types: Vec<String>,
    /// Oldest first.
    pub days: Vec<PeriodCounts>,
    pub months: Vec<PeriodCounts>,
}

impl HistoryView {
    /// From stored counts, each `(period, type, count)`, oldest period first.
    pub fn new(account: &str, days: &[(String, String, u64)], months: &[(String, String, u64)]) -> Self {
        let mut totals: Vec<(String, u64)> = vec![];
        for (_, kind, count) in days.iter().chain(months) {
            match totals.iter_mut().find(|(name, _)| name == kind) {
                Some((_, total)) => *total += count,
                None => totals.push((kind.clone(), *count)),
            }
        }
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let types: Vec<String> = totals.into_iter().map(|(name, _)| name).collect();
        let periods = |rows: &[(String, String, u64)]| {
            let mut periods: Vec<PeriodCounts> = vec![];
            for (label, kind, count) in rows {
                if periods.last().is_none_or(|p| p.label != *label) {
                    periods.push(PeriodCounts {
                        label: label.clone(),
                        counts: vec![0; types.len()],
                    });
                }
                let index = types.iter().position(|t| t == kind).unwrap_or(0);
                if let Some(period) = periods.last_mut() {
                    period.counts[index] += count;
                }
            }
            periods
        };
        HistoryView {
            account: account.to_owned(),
            days: periods(days),
            months: periods(months),
            types: types.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(period: &str, kind: &str, count: u64) -> (String, String, u64) {
        (period.into(), kind.into(), count)
    }

    #[test]
    fn periods_are_split_by_type_busiest_first() {
        let view = HistoryView::new(
            "acme",
            &[
                row("2026-12-01", "signup", 2),
                row("2026-12-01", "pageview", 5),
                row("2026-12-02", "pageview", 4),
            ],
            &[row("2026-12", "pageview", 9), row("2026-12", "signup", 2)],
        );
        assert_eq!(view.types, ["pageview", "signup"]);
        assert_eq!(view.days.len(), 2);
        assert_eq!(view.days[0].counts, [5, 2]);
        assert_eq!(view.days[1].counts, [4, 0]);
        assert_eq!(view.months[0].total(), 11);
    }
}
