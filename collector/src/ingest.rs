//! The one way into the engine, shared by every input: receive a batch, stamp its arrival,
//! decode each payload into a [`Recording`] (which records events and tees them to the
//! outputs), flush the recorder, and count the batch in the source's [`Health`].
//!
//! Inputs differ only in how they receive; [`Intake::batch`] is the rest. Outputs are
//! [`Output`]s: this layer knows the trait, `output/` the implementations.

use crate::decode::{self, DecodeOptions, Sink};
use crate::encode::Outgoing;
use crate::health::{Health, now};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use tally_core::{Engine, Event, Notice, OutputKind, OutputStatus, Recorder, Rejection, Timestamp, Value};

/// Where accepted events are re-published (`tally hub`). Publishing never blocks: an output
/// that cannot keep up drops and counts.
pub trait Output: Send + Sync + fmt::Debug {
    fn kind(&self) -> OutputKind;
    fn publish(&self, event: &mut Outgoing<'_>);
    fn status(&self) -> OutputStatus;
    /// Waits for the output's threads to end (the stop flag is set first) and marks it
    /// stopped.
    fn stop(&self);
}

/// The outputs every accepted event goes to; empty unless tally runs as a hub.
pub type Outputs = Arc<[Arc<dyn Output>]>;

/// What every input feeds, by which rules, and when to stop.
#[derive(Clone, Debug)]
pub struct Ingest {
    pub engine: Arc<Engine>,
    pub decode: DecodeOptions,
    pub outputs: Outputs,
    /// Set once to stop every input and output.
    pub stop: Arc<AtomicBool>,
}

impl Ingest {
    /// Into `engine` by `decode`'s rules, with no outputs.
    pub fn new(engine: Arc<Engine>, decode: DecodeOptions) -> Self {
        Ingest {
            engine,
            decode,
            outputs: Arc::new([]),
            stop: Arc::default(),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// A receiving thread's own way in, counted in `health`.
    pub fn intake(&self, health: &Arc<Health>) -> Intake {
        self.intake_caching(health, Recorder::MAX_CACHED_NAMES)
    }

    /// A way in whose recorder remembers at most `names` names (see
    /// [`tally_core::Engine::recorder_caching`]).
    pub fn intake_caching(&self, health: &Arc<Health>, names: usize) -> Intake {
        Intake {
            recorder: self.engine.recorder_caching(names),
            health: Arc::clone(health),
            decode: self.decode.clone(),
            outputs: Arc::clone(&self.outputs),
            deferring: false,
        }
    }

    /// Counts one message that was refused before it could be decoded (a ZeroMQ message
    /// without a payload, a WebSocket frame over the limit), with what it held as evidence.
    pub fn reject(&self, health: &Health, reason: Rejection, detail: &str, evidence: &[u8]) {
        let time = now();
        self.engine.reject(reason, detail, evidence, time);
        health.received(1, evidence.len() as u64, 0, 1, time);
    }
}

/// One receiver's recorder, health and rules.
#[derive(Debug)]
pub struct Intake {
    recorder: Recorder,
    health: Arc<Health>,
    decode: DecodeOptions,
    outputs: Outputs,
    /// Publishes counts every [`tally_core::PUBLISH_EVERY_MS`] rather than after each batch.
    deferring: bool,
}

impl Intake {
    /// An intake whose batches publish their counts every [`tally_core::PUBLISH_EVERY_MS`]
    /// instead of each one at its end: for a receiver of many small batches back to back (a
    /// busy UDP socket), which must call [`Intake::publish`] when its input goes quiet.
    pub fn deferring(self) -> Self {
        Intake {
            deferring: true,
            ..self
        }
    }

    /// Publishes what the recorder holds (a deferring receiver whose input went quiet).
    pub fn publish(&mut self) {
        self.recorder.flush();
    }

    /// Publishes what the recorder holds if it is time to (a deferring receiver whose input
    /// ran dry for a moment).
    pub fn publish_if_due(&mut self) {
        self.recorder.publish_if_due(now());
    }

    /// One receive batch: `fill` decodes what arrived into the [`Batch`]; then the recorder
    /// flushes to the engine and the health counts the batch (if anything came).
    pub fn batch<R>(&mut self, fill: impl FnOnce(&mut Batch<'_>) -> R) -> R {
        let time = now();
        let mut batch = Batch {
            sink: Recording::new(&mut self.recorder, time).tee(&self.outputs),
            decode: &self.decode,
            messages: 0,
            bytes: 0,
        };
        let result = fill(&mut batch);
        let Batch {
            sink: Recording { events, bad, .. },
            messages,
            bytes,
            ..
        } = batch;
        if self.deferring {
            self.recorder.publish_if_due(time);
        } else {
            self.recorder.flush();
        }
        if messages > 0 || bytes > 0 || bad > 0 {
            self.health.received(messages, bytes, events, bad, time);
        }
        result
    }
}

/// What arrived in one receive, being decoded.
#[derive(Debug)]
pub struct Batch<'a> {
    sink: Recording<'a>,
    decode: &'a DecodeOptions,
    messages: u64,
    bytes: u64,
}

impl Batch<'_> {
    /// Decodes one payload (a datagram, a line, a hub message) and counts it as a message.
    pub fn decode(&mut self, payload: &[u8]) {
        decode::decode(payload, self.sink.time, self.decode, &mut self.sink);
        self.messages += 1;
    }

    /// Loads what recording `payloads` will look up first (the pair of each one's first
    /// StatsD line), without decoding them: called on a batch before [`Batch::decode`] is on
    /// any of it, so that their cache misses overlap (see [`Recorder::warm`]).
    pub fn warm<'p>(&self, payloads: impl IntoIterator<Item = &'p [u8]>) {
        if self.decode.tokens.is_none() {
            self.sink
                .recorder
                .warm(payloads.into_iter().filter_map(decode::first_bucket));
        }
    }

    /// Counts bytes received (what the socket gave, which for a stream is not line by line).
    pub fn received(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }

    /// Rejects what cannot be a payload (a line over the limit), with it as evidence.
    pub fn reject(&mut self, reason: Rejection, detail: &str, evidence: &[u8]) {
        self.sink.reject(reason, detail, evidence);
    }

    /// Decodes `payload` like [`Batch::decode`], and says what became of it: the events
    /// counted, the rejections, and the first few reasons (for a client that waits for an
    /// answer, such as an HTTP POST).
    pub fn decode_reporting(&mut self, payload: &[u8]) -> Outcome {
        let (events, bad) = (self.sink.events, self.sink.bad);
        let mut reporting = Reporting {
            inner: &mut self.sink,
            reasons: vec![],
        };
        decode::decode(payload, reporting.inner.time, self.decode, &mut reporting);
        let reasons = reporting.reasons;
        self.messages += 1;
        Outcome {
            accepted: self.sink.events - events,
            rejected: self.sink.bad - bad,
            reasons,
        }
    }
}

/// What became of one payload (see [`Batch::decode_reporting`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: u64,
    pub rejected: u64,
    /// The first [`REPORTED_REASONS`] rejections, as `reason: detail`.
    pub reasons: Vec<String>,
}

/// How many rejections an [`Outcome`] spells out.
pub const REPORTED_REASONS: usize = 8;

/// Passes everything on to the recording sink, noting the first rejections' reasons.
struct Reporting<'r, 'a> {
    inner: &'r mut Recording<'a>,
    reasons: Vec<String>,
}

impl Sink for Reporting<'_, '_> {
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
        if self.reasons.len() < REPORTED_REASONS {
            self.reasons.push(format!("{}: {detail}", reason.as_str()));
        }
        self.inner.reject(reason, detail, payload);
    }
}

/// Records decoded events and counts rejections, with the payload as evidence, in the
/// recorder's engine; and tees every event to the outputs.
#[derive(Debug)]
pub struct Recording<'a> {
    recorder: &'a mut Recorder,
    time: Timestamp,
    outputs: &'a [Arc<dyn Output>],
    pub events: u64,
    pub bad: u64,
}

impl<'a> Recording<'a> {
    /// Rejections are stamped with `time`, the payloads' arrival.
    pub fn new(recorder: &'a mut Recorder, time: Timestamp) -> Self {
        Recording {
            recorder,
            time,
            outputs: &[],
            events: 0,
            bad: 0,
        }
    }

    /// Also publishes every event to `outputs`.
    pub fn tee(self, outputs: &'a [Arc<dyn Output>]) -> Self {
        Recording { outputs, ..self }
    }
}

impl Recording<'_> {
    /// Tees an event (already recorded) to the outputs, and counts it.
    fn recorded(&mut self, event: &Event<'_>) {
        if !self.outputs.is_empty() {
            let mut outgoing = Outgoing::new(event);
            for output in self.outputs {
                output.publish(&mut outgoing);
            }
        }
        self.events += 1;
    }
}

impl Sink for Recording<'_> {
    fn event(&mut self, event: &Event<'_>) {
        self.recorder.record(event);
        self.recorded(event);
    }

    fn spelled_event(&mut self, event: &Event<'_>, spelling: &str) {
        self.recorder.record_spelled(event, spelling);
        self.recorded(event);
    }

    fn known_event(&mut self, spelling: &str, value: &Value<'_>, time: Timestamp) -> bool {
        // Outputs publish an event's names: it is spelled out for them.
        if !self.outputs.is_empty() || !self.recorder.record_known(spelling, value, time) {
            return false;
        }
        self.events += 1;
        true
    }

    fn notice(&mut self, notice: Notice) {
        self.recorder.engine().notice(notice);
    }

    fn reject(&mut self, reason: Rejection, detail: &str, payload: &[u8]) {
        self.recorder.engine().reject(reason, detail, payload, self.time);
        self.bad += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tally_core::{EngineConfig, SnapshotRequest, SourceKind, SourceState};

    /// An output that keeps what it was given.
    #[derive(Debug, Default)]
    struct Kept(Mutex<Vec<String>>);

    impl Output for Kept {
        fn kind(&self) -> OutputKind {
            OutputKind::ServeWs
        }

        fn publish(&self, event: &mut Outgoing<'_>) {
            let json = event.hub_json().to_owned();
            self.0.lock().expect("unpoisoned").push(json);
        }

        fn status(&self) -> OutputStatus {
            Health::new(String::new(), SourceState::Listening).output_status(self.kind())
        }

        fn stop(&self) {}
    }

    #[test]
    fn a_batch_records_tees_and_counts_once() {
        let engine = Engine::new(EngineConfig::default(), now()).expect("engine");
        let kept = Arc::new(Kept::default());
        let mut ingest = Ingest::new(Arc::clone(&engine), DecodeOptions::default());
        ingest.outputs = Arc::new([Arc::clone(&kept) as Arc<dyn Output>]);
        let health = Arc::new(Health::new("test".into(), SourceState::Listening));
        let mut intake = ingest.intake(&health);
        intake.batch(|batch| {
            for payload in [&b"acme.x:1|c\nacme.y:2|c"[..], b"{not json"] {
                batch.decode(payload);
                batch.received(payload.len());
            }
        });
        intake.batch(|_| {});
        let status = health.source_status(SourceKind::Udp);
        assert_eq!(
            (status.received, status.events, status.bad, status.bytes),
            (2, 2, 1, 30)
        );
        let snapshot = engine.snapshot(&SnapshotRequest::default(), now());
        assert_eq!((snapshot.totals.total, snapshot.totals.rejected), (3, 1));
        let published = kept.0.lock().expect("unpoisoned");
        assert_eq!(published.len(), 2);
        assert!(published[1].contains(r#""count":2"#), "{published:?}");
    }
}
