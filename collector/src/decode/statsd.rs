//! StatsD lines, as etsy statsd and DogStatsD send them:
//! `<bucket>:<value>|<type>[|@<rate>][|#tag,k:v][|c:<container>][|T<ts>]`.
//!
//! One line may carry several metrics (`a:1|c:2|ms`, etsy) or several values of one metric
//! (`n:1:2:3|h`, DogStatsD 1.1). A bad metric is counted and the rest of the line and packet
//! are still read. Parsing borrows from the packet and allocates only to clean up a bucket
//! name that contains characters StatsD does not keep.

use super::words::{HIGH, ONES, equal, run_until, within, word_at};
use super::{AccountFrom, DecodeOptions, Sink, clean_key, dogstatsd};
use tally_core::{Event, Rejection, SampleError, Timestamp, Value, scale_sampled};

/// Decodes every line of `text`. Common lines are read in one pass as the text is walked;
/// others are cut at their `\n` and read by the full parser.
pub fn decode(text: &str, time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    let mut rest = text;
    loop {
        if options.tokens.is_none()
            && let Some(used) = record_common(rest, time, sink)
        {
            rest = &rest[used..];
            if rest.is_empty() {
                return;
            }
            continue;
        }
        let (line, next) = match rest.bytes().position(|b| b == b'\n') {
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => (rest, None),
        };
        decode_other_line(line, time, options, sink);
        match next {
            Some(next) => rest = next,
            None => return,
        }
    }
}

/// A line that is not common, or any line when tokens are required.
fn decode_other_line(line: &str, time: Timestamp, options: &DecodeOptions, sink: &mut impl Sink) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return;
    }
    match options.tokens.as_deref() {
        // Not common (that was tried first).
        None => decode_any_line(line, time, &options.accounts, sink),
        // statsgod: `<token>.<bucket>:<value>|<type>`; the token is stripped.
        Some(tokens) => match line.split_once('.') {
            Some((token, rest)) if tokens.contains(token) => decode_line(rest, time, &options.accounts, sink),
            _ => sink.reject(Rejection::Auth, "missing or unknown token", line.as_bytes()),
        },
    }
}

/// One metric of a line, before its values are read.
struct Metric<'a> {
    values: &'a str,
    kind: &'a str,
    rate: f64,
    tags: Option<&'a str>,
}

fn decode_line(line: &str, time: Timestamp, accounts: &AccountFrom, sink: &mut impl Sink) {
    if record_common(line, time, sink).is_none() {
        decode_any_line(line, time, accounts, sink);
    }
}

/// Any line: a DogStatsD event or service check, or metrics with every option StatsD has.
fn decode_any_line(line: &str, time: Timestamp, accounts: &AccountFrom, sink: &mut impl Sink) {
    let notice = if line.starts_with("_e{") {
        Some(dogstatsd::event(line, time))
    } else if line.starts_with("_sc|") {
        Some(dogstatsd::service_check(line, time))
    } else {
        None
    };
    match notice {
        Some(Ok(notice)) => return sink.notice(notice),
        Some(Err(why)) => return sink.reject(Rejection::Statsd, why, line.as_bytes()),
        None => {}
    }
    let Some((bucket, mut rest)) = line.split_once(':') else {
        return sink.reject(
            Rejection::Statsd,
            "no ':' between name and value",
            line.as_bytes(),
        );
    };
    let bucket = clean_key(bucket.trim());
    if bucket.is_empty() {
        return sink.reject(Rejection::Statsd, "empty metric name", line.as_bytes());
    }
    loop {
        let (metric, next) = match split_metric(rest) {
            Ok(split) => split,
            Err(why) => return sink.reject(Rejection::Statsd, why, line.as_bytes()),
        };
        record(&bucket, &metric, line, time, accounts, sink);
        match next {
            Some(next) => rest = next,
            None => return,
        }
    }
}

/// Bytes a StatsD name keeps as they are ([`clean_key`]).
const KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b';' | b'=' | b'-');
        byte += 1;
    }
    table
};

/// Records the common line at the start of `text` and returns the bytes it took (its `\n`
/// included); `None`, with nothing recorded, when the line is not common. A bucket the sink
/// knows is recorded as it is: its name was read when the sink learnt it
/// ([`Sink::known_event`]), so only new buckets are read for their account and type.
///
/// Always inlined: returned through memory, a line's metric was read back before the stores
/// that wrote it had landed (a stall that took a tenth of a 20-line datagram's decoding).
#[inline(always)]
fn record_common(text: &str, time: Timestamp, sink: &mut impl Sink) -> Option<usize> {
    let (bucket, value, used) = common_prefix(text)?;
    if !sink.known_event(bucket, &value, time) {
        sink.spelled_event(&common_event(bucket, value, time)?, bucket);
    }
    Some(used)
}

/// The common line at the start of `text`, `bucket:<digits>|c` or `bucket:<number>|ms` (then
/// `\n`, `\r\n` or the end), read in one pass over its bytes: one value, no rate, tags or
/// further fields. Returns its bucket (not yet read: see [`common_event`]), its value and the
/// bytes it took. Anything else is `None`, for the full parser, which gives the same event for
/// every line this and [`common_event`] read.
#[inline(always)]
fn common_prefix(text: &str) -> Option<(&str, Value<'_>, usize)> {
    let bytes = text.as_bytes();
    let colon = bucket_end(bytes)?;
    let mut at = colon + 1;
    let (mut n, mut whole) = (0u64, true);
    while at < bytes.len() && bytes[at] != b'|' {
        match bytes[at] {
            digit @ b'0'..=b'9' => n = n.wrapping_mul(10).wrapping_add(u64::from(digit - b'0')),
            b'.' => whole = false,
            _ => return None,
        }
        at += 1;
    }
    let value = &text[colon + 1..at];
    // The type, then the line's end, read where they are rather than scanned for.
    let (value, after) = match &bytes[at..] {
        // Up to 15 digits: below 2^53, so exactly what the full parser's f64 reads.
        [b'|', b'c', after @ ..] if whole && (1..=15).contains(&value.len()) => (Value::Count(n), after),
        [b'|', b'm', b's', after @ ..] if !value.is_empty() => {
            let ms: f64 = value.parse().ok().filter(|ms: &f64| ms.is_finite())?;
            (Value::Timing { ms, count: 1 }, after)
        }
        _ => return None,
    };
    let used = bytes.len() - after.len() + line_end(after)?;
    Some((&text[..colon], value, used))
}

/// A common line's event, if its bucket is a clean name (which the full parser keeps as it
/// is). Without tags, the account is the first segment however it is configured.
fn common_event<'a>(bucket: &'a str, value: Value<'a>, time: Timestamp) -> Option<Event<'a>> {
    let (end, dot) = key_prefix(bucket.as_bytes());
    if bucket.is_empty() || end != bucket.len() {
        return None;
    }
    let (account, event_type) = match dot {
        Some(dot) => (&bucket[..dot], &bucket[dot + 1..]),
        None => (bucket, ""),
    };
    Some(Event {
        account,
        event_type,
        app: None,
        value,
        time,
    })
}

/// Where the bucket at the start of `bytes` ends: its `:`, if one comes before the line's end.
/// Eight bytes at a time, as [`key_prefix`], but only looking for two bytes.
fn bucket_end(bytes: &[u8]) -> Option<usize> {
    let at = run_until(bytes, 0, |word| equal(word, b':') | equal(word, b'\n'));
    let end = at + bytes[at..].iter().position(|&b| b == b':' || b == b'\n')?;
    (bytes[end] == b':').then_some(end)
}

/// The bytes before the first line's `:` (see [`super::first_bucket`]).
pub(super) fn first_bucket(bytes: &[u8]) -> Option<&[u8]> {
    bucket_end(bytes).map(|colon| &bytes[..colon])
}

/// How many bytes the line's end takes at the start of `rest` (`\n`, `\r\n`, a last `\r`, or
/// the end of the text); `None` when something else follows.
fn line_end(rest: &[u8]) -> Option<usize> {
    match rest {
        [] => Some(0),
        [b'\n', ..] | [b'\r'] => Some(1),
        [b'\r', b'\n', ..] => Some(2),
        _ => None,
    }
}

/// How many of `bytes` from the start are name bytes ([`KEY_BYTES`]), and where the first
/// `.` among them is. Eight bytes at a time (the byte-at-a-time loop was a fifth of the time of
/// a 20-line datagram), then byte by byte for the last few.
fn key_prefix(bytes: &[u8]) -> (usize, Option<usize>) {
    let mut at = 0;
    let mut dot = None;
    while let Some(word) = word_at(bytes, at) {
        let others = !key_bytes(word) & HIGH;
        let dots = equal(word, b'.');
        let end = if others == 0 {
            8
        } else {
            others.trailing_zeros() as usize / 8
        };
        if dot.is_none() && dots != 0 && (dots.trailing_zeros() as usize / 8) < end {
            dot = Some(at + dots.trailing_zeros() as usize / 8);
        }
        if end < 8 {
            return (at + end, dot);
        }
        at += 8;
    }
    while at < bytes.len() && KEY_BYTES[usize::from(bytes[at])] {
        if bytes[at] == b'.' && dot.is_none() {
            dot = Some(at);
        }
        at += 1;
    }
    (at, dot)
}

/// Bit 7 set in each byte of `word` that [`KEY_BYTES`] keeps.
fn key_bytes(word: u64) -> u64 {
    // ASCII letters of either case, as lower case (no other byte lands in a..z).
    within(word | (ONES * 0x20), b'a', b'z')
        | within(word, b'0', b'9')
        | equal(word, b'_')
        | equal(word, b'.')
        | equal(word, b';')
        | equal(word, b'=')
        | equal(word, b'-')
}

/// Splits off the first metric of `rest` (what follows `bucket:`), and what comes after it
/// when the line holds another metric.
fn split_metric(rest: &str) -> Result<(Metric<'_>, Option<&str>), &'static str> {
    let bar = rest.find('|').ok_or("no '|<type>' after the value")?;
    let values = &rest[..bar];
    let after = &rest[bar + 1..];
    // The type ends at '|' (more fields), ':' (another metric follows) or the end.
    let kind_end = after.find(['|', ':']).unwrap_or(after.len());
    let mut metric = Metric {
        values,
        kind: &after[..kind_end],
        rate: 1.0,
        tags: None,
    };
    let mut cursor = &after[kind_end..];
    loop {
        match cursor.as_bytes().first() {
            None => return Ok((metric, None)),
            Some(b':') => return Ok((metric, Some(&cursor[1..]))),
            _ => {
                let field = &cursor[1..];
                // Tags and container ids contain ':', so only '|' ends them.
                let ends_at_bar = field.starts_with('#') || field.starts_with("c:");
                let end = if ends_at_bar {
                    field.find('|')
                } else {
                    field.find(['|', ':'])
                }
                .unwrap_or(field.len());
                let value = &field[..end];
                if let Some(rate) = value.strip_prefix('@') {
                    metric.rate = rate.parse().map_err(|_| "sample rate is not a number")?;
                } else if let Some(tags) = value.strip_prefix('#') {
                    metric.tags = Some(tags);
                }
                // Other fields (container ids, timestamps, future ones) do not change counts.
                cursor = &field[end..];
            }
        }
    }
}

fn record(
    bucket: &str,
    metric: &Metric<'_>,
    line: &str,
    time: Timestamp,
    accounts: &AccountFrom,
    sink: &mut impl Sink,
) {
    let (account, event_type) = accounts.split(bucket, metric.tags);
    if !(metric.rate > 0.0 && metric.rate <= 1.0) {
        return sink.reject(
            Rejection::Statsd,
            "sample rate must be in (0, 1]",
            line.as_bytes(),
        );
    }
    for raw in metric.values.split(':') {
        let raw = raw.trim();
        let value = match metric.kind {
            "c" => number(raw, true).and_then(|n| scaled(n, metric.rate).map(Value::Count)),
            "ms" | "h" | "d" => number(raw, false).and_then(|ms| {
                if ms >= 0.0 {
                    let count = scaled(1.0, metric.rate)?;
                    Ok(Value::Timing { ms, count })
                } else {
                    Err((Rejection::Statsd, "timing must be >= 0"))
                }
            }),
            "g" => number(raw, false).map(|n| {
                if raw.starts_with(['+', '-']) {
                    Value::GaugeDelta(n)
                } else {
                    Value::Gauge(n)
                }
            }),
            "s" => Ok(Value::SetMember(raw)),
            "" => return sink.reject(Rejection::Statsd, "missing metric type", line.as_bytes()),
            _ => return sink.reject(Rejection::UnknownType, "unknown metric type", line.as_bytes()),
        };
        match value {
            Ok(value) => sink.event(&Event {
                account,
                event_type,
                app: None,
                value,
                time,
            }),
            Err((reason, why)) => sink.reject(reason, why, line.as_bytes()),
        }
    }
}

/// How many events `value` at `rate` stands for, or why it cannot be counted.
fn scaled(value: f64, rate: f64) -> Result<u64, (Rejection, &'static str)> {
    scale_sampled(value, rate).map_err(|error| match error {
        SampleError::TooLarge => (
            Rejection::CountTooLarge,
            "count (value / sample rate) is above 2^53",
        ),
        SampleError::BadValue | SampleError::BadRate => (Rejection::Statsd, "counter must be a number >= 0"),
    })
}

/// A finite number; an empty counter value counts as 1 (etsy statsd).
fn number(raw: &str, empty_is_one: bool) -> Result<f64, (Rejection, &'static str)> {
    if raw.is_empty() {
        return if empty_is_one {
            Ok(1.0)
        } else {
            Err((Rejection::Statsd, "missing value"))
        };
    }
    match raw.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err((Rejection::Statsd, "value is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::testing::{Collected, run};
    use proptest::prelude::*;

    fn values(payload: &str) -> Vec<String> {
        let got = run(payload.as_bytes());
        assert!(got.rejects.is_empty(), "{payload}: {:?}", got.rejects);
        got.events
            .into_iter()
            .map(|(a, t, _, v)| format!("{a}/{t} {v}"))
            .collect()
    }

    fn rejected(payload: &str) -> Vec<Rejection> {
        run(payload.as_bytes())
            .rejects
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    proptest! {
        /// The eight-bytes-at-a-time name scan finds what a byte-at-a-time one finds, in any
        /// bytes (the edges of every range and non-ASCII included).
        #[test]
        fn the_name_scan_agrees_with_the_table(
            bytes in prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    prop::sample::select(b"@[`{/:^_.;=-09azAZ\x7f".to_vec()),
                ],
                0..40,
            ),
        ) {
            let end = bytes.iter().position(|&b| !KEY_BYTES[usize::from(b)]).unwrap_or(bytes.len());
            let dot = bytes[..end].iter().position(|&b| b == b'.');
            prop_assert_eq!(key_prefix(&bytes), (end, dot));
        }

        /// The one-pass reader of common lines gives what the full parser gives, and takes
        /// the lines it was made for.
        #[test]
        fn the_fast_path_agrees_with_the_full_parser(
            name in "[a-z0-9._;=/ -]{0,10}",
            value in prop_oneof!["[0-9]{1,17}", "[0-9.]{0,6}", "[+-]?[0-9e.]{0,5}", Just(String::new())],
            kind in prop::sample::select(vec!["c", "ms", "g", "s", "h", "c|@0.5", "ms|#a:b", "", "c:2|ms", "C", "cx", "msx", "c\rx", "ms c"]),
        ) {
            let line = format!("{name}:{value}|{kind}");
            let time = Timestamp::from_secs(1);
            let mut full = Collected::default();
            decode_any_line(&line, time, &AccountFrom::FirstSegment, &mut full);
            let fast = common_prefix(&line)
                .and_then(|(bucket, value, used)| Some((common_event(bucket, value, time)?, used)));
            if let Some((event, used)) = fast {
                prop_assert_eq!(used, line.len());
                let fast = (event.account.to_owned(), event.event_type.to_owned(), None, format!("{:?}", event.value));
                prop_assert!(full.rejects.is_empty(), "{line}: {:?}", full.rejects);
                prop_assert_eq!(full.events, vec![fast]);
            }
            let common = !name.is_empty()
                && name.bytes().all(|b| KEY_BYTES[usize::from(b)])
                && (1..=15).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_digit())
                && kind == "c";
            prop_assert!(!common || fast.is_some(), "{line} takes the fast path");
        }

        /// A payload of many lines, some common, some not, some blank, with `\n` or `\r\n`:
        /// what the full parser gives line by line.
        #[test]
        fn payloads_read_as_the_full_parser_reads_their_lines(
            lines in prop::collection::vec(
                prop_oneof![
                    "[a-z]{1,4}\\.[a-z]{1,4}:[0-9]{1,3}\\|c",
                    "[a-z]{1,4}:[0-9.]{1,4}\\|ms",
                    "[a-z.]{0,4}:[0-9]{0,2}\\|[cgs@|0.5]{0,4}",
                    Just(String::new()),
                    Just(" ".to_owned()),
                ],
                0..8,
            ),
            crlf in any::<bool>(),
            trailing in any::<bool>(),
        ) {
            let separator = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(separator);
            if trailing {
                text.push_str(separator);
            }
            let time = Timestamp::from_secs(1);
            let mut expected = Collected::default();
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if !line.trim().is_empty() {
                    decode_any_line(line, time, &AccountFrom::FirstSegment, &mut expected);
                }
            }
            let got = run(text.as_bytes());
            prop_assert_eq!(&got.events, &expected.events, "{:?}", text);
            prop_assert_eq!(got.rejects.len(), expected.rejects.len(), "{:?}", text);
        }
    }

    #[test]
    fn the_documented_examples() {
        assert_eq!(values("gorets:1|c"), ["gorets/ Count(1)"]);
        assert_eq!(values("acme.x:5|c|@0.1"), ["acme/x Count(50)"]);
        assert_eq!(
            values("acme.glork:320|ms|@0.1"),
            ["acme/glork Timing { ms: 320.0, count: 10 }"]
        );
        assert_eq!(values("acme.gaugor:+4|g"), ["acme/gaugor GaugeDelta(4.0)"]);
        assert_eq!(values("acme.gaugor:-10|g"), ["acme/gaugor GaugeDelta(-10.0)"]);
        assert_eq!(values("acme.gaugor:333|g"), ["acme/gaugor Gauge(333.0)"]);
        assert_eq!(values("acme.uniques:765|s"), ["acme/uniques SetMember(\"765\")"]);
        assert_eq!(
            values("acme.x:|c"),
            ["acme/x Count(1)"],
            "a missing counter value counts 1"
        );
    }

    /// Common lines come with their bucket as sent, which names one pair whatever follows it;
    /// a bucket the sink knows is recorded by it.
    #[test]
    fn common_lines_are_spelled_by_their_bucket() {
        let collected = run(b"acme.pageview:1|c\nacme.checkout:2|ms\nacme:3|c\nacme.:4|c\nacme.pageview:5|c");
        let spelled: Vec<(&str, (&str, &str))> = (collected.spellings.iter())
            .map(|(spelling, (account, kind))| (spelling.as_str(), (account.as_str(), kind.as_str())))
            .collect();
        assert_eq!(
            spelled,
            [
                ("acme", ("acme", "")),
                ("acme.", ("acme", "")),
                ("acme.checkout", ("acme", "checkout")),
                ("acme.pageview", ("acme", "pageview")),
            ]
        );
        let values: Vec<String> = (collected.events.iter())
            .map(|(account, kind, _, value)| format!("{account}/{kind} {value}"))
            .collect();
        assert_eq!(
            values,
            [
                "acme/pageview Count(1)",
                "acme/checkout Timing { ms: 2.0, count: 1 }",
                "acme/ Count(3)",
                "acme/ Count(4)",
                "acme/pageview Count(5)",
            ]
        );
        assert_eq!(collected.known, 1, "a bucket seen before is not read again");
    }

    #[test]
    fn several_metrics_values_and_lines() {
        assert_eq!(
            values("acme.a:1|c:2|ms"),
            ["acme/a Count(1)", "acme/a Timing { ms: 2.0, count: 1 }"]
        );
        assert_eq!(values("acme.n:1:2:3|h").len(), 3);
        assert_eq!(values("acme.a:1|c\n\nacme.b:2|c\r\n").len(), 2);
        // DogStatsD tags, container ids and timestamps do not get in the way.
        assert_eq!(
            values("acme.page.views:1|c|@0.5|#env:prod,region:eu|c:abc123|T1656581400"),
            ["acme/page.views Count(2)"]
        );
        assert_eq!(values("acme.d:7|d|#a:b"), ["acme/d Timing { ms: 7.0, count: 1 }"]);
    }

    #[test]
    fn bad_lines_are_counted_and_the_rest_is_kept() {
        let got = run(b"acme.ok:1|c\nacme.bad:1|c|@7\nacme.neg:-5|ms\nacme.t:1|zz\nnocolon\nacme.also:2|c");
        let kept: Vec<&str> = got.events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(kept, ["ok", "also"]);
        let reasons: Vec<Rejection> = got.rejects.iter().map(|r| r.0).collect();
        assert_eq!(
            reasons,
            [
                Rejection::Statsd,
                Rejection::Statsd,
                Rejection::UnknownType,
                Rejection::Statsd
            ]
        );
        assert_eq!(rejected("acme.x:1"), [Rejection::Statsd], "no type");
        assert_eq!(rejected("acme.x:1|"), [Rejection::Statsd], "empty type");
        assert_eq!(rejected("acme.x:abc|c"), [Rejection::Statsd]);
        assert_eq!(rejected("acme.x:-1|c"), [Rejection::Statsd], "negative counter");
        assert_eq!(rejected("acme.g:abc|g"), [Rejection::Statsd]);
        assert_eq!(rejected("acme.x:1|c|@abc"), [Rejection::Statsd]);
        assert_eq!(rejected("acme.x:1|c|@0"), [Rejection::Statsd]);
        assert_eq!(rejected("acme.x:NaN|ms"), [Rejection::Statsd]);
        assert_eq!(rejected(":1|c"), [Rejection::Statsd]);
        assert_eq!(
            rejected("_e{9,4}:title|text"),
            [Rejection::Statsd],
            "lengths wrong"
        );
        assert_eq!(rejected("_sc|db.up|9"), [Rejection::Statsd], "no such status");
        assert_eq!(run(b"acme.x:1|c\xff").rejects[0].0, Rejection::Utf8);
    }

    /// DogStatsD events and service checks are not bad input: they are kept as notices,
    /// between metrics of the same datagram.
    #[test]
    fn dogstatsd_events_and_checks_are_notices() {
        let got = run(b"acme.a:1|c\n_e{6,4}:Deploy|v2.1|t:success\n_sc|db.up|2|m:lag\nacme.b:1|c");
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        assert_eq!(got.events.len(), 2);
        let kinds: Vec<String> = (got.notices.iter())
            .map(|n| match n {
                tally_core::Notice::Annotation(a) => format!("event {} {}", a.title, a.alert.as_str()),
                tally_core::Notice::Check(c) => format!("check {} {}", c.name, c.status.as_str()),
            })
            .collect();
        assert_eq!(kinds, ["event Deploy success", "check db.up critical"]);
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(
            values("acme.page view/home:1|c"),
            ["acme/page_view-home Count(1)"]
        );
    }
}
