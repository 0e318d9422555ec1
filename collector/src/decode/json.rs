//! Events in the classic events hub's shape, as JSON or msgpack:
//! `{"type":"pageview","time":"...","data":{"account":"acme","app":"shop",...}}`.
//!
//! `account` and `app` are read from `data`, or from the top level (the flat form some
//! producers use). `type` is used when it is a string, else the type is `""` (as the hub
//! routed it). `time` is ignored: events are stamped on arrival. Other fields are ignored.
//!
//! tally's own hub (`tally hub`) adds optional top-level fields so that StatsD metrics survive
//! the trip: `count` (events this one stands for), `ms` (a timing), `gauge`, `delta` (a gauge
//! change) and `member` (a set member). Classic consumers ignore them.

use super::words::{HIGH, equal, run_until, within};
use super::{Refusal, Sink, Tokens, clean_name, may_start_unprintable, refuse};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use tally_core::{Event, MAX_COUNT, Rejection, Timestamp, Value};

/// A string field that tolerates other types (read as absent), borrowing when it can.
#[derive(Debug, Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or any other value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Text(std::str::from_utf8(v).ok().map(Cow::Borrowed)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Text::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        deserializer.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

/// A numeric field that tolerates other types (read as absent).
#[derive(Debug, Default)]
struct Number(Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or any other value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Number(Some(v)))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Number::deserialize(d)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
struct Data<'a> {
    #[serde(default, borrow)]
    account: Text<'a>,
    #[serde(default, borrow)]
    app: Text<'a>,
}

#[derive(Debug, Deserialize)]
struct HubEvent<'a> {
    #[serde(default, borrow, rename = "type")]
    event_type: Text<'a>,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
    #[serde(default, borrow)]
    account: Text<'a>,
    #[serde(default, borrow)]
    app: Text<'a>,
    #[serde(default, borrow)]
    token: Text<'a>,
    #[serde(default)]
    count: Number,
    #[serde(default)]
    ms: Number,
    #[serde(default)]
    gauge: Number,
    #[serde(default)]
    delta: Number,
    #[serde(default, borrow)]
    member: Text<'a>,
}

impl<'a> HubEvent<'a> {
    /// The value the tally extension fields describe; a plain hub event is one count.
    fn value(&self) -> Result<Value<'_>, Refusal> {
        let count = match self.count.0 {
            None => 1,
            Some(n) if n > MAX_COUNT as f64 => {
                return Err((Rejection::CountTooLarge, "count is above 2^53"));
            }
            Some(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
            Some(_) => return Err((Rejection::Json, "count must be a whole number >= 0")),
        };
        let finite = |n: f64| {
            n.is_finite()
                .then_some(n)
                .ok_or((Rejection::Json, "metric values must be finite numbers"))
        };
        Ok(match (&self.member.0, self.ms.0, self.gauge.0, self.delta.0) {
            (Some(member), ..) => Value::SetMember(member),
            (_, Some(ms), ..) if ms >= 0.0 => Value::Timing {
                ms: finite(ms)?,
                count,
            },
            (_, Some(_), ..) => return Err((Rejection::Json, "ms must be >= 0")),
            (_, _, Some(gauge), _) => Value::Gauge(finite(gauge)?),
            (_, _, _, Some(delta)) => Value::GaugeDelta(finite(delta)?),
            _ => Value::Count(count),
        })
    }
}

/// Passes one decoded event to the sink, or says why it cannot be counted.
fn emit(
    event: &HubEvent<'_>,
    time: Timestamp,
    tokens: Option<&Tokens>,
    sink: &mut impl Sink,
) -> Result<(), Refusal> {
    if let Some(tokens) = tokens
        && !event.token.0.as_deref().is_some_and(|t| tokens.contains(t))
    {
        return Err((Rejection::Auth, "missing or unknown token"));
    }
    let data = event.data.as_ref();
    let account = data
        .and_then(|d| d.account.0.as_deref())
        .or(event.account.0.as_deref());
    let Some(account) = account.filter(|a| !a.is_empty()) else {
        return Err((Rejection::NoAccount, "no account in data.account or account"));
    };
    let app = data.and_then(|d| d.app.0.as_deref()).or(event.app.0.as_deref());
    let value = event.value()?;
    let event_type = clean_name(event.event_type.0.as_deref().unwrap_or(""));
    let app = app.map(clean_name);
    sink.event(&Event {
        account: &clean_name(account),
        event_type: &event_type,
        app: app.as_deref(),
        value,
        time,
    });
    Ok(())
}

/// Emits every event of a payload. An array's refused items make one rejection, not one each,
/// so that a single packet cannot flood the kept evidence.
fn emit_all(
    events: &[HubEvent<'_>],
    time: Timestamp,
    tokens: Option<&Tokens>,
    payload: &[u8],
    sink: &mut impl Sink,
) {
    let mut refused = 0;
    let mut first = None;
    for event in events {
        if let Err(refusal) = emit(event, time, tokens, sink) {
            refused += 1;
            first.get_or_insert(refusal);
        }
    }
    if let Some(refusal) = first {
        refuse(refusal, refused, events.len(), payload, sink);
    }
}

/// Whether a document is an array (of events) rather than one event. Decided up front: serde
/// would otherwise read an array as an event's fields in order.
fn is_array(payload: &[u8], markers: std::ops::RangeInclusive<u8>, alt: &[u8]) -> bool {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    first.is_some_and(|b| markers.contains(b) || alt.contains(b))
}

pub(super) fn decode_json(payload: &[u8], time: Timestamp, tokens: Option<&Tokens>, sink: &mut impl Sink) {
    // With tokens, every event must carry one: serde reads `token`.
    match tokens.is_none().then(|| common_event(payload)).flatten() {
        Some(common) => {
            let name = |text| {
                if common.clean {
                    Cow::Borrowed(text)
                } else {
                    clean_name(text)
                }
            };
            sink.event(&Event {
                account: &name(common.account),
                event_type: &name(common.kind),
                app: common.app.map(name).as_deref(),
                value: Value::Count(1),
                time,
            });
        }
        None => decode_any_json(payload, time, tokens, sink),
    }
}

/// A classic event in its common form (see [`common_event`]).
#[derive(Debug, PartialEq, Eq)]
struct Common<'a> {
    kind: &'a str,
    account: &'a str,
    app: Option<&'a str>,
    /// No string of the document holds a byte that starts an unprintable character, so
    /// [`clean_name`] would leave every name as it is.
    clean: bool,
}

/// The classic event in its common form, read in one pass: an object of `type` (a string),
/// `time` (a string) and `data` (an object of strings, a non-empty `account` among them), each
/// key once, every string free of escapes. Anything else is `None`, for serde, which gives the
/// same event for everything this reads.
fn common_event(payload: &[u8]) -> Option<Common<'_>> {
    // Validated once, whole (serde would refuse a document that is not UTF-8 anywhere).
    let text = std::str::from_utf8(payload).ok()?;
    let mut scan = Scan {
        text,
        at: 0,
        suspect: false,
    };
    scan.eat(b'{')?;
    let (mut kind, mut time, mut data) = (None, None, None);
    loop {
        let key = scan.string()?;
        scan.eat(b':')?;
        let field = match key {
            "type" => &mut kind,
            "time" => &mut time,
            "data" => {
                if data.replace(scan.data()?).is_some() {
                    return None;
                }
                if scan.eat(b',').is_none() {
                    break;
                }
                continue;
            }
            _ => return None,
        };
        if field.replace(scan.string()?).is_some() {
            return None;
        }
        if scan.eat(b',').is_none() {
            break;
        }
    }
    scan.eat(b'}')?;
    scan.skip_space();
    let (account, app) = data?;
    (scan.at == payload.len()).then_some(Common {
        kind: kind?,
        account: account.filter(|a: &&str| !a.is_empty())?,
        app,
        clean: !scan.suspect,
    })
}

/// What each byte is to [`Scan::string`]: `PLAIN`, the string's end (`QUOTE`), a byte that
/// may start an unprintable character (`SUSPECT`, see [`clean_name`]), or an escape or a
/// control character, which the common form does not take (`REFUSED`). Looked up, because
/// compared four ways a byte it was the scan's main cost.
static STRING_BYTES: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            b'"' => QUOTE,
            b'\\' | 0x00..=0x1f => REFUSED,
            b if may_start_unprintable(b) => SUSPECT,
            _ => PLAIN,
        };
        byte += 1;
    }
    table
};
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const SUSPECT: u8 = 2;
const REFUSED: u8 = 3;

/// How many bytes of `bytes` from `at` are printable ASCII other than `"` and `\`, eight at a
/// time: what [`Scan::string`] passes over without a look at [`STRING_BYTES`]. Stops short of
/// the last few bytes, which the table reads.
#[inline(always)]
fn printable_run(bytes: &[u8], at: usize) -> usize {
    run_until(bytes, at, |word| {
        (!within(word, b' ', b'~') & HIGH) | equal(word, b'"') | equal(word, b'\\')
    })
}

/// A cursor over a JSON document, for [`common_event`].
struct Scan<'a> {
    text: &'a str,
    at: usize,
    /// A string so far held a byte that may start an unprintable character (see
    /// [`clean_name`]): noted while each is scanned for its end, not in a second pass.
    suspect: bool,
}

impl<'a> Scan<'a> {
    fn skip_space(&mut self) {
        while matches!(
            self.text.as_bytes().get(self.at),
            Some(b' ' | b'\t' | b'\n' | b'\r')
        ) {
            self.at += 1;
        }
    }

    /// Skips space, then `byte`.
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.text.as_bytes().get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// A string without escapes (or control characters, which JSON does not allow in one);
    /// notes whether it may hold an unprintable character.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = &self.text.as_bytes()[start..];
        let mut end = 0;
        loop {
            end += printable_run(rest, end);
            let class = STRING_BYTES[usize::from(*rest.get(end)?)];
            if class == PLAIN {
                end += 1;
            } else if class == SUSPECT {
                self.suspect = true;
                end += 1;
            } else if class == QUOTE {
                break;
            } else {
                return None;
            }
        }
        self.at += end + 1;
        // Cut at ASCII quotes: on character boundaries.
        self.text.get(start..start + end)
    }

    /// `data`: an object of strings; its `account` and `app` (each at most once).
    fn data(&mut self) -> Option<(Option<&'a str>, Option<&'a str>)> {
        self.eat(b'{')?;
        let (mut account, mut app) = (None, None);
        if self.eat(b'}').is_some() {
            return Some((None, None));
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let value = self.string()?;
            let field = match key {
                "account" => &mut account,
                "app" => &mut app,
                _ => &mut None,
            };
            if field.replace(value).is_some() {
                return None;
            }
            if self.eat(b',').is_none() {
                break;
            }
        }
        self.eat(b'}')?;
        Some((account, app))
    }
}

/// Any JSON document: one event or an array of them, in every shape the decoder takes.
fn decode_any_json(payload: &[u8], time: Timestamp, tokens: Option<&Tokens>, sink: &mut impl Sink) {
    let parsed = if is_array(payload, b'['..=b'[', &[]) {
        serde_json::from_slice::<Vec<HubEvent<'_>>>(payload)
            .map(|events| emit_all(&events, time, tokens, payload, sink))
    } else {
        serde_json::from_slice::<HubEvent<'_>>(payload)
            .map(|event| emit_all(std::slice::from_ref(&event), time, tokens, payload, sink))
    };
    if let Err(error) = parsed {
        let reason = if std::str::from_utf8(payload).is_err() {
            Rejection::Utf8
        } else {
            Rejection::Json
        };
        sink.reject(reason, &error.to_string(), payload);
    }
}

/// The length of the msgpack value at the start of `bytes`, or `None` if it is cut short,
/// uses the reserved marker, or nests deeper than `depth`. Needed because rmp-serde ignores
/// whatever follows a value: garbage that happens to start with a map marker would otherwise
/// pass for an (empty) event.
fn msgpack_len(bytes: &[u8], depth: u32) -> Option<usize> {
    let marker = *bytes.first()?;
    let be = |at: usize, n: usize| -> Option<usize> {
        let field = bytes.get(at..at + n)?;
        Some(field.iter().fold(0usize, |acc, &b| acc << 8 | b as usize))
    };
    // (header bytes, payload bytes) or (header bytes, items to skip).
    enum Then {
        Bytes(usize),
        Items(usize),
    }
    let (header, then) = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, Then::Bytes(0)),
        0x80..=0x8f => (1, Then::Items(2 * (marker & 0x0f) as usize)),
        0x90..=0x9f => (1, Then::Items((marker & 0x0f) as usize)),
        0xa0..=0xbf => (1, Then::Bytes((marker & 0x1f) as usize)),
        0xc4 | 0xd9 => (2, Then::Bytes(be(1, 1)?)),
        0xc5 | 0xda => (3, Then::Bytes(be(1, 2)?)),
        0xc6 | 0xdb => (5, Then::Bytes(be(1, 4)?)),
        0xc7 => (3, Then::Bytes(be(1, 1)?)),
        0xc8 => (4, Then::Bytes(be(1, 2)?)),
        0xc9 => (6, Then::Bytes(be(1, 4)?)),
        0xca | 0xce | 0xd2 => (1, Then::Bytes(4)),
        0xcb | 0xcf | 0xd3 => (1, Then::Bytes(8)),
        0xcc | 0xd0 => (1, Then::Bytes(1)),
        0xcd | 0xd1 => (1, Then::Bytes(2)),
        0xd4..=0xd8 => (2, Then::Bytes(1 << (marker - 0xd4))),
        0xdc => (3, Then::Items(be(1, 2)?)),
        0xdd => (5, Then::Items(be(1, 4)?)),
        0xde => (3, Then::Items(2 * be(1, 2)?)),
        0xdf => (5, Then::Items(2 * be(1, 4)?)),
        0xc1 => return None,
    };
    match then {
        Then::Bytes(n) => (header + n <= bytes.len()).then_some(header + n),
        Then::Items(n) => {
            let depth = depth.checked_sub(1)?;
            let mut at = header;
            for _ in 0..n {
                at += msgpack_len(bytes.get(at..)?, depth)?;
            }
            Some(at)
        }
    }
}

pub(super) fn decode_msgpack(payload: &[u8], time: Timestamp, tokens: Option<&Tokens>, sink: &mut impl Sink) {
    match msgpack_len(payload, 32) {
        Some(len) if len == payload.len() => {}
        Some(len) => {
            let detail = format!("{} bytes after the end of the document", payload.len() - len);
            return sink.reject(Rejection::Msgpack, &detail, payload);
        }
        None => return sink.reject(Rejection::Msgpack, "not a complete msgpack document", payload),
    }
    // fixarray, array16, array32.
    let parsed = if is_array(payload, 0x90..=0x9f, &[0xdc, 0xdd]) {
        rmp_serde::from_slice::<Vec<HubEvent<'_>>>(payload)
            .map(|events| emit_all(&events, time, tokens, payload, sink))
    } else {
        rmp_serde::from_slice::<HubEvent<'_>>(payload)
            .map(|event| emit_all(std::slice::from_ref(&event), time, tokens, payload, sink))
    };
    if let Err(error) = parsed {
        sink.reject(Rejection::Msgpack, &error.to_string(), payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::testing::{Collected, run};
    use proptest::prelude::*;
    use serde::Serialize;

    /// Pieces of JSON documents near the common form: keys, strings with and without escapes,
    /// other values, space.
    fn document() -> impl Strategy<Value = String> {
        // Long ones too: the scan reads eight bytes at a time.
        let string = prop_oneof![
            "[a-z]{0,6}",
            "[a-z0-9 .:-]{7,20}",
            Just(String::new()),
            Just("a\\\"b".to_owned()),
            Just("abcdefghij\\\"k".to_owned()),
            Just("abcdefghijk\tl".to_owned()),
            Just("abcdefghi\u{7f}jé\u{9b}€".to_owned()),
            Just("\\u00e9t\\u00e9".to_owned()),
            Just("é\u{202e}x".to_owned()),
            Just("a\u{7f}\u{9b}€".to_owned()),
        ]
        .prop_map(|s| format!("\"{s}\""));
        let value = prop_oneof![
            string.clone(),
            Just("1".to_owned()),
            Just("null".to_owned()),
            Just("{}".to_owned())
        ];
        let key = prop::sample::select(vec!["account", "app", "type", "time", "data", "count", "x"]);
        let space = prop::sample::select(vec!["", " ", "\n\t"]);
        let data = prop::collection::vec((key.clone(), value.clone()), 0..4).prop_map(|fields| {
            let fields: Vec<String> = fields.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        });
        let top_value = prop_oneof![value, data];
        (
            prop::collection::vec((key, top_value, space), 0..5),
            prop::sample::select(vec!["", " ", "x", "}"]),
        )
            .prop_map(|(fields, tail)| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v, s)| format!("{s}\"{k}\"{s}:{s}{v}{s}"))
                    .collect();
                format!("{{{}}}{tail}", fields.join(","))
            })
    }

    /// What `document` decodes to (the fast path taken where it can be), and what serde alone
    /// makes of it.
    fn fast_and_full(document: &str) -> (Collected, Collected) {
        let mut full = Collected::default();
        decode_any_json(document.as_bytes(), Timestamp::from_secs(1), None, &mut full);
        (run(document.as_bytes()), full)
    }

    proptest! {
        /// The one-pass reader of the common event gives what serde gives, and takes it.
        #[test]
        fn the_fast_path_agrees_with_serde(document in document()) {
            let (fast, full) = fast_and_full(&document);
            prop_assert_eq!(&fast.events, &full.events, "{}", document);
            prop_assert_eq!(fast.rejects.len(), full.rejects.len(), "{}", document);
        }
    }

    /// Names of every length the word-at-a-time scan meets, with each kind of character it
    /// must stop at (a quote, an escape, a control character, one that may be unprintable) in
    /// every position: the fast path still gives what serde gives.
    #[test]
    fn the_fast_path_agrees_with_serde_at_every_position() {
        for len in 1..24 {
            for at in 0..len {
                for odd in ["\t", "\\\"", "\\n", "\u{7f}", "é", "\u{9b}", "\u{202e}"] {
                    let mut name: String = (0..len).map(|i| char::from(b'a' + i as u8)).collect();
                    name.replace_range(at..at + 1, odd);
                    let document = format!(r#"{{"type":"{name}","data":{{"account":"{name}"}}}}"#);
                    let (fast, full) = fast_and_full(&document);
                    assert_eq!(fast.events, full.events, "{document}");
                    assert_eq!(fast.rejects.len(), full.rejects.len(), "{document}");
                }
            }
        }
    }

    #[test]
    fn the_common_event_takes_the_fast_path() {
        let common = br#"{"type":"pageview","time":"2014-03-09T19:17:27.5Z","data":{"account":"acme","app":"shop","tz":"-3"}}"#;
        assert_eq!(
            common_event(common),
            Some(Common {
                kind: "pageview",
                account: "acme",
                app: Some("shop"),
                clean: true,
            })
        );
        assert_eq!(
            common_event(br#" { "data" : { "account" : "acme" } , "type" : "" } "#).map(|c| c.account),
            Some("acme")
        );
        for other in [
            &br#"{"type":"pageview","data":{"account":"acme","browser":{"name":"Chrome"}}}"#[..],
            br#"{"type":"pageview","data":{"account":"a\u00e9"}}"#,
            br#"{"type":"pageview","account":"acme"}"#,
            br#"{"type":"pageview","type":"x","data":{"account":"acme"}}"#,
            br#"{"type":"pageview","data":{"account":""}}"#,
        ] {
            assert_eq!(common_event(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    /// The common event's names are cleaned as any other's, and only when they need it.
    #[test]
    fn the_common_event_s_names_are_cleaned() {
        let document = "{\"type\":\"a\u{7f}\",\"data\":{\"account\":\"b\u{9b}c\",\"app\":\"€\"}}";
        assert!(common_event(document.as_bytes()).is_some_and(|c| !c.clean));
        let cleaned = (
            "b\u{fffd}c".into(),
            "a\u{fffd}".into(),
            Some("€".into()),
            "Count(1)".into(),
        );
        assert_eq!(run(document.as_bytes()).events, [cleaned]);
        assert!(common_event(br#"{"type":"x","data":{"account":"caf\u00e9"}}"#).is_none());
        let printable = "{\"type\":\"€\",\"data\":{\"account\":\"café\"}}";
        assert!(common_event(printable.as_bytes()).is_some_and(|c| !c.clean));
        assert_eq!(run(printable.as_bytes()).events[0].0, "café");
    }

    /// The classic example: acme's pageview, from its app "shop".
    fn acme_shop_pageview() -> (String, String, Option<String>, String) {
        (
            "acme".into(),
            "pageview".into(),
            Some("shop".into()),
            "Count(1)".into(),
        )
    }

    fn event(account: &str, event_type: &str) -> (String, String, Option<String>, String) {
        (account.into(), event_type.into(), None, "Count(1)".into())
    }

    #[test]
    fn classic_hub_events() {
        let got = run(br#"{"type":"pageview","time":"2014-03-09T19:17:27.5Z","data":{"account":"acme","app":"shop","tz":"-3","unq":"1","browser":{"name":"Chrome"}}}"#);
        assert_eq!(got.events, [acme_shop_pageview()]);
        // The flat form, a non-string type, an escaped name, an array.
        let got = run(
            br#"{"type":"order.create","account":"acme","app":"shop","time":"2014-12-11 12:45:21 +0000"}"#,
        );
        assert_eq!(got.events[0].2.as_deref(), Some("shop"));
        assert_eq!(
            run(br#"{"type":7,"data":{"account":"acme"}}"#).events,
            [event("acme", "")]
        );
        assert_eq!(
            run(br#"{"data":{"account":"ac\u006de"}}"#).events,
            [event("acme", "")]
        );
        let many = run(br#"[{"type":"a","data":{"account":"x"}},{"type":"b","account":"y"}]"#);
        assert_eq!(many.events, [event("x", "a"), event("y", "b")]);
    }

    #[test]
    fn bad_json_is_rejected_with_a_reason() {
        let cases: [(&[u8], Rejection); 6] = [
            (br#"{"type":"pagev"#, Rejection::Json),
            (br#"{"type":"pageview"}"#, Rejection::NoAccount),
            (br#"{"data":{"account":""}}"#, Rejection::NoAccount),
            (br#"[1, 2]"#, Rejection::Json),
            (br#"{"data":"acme"}"#, Rejection::Json),
            (b"{\"data\":{\"account\":\"a\xffb\"}}", Rejection::Utf8),
        ];
        for (payload, reason) in cases {
            let got = run(payload);
            assert!(got.events.is_empty(), "{:?}", String::from_utf8_lossy(payload));
            assert_eq!(got.rejects.len(), 1);
            assert_eq!(
                got.rejects[0].0,
                reason,
                "{:?}: {:?}",
                String::from_utf8_lossy(payload),
                got.rejects
            );
        }
    }

    #[derive(Serialize)]
    struct Data<'a> {
        account: &'a str,
        app: &'a str,
    }

    #[derive(Serialize)]
    struct Hub<'a> {
        #[serde(rename = "type")]
        event_type: &'a str,
        data: Data<'a>,
    }

    #[test]
    fn msgpack_events_of_the_same_shape() {
        let one = Hub {
            event_type: "pageview",
            data: Data {
                account: "acme",
                app: "shop",
            },
        };
        let bytes = rmp_serde::to_vec_named(&one).expect("encodes");
        let got = run(&bytes);
        assert_eq!(got.events, [acme_shop_pageview()]);
        let bytes = rmp_serde::to_vec_named(&[&one, &one]).expect("encodes");
        assert_eq!(run(&bytes).events.len(), 2);
        let encoded = rmp_serde::to_vec_named(&one).expect("encodes");
        for cut in 1..encoded.len() {
            let got = run(&encoded[..cut]);
            assert!(got.events.is_empty(), "cut at {cut}");
            assert_eq!(got.rejects[0].0, Rejection::Msgpack, "cut at {cut}");
        }
        // A valid map followed by anything is not an event either.
        for tail in [&[0x00][..], b"garbage", &[0x80]] {
            let got = run(&[&encoded[..], tail].concat());
            assert_eq!(got.rejects[0].0, Rejection::Msgpack);
        }
        let got = run(&[0x80, 0xff, 0xfe, 0x41]);
        assert_eq!(got.rejects[0].0, Rejection::Msgpack, "empty map, then garbage");
        // Deep nesting is refused, not recursed into.
        let deep = [vec![0x91; 10_000], vec![0xc0]].concat();
        assert_eq!(run(&deep).rejects[0].0, Rejection::Msgpack);
        // Wrong types: an account that is a number.
        let bytes = rmp_serde::to_vec_named(&serde_json::json!({"type": "x", "data": {"account": 5}}))
            .expect("encodes");
        assert_eq!(run(&bytes).rejects[0].0, Rejection::NoAccount);
    }
}
