//! Graphite (`--graphite HOST:2003`): every `--graphite-interval` (10 s), what the engine
//! counted in carbon's plaintext protocol (`path value timestamp`), named as etsy statsd names
//! them: `stats.counters.<account>.<type>.count` and `.rate` (events since the last flush, and
//! per second), `stats.timers.<...>.count` (exact) and `.mean`, `.upper`, `.upper_90` (over
//! the finest buckets since the last flush), `stats.gauges.<...>` and `stats.sets.<...>.count`; `--graphite-prefix P` makes
//! them `stats.P.counters...`, as statsd's `globalPrefix` does. Series that did not move in
//! an interval send nothing (statsd's `deleteIdleStats`).
//!
//! One TCP connection, reconnecting with the hub clients' backoff. While carbon is away the
//! lines wait, up to [`MAX_WAITING_BYTES`] (then the oldest flush is counted as dropped), and
//! go out when it is back: carbon keeps one value per path and timestamp, so a flush sent
//! again after a broken write counts nothing twice.

use super::Output;
use super::periodic::Periodic;
use crate::backoff::Retry;
use crate::encode::Outgoing;
use crate::health::{Health, now};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tally_core::{
    CompactString, Engine, OutputKind, OutputStatus, SnapshotRequest, SourceState, Timestamp, Window,
};

/// Plaintext lines held while carbon is away.
pub const MAX_WAITING_BYTES: usize = 8 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how often (`--graphite`, `--graphite-interval`, `--graphite-prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphiteSettings {
    /// `HOST:PORT`, looked up at each connection.
    pub address: String,
    pub interval: Duration,
    pub prefix: Option<String>,
}

#[derive(Debug)]
pub struct GraphiteWriter {
    health: Arc<Health>,
    thread: Periodic,
}

impl GraphiteWriter {
    pub fn start(engine: &Arc<Engine>, settings: &GraphiteSettings) -> std::io::Result<Self> {
        let health = Arc::new(Health::new(
            format!("tcp://{}", settings.address),
            SourceState::Connecting,
        ));
        let mut flusher = Flusher::new(engine, settings.clone(), Arc::clone(&health));
        let thread = Periodic::start("tally-graphite", settings.interval, move || flusher.flush())?;
        Ok(GraphiteWriter { health, thread })
    }
}

/// One flush: its lines, and how many metrics they are.
struct Flush {
    lines: String,
    metrics: u64,
}

struct Flusher {
    engine: Arc<Engine>,
    settings: GraphiteSettings,
    health: Arc<Health>,
    /// Each account x type's total at the last flush.
    totals: HashMap<(CompactString, Arc<str>), u64>,
    last_flush: Option<Timestamp>,
    waiting: VecDeque<Flush>,
    waiting_bytes: usize,
    connection: Option<TcpStream>,
    retry: Retry,
}

/// A name as a Graphite path segment: statsd's rules (spaces to `_`, `/` to `-`, and nothing
/// but letters, digits, `_`, `-` and `.`).
fn path_segment(name: &str) -> String {
    (name.chars())
        .filter_map(|c| match c {
            ' ' | '\t' => Some('_'),
            '/' => Some('-'),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') => Some(c),
            _ => None,
        })
        .collect()
}

impl Flusher {
    fn new(engine: &Arc<Engine>, settings: GraphiteSettings, health: Arc<Health>) -> Self {
        Flusher {
            engine: Arc::clone(engine),
            settings,
            health,
            totals: HashMap::new(),
            last_flush: None,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            connection: None,
            retry: Retry::default(),
        }
    }

    /// What moved since the last flush, sent with whatever still waits.
    fn flush(&mut self) {
        let flush = self.lines(now());
        self.wait_in_line(flush);
        self.send();
    }

    /// The window that timers and sets are read over: since the last flush (and the whole
    /// bucket it fell in), in the finest buckets.
    fn window(&self, at: Timestamp) -> Window {
        let finest = self.engine.config().resolutions[0];
        let since = match self.last_flush {
            Some(last) => at.as_millis().saturating_sub(last.as_millis()),
            None => self.settings.interval.as_millis() as u64,
        };
        let buckets = (since.div_ceil(finest.bucket_ms) + 1).clamp(1, u64::from(finest.buckets));
        Window {
            level: 0,
            buckets: buckets as u32,
        }
    }

    /// What moved since the last flush, as plaintext lines stamped `at`.
    fn lines(&mut self, at: Timestamp) -> Flush {
        let request = SnapshotRequest {
            window: self.window(at),
            top: usize::MAX,
            detail: usize::MAX,
            percentiles: true,
            ..SnapshotRequest::default()
        };
        let snapshot = self.engine.snapshot(&request, at);
        let seconds = match self.last_flush {
            Some(last) => (at.as_millis().saturating_sub(last.as_millis()) as f64 / 1000.0).max(0.001),
            None => self.settings.interval.as_secs_f64(),
        };
        self.last_flush = Some(at);
        let stamp = at.as_millis() / 1000;
        let root = match &self.settings.prefix {
            Some(prefix) => format!("stats.{}", path_segment(prefix)),
            None => "stats".to_owned(),
        };
        let mut flush = Flush {
            lines: String::new(),
            metrics: 0,
        };
        let mut line = |path: String, value: f64| {
            let _ = writeln!(flush.lines, "{path} {value} {stamp}");
            flush.metrics += 1;
        };
        for account in &snapshot.accounts {
            let Some(detail) = &account.detail else { continue };
            for kind in &detail.types {
                let name = format!("{}.{}", path_segment(&account.name), path_segment(&kind.name));
                let key = (account.name.clone(), Arc::clone(&kind.name));
                let before = self.totals.insert(key, kind.total).unwrap_or(0);
                let moved = kind.total.saturating_sub(before);
                if moved == 0 {
                    continue;
                }
                // As statsd keeps a key to one kind of metric: a type with timings, a gauge or
                // set members is that, and a counter otherwise. A timer's count is exact (the
                // events since the last flush); its mean and uppers are over the window.
                match (&kind.timing, kind.gauge, kind.distinct) {
                    (Some(timing), ..) => {
                        line(format!("{root}.timers.{name}.mean"), timing.mean);
                        line(format!("{root}.timers.{name}.upper"), timing.max);
                        line(format!("{root}.timers.{name}.upper_90"), timing.p90);
                        line(format!("{root}.timers.{name}.count"), moved as f64);
                    }
                    (None, Some(gauge), _) => line(format!("{root}.gauges.{name}"), gauge),
                    (None, None, Some(distinct)) => {
                        line(format!("{root}.sets.{name}.count"), distinct as f64)
                    }
                    (None, None, None) => {
                        line(format!("{root}.counters.{name}.count"), moved as f64);
                        line(format!("{root}.counters.{name}.rate"), moved as f64 / seconds);
                    }
                }
            }
        }
        flush
    }

    /// Queues a flush; past the bound the oldest waiting ones are dropped and counted.
    fn wait_in_line(&mut self, flush: Flush) {
        if flush.metrics == 0 {
            return;
        }
        self.waiting_bytes += flush.lines.len();
        self.waiting.push_back(flush);
        while self.waiting_bytes > MAX_WAITING_BYTES {
            let Some(oldest) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_bytes -= oldest.lines.len();
            self.health.dropped(oldest.metrics);
            let why = format!(
                "carbon away: more than {} MiB waiting, oldest dropped",
                MAX_WAITING_BYTES >> 20
            );
            self.health.set_note(why);
        }
    }

    /// Sends what waits, oldest first; what could not be sent waits for the next time.
    fn send(&mut self) {
        // Carbon never writes on this connection: anything to read is its end. Found out
        // here, before a flush goes into a socket nobody reads.
        if self.connection.as_ref().is_some_and(|c| !open(c)) {
            self.lost("carbon closed the connection");
            self.retry.now();
        }
        if self.connection.is_none() && self.retry.due() {
            match connect(&self.settings.address) {
                Ok(stream) => {
                    let _ = stream.set_write_timeout(Some(CONNECT_TIMEOUT));
                    let _ = stream.set_nodelay(true);
                    self.connection = Some(stream);
                    self.retry.connected();
                    self.health.set_state(SourceState::Connected);
                    self.health.set_note(String::new());
                }
                Err(error) => self.lost(&format!("cannot connect: {error}")),
            }
        }
        while let (Some(connection), Some(flush)) = (self.connection.as_mut(), self.waiting.front()) {
            match connection.write_all(flush.lines.as_bytes()) {
                Ok(()) => {
                    let flush = self.waiting.pop_front().expect("just seen");
                    self.waiting_bytes -= flush.lines.len();
                    self.health.published(flush.metrics, flush.lines.len() as u64);
                }
                Err(error) => self.lost(&format!("lost the connection: {error}")),
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

/// Whether the peer has not closed `stream` (a peek that would block).
fn open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match stream.peek(&mut [0]) {
        Ok(0) => false,
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
    };
    open && stream.set_nonblocking(false).is_ok()
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for address in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

impl Output for GraphiteWriter {
    fn kind(&self) -> OutputKind {
        OutputKind::Graphite
    }

    fn publish(&self, _: &mut Outgoing<'_>) {}

    fn status(&self) -> OutputStatus {
        self.health.output_status(self.kind())
    }

    /// One last flush, then stops.
    fn stop(&self) {
        self.thread.stop();
        if self.health.state() == SourceState::Connected {
            self.health.set_state(SourceState::Stopped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::{EngineConfig, Event, Value};

    fn record(engine: &Arc<Engine>, kind: &str, value: Value<'_>, at: Timestamp) {
        engine.recorder().record(&Event {
            account: "acme",
            event_type: kind,
            app: None,
            value,
            time: at,
        });
    }

    fn flusher(engine: &Arc<Engine>, prefix: Option<&str>) -> Flusher {
        let settings = GraphiteSettings {
            address: "127.0.0.1:1".into(),
            interval: Duration::from_secs(10),
            prefix: prefix.map(str::to_owned),
        };
        let health = Arc::new(Health::new("graphite".into(), SourceState::Connecting));
        Flusher::new(engine, settings, health)
    }

    #[test]
    fn a_flush_names_what_moved_as_statsd_does() {
        let start = Timestamp::from_secs(1_780_000_000);
        let engine = Engine::new(EngineConfig::default(), start).expect("engine");
        let at = |s: u64| start.saturating_add_millis(s * 1000);
        record(&engine, "order create", Value::Count(5), at(1));
        record(&engine, "latency", Value::Timing { ms: 10.0, count: 1 }, at(2));
        record(&engine, "latency", Value::Timing { ms: 30.0, count: 1 }, at(3));
        record(&engine, "queue", Value::Gauge(7.0), at(4));
        record(&engine, "visitors", Value::SetMember("a"), at(5));
        record(&engine, "visitors", Value::SetMember("b"), at(5));
        let mut flusher = flusher(&engine, Some("eu/1"));
        let flush = flusher.lines(at(10));
        let lines: Vec<&str> = flush.lines.lines().collect();
        let has = |line: &str| lines.contains(&line);
        let stamp = 1_780_000_010;
        assert!(
            has(&format!("stats.eu-1.counters.acme.order_create.count 5 {stamp}")),
            "{lines:#?}"
        );
        assert!(
            has(&format!("stats.eu-1.counters.acme.order_create.rate 0.5 {stamp}")),
            "{lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("counters.acme.latency")),
            "a timer, not a counter"
        );
        assert!(
            has(&format!("stats.eu-1.timers.acme.latency.count 2 {stamp}")),
            "{lines:#?}"
        );
        let mean = lines
            .iter()
            .find(|l| l.starts_with("stats.eu-1.timers.acme.latency.mean "))
            .expect("a mean");
        let mean: f64 = mean
            .split(' ')
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("a number");
        assert!((19.0..=21.0).contains(&mean), "{mean}");
        assert!(
            has(&format!("stats.eu-1.gauges.acme.queue 7 {stamp}")),
            "{lines:#?}"
        );
        assert!(
            has(&format!("stats.eu-1.sets.acme.visitors.count 2 {stamp}")),
            "{lines:#?}"
        );

        // Nothing moved: nothing to send. Then only what moved, counted since the last flush.
        assert_eq!(flusher.lines(at(20)).metrics, 0);
        record(&engine, "order create", Value::Count(2), at(25));
        let flush = flusher.lines(at(30));
        let lines: Vec<&str> = flush.lines.lines().collect();
        assert_eq!(
            lines,
            [
                "stats.eu-1.counters.acme.order_create.count 2 1780000030",
                "stats.eu-1.counters.acme.order_create.rate 0.2 1780000030"
            ]
        );
    }

    #[test]
    fn while_carbon_is_away_the_oldest_flushes_give_way_and_are_counted() {
        let engine = Engine::new(EngineConfig::default(), Timestamp::from_secs(0)).expect("engine");
        let mut flusher = flusher(&engine, None);
        let line = "stats.counters.acme.x.count 1 0\n".repeat(1000);
        let flushes = MAX_WAITING_BYTES / line.len() + 3;
        for _ in 0..flushes {
            flusher.wait_in_line(Flush {
                lines: line.clone(),
                metrics: 1000,
            });
        }
        assert!(flusher.waiting_bytes <= MAX_WAITING_BYTES);
        let status = flusher.health.output_status(OutputKind::Graphite);
        assert_eq!(status.dropped, 3 * 1000);
        assert!(status.note.contains("oldest dropped"), "{}", status.note);
    }
}
