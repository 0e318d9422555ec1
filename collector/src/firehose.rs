//! The SSE firehose's events: every accepted event in the classic hub's JSON, numbered, for
//! the HTTP server's `GET /firehose` (`tally hub --http`, or any tally with `--serve-sse`). The
//! ingest side publishes through `output::sse`; the HTTP server serves clients from here.
//!
//! Better than the classic hub, whose one slow client stalled every client: clients read
//! from a bounded broadcast ring, so publishing never waits; a client that falls
//! [`SSE_CLIENT_BACKLOG`] events behind is cut off and counted (as `dropped`), while the others
//! keep up. Every event has an `id:`; a client that comes back with `Last-Event-ID` first gets
//! what it missed from the newest [`SSE_RESUME_BACKLOG`] events. A comment every
//! [`SSE_HEARTBEAT`] (or half the idle timeout, if shorter) keeps proxies and the idle timeout
//! from closing a quiet stream; a client that stops reading falls idle and is closed at the
//! idle timeout, or cut off sooner when it falls too far behind. Who may read (tokens,
//! origins) and the connections' slots are the HTTP server's.

use crate::health::Health;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_core::SourceState;
use tokio::sync::broadcast;

/// Events a client may fall behind before it is cut off.
pub const SSE_CLIENT_BACKLOG: usize = 8192;
/// The newest events kept for clients that resume with `Last-Event-ID`.
pub const SSE_RESUME_BACKLOG: usize = 4096;
/// A comment line this often when nothing else is sent.
pub const SSE_HEARTBEAT: Duration = Duration::from_secs(15);

/// One published event: its id, and its JSON.
pub type Numbered = (u64, Arc<str>);

#[derive(Debug)]
pub struct Firehose {
    events: broadcast::Sender<Numbered>,
    /// The newest events, and the next id: under one lock, so that a client resuming gets
    /// what it missed and then the live stream without a gap or a repeat.
    recent: Mutex<Recent>,
    health: Arc<Health>,
}

#[derive(Debug, Default)]
struct Recent {
    events: VecDeque<Numbered>,
    next_id: u64,
}

impl Firehose {
    /// The firehose served at `address` (shown in its status).
    pub fn new(address: &str) -> Self {
        let (events, _) = broadcast::channel(SSE_CLIENT_BACKLOG);
        Firehose {
            events,
            recent: Mutex::new(Recent {
                events: VecDeque::with_capacity(SSE_RESUME_BACKLOG),
                next_id: 1,
            }),
            health: Arc::new(Health::new(
                format!("http://{address}/firehose"),
                SourceState::Listening,
            )),
        }
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Numbers `json` and sends it to every client, keeping it for those that resume.
    pub fn publish(&self, json: Arc<str>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let id = recent.next_id;
        recent.next_id += 1;
        if recent.events.len() == SSE_RESUME_BACKLOG {
            recent.events.pop_front();
        }
        recent.events.push_back((id, Arc::clone(&json)));
        self.health.published(1, json.len() as u64);
        // No clients is not an error worth a count: nobody is watching.
        let _ = self.events.send((id, json));
    }

    /// A new client's stream: the events after `last_seen` that are still kept (none without
    /// it), then everything published from now on.
    pub fn subscribe(&self, last_seen: Option<u64>) -> (Vec<Numbered>, broadcast::Receiver<Numbered>) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let missed = match last_seen {
            Some(seen) => (recent.events.iter())
                .filter(|(id, _)| *id > seen)
                .cloned()
                .collect(),
            None => vec![],
        };
        (missed, self.events.subscribe())
    }
}

/// An event as a client reads it: `id:` and `data:` lines, or with `?raw` the JSON alone.
pub fn frame(id: u64, json: &str, raw: bool) -> String {
    match raw {
        true => format!("{json}\n"),
        false => format!("id: {id}\ndata: {json}\n\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(firehose: &Firehose, account: &str) {
        firehose.publish(Arc::from(format!("{{\"account\":\"{account}\"}}")));
    }

    #[test]
    fn a_client_resumes_after_the_last_event_it_saw() {
        let firehose = Firehose::new("127.0.0.1:8080");
        for account in ["a", "b", "c"] {
            publish(&firehose, account);
        }
        let (missed, mut live) = firehose.subscribe(Some(1));
        let ids: Vec<u64> = missed.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [2, 3]);
        assert!(missed[0].1.contains("\"account\":\"b\""), "{}", missed[0].1);
        publish(&firehose, "d");
        assert_eq!(
            live.try_recv().map(|(id, _)| id),
            Ok(4),
            "then live, no gap, no repeat"
        );
        assert!(firehose.subscribe(None).0.is_empty(), "a new client starts now");
        assert_eq!(frame(7, "{}", false), "id: 7\ndata: {}\n\n");
        assert_eq!(frame(7, "{}", true), "{}\n");
    }
}
