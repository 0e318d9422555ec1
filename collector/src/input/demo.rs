//! `--demo`: realistic traffic sent through a real UDP socket to the embedded listener, so a
//! dashboard on a fresh machine has something to show. A few dozen accounts with long-tailed
//! popularity, several event types (counters, timings, gauges, sets; StatsD and hub JSON),
//! a slow swell, bursts and quiet spells.

use super::Source;
use crate::health::{Health, now};
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tally_core::{SourceKind, SourceState};

pub const ACCOUNTS: [&str; 36] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "aperture",
    "oscorp",
    "vandelay",
    "dunder",
    "piedpiper",
    "monarch",
    "gringotts",
    "blue-sun",
    "massive",
    "nakatomi",
    "prestige",
    "virtucon",
    "weyland",
    "zorg",
    "bluth",
    "cogswell",
    "spacely",
    "krusty",
    "duff",
    "sirius",
    "tessier",
    "yoyodyne",
    "ollivander",
    "gekko",
    "wernham",
];

/// Events per second around which the demo swells and bursts.
const BASE_RATE: f64 = 250.0;
const TICK: Duration = Duration::from_millis(50);
/// Keeps datagrams under a typical Ethernet MTU, as StatsD clients do.
const DATAGRAM: usize = 1400;

#[derive(Debug)]
pub struct Demo {
    thread: JoinHandle<()>,
    health: Arc<Health>,
}

impl Demo {
    pub fn start(target: SocketAddr, stop: &Arc<AtomicBool>) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(if target.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        })?;
        socket.connect(target)?;
        let health = Arc::new(Health::new(format!("-> {target}"), SourceState::Connected));
        let generator = Generator {
            socket,
            health: Arc::clone(&health),
            rng: fastrand::Rng::new(),
            stop: Arc::clone(stop),
        };
        let thread = std::thread::Builder::new()
            .name("demo".into())
            .spawn(move || generator.run())?;
        Ok(Demo { thread, health })
    }
}

impl Source for Demo {
    fn kind(&self) -> SourceKind {
        SourceKind::Demo
    }

    fn health(&self) -> &Health {
        &self.health
    }

    fn stop(self: Box<Self>) {
        let _ = self.thread.join();
        self.health.set_state(SourceState::Stopped);
    }
}

struct Generator {
    socket: UdpSocket,
    health: Arc<Health>,
    rng: fastrand::Rng,
    stop: Arc<AtomicBool>,
}

impl Generator {
    fn run(mut self) {
        let start = Instant::now();
        let weights: Vec<f64> = (0..ACCOUNTS.len())
            .map(|i| 1.0 / (i as f64 + 1.0).powf(1.1))
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let mut burst_until = 0.0;
        let mut quiet_until = 0.0;
        let mut carry = 0.0;
        let mut datagram = String::with_capacity(DATAGRAM);
        while !self.stop.load(Relaxed) {
            let t = start.elapsed().as_secs_f64();
            if t > burst_until && t > quiet_until {
                match self.rng.u32(0..400) {
                    0..=1 => burst_until = t + self.rng.f64() * 8.0 + 3.0,
                    2 => quiet_until = t + self.rng.f64() * 6.0 + 2.0,
                    _ => {}
                }
            }
            let swell = 1.0 + 0.6 * (TAU * t / 90.0).sin();
            let mood = if t < burst_until {
                3.5
            } else if t < quiet_until {
                0.08
            } else {
                1.0
            };
            carry += BASE_RATE * swell * mood * TICK.as_secs_f64();
            let events = carry.floor() as u64;
            carry -= events as f64;
            let (mut sent, mut bytes) = (0, 0);
            for _ in 0..events {
                let mut pick = self.rng.f64() * total_weight;
                let account = weights.iter().position(|w| {
                    pick -= w;
                    pick <= 0.0
                });
                let account = ACCOUNTS[account.unwrap_or(ACCOUNTS.len() - 1)];
                let line = self.line(account);
                if line.starts_with('{') {
                    bytes += self.send(&line);
                    sent += 1;
                    continue;
                }
                if datagram.len() + line.len() + 1 > DATAGRAM {
                    bytes += self.send(&datagram);
                    sent += 1;
                    datagram.clear();
                }
                if !datagram.is_empty() {
                    datagram.push('\n');
                }
                datagram.push_str(&line);
            }
            if !datagram.is_empty() {
                bytes += self.send(&datagram);
                sent += 1;
                datagram.clear();
            }
            self.health.received(sent, bytes as u64, events, 0, now());
            std::thread::sleep(TICK);
        }
    }

    fn send(&self, payload: &str) -> usize {
        // Nothing to do about a full socket buffer but try again next tick.
        self.socket.send(payload.as_bytes()).unwrap_or(0)
    }

    /// One event for `account`, as a StatsD line or a hub JSON document.
    fn line(&mut self, account: &str) -> String {
        let rng = &mut self.rng;
        let mut line = String::with_capacity(64);
        let _ = match rng.u32(0..100) {
            0..=29 => write!(
                line,
                r#"{{"type":"pageview","time":"{}","data":{{"account":"{account}","app":"shop","unq":"{}"}}}}"#,
                now().as_millis(),
                u8::from(rng.bool())
            ),
            30..=54 => write!(line, "{account}.pageview:1|c"),
            55..=74 => {
                // Log-normal latencies: most fast, a long slow tail.
                let ms = (3.5 + 0.8 * normal(rng)).exp();
                write!(line, "{account}.api.latency:{ms:.1}|ms")
            }
            75..=84 => write!(line, "{account}.order.create:1|c"),
            85..=89 => write!(line, "{account}.order.update:1|c|@0.5"),
            90..=93 => write!(line, "{account}.signup:1|c"),
            94..=96 => write!(line, "{account}.queue.depth:{}|g", rng.u32(0..500)),
            _ => write!(line, "{account}.visitors:user-{}|s", rng.u32(0..5000)),
        };
        line
    }
}

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u, v) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
    (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
}
