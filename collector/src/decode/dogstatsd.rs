//! DogStatsD's events and service checks: not metrics but what happened (a deploy, an
//! incident) and how things are (a check's status). Events become the charts' annotations.
//!
//! `_e{<title bytes>,<text bytes>}:<title>|<text>[|d:<unix s>][|h:<host>][|k:<key>][|p:<priority>][|s:<source>][|t:<alert type>][|#<tags>]`
//! `_sc|<name>|<0 ok, 1 warning, 2 critical, 3 unknown>[|d:<unix s>][|h:<host>][|#<tags>][|m:<message>]`

use super::clean_name;
use tally_core::{
    AlertType, Annotation, CheckStatus, Notice, Priority, ServiceCheck, Timestamp, is_unprintable,
};

/// Longest title, host, source, key, check name or tag kept, in bytes; longer ones are cut.
const MAX_FIELD: usize = 256;
/// Longest text or message kept, in bytes.
const MAX_TEXT: usize = 4096;
/// Tags kept per event or check.
const MAX_TAGS: usize = 32;
/// A `d:` further ahead of the arrival time than this is not believed.
const MAX_AHEAD_MS: u64 = 60_000;

/// An event line (`_e{...`), or why it cannot be read.
pub fn event(line: &str, arrived: Timestamp) -> Result<Notice, &'static str> {
    let rest = line.strip_prefix("_e{").ok_or("not an event")?;
    let (lengths, rest) = rest.split_once("}:").ok_or("no '}:' after the lengths")?;
    let (title_len, text_len) = lengths.split_once(',').ok_or("lengths are not '{title,text}'")?;
    let title_len: usize = title_len.parse().map_err(|_| "title length is not a number")?;
    let text_len: usize = text_len.parse().map_err(|_| "text length is not a number")?;
    const TITLE: &str = "the title is not as long as its length says";
    const TEXT: &str = "the text is not as long as its length says";
    let title = rest.get(..title_len).ok_or(TITLE)?;
    let rest = rest[title_len..].strip_prefix('|').ok_or(TITLE)?;
    let text = rest.get(..text_len).ok_or(TEXT)?;
    let rest = &rest[text_len..];
    if !(rest.is_empty() || rest.starts_with('|')) {
        return Err(TEXT);
    }
    if title.trim().is_empty() {
        return Err("an event needs a title");
    }
    let mut annotation = Annotation {
        time: arrived,
        title: field(title),
        text: text_field(&text.replace("\\n", "\n")),
        ..Annotation::default()
    };
    for part in rest.split('|').skip(1) {
        match part.split_at_checked(2) {
            Some(("d:", seconds)) => annotation.time = timestamp(seconds, arrived)?,
            Some(("h:", host)) => annotation.host = Some(field(host)),
            Some(("k:", key)) => annotation.aggregation_key = Some(field(key)),
            Some(("s:", source)) => annotation.source = Some(field(source)),
            Some(("p:", priority)) => {
                annotation.priority = match priority {
                    "normal" => Priority::Normal,
                    "low" => Priority::Low,
                    _ => return Err("priority must be normal or low"),
                }
            }
            Some(("t:", alert)) => {
                annotation.alert = match alert {
                    "info" => AlertType::Info,
                    "success" => AlertType::Success,
                    "warning" => AlertType::Warning,
                    "error" => AlertType::Error,
                    _ => return Err("alert type must be error, warning, info or success"),
                }
            }
            // Tags; other fields are of later versions.
            _ => {
                if let Some(tags) = part.strip_prefix('#') {
                    annotation.tags = tag_list(tags);
                }
            }
        }
    }
    Ok(Notice::Annotation(annotation))
}

/// A service check line (`_sc|...`), or why it cannot be read.
pub fn service_check(line: &str, arrived: Timestamp) -> Result<Notice, &'static str> {
    let rest = line.strip_prefix("_sc|").ok_or("not a service check")?;
    // The message comes last and may hold anything, '|' included.
    let (rest, message) = match rest.split_once("|m:") {
        Some((rest, message)) => (rest, Some(text_field(&message.replace("\\n", "\n")))),
        None => (rest, None),
    };
    let mut parts = rest.split('|');
    let name = parts
        .next()
        .filter(|n| !n.trim().is_empty())
        .ok_or("a service check needs a name")?;
    let status = (parts.next())
        .and_then(|s| s.parse::<u8>().ok())
        .and_then(CheckStatus::from_code)
        .ok_or("status must be 0 (ok), 1 (warning), 2 (critical) or 3 (unknown)")?;
    let mut check = ServiceCheck {
        name: field(name),
        status,
        time: arrived,
        host: None,
        message,
        tags: vec![],
    };
    for part in parts {
        match part.split_at_checked(2) {
            Some(("d:", seconds)) => check.time = timestamp(seconds, arrived)?,
            Some(("h:", host)) => check.host = Some(field(host)),
            _ => {
                if let Some(tags) = part.strip_prefix('#') {
                    check.tags = tag_list(tags);
                }
            }
        }
    }
    Ok(Notice::Check(check))
}

/// `d:`, Unix seconds: believed unless it is ahead of the arrival time.
fn timestamp(seconds: &str, arrived: Timestamp) -> Result<Timestamp, &'static str> {
    let seconds: u64 = seconds.parse().map_err(|_| "d: is not a Unix time in seconds")?;
    let time = Timestamp::from_millis(seconds.saturating_mul(1000));
    let ahead = time.as_millis().saturating_sub(arrived.as_millis());
    Ok(if ahead > MAX_AHEAD_MS { arrived } else { time })
}

/// A one-line field: printable, at most [`MAX_FIELD`] bytes.
fn field(value: &str) -> String {
    cut(&clean_name(value.trim()), MAX_FIELD).to_owned()
}

/// A text: printable but for its line breaks, at most [`MAX_TEXT`] bytes.
fn text_field(value: &str) -> String {
    let text: String = (value.chars())
        .map(|c| {
            if c != '\n' && is_unprintable(c) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    cut(&text, MAX_TEXT).to_owned()
}

fn tag_list(tags: &str) -> Vec<String> {
    (tags.split(','))
        .filter(|t| !t.is_empty())
        .take(MAX_TAGS)
        .map(field)
        .collect()
}

/// `value` cut to at most `max` bytes, at a character boundary.
fn cut(value: &str, max: usize) -> &str {
    let mut end = value.len().min(max);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn annotation(line: &str) -> Annotation {
        match event(line, NOW) {
            Ok(Notice::Annotation(a)) => a,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn events_keep_every_field() {
        let a = annotation(
            "_e{6,14}:Deploy|shop v2\\n done|d:1699999990|h:web-1|p:low|t:success|k:dep|s:ci|#env:prod,team:shop",
        );
        assert_eq!(a.title, "Deploy");
        assert_eq!(a.text, "shop v2\n done");
        assert_eq!(a.time, Timestamp::from_secs(1_699_999_990));
        assert_eq!(a.host.as_deref(), Some("web-1"));
        assert_eq!((a.priority, a.alert), (Priority::Low, AlertType::Success));
        assert_eq!(a.aggregation_key.as_deref(), Some("dep"));
        assert_eq!(a.source.as_deref(), Some("ci"));
        assert_eq!(a.tags, ["env:prod", "team:shop"]);
        let plain = annotation("_e{2,0}:Hi|");
        assert_eq!((plain.title.as_str(), plain.text.as_str()), ("Hi", ""));
        assert_eq!((plain.time, plain.alert), (NOW, AlertType::Info));
    }

    #[test]
    fn lengths_count_bytes_and_text_may_hold_bars() {
        let a = annotation("_e{6,7}:Déjà|a|b|c.d|t:error");
        assert_eq!((a.title.as_str(), a.text.as_str()), ("Déjà", "a|b|c.d"));
        assert_eq!(a.alert, AlertType::Error);
    }

    #[test]
    fn a_timestamp_from_the_future_is_not_believed() {
        let a = annotation("_e{1,1}:a|b|d:1800000000");
        assert_eq!(a.time, NOW);
    }

    #[test]
    fn bad_events_say_why() {
        const TITLE: &str = "the title is not as long as its length says";
        const TEXT: &str = "the text is not as long as its length says";
        for (line, why) in [
            ("_e{5,1}:abc|d", TITLE),
            ("_e{1,1}:abc|d", TITLE),
            ("_e{1,5}:a|b", TEXT),
            ("_e{1,1}:a|bcd", TEXT),
            ("_e{x,1}:a|b", "title length is not a number"),
            (
                "_e{1,1}:a|b|t:panic",
                "alert type must be error, warning, info or success",
            ),
            ("_e{1,1}:a|b|p:urgent", "priority must be normal or low"),
            ("_e{1,1}: |b", "an event needs a title"),
            ("_e{1,1}:a|b|d:soon", "d: is not a Unix time in seconds"),
            ("_e{1,1}:é|b", TITLE),
        ] {
            assert_eq!(event(line, NOW), Err(why), "{line}");
        }
    }

    #[test]
    fn controls_are_replaced_and_sizes_capped() {
        let title = "x".repeat(1000);
        let line = format!("_e{{{},3}}:{title}|a\u{1b}b|#{}", title.len(), "t,".repeat(100));
        let a = annotation(&line);
        assert_eq!(a.title.len(), MAX_FIELD);
        assert_eq!(a.text, "a\u{fffd}b");
        assert_eq!(a.tags.len(), MAX_TAGS);
    }

    #[test]
    fn service_checks_carry_status_host_tags_and_message() {
        let Ok(Notice::Check(c)) = service_check(
            "_sc|db.up|2|d:1699999999|h:db-1|#env:prod|m:replica lag | 30s",
            NOW,
        ) else {
            panic!("a check");
        };
        assert_eq!((c.name.as_str(), c.status), ("db.up", CheckStatus::Critical));
        assert_eq!(c.time, Timestamp::from_secs(1_699_999_999));
        assert_eq!(c.host.as_deref(), Some("db-1"));
        assert_eq!(c.tags, ["env:prod"]);
        assert_eq!(c.message.as_deref(), Some("replica lag | 30s"));
        for (line, why) in [
            (
                "_sc|db.up|7",
                "status must be 0 (ok), 1 (warning), 2 (critical) or 3 (unknown)",
            ),
            (
                "_sc|db.up",
                "status must be 0 (ok), 1 (warning), 2 (critical) or 3 (unknown)",
            ),
            ("_sc||0", "a service check needs a name"),
        ] {
            assert_eq!(service_check(line, NOW), Err(why), "{line}");
        }
    }
}
