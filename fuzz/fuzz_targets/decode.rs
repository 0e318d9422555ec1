//! Any payload, through format detection and every decoder, into a real engine: no panic,
//! and every event the decoders produce is recorded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tally_collector::decode::{DecodeOptions, Sink, decode};
use tally_core::{Engine, EngineConfig, Event, Recorder, Rejection, Timestamp};

struct Recording<'a> {
    recorder: &'a mut Recorder,
    engine: &'a Engine,
}

impl Sink for Recording<'_> {
    fn event(&mut self, event: &Event<'_>) {
        self.recorder.record(event);
    }

    fn reject(&mut self, reason: Rejection, detail: &str, payload: &[u8]) {
        self.engine.reject(reason, detail, payload, Timestamp::from_secs(1_700_000_000));
    }
}

fn engine() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = EngineConfig { max_accounts: 100, ..EngineConfig::default() };
        Engine::new(config, Timestamp::from_secs(1_700_000_000)).expect("valid")
    })
}

fuzz_target!(|payload: &[u8]| {
    let engine = engine();
    let mut recorder = engine.recorder();
    let mut sink = Recording { recorder: &mut recorder, engine };
    decode(payload, Timestamp::from_secs(1_700_000_001), &DecodeOptions::default(), &mut sink);
});
