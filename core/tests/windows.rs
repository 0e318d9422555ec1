//! Windows saved and restored through the public API: an engine rebuilt from a copy, then fed
//! more events, shows exactly what an engine that never stopped shows.

use std::sync::Arc;
use tally_core::{
    Engine, EngineConfig, Event, Rejection, SavedBody, SeriesCopy, SeriesId, Snapshot, SnapshotRequest,
    Timestamp, Value, Window, WindowId,
};

const T0: u64 = 1_700_002_800_000; // a whole hour

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn config() -> EngineConfig {
    EngineConfig {
        // Few enough that some accounts fold into `(other)`.
        max_accounts: 6,
        max_timing_series: 8,
        ..EngineConfig::default()
    }
}

/// A repeatable mix of every kind of event over `span_ms` from `from_ms`: counts, timings,
/// gauges, set members, apps, folded accounts and rejections.
fn feed(engine: &Arc<Engine>, seed: u64, from_ms: u64, span_ms: u64, events: u64) {
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut recorder = engine.recorder();
    for i in 0..events {
        let account = format!("acct{}", next(9));
        let time = at(from_ms + i * span_ms / events);
        let (kind, value) = match next(5) {
            0 => (
                "latency",
                Value::Timing {
                    ms: next(5000) as f64 / 10.0,
                    count: 1,
                },
            ),
            1 => (
                "users",
                Value::SetMember(if next(2) == 0 { "ann" } else { "bob" }),
            ),
            2 => ("temp", Value::Gauge(next(100) as f64)),
            3 => ("order", Value::Count(1 + next(3))),
            _ => ("view", Value::Count(1)),
        };
        let app = ["web", "api"][next(2) as usize];
        recorder.record(&Event {
            account: &account,
            event_type: kind,
            app: Some(app),
            value,
            time,
        });
        if next(50) == 0 {
            engine.reject(Rejection::Json, "bad", b"{", time);
        }
    }
}

/// A series' account and type names, what it keeps, and its bodies.
type SavedSeries = (Option<String>, Option<String>, SeriesCopy, Vec<SavedBody>);

struct Saved {
    origin: Timestamp,
    series: Vec<SavedSeries>,
    counters: tally_core::CountersCopy,
}

fn save(engine: &Engine) -> Saved {
    let mut ids = vec![];
    engine
        .windows(|id, account, kind, _| ids.push((id, account.map(str::to_owned), kind.map(str::to_owned))));
    let series = (ids.into_iter())
        .map(|(id, account, kind)| {
            let copy = engine.copy_series(id).expect("listed series");
            let mut bodies = vec![];
            if let WindowId::Type(id) = id {
                engine.take_changed_bodies(id, |body| bodies.push(body));
            }
            (account, kind, copy, bodies)
        })
        .collect();
    Saved {
        origin: engine.origin(),
        series,
        counters: engine.counters_copy(),
    }
}

fn restore(saved: &Saved) -> Arc<Engine> {
    let engine = Engine::new(config(), saved.origin).expect("valid");
    for (account, kind, copy, bodies) in &saved.series {
        let id = engine.restore_series(account.as_deref(), kind.as_deref(), copy);
        if let Some(WindowId::Type(id)) = id {
            for body in bodies {
                engine.restore_body(id, body);
            }
        }
    }
    engine.restore_counters(&saved.counters);
    engine
}

/// Every window the dashboards show, in full detail, with the examples of rejected input.
fn views(engine: &Engine, now: Timestamp) -> Vec<Snapshot> {
    [(0, 60), (0, 300), (1, 60), (2, 24)]
        .into_iter()
        .map(|(level, buckets)| {
            let request = SnapshotRequest {
                window: Window { level, buckets },
                detail: 100,
                all_types: true,
                ..SnapshotRequest::default()
            };
            engine.snapshot(&request, now)
        })
        .collect()
}

const HOUR: u64 = 3_600_000;

#[test]
fn a_restored_engine_shows_what_the_saved_one_showed() {
    let original = Engine::new(config(), at(0)).expect("valid");
    feed(&original, 1, 0, 2 * HOUR, 20_000);
    let now = at(2 * HOUR);
    let restored = restore(&save(&original));
    assert_eq!(views(&restored, now), views(&original, now));
    let overall = views(&original, now);
    assert!(overall[3].totals.folded_accounts > 0, "the mix folds accounts");
    assert!(overall[3].totals.rejected > 0, "and rejects some input");
    assert!(!overall[3].recent_rejects.is_empty(), "with examples kept");
}

#[test]
fn after_a_gap_it_goes_on_like_an_engine_that_never_stopped() {
    let never_stopped = Engine::new(config(), at(0)).expect("valid");
    let stopped = Engine::new(config(), at(0)).expect("valid");
    for engine in [&never_stopped, &stopped] {
        feed(engine, 7, 0, HOUR + 30_000, 10_000);
    }
    // Down for ten minutes, then more events.
    let restarted = restore(&save(&stopped));
    for engine in [&never_stopped, &restarted] {
        feed(engine, 8, HOUR + 630_000, 100_000, 2_000);
    }
    for now in [at(HOUR + 730_000), at(HOUR + 900_000), at(3 * HOUR)] {
        assert_eq!(views(&restarted, now), views(&never_stopped, now));
    }
    let by_minute = &views(&restarted, at(HOUR + 730_000))[2];
    let gap = &by_minute.stack.totals[48..57];
    assert!(gap.iter().all(|&n| n == 0), "the downtime is empty: {gap:?}");
}

#[test]
fn only_bodies_updated_since_the_last_look_are_copied_again() {
    let engine = Engine::new(config(), at(0)).expect("valid");
    let timing = |ms: u64| Event {
        account: "acme",
        event_type: "latency",
        app: None,
        value: Value::Timing { ms: 12.0, count: 1 },
        time: at(ms),
    };
    engine.recorder().record(&timing(0));
    engine.recorder().record(&timing(5_000));
    let id = SeriesId::Account { account: 0, kind: 0 };
    let changed = |engine: &Engine| {
        let mut bodies = vec![];
        engine.take_changed_bodies(id, |body| bodies.push((body.slot, body.epoch)));
        bodies.sort_unstable();
        bodies
    };
    // Seconds 0 and 5; minute 0; hour 0 (slots 0-299, 300-359, 360-383).
    assert_eq!(changed(&engine), [(0, 0), (5, 5), (300, 0), (360, 0)]);
    assert_eq!(changed(&engine), []);
    engine.recorder().record(&timing(5_500));
    assert_eq!(changed(&engine), [(5, 5), (300, 0), (360, 0)]);
}

/// A type one account sends is counted over all accounts in that account's series alone: a
/// restart restores it once (its saved copy over all accounts is not added again), and an
/// account that sends it after the restart takes it over as before the restart.
#[test]
fn a_type_of_one_account_is_restored_once_and_shared_after() {
    let config = EngineConfig::default();
    let event = |account: &'static str, kind: &'static str, ms: u64| Event {
        account,
        event_type: kind,
        app: None,
        value: Value::Count(3),
        time: at(ms),
    };
    let before = |engine: &Arc<Engine>| {
        let mut recorder = engine.recorder();
        for ms in (0..HOUR).step_by(90_000) {
            recorder.record(&event("acme", "signup", ms));
            recorder.record(&event("acme", "view", ms));
            recorder.record(&event("globex", "view", ms + 1));
        }
    };
    let after = |engine: &Arc<Engine>| {
        let mut recorder = engine.recorder();
        recorder.record(&event("globex", "signup", HOUR + 60_000));
        recorder.record(&event("acme", "signup", HOUR + 61_000));
    };
    let never_stopped = Engine::new(config.clone(), at(0)).expect("valid");
    let stopped = Engine::new(config, at(0)).expect("valid");
    for engine in [&never_stopped, &stopped] {
        before(engine);
    }
    let signup = |engine: &Engine, now| {
        let views = views(engine, now);
        let stats = (views[3].types.iter())
            .find(|t| &*t.name == "signup")
            .expect("listed");
        (stats.total, stats.window_total)
    };
    let restarted = restore(&save(&stopped));
    assert_eq!(signup(&restarted, at(HOUR)), (120, 120), "40 events of 3, once");
    assert_eq!(views(&restarted, at(HOUR)), views(&never_stopped, at(HOUR)));
    for engine in [&never_stopped, &restarted] {
        after(engine);
    }
    let now = at(HOUR + 120_000);
    assert_eq!(signup(&restarted, now), (126, 126));
    assert_eq!(views(&restarted, now), views(&never_stopped, now));
}
