//! The history as an output: a thread that writes what the engine counted to the state
//! directory's database every `--checkpoint-interval`, and once more when tally stops (after
//! the sources, so that nothing they counted is left out). It reads the engine, so ingest
//! tees nothing to it.

use super::Output;
use crate::encode::Outgoing;
use crate::health::{Health, now};
use crate::history::{Checkpointer, StateSettings, Store};
use crate::output::redis::MirrorFeed;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tally_core::{Clock, Engine, OutputKind, OutputStatus, SourceState};

/// How often the writing thread looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct HistoryWriter {
    health: Arc<Health>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl HistoryWriter {
    /// Starts keeping history in `settings.dir`. When it cannot be (another tally has the
    /// directory, a newer tally's database, no room), tally runs on without: the output's
    /// state and note say why, and so does the log.
    /// What each checkpoint added goes on to `mirror`, if any.
    pub fn start(
        engine: &Arc<Engine>,
        settings: &StateSettings,
        clock: Clock,
        mirror: Option<MirrorFeed>,
    ) -> Self {
        let path = settings.dir.join(crate::history::DATABASE);
        let health = Arc::new(Health::new(path.display().to_string(), SourceState::Connected));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = |thread| HistoryWriter {
            health: Arc::clone(&health),
            stop: Arc::clone(&stop),
            thread: Mutex::new(thread),
        };
        let unusable = |why: String| {
            if let Some(mirror) = &mirror {
                mirror.nothing_to_mirror(&why);
            }
            writer(None).unusable(why)
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
        let checkpointer = Checkpointer::new(Arc::clone(engine), store, clock, keep_hours_ms);
        let thread = std::thread::Builder::new().name("tally-history".into()).spawn({
            let (health, stop, interval) = (Arc::clone(&health), Arc::clone(&stop), settings.interval);
            move || write_until_stopped(checkpointer, mirror, &health, &stop, interval)
        });
        match thread {
            Ok(thread) => writer(Some(thread)),
            Err(error) => writer(None).unusable(format!("cannot start the history's thread: {error}")),
        }
    }

    fn unusable(self, why: String) -> Self {
        tracing::warn!("history: {why}");
        self.health.set_state(SourceState::Disconnected);
        self.health.set_note(why);
        self
    }
}

fn write_until_stopped(
    mut checkpointer: Checkpointer,
    mirror: Option<MirrorFeed>,
    health: &Health,
    stop: &AtomicBool,
    interval: Duration,
) {
    loop {
        let due = Instant::now() + interval;
        while Instant::now() < due && !stop.load(Relaxed) {
            std::thread::sleep(STOP_CHECK.min(due.saturating_duration_since(Instant::now())));
        }
        let stopping = stop.load(Relaxed);
        match checkpointer.checkpoint(now()) {
            Ok(written) => {
                health.published(written.events, 0);
                if let Some(mirror) = &mirror {
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
        if stopping {
            return;
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
        self.stop.store(true, Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        if self.health.state() == SourceState::Connected {
            self.health.set_state(SourceState::Stopped);
        }
    }
}
