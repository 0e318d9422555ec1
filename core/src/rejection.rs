//! Input that could not be counted: the reasons, and the last few payloads as evidence.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Why a payload (or one line of it) was not counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not valid JSON, or JSON that is not an event object.
    Json,
    /// Not valid msgpack, or msgpack with fields of the wrong types.
    Msgpack,
    /// Text that is not valid UTF-8.
    Utf8,
    /// A StatsD line without a value or type, or with a bad value or sample rate.
    Statsd,
    /// A StatsD metric type that tally does not know.
    UnknownType,
    /// An event with no account.
    NoAccount,
    /// Larger than the configured limit for a datagram, line or frame.
    Oversize,
    /// A compressed payload that does not inflate, or inflates past the limit.
    Compression,
    /// Missing or unknown auth token.
    Auth,
    /// Accepted, but dropped because a bounded queue was full.
    QueueFull,
    /// A count (or a sample rate's multiplier) above [`crate::MAX_COUNT`].
    CountTooLarge,
}

impl Rejection {
    pub const ALL: [Rejection; 11] = [
        Rejection::Json,
        Rejection::Msgpack,
        Rejection::Utf8,
        Rejection::Statsd,
        Rejection::UnknownType,
        Rejection::NoAccount,
        Rejection::Oversize,
        Rejection::Compression,
        Rejection::Auth,
        Rejection::QueueFull,
        Rejection::CountTooLarge,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Json => "json",
            Rejection::Msgpack => "msgpack",
            Rejection::Utf8 => "utf8",
            Rejection::Statsd => "statsd",
            Rejection::UnknownType => "unknown_type",
            Rejection::NoAccount => "no_account",
            Rejection::Oversize => "oversize",
            Rejection::Compression => "compression",
            Rejection::Auth => "auth",
            Rejection::QueueFull => "queue_full",
            Rejection::CountTooLarge => "count_too_large",
        }
    }
}

/// How many rejected payloads are kept, and how much of each.
pub const KEPT_SAMPLES: usize = 16;
pub const SAMPLE_BYTES: usize = 160;

/// One rejected payload, escaped so that it is safe to print in a terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectSample {
    pub time: Timestamp,
    pub reason: Rejection,
    /// What was wrong, in words (for example the parser's message).
    pub detail: String,
    /// The start of the payload: printable ASCII as is, everything else as `\xNN`, `\n`, ...
    pub payload: String,
    /// The payload's full length in bytes.
    pub len: usize,
}

impl RejectSample {
    pub fn new(time: Timestamp, reason: Rejection, detail: &str, payload: &[u8]) -> Self {
        RejectSample {
            time,
            reason,
            detail: escape(detail.as_bytes(), SAMPLE_BYTES),
            payload: escape(payload, SAMPLE_BYTES),
            len: payload.len(),
        }
    }
}

/// Printable ASCII as is, the rest escaped; at most `limit` input bytes, then `...`.
pub fn escape(bytes: &[u8], limit: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(limit) + 3);
    for &byte in bytes.iter().take(limit) {
        match byte {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    if bytes.len() > limit {
        out.push_str("...");
    }
    out
}

/// The last [`KEPT_SAMPLES`] rejected payloads, newest last.
#[derive(Debug, Default)]
pub(crate) struct RejectLog {
    samples: VecDeque<RejectSample>,
}

impl RejectLog {
    pub(crate) fn push(&mut self, sample: RejectSample) {
        if self.samples.len() == KEPT_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub(crate) fn samples(&self) -> Vec<RejectSample> {
        self.samples.iter().cloned().collect()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_escaped_and_cut() {
        assert_eq!(escape(b"ok:1|c\n\xff\x1b[2J", 64), "ok:1|c\\n\\xff\\x1b[2J");
        assert_eq!(escape(&[b'a'; 10], 4), "aaaa...");
        let sample = RejectSample::new(Timestamp::from_secs(1), Rejection::Json, "eof", &[b'{'; 500]);
        assert_eq!(sample.len, 500);
        assert_eq!(sample.payload.len(), SAMPLE_BYTES + 3);
    }

    #[test]
    fn log_keeps_the_newest() {
        let mut log = RejectLog::default();
        for i in 0..40u64 {
            log.push(RejectSample::new(
                Timestamp::from_secs(i),
                Rejection::Statsd,
                "",
                b"x",
            ));
        }
        let kept = log.samples();
        assert_eq!(kept.len(), KEPT_SAMPLES);
        assert_eq!(kept.last().map(|s| s.time), Some(Timestamp::from_secs(39)));
        assert!(Rejection::ALL.iter().enumerate().all(|(i, r)| r.index() == i));
    }
}
