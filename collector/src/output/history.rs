//! The state as an output: a thread that writes what the engine counted (the history) and
//! holds (the windows) to the state directory's database every `--checkpoint-interval`, and
//! once more when tally stops (after the sources, so that nothing they counted is left out).
//! It reads the engine, so ingest tees nothing to it.

use super::Output;
use super::periodic::Periodic;
use crate::encode::Outgoing;
use crate::health::{Health, now};
use crate::history::{Checkpointer, StateError, StateSettings};
use crate::output::redis::MirrorFeed;
use std::sync::Arc;
use tally_core::{OutputKind, OutputStatus, SourceState};

#[derive(Debug)]
pub struct HistoryWriter {
    health: Arc<Health>,
    /// None when the history cannot be kept.
    thread: Option<Periodic>,
}

impl HistoryWriter {
    /// Starts checkpointing what `opened` restored (see [`Checkpointer::open`]) to its
    /// database every `interval`; what each checkpoint added goes on to `mirror`, if any. When
    /// the state cannot be kept (another tally has the directory, a newer tally's database, no
    /// room), tally runs on without: the output's state and note say why, and so does the log.
    pub fn start(
        opened: Result<(Checkpointer, Vec<String>), StateError>,
        settings: &StateSettings,
        mirror: Option<MirrorFeed>,
    ) -> Self {
        let path = settings.dir.join(crate::history::DATABASE);
        let health = Arc::new(Health::new(path.display().to_string(), SourceState::Connected));
        let mut checkpointer = match opened {
            Ok((checkpointer, warnings)) => {
                for warning in &warnings {
                    tracing::warn!("{warning}");
                }
                if !warnings.is_empty() {
                    health.set_note(warnings.join("; "));
                }
                checkpointer
            }
            Err(error) => {
                if let Some(mirror) = &mirror {
                    mirror.nothing_to_mirror(&error.to_string());
                }
                return HistoryWriter::unusable(&health, error.to_string());
            }
        };
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
