//! metrics_talk's status frames: `zlib.compress(json.dumps([{"name", "value", "time"}, ...]))`.
//!
//! Each item is a gauge named `<account>.<type>` (split like StatsD buckets). Inflating stops
//! at the configured limit, so a small bomb cannot take memory.

use super::{DecodeOptions, Sink};
use flate2::read::ZlibDecoder;
use serde::Deserialize;
use std::io::Read;
use tally_core::{Event, Rejection, Timestamp, Value};

/// A zlib stream header: deflate, a valid check value, no preset dictionary.
pub(super) fn looks_like_zlib(payload: &[u8]) -> bool {
    match payload {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
                && flg & 0x20 == 0
        }
        _ => false,
    }
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    value: f64,
}

/// Decodes a compressed list; an error if `payload` does not inflate at all (the caller then
/// tries it as text: `x^...` is also a possible StatsD line).
pub(super) fn decode(
    payload: &[u8],
    time: Timestamp,
    options: &DecodeOptions,
    sink: &mut impl Sink,
) -> std::io::Result<()> {
    let mut inflated = Vec::new();
    let limit = options.max_inflated as u64;
    ZlibDecoder::new(payload)
        .take(limit + 1)
        .read_to_end(&mut inflated)?;
    if inflated.len() as u64 > limit {
        sink.reject(Rejection::Compression, "inflates past the size limit", payload);
        return Ok(());
    }
    match serde_json::from_slice::<Vec<Item<'_>>>(&inflated) {
        Ok(items) => {
            let mut refused = 0;
            for item in &items {
                let name = super::clean_key(&item.name);
                let (account, event_type) = options.accounts.split(&name, None);
                if account.is_empty() {
                    refused += 1;
                    continue;
                }
                sink.event(&Event {
                    account,
                    event_type,
                    app: None,
                    value: Value::Gauge(item.value),
                    time,
                });
            }
            if refused > 0 {
                super::refuse(
                    (Rejection::NoAccount, "empty name"),
                    refused,
                    items.len(),
                    &inflated,
                    sink,
                );
            }
        }
        Err(error) => sink.reject(
            Rejection::Compression,
            &format!("inflated, but not a metric list: {error}"),
            &inflated,
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::decode::testing::run;
    use flate2::Compression;
    use flate2::write::ZlibEncoder;
    use std::io::Write;
    use tally_core::Rejection;

    fn compress(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).expect("compresses");
        encoder.finish().expect("compresses")
    }

    #[test]
    fn status_lists_become_gauges() {
        let payload = compress(br#"[{"value": 0.5, "name": "web1.cpu", "time": 1417000000.5}, {"value": 3, "name": "web1.load", "time": 1417000000.5}]"#);
        assert_eq!(&payload[..2], [0x78, 0x9c]);
        let got = run(&payload);
        assert_eq!(got.events.len(), 2);
        assert_eq!(
            got.events[0],
            ("web1".into(), "cpu".into(), None, "Gauge(0.5)".into())
        );
    }

    #[test]
    fn bombs_and_garbage_are_rejected() {
        let bomb = compress(&vec![b' '; 4 << 20]);
        assert!(bomb.len() < 10_000);
        assert_eq!(run(&bomb).rejects[0].0, Rejection::Compression);
        let got = run(&compress(b"not json"));
        assert_eq!(got.rejects[0].0, Rejection::Compression);
        // A zlib-looking header that does not inflate is read as text instead.
        let got = run(b"x^y.z:1|c");
        assert_eq!(got.events.len(), 1, "{got:?}");
        // Issue 11, item 2: binary behind a zlib header is a broken stream, not bad text.
        let mut corrupt = compress(br#"[{"value": 1, "name": "a.b"}]"#);
        corrupt[4] ^= 0xff;
        corrupt.push(0xff);
        let got = run(&corrupt);
        assert_eq!(got.rejects.len(), 1, "{got:?}");
        assert_eq!(got.rejects[0].0, Rejection::Compression, "{got:?}");
    }
}
