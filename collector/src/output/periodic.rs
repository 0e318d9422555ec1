//! An output's own thread that does its work every interval, and once more when told to stop
//! (so that what came in last is not left behind): the history's checkpoints, Graphite's
//! flushes.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting thread looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
pub struct Periodic {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Periodic {
    /// Runs `work` every `interval` on a thread named `name`, and a last time on [`stop`].
    ///
    /// [`stop`]: Periodic::stop
    pub fn start(
        name: &str,
        interval: Duration,
        mut work: impl FnMut() + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
            let stop = Arc::clone(&stop);
            move || loop {
                let due = Instant::now() + interval;
                while Instant::now() < due && !stop.load(Relaxed) {
                    std::thread::sleep(STOP_CHECK.min(due.saturating_duration_since(Instant::now())));
                }
                let stopping = stop.load(Relaxed);
                work();
                if stopping {
                    return;
                }
            }
        })?;
        Ok(Periodic {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Does the work a last time and waits for it.
    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_work_runs_every_interval_and_once_more_on_stop() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let periodic = Periodic::start("test", Duration::from_secs(3600), move || {
            counted.fetch_add(1, Relaxed);
        })
        .expect("starts");
        assert_eq!(runs.load(Relaxed), 0, "not before the interval");
        periodic.stop();
        assert_eq!(runs.load(Relaxed), 1, "once more on stop, waited for");
        periodic.stop();
        assert_eq!(runs.load(Relaxed), 1);
    }
}
