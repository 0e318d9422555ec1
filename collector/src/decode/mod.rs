//! Payload decoders: one datagram (or one line of a stream) in, events and rejections out.
//!
//! The format is detected per payload: JSON objects or arrays (the classic events hub),
//! msgpack maps (older hubs), zlib-compressed JSON lists (metrics_talk status), and otherwise
//! StatsD lines. Events borrow from the payload; nothing is allocated per event unless a name
//! needs cleaning up.

mod json;
mod statsd;
mod zlib;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use tally_core::{Event, Rejection, Timestamp};

/// Where decoded events and rejections go.
pub trait Sink {
    fn event(&mut self, event: &Event<'_>);
    fn reject(&mut self, reason: Rejection, detail: &str, payload: &[u8]);
}

/// How a metric name (StatsD bucket, metrics_talk name) gives an account and a type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountFrom {
    /// `acme.pageview` is account `acme`, type `pageview` (a name without a dot is an account
    /// with the type `""`).
    #[default]
    FirstSegment,
    /// The value of this DogStatsD tag (`#account:acme`) is the account and the whole name is
    /// the type; names without the tag fall back to the first segment.
    Tag(String),
}

impl AccountFrom {
    pub fn split<'a>(&self, name: &'a str, tags: Option<&'a str>) -> (&'a str, &'a str) {
        if let (AccountFrom::Tag(key), Some(tags)) = (self, tags) {
            let tagged = tags.split(',').find_map(|tag| {
                let (k, v) = tag.split_once(':')?;
                (k == key && !v.is_empty()).then_some(v)
            });
            if let Some(account) = tagged {
                return (account, name);
            }
        }
        name.split_once('.').unwrap_or((name, ""))
    }
}

/// Limits and choices that apply to every payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    pub accounts: AccountFrom,
    /// The most a compressed payload may inflate to.
    pub max_inflated: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            accounts: AccountFrom::default(),
            max_inflated: 1 << 20,
        }
    }
}

/// The formats tally reads, as detected from a payload's first bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Msgpack,
    Zlib,
    Statsd,
}

/// Which decoder `payload` goes to.
pub fn detect(payload: &[u8]) -> Format {
    let first = payload
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| payload[i]);
    match first {
        Some(b'{' | b'[') => Format::Json,
        // fixmap, map16, map32, and arrays of them.
        Some(0x80..=0x9f | 0xdc..=0xdf) => Format::Msgpack,
        _ if zlib::looks_like_zlib(payload) => Format::Zlib,
        _ => Format::Statsd,
    }
}

/// Decodes one payload, whatever its format.
pub fn decode(payload: &[u8], time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    match detect(payload) {
        Format::Json => json::decode_json(payload, time, sink),
        Format::Msgpack => json::decode_msgpack(payload, time, sink),
        Format::Zlib => {
            if !zlib::decode(payload, time, options, sink) {
                decode_text(payload, time, options, sink);
            }
        }
        Format::Statsd => decode_text(payload, time, options, sink),
    }
}

fn decode_text(payload: &[u8], time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    match std::str::from_utf8(payload) {
        Ok(text) => statsd::decode(text, time, &options.accounts, sink),
        Err(error) => sink.reject(Rejection::Utf8, &error.to_string(), payload),
    }
}

/// A StatsD key as etsy statsd keeps it: whitespace becomes `_`, `/` becomes `-`, and
/// characters outside `[A-Za-z0-9_.;=-]` are dropped. Borrows when nothing changes.
pub fn clean_key(key: &str) -> Cow<'_, str> {
    let keep = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ';' | '=' | '-');
    if key.chars().all(keep) {
        return Cow::Borrowed(key);
    }
    Cow::Owned(
        key.chars()
            .filter_map(|c| match c {
                c if c.is_whitespace() => Some('_'),
                '/' => Some('-'),
                c if keep(c) => Some(c),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Events and rejections, owned, for assertions.
    #[derive(Debug, Default)]
    pub struct Collected {
        pub events: Vec<(String, String, Option<String>, String)>,
        pub rejects: Vec<(Rejection, String)>,
    }

    impl Sink for Collected {
        fn event(&mut self, e: &Event<'_>) {
            self.events.push((
                e.account.to_owned(),
                e.event_type.to_owned(),
                e.app.map(str::to_owned),
                format!("{:?}", e.value),
            ));
        }

        fn reject(&mut self, reason: Rejection, detail: &str, _payload: &[u8]) {
            self.rejects.push((reason, detail.to_owned()));
        }
    }

    pub fn run(payload: &[u8]) -> Collected {
        let mut collected = Collected::default();
        decode(
            payload,
            Timestamp::from_secs(1),
            &DecodeOptions::default(),
            &mut collected,
        );
        collected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_the_first_bytes() {
        assert_eq!(detect(b" {\"type\":1}"), Format::Json);
        assert_eq!(detect(b"[{}]"), Format::Json);
        assert_eq!(detect(&[0x82, 0xa4]), Format::Msgpack);
        assert_eq!(detect(&[0x78, 0x9c, 1, 2]), Format::Zlib);
        assert_eq!(detect(b"acme.x:1|c"), Format::Statsd);
        assert_eq!(detect(b"xylophone:1|c"), Format::Statsd);
    }

    #[test]
    fn keys_are_cleaned_like_statsd() {
        assert_eq!(clean_key("acme.page view/home!"), "acme.page_view-home");
        assert!(matches!(clean_key("acme.ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn accounts_from_first_segment_or_a_tag() {
        let first = AccountFrom::FirstSegment;
        assert_eq!(first.split("acme.api.latency", None), ("acme", "api.latency"));
        assert_eq!(first.split("gorets", None), ("gorets", ""));
        let tag = AccountFrom::Tag("account".into());
        assert_eq!(
            tag.split("api.latency", Some("env:prod,account:acme")),
            ("acme", "api.latency")
        );
        assert_eq!(tag.split("acme.x", Some("env:prod")), ("acme", "x"));
    }
}

#[cfg(test)]
mod properties {
    use super::testing::run;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: no panic, and every non-blank payload is either counted or rejected.
        #[test]
        fn any_bytes_are_counted_or_rejected(payload in prop::collection::vec(any::<u8>(), 0..300)) {
            let got = run(&payload);
            let blank = payload.iter().all(u8::is_ascii_whitespace);
            // An empty array (JSON or msgpack) is a valid document holding no events.
            let empty = |n: Result<Vec<serde::de::IgnoredAny>, ()>| n.is_ok_and(|v| v.is_empty());
            let empty_array = empty(serde_json::from_slice(&payload).map_err(drop))
                || empty(rmp_serde::from_slice(&payload).map_err(drop));
            prop_assert!(blank || empty_array || !got.events.is_empty() || !got.rejects.is_empty());
        }

        /// Payloads that start like JSON or msgpack but are cut short are rejected, not lost.
        #[test]
        fn truncated_structured_payloads_are_rejected(cut in 1usize..60) {
            let json = br#"{"type":"pageview","data":{"account":"acme","app":"shop"}}"#;
            let got = run(&json[..cut.min(json.len() - 1)]);
            prop_assert!(got.events.is_empty());
            prop_assert_eq!(got.rejects.len(), 1);
        }

        /// Well-formed StatsD lines give exactly their metrics, scaled by their rates.
        #[test]
        fn statsd_lines_decode_exactly(
            lines in prop::collection::vec(
                ("[a-z]{1,8}", "[a-z]{1,8}", 0u32..1000, prop::sample::select(vec![1.0, 0.5, 0.25, 0.1])),
                1..20,
            )
        ) {
            let text: Vec<String> = lines
                .iter()
                .map(|(account, name, value, rate)| format!("{account}.{name}:{value}|c|@{rate}"))
                .collect();
            let got = run(text.join("\n").as_bytes());
            prop_assert!(got.rejects.is_empty(), "{:?}", got.rejects);
            prop_assert_eq!(got.events.len(), lines.len());
            for ((account, name, value, rate), event) in lines.iter().zip(&got.events) {
                prop_assert_eq!(&event.0, account);
                prop_assert_eq!(&event.1, name);
                prop_assert_eq!(&event.3, &format!("Count({})", (*value as f64 / rate).round() as u64));
            }
        }
    }
}
