//! How long to wait before connecting again, for every client that reconnects (hub clients,
//! the Redis mirror, Graphite): 100 ms doubling to 2 s, each wait jittered by up to +-25% so
//! that many tallies do not reconnect in lockstep.

use std::time::{Duration, Instant};

/// The first wait before reconnecting; it doubles up to [`BACKOFF_CAP`].
pub const BACKOFF_START: Duration = Duration::from_millis(100);
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_START }
    }
}

impl Backoff {
    pub fn wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        base.mul_f64(fastrand::f64().mul_add(0.5, 0.75))
    }

    /// After a connection that lasted: the next wait is the first again.
    pub fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// When a blocking client that lost its server may try again: at once at first, then after
/// a [`Backoff`] wait after each failure.
#[derive(Debug)]
pub struct Retry {
    backoff: Backoff,
    at: Instant,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            backoff: Backoff::default(),
            at: Instant::now(),
        }
    }
}

impl Retry {
    pub fn due(&self) -> bool {
        Instant::now() >= self.at
    }

    /// A connection failed or was lost: wait before the next try.
    pub fn failed(&mut self) {
        self.at = Instant::now() + self.backoff.wait();
    }

    /// Try at once (a connection found dead before anything was sent on it).
    pub fn now(&mut self) {
        self.at = Instant::now();
    }

    /// Connected: the next failure waits the first wait again.
    pub fn connected(&mut self) {
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| backoff.wait()).collect();
        assert!(waits[0] >= BACKOFF_START.mul_f64(0.75) && waits[0] <= BACKOFF_START.mul_f64(1.25));
        assert!(waits.iter().all(|w| *w <= BACKOFF_CAP.mul_f64(1.25)));
        assert!(waits[7] >= BACKOFF_CAP.mul_f64(0.75), "{waits:?}");
        backoff.reset();
        assert!(backoff.wait() <= BACKOFF_START.mul_f64(1.25));
    }
}
