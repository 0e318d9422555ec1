//! The history as an output: a thread that writes what the engine counted to the state
//! directory's database every `--checkpoint-interval`, and once more when tally stops (after
//! the sources, so that nothing they counted is left out). It reads the engine, so ingest
//! tees nothing to it.

use super::Output;
use super::periodic::Periodic;
use crate::encode::Outgoing;
use crate::health::{Health, now};
use crate::history::{Checkpointer, StateSettings, Store};
use crate::output::redis::MirrorFeed;
use std::sync::Arc;
use tally_core::{Clock, Engine, OutputKind, OutputStatus, SourceState};

#[derive(Debug)]
pub struct HistoryWriter {
    health: Arc<Health>,
    /// None when the history cannot be kept.
    thread: Option<Periodic>,
}

impl HistoryWriter {
    /// Starts keeping history in `settings.dir`; what each checkpoint added goes on to
    /// `mirror`, if any. When it cannot be kept (another tally has the directory, a newer
    /// tally's database, no room), tally runs on without: the output's state and note say
    /// why, and so does the log.
    pub fn start(
        engine: &Arc<Engine>,
        settings: &StateSettings,
        clock: Clock,
        mirror: Option<MirrorFeed>,
    ) -> Self {
        let path = settings.dir.join(crate::history::DATABASE);
        let health = Arc::new(Health::new(path.display().to_string(), SourceState::Connected));
        let unusable = |why: String| {
            if let Some(mirror) = &mirror {
                mirror.nothing_to_mirror(&why);
            }
            HistoryWriter::unusable(&health, why)
        };
        if !engine.keeps_hours() {
            return unusable("no resolution's buckets divide an hour: no history kept".to_owned());
        }
        let store = match Store::open(&settings.dir) {
            Ok((store, warning)) => {
                if let Some(warning) = warning {
                    tracing::warn!("{warning}");
                    health.set_note(warning);
                }
                store
            }
            Err(error) => return unusable(error.to_string()),
        };
        let keep_hours_ms = settings.keep_hours.as_millis() as u64;
        let mut checkpointer = Checkpointer::new(Arc::clone(engine), store, clock, keep_hours_ms);
        let writing = Arc::clone(&health);
        let work = move || checkpoint(&mut checkpointer, mirror.as_ref(), &writing);
        match Periodic::start("tally-history", settings.interval, work) {
            Ok(thread) => HistoryWriter {
                health,
                thread: Some(thread),
            },
            Err(error) => {
                HistoryWriter::unusable(&health, format!("cannot start the history's thread: {error}"))
            }
        }
    }

    fn unusable(health: &Arc<Health>, why: String) -> Self {
        tracing::warn!("history: {why}");
        health.set_state(SourceState::Disconnected);
        health.set_note(why);
        HistoryWriter {
            health: Arc::clone(health),
            thread: None,
        }
    }
}

/// One checkpoint, its outcome in `health`, what it added passed on to `mirror`.
fn checkpoint(checkpointer: &mut Checkpointer, mirror: Option<&MirrorFeed>, health: &Health) {
    match checkpointer.checkpoint(now()) {
        Ok(written) => {
            health.published(written.events(), 0);
            if let Some(mirror) = mirror {
                mirror.offer(written.added);
            }
            if health.state() != SourceState::Connected {
                health.set_state(SourceState::Connected);
                health.set_note(String::new());
            }
        }
        // Kept in memory: the next checkpoint writes it (the database may be full, or
        // locked by a reader for a moment).
        Err(error) => {
            tracing::warn!("history: cannot write: {error}");
            health.set_state(SourceState::Disconnected);
            health.set_note(format!("cannot write: {error}"));
        }
    }
}

impl Output for HistoryWriter {
    fn kind(&self) -> OutputKind {
        OutputKind::History
    }

    fn publish(&self, _: &mut Outgoing<'_>) {}

    fn status(&self) -> OutputStatus {
        self.health.output_status(self.kind())
    }

    /// Writes what is left, then stops.
    fn stop(&self) {
        if let Some(thread) = &self.thread {
            thread.stop();
        }
        if self.health.state() == SourceState::Connected {
            self.health.set_state(SourceState::Stopped);
        }
    }
}
