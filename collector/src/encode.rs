//! Events out as bytes: the classic hub's JSON shape, which `tally hub`'s outputs publish and
//! [`crate::decode`] reads back.

use serde::Serialize;
use std::time::{Duration, UNIX_EPOCH};
use tally_core::{Event, Value};

/// The classic hub's event shape, keys in Go's sorted order, plus tally's optional metric
/// fields (`count`, `ms`, `gauge`, `delta`, `member`; classic consumers ignore them), so that
/// StatsD metrics keep their meaning through a hub.
#[derive(Serialize)]
struct HubJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    data: HubData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gauge: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms: Option<f64>,
    time: String,
    #[serde(rename = "type")]
    event_type: &'a str,
}

#[derive(Serialize)]
struct HubData<'a> {
    account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
}

/// One event as the classic hub would publish it.
pub fn hub_json(event: &Event<'_>) -> String {
    let mut json = HubJson {
        count: None,
        data: HubData {
            account: event.account,
            app: event.app,
        },
        delta: None,
        gauge: None,
        member: None,
        ms: None,
        time: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(event.time.as_millis()))
            .to_string(),
        event_type: event.event_type,
    };
    match event.value {
        Value::Count(1) => {}
        Value::Count(n) => json.count = Some(n),
        Value::Timing { ms, count } => {
            json.ms = Some(ms);
            json.count = (count != 1).then_some(count);
        }
        Value::Gauge(value) => json.gauge = Some(value),
        Value::GaugeDelta(delta) => json.delta = Some(delta),
        Value::SetMember(member) => json.member = Some(member),
    }
    serde_json::to_string(&json).unwrap_or_default()
}

/// One accepted event on its way to the outputs. Each encoding is made once, by the first
/// output that asks for it, however many outputs share it.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub event: &'a Event<'a>,
    json: Option<String>,
}

impl<'a> Outgoing<'a> {
    pub fn new(event: &'a Event<'a>) -> Self {
        Outgoing { event, json: None }
    }

    /// The event as the classic hub publishes it.
    pub fn hub_json(&mut self) -> &str {
        let event = self.event;
        self.json.get_or_insert_with(|| hub_json(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Timestamp;

    fn event(value: Value<'_>) -> Event<'_> {
        Event {
            account: "acme",
            event_type: "pageview",
            app: Some("shop"),
            value,
            time: Timestamp::from_millis(1_394_392_647_500),
        }
    }

    #[test]
    fn events_are_published_in_the_classic_shape() {
        assert_eq!(
            hub_json(&event(Value::Count(1))),
            r#"{"data":{"account":"acme","app":"shop"},"time":"2014-03-09T19:17:27.500Z","type":"pageview"}"#
        );
        assert!(hub_json(&event(Value::Count(5))).starts_with(r#"{"count":5,"data""#));
        assert!(hub_json(&event(Value::Timing { ms: 12.5, count: 2 })).contains(r#""ms":12.5"#));
        assert!(hub_json(&event(Value::SetMember("u1"))).contains(r#""member":"u1""#));
    }

    /// What tally publishes, tally reads back as the same event.
    #[test]
    fn published_events_decode_to_themselves() {
        use crate::decode::{DecodeOptions, decode, testing::Collected};
        for value in [
            Value::Count(1),
            Value::Count(7),
            Value::Timing { ms: 3.25, count: 4 },
            Value::Gauge(-2.5),
            Value::GaugeDelta(4.0),
            Value::SetMember("visitor-9"),
        ] {
            let original = event(value);
            let mut got = Collected::default();
            let json = hub_json(&original);
            decode(
                json.as_bytes(),
                original.time,
                &DecodeOptions::default(),
                &mut got,
            );
            assert_eq!(got.rejects, [], "{json}");
            assert_eq!(
                got.events,
                [(
                    "acme".to_owned(),
                    "pageview".to_owned(),
                    Some("shop".to_owned()),
                    format!("{value:?}")
                )],
                "{json}"
            );
        }
    }
}
