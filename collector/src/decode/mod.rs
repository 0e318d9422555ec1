//! Payload decoders: one datagram (or one line of a stream) in, events and rejections out.
//!
//! The format is detected per payload: JSON objects or arrays (the classic events hub),
//! msgpack maps (older hubs), zlib-compressed JSON lists (metrics_talk status), and otherwise
//! StatsD lines. Events borrow from the payload; nothing is allocated per event unless a name
//! needs cleaning up. Decoders know nothing of sockets, hubs or outputs: they push into a
//! [`Sink`] (the ingest layer's records into the engine and tees to the outputs).

mod dogstatsd;
mod json;
mod statsd;
mod words;
mod zlib;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use tally_core::{Event, Notice, Rejection, Timestamp, Value, is_unprintable};

/// Where decoded events, notices and rejections go.
pub trait Sink {
    fn event(&mut self, event: &Event<'_>);
    /// An event whose account and type were read from `spelling` (a StatsD bucket as sent),
    /// which always reads as the same account and type: a recorder caches the pair under it.
    fn spelled_event(&mut self, event: &Event<'_>, spelling: &str) {
        let _ = spelling;
        self.event(event);
    }
    /// An event of the pair a [`Sink::spelled_event`] came with `spelling` before, recorded
    /// without its names being read, if the sink knows it: `false`, with nothing recorded,
    /// when it must be spelled out.
    fn known_event(&mut self, spelling: &str, value: &Value<'_>, time: Timestamp) -> bool {
        let _ = (spelling, value, time);
        false
    }
    /// A DogStatsD event or service check: not counted, kept to be shown.
    fn notice(&mut self, notice: Notice);
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

/// Auth tokens, statsgod style: when set, every StatsD line must start with `<token>.` and
/// every hub event must carry `"token": "<token>"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens(HashSet<Box<str>>);

impl Tokens {
    /// One token per line; blank lines and `#` comments are ignored.
    pub fn load(path: &Path) -> std::io::Result<Tokens> {
        Ok(Tokens::parse(&std::fs::read_to_string(path)?))
    }

    pub fn parse(text: &str) -> Tokens {
        let tokens = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(Box::from)
            .collect();
        Tokens(tokens)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `bytes` with every known token masked, so that kept evidence never holds a secret.
    fn redact<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for token in self.0.iter().filter(|t| !t.is_empty()) {
            let needle = token.as_bytes();
            let mut at = 0;
            while let Some(found) = out[at..].windows(needle.len()).position(|w| w == needle) {
                let start = at + found;
                out.to_mut()[start..start + needle.len()].fill(b'*');
                at = start + needle.len();
            }
        }
        out
    }
}

/// Limits and choices that apply to every payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    pub accounts: AccountFrom,
    /// The most a compressed payload may inflate to.
    pub max_inflated: usize,
    /// Required auth tokens, if any.
    pub tokens: Option<Arc<Tokens>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            accounts: AccountFrom::default(),
            max_inflated: 1 << 20,
            tokens: None,
        }
    }
}

/// Passes events on, and rejections with every known token masked.
struct Redacting<'s, S> {
    inner: &'s mut S,
    tokens: &'s Tokens,
}

impl<S: Sink> Sink for Redacting<'_, S> {
    fn event(&mut self, event: &Event<'_>) {
        self.inner.event(event);
    }

    fn spelled_event(&mut self, event: &Event<'_>, spelling: &str) {
        self.inner.spelled_event(event, spelling);
    }

    fn known_event(&mut self, spelling: &str, value: &Value<'_>, time: Timestamp) -> bool {
        self.inner.known_event(spelling, value, time)
    }

    fn notice(&mut self, notice: Notice) {
        self.inner.notice(notice);
    }

    fn reject(&mut self, reason: Rejection, detail: &str, payload: &[u8]) {
        let detail = self.tokens.redact(detail.as_bytes());
        let detail = String::from_utf8_lossy(&detail);
        // A JSON string may spell a token with escapes (`s3cr3t\u002dTOKEN`): masked once
        // they are undone, or it would show in the evidence for anyone to decode.
        let payload = match detect(payload) {
            Format::Json => unescape_json(payload),
            _ => Cow::Borrowed(payload),
        };
        self.inner.reject(reason, &detail, &self.tokens.redact(&payload));
    }
}

/// Why one event of a payload was not counted.
type Refusal = (Rejection, &'static str);

/// Counts one rejection for `refused` of `items` items, under the first item's reason.
fn refuse((reason, detail): Refusal, refused: usize, items: usize, payload: &[u8], sink: &mut impl Sink) {
    if items == 1 {
        sink.reject(reason, detail, payload);
    } else {
        sink.reject(
            reason,
            &format!("{refused} of {items} items refused, first: {detail}"),
            payload,
        );
    }
}

/// `bytes` with JSON's `\uXXXX` escapes (surrogate pairs too) and `\/` undone; everything
/// else, broken escapes included, kept as it is.
fn unescape_json(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.windows(2).any(|w| w == b"\\u" || w == b"\\/") {
        return Cow::Borrowed(bytes);
    }
    let hex = |at: usize| {
        let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'\\').then(|| bytes.get(at + 1)).flatten();
        let decoded = match escaped {
            Some(b'/') => Some(('/', 2)),
            Some(b'u') => hex(at + 2).and_then(|high| match high {
                0xd800..=0xdbff => {
                    let low = (bytes.get(at + 6..at + 8) == Some(b"\\u"))
                        .then(|| hex(at + 8))
                        .flatten()?;
                    let c = 0x10000 + ((high - 0xd800) << 10) + low.checked_sub(0xdc00)?;
                    Some((char::from_u32(c)?, 12))
                }
                _ => Some((char::from_u32(high)?, 6)),
            }),
            _ => None,
        };
        match decoded {
            Some((c, len)) => {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                at += len;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    Cow::Owned(out)
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

/// The bucket of a StatsD payload's first line (`acme.pageview` of `acme.pageview:1|c`), the
/// spelling its pair is recorded under if the line is common; `None` for other formats. Only
/// finds the `:`, so that a batch can load its pairs before decoding its datagrams.
pub fn first_bucket(payload: &[u8]) -> Option<&[u8]> {
    match detect(payload) {
        Format::Statsd => statsd::first_bucket(payload),
        _ => None,
    }
}

/// Decodes one payload, whatever its format.
pub fn decode(payload: &[u8], time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    match options.tokens.as_deref() {
        Some(tokens) => decode_any(payload, time, options, &mut Redacting { inner: sink, tokens }),
        None => decode_any(payload, time, options, sink),
    }
}

fn decode_any(payload: &[u8], time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    let tokens = options.tokens.as_deref();
    match detect(payload) {
        Format::Json => json::decode_json(payload, time, tokens, sink),
        Format::Msgpack => json::decode_msgpack(payload, time, tokens, sink),
        Format::Zlib if tokens.is_some() => {
            sink.reject(Rejection::Auth, "compressed metric lists carry no token", payload);
        }
        Format::Zlib => {
            if let Err(error) = zlib::decode(payload, time, options, sink) {
                // `x^...` is also a possible StatsD line; binary that does not inflate is not.
                match std::str::from_utf8(payload) {
                    Ok(text) => statsd::decode(text, time, options, sink),
                    Err(_) => {
                        let detail = format!("a zlib header, but the stream does not inflate: {error}");
                        sink.reject(Rejection::Compression, &detail, payload);
                    }
                }
            }
        }
        Format::Statsd => decode_text(payload, time, options, sink),
    }
}

fn decode_text(payload: &[u8], time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    match std::str::from_utf8(payload) {
        Ok(text) => statsd::decode(text, time, options, sink),
        Err(error) => sink.reject(Rejection::Utf8, &error.to_string(), payload),
    }
}

/// What a name from JSON or msgpack may hold: anything printable. Each
/// [`tally_core::is_unprintable`] character (controls, bidirectional overrides) becomes
/// U+FFFD. StatsD keys are stricter still ([`clean_key`]). Borrows when nothing changes.
pub fn clean_name(name: &str) -> Cow<'_, str> {
    if !name.bytes().any(may_start_unprintable) || !name.chars().any(is_unprintable) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|c| if is_unprintable(c) { '\u{fffd}' } else { c })
            .collect(),
    )
}

/// Every unprintable character ([`tally_core::is_unprintable`]) starts with one of these
/// bytes in UTF-8.
const fn may_start_unprintable(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f || byte == 0xc2 || byte == 0xe2
}

/// A StatsD key as etsy statsd keeps it: whitespace becomes `_`, `/` becomes `-`, and
/// characters outside `[A-Za-z0-9_.;=-]` are dropped. Borrows when nothing changes.
pub fn clean_key(key: &str) -> Cow<'_, str> {
    // The same set as the StatsD fast path's.
    let keep = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ';' | '=' | '-');
    // Every character kept is ASCII, so the common, clean case is a byte scan.
    if key.bytes().all(|b| keep(b as char)) {
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
        pub notices: Vec<Notice>,
        /// Each spelling an event came with, and the (account, type) it spelled.
        pub spellings: std::collections::BTreeMap<String, (String, String)>,
        /// Events recorded by a spelling given before.
        pub known: usize,
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

        /// Holds every decoder to the promise a recorder caches on: one spelling, one pair.
        fn spelled_event(&mut self, e: &Event<'_>, spelling: &str) {
            let pair = (e.account.to_owned(), e.event_type.to_owned());
            let first = self
                .spellings
                .entry(spelling.to_owned())
                .or_insert_with(|| pair.clone());
            assert_eq!(*first, pair, "{spelling:?} spells one pair");
            self.event(e);
        }

        /// Knows every spelling it was given, as a recorder does.
        fn known_event(&mut self, spelling: &str, value: &Value<'_>, time: Timestamp) -> bool {
            let Some((account, event_type)) = self.spellings.get(spelling).cloned() else {
                return false;
            };
            self.known += 1;
            self.event(&Event {
                account: &account,
                event_type: &event_type,
                app: None,
                value: *value,
                time,
            });
            true
        }

        fn notice(&mut self, notice: Notice) {
            self.notices.push(notice);
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
    fn the_first_bucket_is_the_name_of_a_statsd_payloads_first_line() {
        assert_eq!(
            first_bucket(b"acme.pageview:1|c\nacme.x:2|c"),
            Some(&b"acme.pageview"[..])
        );
        assert_eq!(first_bucket(b"acme.tagged:1|c|#a:b"), Some(&b"acme.tagged"[..]));
        assert_eq!(
            first_bucket(b"no value\nacme.x:1|c"),
            None,
            "the first line's only"
        );
        assert_eq!(first_bucket(br#"{"type":"x:y"}"#), None);
        assert_eq!(first_bucket(&[0x82, 0xa4, b':']), None);
    }

    /// Issue 11, item 10: what a JSON or msgpack name may hold is decided here, once.
    #[test]
    fn names_lose_control_characters() {
        assert!(matches!(clean_name("acme café"), Cow::Borrowed("acme café")));
        assert!(matches!(clean_name("€uro"), Cow::Borrowed("€uro")));
        assert_eq!(
            clean_name("\u{1b}]0;PWNED\u{7}\u{1b}[2Jx"),
            "\u{fffd}]0;PWNED\u{fffd}\u{fffd}[2Jx"
        );
        assert_eq!(clean_name("a\u{9b}b\u{202e}c\n"), "a\u{fffd}b\u{fffd}c\u{fffd}");
        let got = testing::run(
            br#"{"type":"x\u001b[2J","data":{"account":"\u001b]0;PWNED\u0007","app":"a\u0007"}}"#,
        );
        assert_eq!(
            got.events,
            [(
                "\u{fffd}]0;PWNED\u{fffd}".into(),
                "x\u{fffd}[2J".into(),
                Some("a\u{fffd}".into()),
                "Count(1)".into()
            )]
        );
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
mod auth {
    use super::testing::Collected;
    use super::*;

    fn run_with_tokens(payload: &[u8]) -> Collected {
        let options = DecodeOptions {
            tokens: Some(Arc::new(Tokens::parse("# ops team\n32a3c4970093\n\nsecret-2\n"))),
            ..DecodeOptions::default()
        };
        let mut collected = Collected::default();
        decode(payload, Timestamp::from_secs(1), &options, &mut collected);
        collected
    }

    #[test]
    fn statsd_lines_need_a_known_token_prefix() {
        let got =
            run_with_tokens(b"32a3c4970093.acme.x:1|c\nsecret-2.globex.y:2|c\nacme.z:1|c\nwrong.acme.x:1|c");
        let kept: Vec<(&str, &str)> = got.events.iter().map(|e| (e.0.as_str(), e.1.as_str())).collect();
        assert_eq!(kept, [("acme", "x"), ("globex", "y")]);
        assert_eq!(got.rejects.iter().filter(|r| r.0 == Rejection::Auth).count(), 2);
    }

    #[test]
    fn hub_events_need_a_token_field() {
        let good = br#"{"type":"pageview","token":"secret-2","data":{"account":"acme"}}"#;
        assert_eq!(run_with_tokens(good).events.len(), 1);
        for bad in [
            &br#"{"type":"pageview","data":{"account":"acme"}}"#[..],
            br#"{"token":"nope","account":"acme"}"#,
        ] {
            let got = run_with_tokens(bad);
            assert!(got.events.is_empty());
            assert_eq!(got.rejects[0].0, Rejection::Auth);
        }
        let msgpack =
            rmp_serde::to_vec_named(&serde_json::json!({"token": "32a3c4970093", "account": "acme"}))
                .expect("encodes");
        assert_eq!(run_with_tokens(&msgpack).events.len(), 1);
        assert_eq!(
            run_with_tokens(&[0x78, 0x9c, 3, 0]).rejects[0].0,
            Rejection::Auth,
            "zlib lists have no token"
        );
    }

    #[test]
    fn json_escapes_are_undone_for_masking() {
        assert_eq!(
            &*unescape_json(br#"a\u002db\/c\ud83d\ude00"#),
            "a-b/c😀".as_bytes()
        );
        assert_eq!(
            &*unescape_json(br#"bad \u12 \ud83d \x"#),
            br#"bad \u12 \ud83d \x"#
        );
        assert!(matches!(unescape_json(b"plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn kept_evidence_never_holds_a_token() {
        // Authenticated, but bad for other reasons: the payloads are kept, masked.
        let got = run_with_tokens(b"32a3c4970093.acme.x:1|c|@9");
        assert_eq!(got.rejects[0].0, Rejection::Statsd);
        let got = run_with_tokens(br#"{"token":"secret-2","data":{}}"#);
        assert_eq!(got.rejects[0].0, Rejection::NoAccount);
        struct Evidence(Vec<Vec<u8>>);
        impl Sink for Evidence {
            fn event(&mut self, _: &Event<'_>) {}
            fn notice(&mut self, _: Notice) {}
            fn reject(&mut self, _: Rejection, detail: &str, payload: &[u8]) {
                self.0.push([detail.as_bytes(), payload].concat());
            }
        }
        let options = DecodeOptions {
            tokens: Some(Arc::new(Tokens::parse("32a3c4970093\nsecret-2"))),
            ..DecodeOptions::default()
        };
        let mut evidence = Evidence(vec![]);
        for payload in [
            &br#"{"token":"secret-2","data":{}}"#[..],
            br#"{"token":"secret-2","data":{"account":"acme"}"#,
            b"32a3c4970093.acme.x:1|c|@9",
            b"32a3c4970093x.acme.x:1|c",
            // Issue 11, item 11: a token spelled with JSON escapes is masked too.
            br#"{"token":"secret\u002d2","data":{}}"#,
            br#"{"token":"\u0073ecret-2\/","data":{}}"#,
        ] {
            decode(payload, Timestamp::from_secs(1), &options, &mut evidence);
        }
        assert_eq!(evidence.0.len(), 6);
        for kept in &evidence.0 {
            // Read as a person would: escapes undone.
            let text = String::from_utf8_lossy(&unescape_json(kept)).into_owned();
            assert!(
                !text.contains("secret-2") && !text.contains("32a3c4970093"),
                "{text}"
            );
        }
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
