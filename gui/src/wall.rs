//! What the wall screen shows, chosen in the configuration file's `[kiosk]` table: views that
//! take turns, and big-number tiles along the top (rate now, events today, bad input, sources
//! up, service checks, a timing's p99). Tiles are read from the snapshot here, as plain data
//! with a mood (its colour on the wall); `view::kiosk` only draws them.

use crate::state::State;
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use tally_core::{CheckStatus, Snapshot, short_number};

/// The `[kiosk]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KioskConfig {
    /// The views, in turn every `rotate` (the first alone without it).
    pub views: Vec<KioskView>,
    /// The tiles along the top, left to right.
    pub tiles: Vec<Tile>,
    /// How long each view stays (`30s`, `2m`); `--rotate` wins over it.
    #[serde(with = "humantime_serde")]
    pub rotate: Option<Duration>,
}

impl Default for KioskConfig {
    fn default() -> Self {
        KioskConfig {
            views: vec![KioskView::Chart, KioskView::TopAccount, KioskView::Types],
            tiles: vec![Tile::Rate, Tile::Today, Tile::Bad, Tile::Sources, Tile::Checks],
            rotate: None,
        }
    }
}

/// One screen of the wall's rotation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KioskView {
    /// Events by account, stacked, beside the busiest accounts as bars.
    Chart,
    /// The busiest account's events by type, beside its types as bars.
    TopAccount,
    /// The busiest accounts as large horizontal bars.
    Accounts,
    /// Event types over all accounts as large horizontal bars, with their p99.
    Types,
}

impl KioskView {
    pub fn title(self) -> &'static str {
        match self {
            KioskView::Chart => "All accounts",
            KioskView::TopAccount => "Top account",
            KioskView::Accounts => "Busiest accounts",
            KioskView::Types => "Event types",
        }
    }
}

/// A big number, named in the file as `rate`, `today`, `bad`, `sources`, `checks`,
/// `p99:TYPE` (over all accounts), `p99:ACCOUNT/TYPE` or `rate:ACCOUNT`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Tile {
    /// Events per second now, with the window's bars as a sparkline.
    Rate,
    /// Events since local midnight.
    Today,
    /// Rejected input; red while it is arriving (in the last minute).
    Bad,
    /// Sources receiving, of all; red when one is not.
    Sources,
    /// The worst service check; green when all are ok.
    Checks,
    /// A timing's 99th percentile in the window: of one account's type, or a type over all.
    P99 { account: Option<String>, kind: String },
    /// One account's events per second, with its trend.
    AccountRate(String),
}

impl FromStr for Tile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.split_once(':') {
            None => match text {
                "rate" => Tile::Rate,
                "today" => Tile::Today,
                "bad" => Tile::Bad,
                "sources" => Tile::Sources,
                "checks" => Tile::Checks,
                _ => {
                    return Err(format!(
                        "unknown tile {text:?}: rate, today, bad, sources, checks, p99:TYPE, p99:ACCOUNT/TYPE or rate:ACCOUNT"
                    ));
                }
            },
            Some(("p99", series)) if !series.is_empty() => match series.split_once('/') {
                Some((account, kind)) => Tile::P99 {
                    account: Some(account.to_owned()),
                    kind: kind.to_owned(),
                },
                None => Tile::P99 {
                    account: None,
                    kind: series.to_owned(),
                },
            },
            Some(("rate", account)) if !account.is_empty() => Tile::AccountRate(account.to_owned()),
            _ => {
                return Err(format!(
                    "unknown tile {text:?}: p99:TYPE, p99:ACCOUNT/TYPE or rate:ACCOUNT"
                ));
            }
        })
    }
}

impl TryFrom<String> for Tile {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tile::Rate => f.write_str("events/s"),
            Tile::Today => f.write_str("events today"),
            Tile::Bad => f.write_str("bad input"),
            Tile::Sources => f.write_str("sources up"),
            Tile::Checks => f.write_str("checks"),
            Tile::P99 {
                account: Some(account),
                kind,
            } => write!(f, "p99 {account}/{kind}"),
            Tile::P99 { account: None, kind } => write!(f, "p99 {kind}"),
            Tile::AccountRate(account) => write!(f, "{account} /s"),
        }
    }
}

/// How a tile should look: its colour on the wall.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mood {
    Neutral,
    Good,
    Warning,
    Bad,
}

/// A tile, read: what it says, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct TileReading {
    pub label: String,
    pub value: String,
    pub mood: Mood,
    /// Oldest first; empty for none.
    pub sparkline: Vec<u64>,
}

/// A rejection this recent makes the bad-input tile red.
const BAD_IS_RECENT_MS: u64 = 60_000;

impl Tile {
    pub fn read(&self, state: &State) -> TileReading {
        let snapshot: &Snapshot = &state.snapshot;
        let now = snapshot.time;
        let reading = |value: String, mood| TileReading {
            label: self.to_string(),
            value,
            mood,
            sparkline: vec![],
        };
        match self {
            // The bucket under way is left out: it would end every sparkline in a drop.
            Tile::Rate => TileReading {
                sparkline: complete_buckets(&snapshot.stack.totals),
                ..reading(short_number(snapshot.totals.rate), Mood::Neutral)
            },
            Tile::Today => match snapshot.totals.since {
                Some(today) => reading(short_number(today as f64), Mood::Neutral),
                None => reading("—".into(), Mood::Neutral),
            },
            Tile::Bad => {
                let recent = (snapshot.recent_rejects.last())
                    .is_some_and(|r| now.as_millis().saturating_sub(r.time.as_millis()) < BAD_IS_RECENT_MS);
                let mood = if recent { Mood::Bad } else { Mood::Neutral };
                reading(short_number(snapshot.totals.rejected as f64), mood)
            }
            Tile::Sources => {
                let up = state.sources.iter().filter(|s| s.is_healthy()).count();
                let all = state.sources.len();
                let mood = if up == all { Mood::Good } else { Mood::Bad };
                reading(format!("{up}/{all}"), mood)
            }
            Tile::Checks => match snapshot.checks.first() {
                None => reading("none".into(), Mood::Neutral),
                Some(worst) if worst.status.is_trouble() => {
                    let mood = match worst.status {
                        CheckStatus::Critical => Mood::Bad,
                        _ => Mood::Warning,
                    };
                    reading(format!("{} {}", worst.name, worst.status.as_str()), mood)
                }
                Some(_) => reading(format!("{} ok", snapshot.checks.len()), Mood::Good),
            },
            Tile::P99 { account, kind } => {
                let types = match account {
                    None => Some(&snapshot.types[..]),
                    Some(name) => (snapshot.accounts.iter())
                        .find(|a| &*a.name == name)
                        .and_then(|a| a.detail.as_ref())
                        .map(|d| &d.types[..]),
                };
                let timing = (types.unwrap_or_default().iter())
                    .find(|t| &*t.name == kind)
                    .and_then(|t| t.timing.as_ref());
                match timing {
                    Some(timing) => reading(format!("{} ms", short_number(timing.p99)), Mood::Neutral),
                    None => reading("—".into(), Mood::Neutral),
                }
            }
            Tile::AccountRate(name) => match snapshot.accounts.iter().find(|a| &*a.name == name) {
                Some(account) => TileReading {
                    sparkline: (account.detail.as_ref())
                        .map(|d| complete_buckets(&d.sparkline))
                        .unwrap_or_default(),
                    ..reading(short_number(account.rate), Mood::Neutral)
                },
                None => reading("0".into(), Mood::Neutral),
            },
        }
    }
}

fn complete_buckets(buckets: &[u64]) -> Vec<u64> {
    buckets[..buckets.len().saturating_sub(1)].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_named_in_the_file() {
        let config: KioskConfig = toml::from_str(
            "views = [\"accounts\", \"chart\"]\ntiles = [\"rate\", \"p99:api.latency\", \"p99:acme/api.latency\", \"rate:acme\"]\nrotate = \"45s\"",
        )
        .expect("parses");
        assert_eq!(config.views, [KioskView::Accounts, KioskView::Chart]);
        assert_eq!(
            config.tiles,
            [
                Tile::Rate,
                Tile::P99 {
                    account: None,
                    kind: "api.latency".into()
                },
                Tile::P99 {
                    account: Some("acme".into()),
                    kind: "api.latency".into()
                },
                Tile::AccountRate("acme".into()),
            ]
        );
        assert_eq!(config.rotate, Some(Duration::from_secs(45)));
        let error = toml::from_str::<KioskConfig>("tiles = [\"wind\"]").expect_err("unknown");
        assert!(error.to_string().contains("unknown tile \"wind\""), "{error}");
        assert!(toml::from_str::<KioskConfig>("view = []").is_err(), "unknown key");
        assert_eq!(
            toml::from_str::<KioskConfig>("").expect("empty"),
            KioskConfig::default()
        );
    }

    /// The shipped example's `[kiosk]` table is one `tally-gui` reads.
    #[test]
    fn the_example_configuration_has_a_valid_kiosk_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/config.example.toml");
        let text = std::fs::read_to_string(path).expect("the example");
        let file: toml::Table = toml::from_str(&text).expect("parses");
        let kiosk = file.get("kiosk").cloned().expect("a [kiosk] table");
        let config: KioskConfig = kiosk.try_into().expect("a valid [kiosk] table");
        assert_eq!(config, KioskConfig::default());
    }
}
