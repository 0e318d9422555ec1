//! What arrives that is not a metric: DogStatsD events (a deploy, an outage), which the
//! dashboards show as annotations on the charts, and service checks, shown as each check's
//! last status. Both are rare, so the engine keeps them under a lock, bounded: the newest
//! [`MAX_ANNOTATIONS`] annotations, and the last status of up to [`MAX_CHECKS`] checks.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Annotations kept; older ones are forgotten.
pub const MAX_ANNOTATIONS: usize = 256;
/// Checks kept; a new one past this replaces the check heard from least recently.
pub const MAX_CHECKS: usize = 256;

/// How an event presents itself (DogStatsD's `t:`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    #[default]
    Info,
    Success,
    Warning,
    Error,
}

impl AlertType {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::Info => "info",
            AlertType::Success => "success",
            AlertType::Warning => "warning",
            AlertType::Error => "error",
        }
    }
}

/// DogStatsD's `p:`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    #[default]
    Normal,
    Low,
}

/// An event worth marking on the charts: a deploy, a config change, an incident.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub time: Timestamp,
    pub title: String,
    pub text: String,
    pub alert: AlertType,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `s:`, the integration or tool that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `k:`, what related events share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A service check's status, DogStatsD's 0 to 3.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl CheckStatus {
    pub fn from_code(code: u8) -> Option<CheckStatus> {
        Some(match code {
            0 => CheckStatus::Ok,
            1 => CheckStatus::Warning,
            2 => CheckStatus::Critical,
            3 => CheckStatus::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
            CheckStatus::Unknown => "unknown",
        }
    }

    /// Whether it wants attention: anything but ok.
    pub fn is_trouble(self) -> bool {
        self != CheckStatus::Ok
    }

    /// How much attention: critical, warning, unknown, ok.
    pub fn severity(self) -> u8 {
        match self {
            CheckStatus::Ok => 0,
            CheckStatus::Unknown => 1,
            CheckStatus::Warning => 2,
            CheckStatus::Critical => 3,
        }
    }
}

/// A check's last report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCheck {
    pub name: String,
    pub status: CheckStatus,
    pub time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Either, as a decoder hands it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Annotation(Annotation),
    Check(ServiceCheck),
}

/// What the engine keeps of them.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    annotations: VecDeque<Annotation>,
    /// By name (and host: the same check from two hosts is two checks).
    checks: Vec<ServiceCheck>,
    /// Notices taken so far: a saver writes them again only when this moved.
    changes: u64,
}

/// The annotations and checks, as a checkpoint saves them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticesCopy {
    pub annotations: Vec<Annotation>,
    pub checks: Vec<ServiceCheck>,
}

impl Notices {
    /// A copy, unless nothing changed since `changes` was returned with the last one.
    pub fn copy_since(&self, changes: u64) -> Option<(u64, NoticesCopy)> {
        (self.changes != changes).then(|| {
            let copy = NoticesCopy {
                annotations: self.annotations.iter().cloned().collect(),
                checks: self.checks.clone(),
            };
            (self.changes, copy)
        })
    }

    pub fn annotate(&mut self, annotation: Annotation) {
        self.changes += 1;
        if self.annotations.len() == MAX_ANNOTATIONS {
            self.annotations.pop_front();
        }
        // Kept in time order: a late one (an old `d:`) goes where it belongs.
        let at = self.annotations.partition_point(|a| a.time <= annotation.time);
        self.annotations.insert(at, annotation);
    }

    pub fn check(&mut self, check: ServiceCheck) {
        self.changes += 1;
        let same = |c: &ServiceCheck| c.name == check.name && c.host == check.host;
        if let Some(kept) = self.checks.iter_mut().find(|c| same(c)) {
            *kept = check;
            return;
        }
        if self.checks.len() == MAX_CHECKS {
            let oldest = (self.checks.iter().enumerate())
                .min_by_key(|(_, c)| c.time)
                .map(|(i, _)| i);
            if let Some(oldest) = oldest {
                self.checks.swap_remove(oldest);
            }
        }
        self.checks.push(check);
    }

    /// The annotations from `since` on, oldest first.
    pub fn annotations_since(&self, since: Timestamp) -> Vec<Annotation> {
        let first = self.annotations.partition_point(|a| a.time < since);
        self.annotations.range(first..).cloned().collect()
    }

    /// Every check, the most troubled first, then by name.
    pub fn checks(&self) -> Vec<ServiceCheck> {
        let mut checks = self.checks.clone();
        checks.sort_by(|a, b| {
            (b.status.severity().cmp(&a.status.severity()))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.host.cmp(&b.host))
        });
        checks
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn annotation(ms: u64, title: &str) -> Annotation {
        Annotation {
            time: Timestamp::from_millis(ms),
            title: title.into(),
            ..Annotation::default()
        }
    }

    fn check(name: &str, status: CheckStatus, ms: u64) -> ServiceCheck {
        ServiceCheck {
            name: name.into(),
            status,
            time: Timestamp::from_millis(ms),
            host: None,
            message: None,
            tags: vec![],
        }
    }

    #[test]
    fn annotations_are_bounded_and_in_time_order() {
        let mut notices = Notices::default();
        for i in 0..MAX_ANNOTATIONS as u64 + 10 {
            notices.annotate(annotation(1000 + i, &format!("deploy {i}")));
        }
        notices.annotate(annotation(1100, "late"));
        let all = notices.annotations_since(Timestamp::from_millis(0));
        assert_eq!(all.len(), MAX_ANNOTATIONS);
        assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(all.last().map(|a| a.title.as_str()), Some("deploy 265"));
        let recent = notices.annotations_since(Timestamp::from_millis(1260));
        assert_eq!(recent.first().map(|a| a.title.as_str()), Some("deploy 260"));
    }

    #[test]
    fn a_check_keeps_its_last_status_and_trouble_comes_first() {
        let mut notices = Notices::default();
        notices.check(check("db.up", CheckStatus::Ok, 1));
        notices.check(check("api.up", CheckStatus::Ok, 2));
        notices.check(check("db.up", CheckStatus::Critical, 3));
        notices.check(check("cache.up", CheckStatus::Warning, 4));
        let seen: Vec<(String, CheckStatus)> =
            notices.checks().into_iter().map(|c| (c.name, c.status)).collect();
        assert_eq!(
            seen,
            [
                ("db.up".to_owned(), CheckStatus::Critical),
                ("cache.up".to_owned(), CheckStatus::Warning),
                ("api.up".to_owned(), CheckStatus::Ok),
            ]
        );
        for i in 0..MAX_CHECKS as u64 + 5 {
            notices.check(check(&format!("c{i}"), CheckStatus::Ok, 10 + i));
        }
        assert_eq!(notices.checks().len(), MAX_CHECKS);
        assert!(
            !notices.checks().iter().any(|c| c.name == "db.up"),
            "the least recently heard go first"
        );
    }
}
