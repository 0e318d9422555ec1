//! One vocabulary for ordering accounts, so that a word means the same in every view.

use crate::snapshot::AccountStats;
use serde::{Deserialize, Serialize};

/// How a table of accounts is ordered.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountSort {
    /// Events per second now, busiest first (ties: busiest in the window).
    #[default]
    Rate,
    /// Events in the window shown, busiest first: the snapshot's own order, which is also
    /// each account's share of the window.
    #[serde(alias = "Share")]
    Window,
    /// Events since start, most first.
    Total,
    Name,
}

impl AccountSort {
    pub fn label(self) -> &'static str {
        match self {
            AccountSort::Rate => "rate",
            AccountSort::Window => "window",
            AccountSort::Total => "total",
            AccountSort::Name => "name",
        }
    }

    /// Indices into `accounts` (a snapshot's, busiest in the window first) of those `keep`
    /// keeps, in this order.
    pub fn order(self, accounts: &[AccountStats], keep: impl Fn(&AccountStats) -> bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..accounts.len()).filter(|&i| keep(&accounts[i])).collect();
        match self {
            AccountSort::Window => {}
            AccountSort::Rate => order.sort_by(|&a, &b| {
                let (a, b) = (&accounts[a], &accounts[b]);
                b.rate
                    .total_cmp(&a.rate)
                    .then(b.window_total.cmp(&a.window_total))
            }),
            AccountSort::Total => order.sort_by_key(|&a| std::cmp::Reverse(accounts[a].total)),
            AccountSort::Name => order.sort_by(|&a, &b| accounts[a].name.cmp(&accounts[b].name)),
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, rate: f64, window_total: u64, total: u64) -> AccountStats {
        AccountStats {
            name: name.into(),
            rate,
            window_total,
            total,
            colour: None,
            share: 0.0,
            last_seen: None,
            detail: None,
        }
    }

    #[test]
    fn each_sort_means_one_thing() {
        // Busiest in the window first, as a snapshot orders them.
        let accounts = [
            account("globex", 1.0, 90, 100),
            account("acme", 5.0, 50, 5000),
            account("initech", 5.0, 40, 60),
        ];
        let names = |sort: AccountSort| -> Vec<&str> {
            sort.order(&accounts, |_| true)
                .iter()
                .map(|&i| &*accounts[i].name)
                .collect()
        };
        assert_eq!(names(AccountSort::Window), ["globex", "acme", "initech"]);
        assert_eq!(names(AccountSort::Rate), ["acme", "initech", "globex"]);
        assert_eq!(names(AccountSort::Total), ["acme", "globex", "initech"]);
        assert_eq!(names(AccountSort::Name), ["acme", "globex", "initech"]);
        let kept = AccountSort::Name.order(&accounts, |a| a.name.contains('i'));
        assert_eq!(kept, [2], "only what is kept, in order");
    }

    #[test]
    fn choices_stored_under_the_old_name_still_load() {
        let sort: AccountSort = serde_json::from_str("\"Share\"").expect("parses");
        assert_eq!(sort, AccountSort::Window);
    }
}
