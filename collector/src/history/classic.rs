//! The classic stats API (bootic_stats_aggregates), answered from the history: the JSON
//! documents its customers' dashboards read, under a prefix of the HTTP server (`/stats`).
//!
//! - `/`: a link to `track`.
//! - `/track`, `/track/{account}`, `/track/{account}/{type}`: links to the accounts, their
//!   types, the years with events.
//! - `/track/{account}/{type}/{year}[/{month}[/{day}]]`: `data` holds the events of each
//!   month of the year, day of the month or (local) hour of the day, keyed by the unpadded
//!   number as the classic aggregator wrote them; `links` point one level down.
//!
//! Every field but `links` and `data` is a string, `""` when unused, as the classic Go
//! structure marshalled them; `year`, `month` and `day` echo the path, and both `/2013/09`
//! and `/2013/9` are understood (the classic code wrote unpadded keys and its README showed
//! padded ones). The HTTP server adds JSONP and the no-cache headers.

use super::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use tally_core::Clock;

/// One answer, in the classic field order.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub chart: String,
    pub account: String,
    pub event: String,
    pub year: String,
    pub month: String,
    pub day: String,
    pub links: Vec<String>,
    /// `null` for the listings, as the classic answered them.
    pub data: Option<BTreeMap<String, u64>>,
}

/// Why a path has no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound(String),
    Store(String),
}

impl From<rusqlite::Error> for Refusal {
    fn from(error: rusqlite::Error) -> Self {
        Refusal::Store(error.to_string())
    }
}

/// The answer for `segments` (the path after the prefix, split at `/`), with links made
/// from `base` (`http://HOST/stats`).
pub fn answer(store: &Store, clock: &Clock, base: &str, segments: &[&str]) -> Result<Payload, Refusal> {
    let segments: Vec<&str> = segments.iter().copied().filter(|s| !s.is_empty()).collect();
    let link = |rest: &[&str]| format!("{base}/{}", rest.join("/"));
    let mut payload = Payload::default();
    match segments.as_slice() {
        [] => {
            payload.links = vec![link(&["track"])];
            return Ok(payload);
        }
        ["track", rest @ ..] if rest.len() <= 5 => payload.chart = "track".into(),
        _ => {
            return Err(Refusal::NotFound(format!(
                "no such path: /{}",
                segments.join("/")
            )));
        }
    }
    let (account, kind) = (segments.get(1).copied(), segments.get(2).copied());
    payload.account = account.unwrap_or_default().into();
    payload.event = kind.unwrap_or_default().into();
    let (Some(account), Some(kind)) = (account, kind) else {
        let names = match account {
            None => store.accounts()?,
            Some(account) => store.types(account)?,
        };
        payload.links = names
            .iter()
            .map(|name| link(&[&segments[..], &[name.as_str()]].concat()))
            .collect();
        return Ok(payload);
    };
    let number = |what: &str, text: Option<&str>| -> Result<Option<i64>, Refusal> {
        text.map(|text| {
            (text.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| Refusal::NotFound(format!("{what} must be a number, not {text:?}")))
        })
        .transpose()
    };
    let year = number("the year", segments.get(3).copied())?;
    let month = number("the month", segments.get(4).copied())?;
    let day = number("the day", segments.get(5).copied())?;
    payload.year = segments.get(3).copied().unwrap_or_default().into();
    payload.month = segments.get(4).copied().unwrap_or_default().into();
    payload.day = segments.get(5).copied().unwrap_or_default().into();
    let here = |more: String| link(&[&segments[..], &[more.as_str()]].concat());
    let keyed = |counts: BTreeMap<i8, u64>| counts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let fits = |n: i64, max: i64| (n <= max).then_some(n);
    let data: BTreeMap<String, u64> = match (year, month, day) {
        (None, ..) => {
            payload.links = (store.years(account, kind)?)
                .into_iter()
                .map(|y| here(y.to_string()))
                .collect();
            return Ok(payload);
        }
        (Some(year), None, _) => {
            let months = match fits(year, i64::from(i16::MAX)) {
                Some(year) => store.months_of(account, kind, year as i16)?,
                None => BTreeMap::new(),
            };
            payload.links = months.keys().map(|m| here(m.to_string())).collect();
            keyed(months)
        }
        (Some(year), Some(month), None) => {
            let days = match (fits(year, i64::from(i16::MAX)), fits(month, 12)) {
                (Some(year), Some(month)) => store.days_of(account, kind, year as i16, month as i8)?,
                _ => BTreeMap::new(),
            };
            payload.links = days.keys().map(|d| here(d.to_string())).collect();
            keyed(days)
        }
        (Some(year), Some(month), Some(day)) => {
            match (fits(year, i64::from(i16::MAX)), fits(month, 12), fits(day, 31)) {
                (Some(y), Some(m), Some(d)) => {
                    keyed(store.hours_of(account, kind, (y as i16, m as i8, d as i8), clock)?)
                }
                _ => BTreeMap::new(),
            }
        }
    };
    payload.data = Some(data);
    Ok(payload)
}
