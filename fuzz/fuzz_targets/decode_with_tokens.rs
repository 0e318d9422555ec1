//! Any payload through the decoders with auth on: no panic, and no kept evidence ever holds
//! the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use tally_collector::decode::{DecodeOptions, Sink, Tokens, decode};
use tally_core::{Event, Rejection, Timestamp};

const TOKEN: &str = "s3cr3t";

struct Evidence;

impl Sink for Evidence {
    fn event(&mut self, _: &Event<'_>) {}

    fn reject(&mut self, _: Rejection, detail: &str, payload: &[u8]) {
        assert!(!detail.contains(TOKEN), "token in the detail: {detail}");
        assert!(
            !payload.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "token in the payload"
        );
    }
}

fuzz_target!(|payload: &[u8]| {
    let options = DecodeOptions {
        tokens: Some(Arc::new(Tokens::parse(TOKEN))),
        ..DecodeOptions::default()
    };
    decode(payload, Timestamp::from_secs(1), &options, &mut Evidence);
});
