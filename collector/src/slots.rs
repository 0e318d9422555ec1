//! Connection slots for every server tally runs (stream listeners, the WebSocket server): a cap
//! on open connections, an idle timeout, and no lock-out.
//!
//! A cap alone lets anyone who opens enough idle connections lock every real client out. So a
//! connection that sends nothing for [`ConnectionLimits::idle`] is closed, and at the cap the
//! connection quiet longest gives way to the newcomer, unless every connection was active in
//! the last [`GIVE_WAY_AFTER`] (then the newcomer is refused: the cap is doing its job). What
//! is refused and what is closed is counted in the server's [`Health`].

use crate::health::Health;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A connection quiet for less than this is never made to give way.
pub const GIVE_WAY_AFTER: Duration = Duration::from_secs(1);

/// How many connections a server holds, and how long one may stay silent (zero: as long
/// as it likes, until a newcomer needs its slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max: usize,
    pub idle: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max: 1024,
            idle: Duration::from_secs(60),
        }
    }
}

/// Lets the process hold as many connections as its servers' caps allow: the soft limit on
/// open files (1,024 on many systems, below one server's default cap) is raised to the hard
/// limit, as Go's runtime does for every program. Returns the limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some(hard),
        Err(_) => Some(soft),
    }
}

/// Why a connection was ended by its server.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Nothing arrived for the idle timeout.
    Idle,
    /// The server was full and this was the connection quiet longest.
    GaveWay,
}

/// The open connections of one server.
#[derive(Debug)]
pub struct Slots {
    limits: ConnectionLimits,
    health: Arc<Health>,
    started: Instant,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// What a server knows about one of its connections.
#[derive(Debug)]
struct Activity {
    /// Milliseconds since the server started, when the connection last sent something.
    last_ms: AtomicU64,
    give_way: Notify,
}

impl Slots {
    pub fn new(limits: ConnectionLimits, health: Arc<Health>) -> Arc<Self> {
        Arc::new(Slots {
            limits,
            health,
            started: Instant::now(),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// The server's counters (what its connections count goes there too).
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A slot for a new connection; at the cap, the one quiet longest gives way. `None` when
    /// every connection is busy (counted as refused).
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let now = self.now_ms();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= self.limits.max {
            let quietest = open
                .iter()
                .min_by_key(|(_, activity)| activity.last_ms.load(Relaxed))
                .map(|(&id, activity)| (id, activity.last_ms.load(Relaxed)));
            match quietest {
                Some((id, last)) if now.saturating_sub(last) >= GIVE_WAY_AFTER.as_millis() as u64 => {
                    // No longer counted from here: `connections` is what `open` holds.
                    if let Some(activity) = open.remove(&id) {
                        activity.give_way.notify_one();
                        self.health.connected(-1);
                    }
                }
                _ => {
                    self.health.refused();
                    self.health
                        .set_note(format!("refused connections: all {} busy", self.limits.max));
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let activity = Arc::new(Activity {
            last_ms: AtomicU64::new(now),
            give_way: Notify::new(),
        });
        open.insert(id, Arc::clone(&activity));
        self.health.connected(1);
        Some(Slot {
            id,
            activity,
            slots: Arc::clone(self),
        })
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    activity: Arc<Activity>,
    slots: Arc<Slots>,
}

impl Slot {
    /// The connection sent something: its idle time starts again.
    pub fn active(&self) {
        self.activity.last_ms.store(self.slots.now_ms(), Relaxed);
    }

    /// Resolves when the connection has to end: silent for the idle timeout, or displaced by a
    /// newcomer. Counted as closed. Make it once per connection and poll it (pinned) in a
    /// `select!` with the reads: it sleeps until the deadline that [`Slot::active`] moves.
    pub async fn ended(&self) -> Ended {
        let idle_ms = self.slots.limits.idle.as_millis() as u64;
        if idle_ms == 0 {
            self.activity.give_way.notified().await;
            self.slots.health.closed_idle();
            return Ended::GaveWay;
        }
        let ended = loop {
            let quiet = self
                .slots
                .now_ms()
                .saturating_sub(self.activity.last_ms.load(Relaxed));
            if quiet >= idle_ms {
                break Ended::Idle;
            }
            let wait = Duration::from_millis(idle_ms - quiet);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.activity.give_way.notified() => break Ended::GaveWay,
            }
        };
        self.slots.health.closed_idle();
        ended
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        // A connection that gave way was uncounted when it was displaced.
        if open.remove(&self.id).is_some() {
            self.slots.health.connected(-1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::SourceState;

    fn slots(max: usize, idle: Duration) -> Arc<Slots> {
        let health = Arc::new(Health::new("test".into(), SourceState::Listening));
        Slots::new(ConnectionLimits { max, idle }, health)
    }

    #[tokio::test]
    async fn a_silent_connection_times_out_unless_the_timeout_is_off() {
        let timed = slots(4, Duration::from_millis(100));
        let slot = timed.admit().expect("room");
        assert_eq!(slot.ended().await, Ended::Idle);
        let patient = slots(1, Duration::ZERO);
        let slot = patient.admit().expect("room");
        let waited = tokio::time::timeout(Duration::from_millis(300), slot.ended()).await;
        assert!(waited.is_err(), "no idle timeout: it stays");
        assert!(patient.admit().is_none(), "busy within the last second: refused");
        tokio::time::sleep(GIVE_WAY_AFTER).await;
        let newcomer = patient.admit().expect("the quiet one gives way");
        assert_eq!(slot.ended().await, Ended::GaveWay);
        drop((slot, newcomer));
        let status = patient.health().source_status(tally_core::SourceKind::Tcp);
        assert_eq!(
            (status.refused, status.closed_idle, status.connections),
            (Some(1), Some(1), Some(0))
        );
    }
}
