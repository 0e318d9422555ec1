//! Any payload, through format detection and every decoder, into a real engine: no panic,
//! and every event the decoders produce is recorded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tally_collector::decode::{DecodeOptions, decode};
use tally_collector::ingest::Recording;
use tally_core::{Engine, EngineConfig, Timestamp};

fn engine() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = EngineConfig {
            max_accounts: 100,
            ..EngineConfig::default()
        };
        Engine::new(config, Timestamp::from_secs(1_700_000_000)).expect("valid")
    })
}

fuzz_target!(|payload: &[u8]| {
    let engine = engine();
    let mut recorder = engine.recorder();
    let time = Timestamp::from_secs(1_700_000_001);
    decode(
        payload,
        time,
        &DecodeOptions::default(),
        &mut Recording::new(&mut recorder, time),
    );
});
