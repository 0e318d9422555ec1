//! The history's Redis mirror (`--redis redis://127.0.0.1:6379`), for what already reads the
//! classic aggregator's layout: for every event `HINCRBY track:{account}:{type}:{Y}` (field:
//! the month), `track:{account}:{type}:{Y}:{M}` (the day) and `track:{account}:{type}:{Y}:{M}:{D}`
//! (the hour, 0-23), the numbers unpadded and the dates local, as the classic wrote them, and
//! the same under the account `all`; day keys expire after 30 days, as the classic's did.
//!
//! It is fed what each history checkpoint added, and sends it once a second in one MULTI/EXEC
//! pipeline. While Redis is away increments wait, merged, up to [`MAX_PENDING_FIELDS`] fields
//! (past that, counted as dropped), and the connection is retried with the hub clients'
//! backoff. A batch whose fate is unknown (the connection broke while it was sent) is counted
//! as dropped, never sent again: nothing is counted twice.

use super::Output;
use crate::backoff::Retry;
use crate::encode::Outgoing;
use crate::health::{Health, display_url};
use crate::history::{Added, events};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tally_core::{Clock, OutputKind, OutputStatus, SourceState};

/// Distinct hash fields held while Redis is away (about 100 bytes each).
pub const MAX_PENDING_FIELDS: usize = 100_000;
/// Checkpoints queued for the mirror's thread.
const QUEUED_CHECKPOINTS: usize = 64;
/// How often the merged increments are sent.
const SEND_EVERY: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a day's hours live in Redis, as the classic aggregator set it.
const DAY_KEY_SECONDS: i64 = 30 * 24 * 3600;

/// The mirror as an output: its state and counts.
#[derive(Debug)]
pub struct RedisMirror {
    health: Arc<Health>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the history's thread hands checkpoints to.
#[derive(Debug)]
pub struct MirrorFeed {
    queue: SyncSender<Vec<Added>>,
    health: Arc<Health>,
}

impl MirrorFeed {
    /// Says why nothing will come: the history is not kept.
    pub fn nothing_to_mirror(&self, why: &str) {
        self.health.set_state(SourceState::Disconnected);
        self.health.set_note(format!("nothing to mirror: {why}"));
    }

    /// Queues what a checkpoint added; counted as dropped if the mirror is too far behind.
    pub fn offer(&self, added: Vec<Added>) {
        if added.is_empty() {
            return;
        }
        let dropped = events(&added);
        match self.queue.try_send(added) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.health.dropped(dropped),
        }
    }
}

impl RedisMirror {
    /// Starts mirroring to `url` (checked here; the server need not be up yet).
    pub fn start(url: &str, clock: Clock) -> Result<(RedisMirror, MirrorFeed), String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis {}: {e}", display_url(url)))?;
        let health = Arc::new(Health::new(display_url(url), SourceState::Connecting));
        let (queue, checkpoints) = std::sync::mpsc::sync_channel(QUEUED_CHECKPOINTS);
        let mirror = Mirror::new(client, clock, Arc::clone(&health));
        let thread = std::thread::Builder::new()
            .name("tally-redis".into())
            .spawn(move || mirror.run(&checkpoints))
            .map_err(|e| format!("cannot start the Redis mirror: {e}"))?;
        let feed = MirrorFeed {
            queue,
            health: Arc::clone(&health),
        };
        let mirror = RedisMirror {
            health,
            thread: Mutex::new(Some(thread)),
        };
        Ok((mirror, feed))
    }
}

struct Mirror {
    client: redis::Client,
    clock: Clock,
    health: Arc<Health>,
    connection: Option<redis::Connection>,
    retry: Retry,
    /// (key, field) -> increment, merged.
    pending: HashMap<(String, String), i64>,
    day_keys: Vec<String>,
    pending_events: u64,
}

impl Mirror {
    fn new(client: redis::Client, clock: Clock, health: Arc<Health>) -> Self {
        Mirror {
            client,
            clock,
            health,
            connection: None,
            retry: Retry::default(),
            pending: HashMap::new(),
            day_keys: Vec::new(),
            pending_events: 0,
        }
    }

    /// Until the history's thread is gone (tally stopping): then a last send.
    fn run(mut self, checkpoints: &Receiver<Vec<Added>>) {
        let mut next_send = Instant::now() + SEND_EVERY;
        loop {
            match checkpoints.recv_timeout(next_send.saturating_duration_since(Instant::now())) {
                Ok(added) => self.merge(&added),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.retry.now();
                    self.send();
                    if self.health.state() == SourceState::Connected {
                        self.health.set_state(SourceState::Stopped);
                    }
                    return;
                }
            }
            if Instant::now() >= next_send {
                next_send = Instant::now() + SEND_EVERY;
                self.send();
            }
        }
    }

    fn merge(&mut self, added: &[Added]) {
        if self.pending.len() + 3 * added.len() > MAX_PENDING_FIELDS {
            self.health.dropped(events(added));
            let why = format!("more than {MAX_PENDING_FIELDS} fields waiting for Redis: dropping");
            self.health.set_note(why);
            return;
        }
        for row in added {
            let local = self.clock.civil_hour(row.hour);
            let (y, m, d, h) = (local.year, local.month, local.day, local.hour);
            let base = format!("track:{}:{}:{y}", row.account, row.kind);
            let day_key = format!("{base}:{m}:{d}");
            let count = row.count as i64;
            *self.pending.entry((base.clone(), m.to_string())).or_default() += count;
            *self
                .pending
                .entry((format!("{base}:{m}"), d.to_string()))
                .or_default() += count;
            *self.pending.entry((day_key.clone(), h.to_string())).or_default() += count;
            if !self.day_keys.contains(&day_key) {
                self.day_keys.push(day_key);
            }
        }
        self.pending_events += events(added);
    }

    /// Makes sure of the connection (a PING: a server that went away is found out before
    /// any of a batch is on the wire, so the batch waits instead of being lost), then sends
    /// what is pending.
    fn send(&mut self) {
        if let Some(connection) = self.connection.as_mut()
            && let Err(error) = redis::cmd("PING").query::<()>(connection)
        {
            self.lost(&format!("lost the connection: {error}"));
            self.retry.now();
        }
        if self.connection.is_none() && self.retry.due() {
            self.connect();
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if self.pending.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for ((key, field), count) in &self.pending {
            pipe.hincr(key, field, *count).ignore();
        }
        for key in &self.day_keys {
            pipe.expire(key, DAY_KEY_SECONDS).ignore();
        }
        let sent = pipe.query::<()>(connection);
        let events = std::mem::take(&mut self.pending_events);
        self.pending.clear();
        self.day_keys.clear();
        match sent {
            Ok(()) => self.health.published(events, 0),
            // Perhaps applied, perhaps not: never sent again.
            Err(error) => {
                tracing::warn!("Redis mirror: {error}; {events} events not mirrored");
                self.health.dropped(events);
                self.lost(&format!("lost the connection while sending: {error}"));
            }
        }
    }

    fn connect(&mut self) {
        match self.client.get_connection_with_timeout(CONNECT_TIMEOUT) {
            Ok(connection) => {
                let _ = connection.set_read_timeout(Some(CONNECT_TIMEOUT));
                let _ = connection.set_write_timeout(Some(CONNECT_TIMEOUT));
                self.connection = Some(connection);
                self.retry.connected();
                self.health.set_state(SourceState::Connected);
                self.health.set_note(String::new());
            }
            Err(error) => {
                self.health.set_state(SourceState::Disconnected);
                self.health.set_note(format!("cannot connect: {error}"));
                self.retry.failed();
            }
        }
    }

    fn lost(&mut self, why: &str) {
        self.connection = None;
        self.health.set_state(SourceState::Disconnected);
        self.health.set_note(why.to_owned());
        self.retry.failed();
    }
}

impl Output for RedisMirror {
    fn kind(&self) -> OutputKind {
        OutputKind::Redis
    }

    fn publish(&self, _: &mut Outgoing<'_>) {}

    fn status(&self) -> OutputStatus {
        self.health.output_status(self.kind())
    }

    /// Waits for the last send (the history stops first, and its end ends the mirror's).
    fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::Timestamp;

    #[test]
    fn the_status_shows_the_url_without_its_password() {
        let (mirror, feed) = RedisMirror::start("redis://:p@ss@127.0.0.1:1/0", Clock::utc()).expect("starts");
        assert_eq!(mirror.status().address, "redis://127.0.0.1:1/0");
        drop(feed);
        mirror.stop();
    }

    fn mirror() -> Mirror {
        let client = redis::Client::open("redis://127.0.0.1:1").expect("a URL");
        let health = Arc::new(Health::new("redis".into(), SourceState::Connecting));
        Mirror::new(client, Clock::utc(), health)
    }

    fn added(account: &str, hour: u64, count: u64, own: bool) -> Added {
        Added {
            account: account.into(),
            kind: "pageview".into(),
            // 2013-09-05 00:00 UTC, and `hour` hours on.
            hour: Timestamp::from_secs(1_378_339_200 + hour * 3600),
            count,
            own,
        }
    }

    #[test]
    fn increments_merge_under_the_classic_keys_and_the_wait_is_bounded() {
        let mut mirror = mirror();
        mirror.merge(&[added("acme", 7, 2, true), added("all", 7, 2, false)]);
        mirror.merge(&[added("acme", 7, 1, true), added("acme", 30, 5, true)]);
        let field = |key: &str, field: &str| mirror.pending.get(&(key.to_owned(), field.to_owned())).copied();
        assert_eq!(field("track:acme:pageview:2013", "9"), Some(8));
        assert_eq!(field("track:acme:pageview:2013:9", "5"), Some(3));
        assert_eq!(field("track:acme:pageview:2013:9", "6"), Some(5));
        assert_eq!(field("track:acme:pageview:2013:9:5", "7"), Some(3));
        assert_eq!(field("track:all:pageview:2013:9:5", "7"), Some(2));
        assert_eq!(mirror.pending_events, 8, "all's rows are the same events again");
        assert_eq!(mirror.day_keys.len(), 3);

        let flood: Vec<Added> = (0..MAX_PENDING_FIELDS as u64)
            .map(|i| added(&format!("a{i}"), 0, 1, true))
            .collect();
        mirror.merge(&flood);
        assert_eq!(
            mirror.health.output_status(OutputKind::Redis).dropped,
            MAX_PENDING_FIELDS as u64
        );
        assert_eq!(mirror.pending_events, 8, "what waited already is kept");
    }
}
