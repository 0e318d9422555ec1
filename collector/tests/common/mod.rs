//! Helpers shared by the collector's integration tests.

use std::time::{Duration, Instant};
use tally_collector::health::now;
use tally_core::{Engine, Snapshot, SnapshotRequest};

/// Snapshots until `done` holds or 20 s pass, then returns the last one.
pub fn wait_for(engine: &Engine, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = engine.snapshot(&SnapshotRequest::default(), now());
        if done(&snapshot) || Instant::now() > deadline {
            return snapshot;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The total of `account` in `snapshot` (0 if absent).
pub fn total(snapshot: &Snapshot, account: &str) -> u64 {
    snapshot
        .accounts
        .iter()
        .find(|a| &*a.name == account)
        .map_or(0, |a| a.total)
}
