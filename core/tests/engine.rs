//! The engine's behaviour through its public API, with a fake clock.

use std::sync::Arc;
use tally_core::{
    AccountStats, Engine, EngineConfig, Event, OTHER, Rejection, Resolution, Snapshot, SnapshotRequest,
    Timestamp, Value, Window, palette, scale_sampled,
};

const T0: u64 = 1_700_002_800_000; // a whole hour, so buckets of every resolution start at T0

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn engine() -> Arc<Engine> {
    Engine::new(EngineConfig::default(), at(0)).expect("default config is valid")
}

fn count<'a>(account: &'a str, event_type: &'a str, n: u64, time: Timestamp) -> Event<'a> {
    Event {
        account,
        event_type,
        app: None,
        value: Value::Count(n),
        time,
    }
}

fn account<'s>(snapshot: &'s Snapshot, name: &str) -> &'s AccountStats {
    snapshot
        .accounts
        .iter()
        .find(|a| &*a.name == name)
        .unwrap_or_else(|| panic!("no account {name} in {:?}", snapshot.accounts))
}

fn types_of(snapshot: &Snapshot, name: &str) -> Vec<tally_core::TypeStats> {
    account(snapshot, name)
        .detail
        .as_ref()
        .expect("account has detail")
        .types
        .clone()
}

/// Each type of an account, with its total.
fn type_totals(snapshot: &Snapshot, name: &str) -> Vec<(String, u64)> {
    let types = types_of(snapshot, name);
    types.iter().map(|t| (t.name.to_string(), t.total)).collect()
}

fn last_minute() -> SnapshotRequest {
    SnapshotRequest::default()
}

#[test]
fn counts_totals_windows_rates_and_shares() {
    let engine = engine();
    let mut recorder = engine.recorder();
    // acme: 2 events per second for 10 s; globex: 1 per second for the last 5 s.
    for s in 0..10 {
        recorder.record(&count("acme", "pageview", 1, at(s * 1000)));
        recorder.record(&count("acme", "order.create", 1, at(s * 1000 + 500)));
        if s >= 5 {
            recorder.record(&count("globex", "pageview", 1, at(s * 1000 + 10)));
        }
    }
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(10_000));
    assert_eq!(snap.totals.total, 25);
    assert_eq!(snap.totals.window_total, 25);
    assert_eq!(snap.totals.accounts, 2);
    assert_eq!(snap.totals.active_accounts, 2);
    let acme = account(&snap, "acme");
    assert_eq!((acme.total, acme.window_total), (20, 20));
    assert!((acme.share - 0.8).abs() < 1e-9);
    // The last 5 complete seconds, with the current (empty, just started) bucket.
    assert!((acme.rate - 2.0).abs() < 1e-9, "rate {}", acme.rate);
    assert!((account(&snap, "globex").rate - 1.0).abs() < 1e-9);
    assert!((snap.totals.rate - 3.0).abs() < 1e-9);
    assert!((snap.totals.peak_rate - 3.0).abs() < 1e-9);
    // A burst in the current bucket lifts the peak with the rate.
    for _ in 0..40 {
        recorder.record(&count("acme", "pageview", 1, at(10_100)));
    }
    recorder.flush();
    let burst = engine.snapshot(&last_minute(), at(10_200));
    assert!(burst.totals.rate > 3.0 && burst.totals.peak_rate == burst.totals.rate);
    assert_eq!(&*snap.accounts[0].name, "acme", "busiest first");

    let types = types_of(&snap, "acme");
    let names: Vec<&str> = types.iter().map(|t| &*t.name).collect();
    assert_eq!(names, ["order.create", "pageview"], "equal counts: by name");
    assert!(types.iter().all(|t| t.window_total == 10));

    // The window's buckets: the last 60 seconds, the newest being the current (empty) second.
    assert_eq!(snap.stack.totals.len(), 60);
    assert_eq!(snap.window.start, Timestamp::from_millis(T0 + 10_000 - 59_000));
    assert_eq!(snap.stack.totals[49..], [2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 0]);
}

#[test]
fn sampled_counters_scale_by_the_rate() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let n = scale_sampled(5.0, 0.1).expect("valid");
    recorder.record(&count("acme", "x", n, at(0)));
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(500));
    assert_eq!(account(&snap, "acme").total, 50);
}

#[test]
fn stack_has_top_accounts_in_name_order_and_other_last() {
    let engine = engine();
    let mut recorder = engine.recorder();
    for (i, name) in ["delta", "alpha", "charlie", "bravo", "echo"].iter().enumerate() {
        // delta busiest, echo quietest.
        recorder.record(&count(name, "hit", 10 - i as u64, at(1000)));
    }
    let request = SnapshotRequest {
        top: 3,
        ..last_minute()
    };
    recorder.flush();
    let snap = engine.snapshot(&request, at(2000));
    let layers: Vec<&str> = snap.stack.layers.iter().map(|l| &*l.name).collect();
    assert_eq!(layers, ["alpha", "charlie", "delta", OTHER]);
    let other = snap.stack.layers.last().expect("other layer");
    assert_eq!(other.colour, palette::OTHER_COLOUR);
    assert_eq!(other.values.iter().sum::<u64>(), 7 + 6, "bravo and echo");
    for column in 0..snap.stack.totals.len() {
        let stacked: u64 = snap.stack.layers.iter().map(|l| l.values[column]).sum();
        assert_eq!(stacked, snap.stack.totals[column], "layers add up to the bar");
    }
    // Colours: the stack's and the table's agree, and differ between shown accounts.
    for layer in &snap.stack.layers[..3] {
        assert_eq!(account(&snap, &layer.name).colour, Some(layer.colour));
    }
    assert_eq!(account(&snap, "bravo").colour, None, "drawn as (other)");
    let mut colours: Vec<u8> = snap.stack.layers.iter().map(|l| l.colour).collect();
    colours.sort();
    colours.dedup();
    assert_eq!(colours.len(), 4);
    // Same colours on the next frame, whatever the rank changes.
    recorder.record(&count("charlie", "hit", 100, at(2500)));
    recorder.flush();
    let again = engine.snapshot(&request, at(3000));
    assert_eq!(&*again.accounts[0].name, "charlie");
    for layer in &again.stack.layers {
        if let Some(before) = snap.stack.layers.iter().find(|l| l.name == layer.name) {
            assert_eq!(before.colour, layer.colour, "{} changed colour", layer.name);
        }
    }
}

/// A pair recorded under the bytes it was read from and by its names lands in one series; other
/// spellings stay apart; a spelling longer than two names falls back to the (cut) names.
#[test]
fn a_pair_spelled_as_sent_or_by_its_names_is_one_pair() {
    let engine = engine();
    let mut recorder = engine.recorder();
    for _ in 0..3 {
        recorder.record_spelled(&count("acme", "pageview", 1, at(100)), "acme.pageview");
        recorder.record_spelled(&count("acme", "page.view", 2, at(100)), "acme.page.view");
        recorder.record_spelled(&count("acme", "", 4, at(100)), "acme");
    }
    recorder.record(&count("acme", "pageview", 10, at(200)));
    let (long_account, long_type) = ("a".repeat(200), "t".repeat(100));
    let long = format!("{long_account}.{long_type}");
    for _ in 0..2 {
        recorder.record_spelled(&count(&long_account, &long_type, 1, at(300)), &long);
    }
    recorder.flush();
    let request = SnapshotRequest {
        detail: 10,
        ..last_minute()
    };
    let snap = engine.snapshot(&request, at(1000));
    let types = type_totals(&snap, "acme");
    assert_eq!(
        types,
        [("pageview".into(), 13), ("".into(), 12), ("page.view".into(), 6)]
    );
    assert_eq!(account(&snap, "acme").total, 31);
    assert_eq!(
        account(&snap, &long_account[..128]).total,
        2,
        "cut to the longest name"
    );
}

/// A pair recorded under a spelling is known by it: later events need only the spelling and
/// their value. Other spellings, pairs recorded by name and folded accounts are not known.
/// Warming (loading the pairs a batch will record, before recording it) records nothing and
/// makes nothing known: whatever it is given, the counts after it are exact.
#[test]
fn warming_pairs_records_nothing() {
    let engine = engine();
    let mut recorder = engine.recorder();
    recorder.record_spelled(&count("acme", "pageview", 2, at(100)), "acme.pageview");
    recorder.record(&count("acme", "signup", 1, at(100)));
    let long = "x".repeat(600);
    recorder.warm([
        &b"acme.pageview"[..],
        b"acme.checkout",
        b"acme\xffsignup",
        long.as_bytes(),
        b"",
    ]);
    assert!(recorder.record_known("acme.pageview", &Value::Count(3), at(200)));
    assert!(!recorder.record_known("acme.checkout", &Value::Count(1), at(200)));
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(1000));
    let types = type_totals(&snap, "acme");
    assert_eq!(types, [("pageview".into(), 5), ("signup".into(), 1)]);
}

#[test]
fn a_known_spelling_records_its_pair_without_its_names() {
    let engine = Engine::new(
        EngineConfig {
            max_accounts: 1,
            ..EngineConfig::default()
        },
        at(0),
    )
    .expect("valid");
    let mut recorder = engine.recorder();
    let one = Value::Count(1);
    assert!(
        !recorder.record_known("acme.pageview", &one, at(100)),
        "not yet seen"
    );
    recorder.record_spelled(&count("acme", "pageview", 2, at(100)), "acme.pageview");
    assert!(recorder.record_known("acme.pageview", &Value::Count(3), at(200)));
    let timing = Value::Timing { ms: 5.0, count: 4 };
    assert!(recorder.record_known("acme.pageview", &timing, at(300)));
    assert!(!recorder.record_known("acme.checkout", &one, at(300)));
    recorder.record(&count("acme", "signup", 1, at(300)));
    assert!(
        !recorder.record_known("acme.signup", &one, at(300)),
        "recorded by name"
    );
    recorder.record_spelled(&count("globex", "pageview", 1, at(300)), "globex.pageview");
    assert!(
        !recorder.record_known("globex.pageview", &one, at(300)),
        "folded into (other)"
    );
    recorder.flush();
    let request = SnapshotRequest {
        detail: 10,
        percentiles: true,
        ..last_minute()
    };
    let snap = engine.snapshot(&request, at(1000));
    let types = type_totals(&snap, "acme");
    assert_eq!(types, [("pageview".into(), 9), ("signup".into(), 1)]);
    let timing = account(&snap, "acme")
        .detail
        .as_ref()
        .and_then(|d| d.timing.clone());
    let timing = timing.map(|t| (t.count, t.max));
    assert_eq!(timing, Some((1, 5.0)), "the known timing is a timing sample");
    assert_eq!(account(&snap, OTHER).total, 1);
}

#[test]
fn focus_stacks_the_account_by_type() {
    let engine = engine();
    let mut recorder = engine.recorder();
    recorder.record(&count("acme", "pageview", 4, at(100)));
    recorder.record(&count("acme", "checkout", 1, at(200)));
    recorder.record(&count("globex", "pageview", 9, at(300)));
    let request = SnapshotRequest {
        focus: Some("acme".into()),
        detail: 0,
        ..last_minute()
    };
    recorder.flush();
    let snap = engine.snapshot(&request, at(1000));
    assert_eq!(snap.stack.focus.as_deref(), Some("acme"));
    let layers: Vec<(&str, u64)> = snap
        .stack
        .layers
        .iter()
        .map(|l| (&*l.name, l.values.iter().sum()))
        .collect();
    assert_eq!(layers, [("checkout", 1), ("pageview", 4)]);
    assert_eq!(snap.stack.totals.iter().sum::<u64>(), 5);
    assert!(
        account(&snap, "acme").detail.is_some(),
        "the focus always has detail"
    );
    assert!(account(&snap, "globex").detail.is_none());
}

#[test]
fn accounts_past_the_cap_fold_into_other_with_exact_totals() {
    let config = EngineConfig {
        max_accounts: 3,
        max_types_per_account: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, at(0)).expect("valid");
    let mut recorder = engine.recorder();
    for i in 0..10 {
        let name = format!("acct-{i}");
        recorder.record(&count(&name, "a", 1, at(10)));
        recorder.record(&count(&name, "a", 1, at(20)));
    }
    for t in ["a", "b", "c", "d"] {
        recorder.record(&count("acct-0", t, 1, at(30)));
    }
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(1000));
    assert_eq!(snap.totals.total, 24, "nothing lost to the cap");
    assert_eq!(snap.totals.accounts, 3);
    assert_eq!(account(&snap, OTHER).total, 14);
    assert_eq!(snap.totals.folded_events, 14);
    assert_eq!(snap.totals.folded_accounts, 7, "small sets are exact");
    let types: Vec<(String, u64)> = types_of(&snap, "acct-0")
        .iter()
        .map(|t| (t.name.to_string(), t.total))
        .collect();
    let expected = [("a", 3), (OTHER, 2), ("b", 1)].map(|(n, c)| (n.to_string(), c));
    assert_eq!(types, expected);
    // The folded account is never a layer of its own.
    assert_eq!(snap.stack.layers.iter().filter(|l| &*l.name == OTHER).count(), 1);
}

#[test]
fn types_past_the_engine_wide_cap_fold_into_each_accounts_other() {
    let config = EngineConfig {
        max_type_series: 3,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, at(0)).expect("valid");
    let mut recorder = engine.recorder();
    for (name, kind) in [
        ("acme", "a"),
        ("acme", "b"),
        ("globex", "a"),
        ("globex", "b"),
        ("globex", "c"),
    ] {
        recorder.record(&count(name, kind, 2, at(10)));
    }
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(1000));
    let names = |account: &str| -> Vec<(String, u64)> {
        (types_of(&snap, account).iter())
            .map(|t| (t.name.to_string(), t.total))
            .collect()
    };
    assert_eq!(names("acme"), [("a".to_string(), 2), ("b".to_string(), 2)]);
    assert_eq!(names("globex"), [(OTHER.to_string(), 4), ("a".to_string(), 2)]);
    assert_eq!(account(&snap, "globex").total, 6, "nothing lost to the cap");
    assert_eq!(snap.totals.total, 10);
}

#[test]
fn timings_give_percentiles_per_type_and_account() {
    let engine = engine();
    let mut recorder = engine.recorder();
    for ms in 1..=100 {
        let event = Event {
            account: "acme",
            event_type: "api.latency",
            app: Some("shop"),
            value: Value::Timing {
                ms: ms as f64,
                count: 1,
            },
            time: at(ms * 10),
        };
        recorder.record(&event);
    }
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(2000));
    let acme = account(&snap, "acme");
    let detail = acme.detail.as_ref().expect("detail");
    let timing = detail.types[0].timing.as_ref().expect("timing stats");
    assert_eq!(timing.count, 100);
    assert_eq!((timing.min, timing.max), (1.0, 100.0));
    assert!((timing.mean - 50.5).abs() < 1e-9);
    for (got, exact) in [(timing.p50, 50.0), (timing.p90, 90.0), (timing.p99, 99.0)] {
        assert!((got - exact).abs() / exact <= 0.02, "{got} vs {exact}");
    }
    assert_eq!(detail.timing.as_ref().map(|t| t.count), Some(100));
    let without = SnapshotRequest {
        percentiles: false,
        ..last_minute()
    };
    let snap = engine.snapshot(&without, at(2000));
    let detail = account(&snap, "acme").detail.as_ref().expect("detail");
    assert!(
        detail.types[0].timing.is_none() && detail.timing.is_none(),
        "skipped when not asked for"
    );
    assert_eq!(detail.apps.iter().map(|a| &**a).collect::<Vec<_>>(), ["shop"]);
    assert_eq!(acme.total, 100, "each timing is an event");
}

#[test]
fn timing_series_past_their_cap_are_counted_and_never_allocated() {
    let config = EngineConfig {
        max_timing_series: 1,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, at(0)).expect("valid");
    let mut recorder = engine.recorder();
    // `api` takes the one account x type series and the one all-accounts type series; `db`
    // is refused both, again at each sample, while `api` keeps its histogram.
    for (event_type, ms) in [("api", 5.0), ("db", 7.0), ("db", 9.0), ("api", 6.0)] {
        recorder.record(&Event {
            account: "acme",
            event_type,
            app: None,
            value: Value::Timing { ms, count: 1 },
            time: at(1000),
        });
    }
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(2000));
    assert_eq!(
        snap.totals.uncapped_samples, 4,
        "db's two samples, refused twice each"
    );
    let types = types_of(&snap, "acme");
    let timing_count = |name: &str| {
        let stats = types.iter().find(|t| &*t.name == name).expect("type");
        stats.timing.as_ref().map(|t| t.count)
    };
    assert_eq!(timing_count("api"), Some(2));
    assert_eq!(timing_count("db"), None);
    assert_eq!(
        type_totals(&snap, "acme"),
        [("api".to_owned(), 2), ("db".to_owned(), 2)]
    );
}

#[test]
fn gauges_keep_the_last_value_with_statsd_deltas() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let mut gauge = |value| {
        recorder.record(&Event {
            account: "acme",
            event_type: "queue",
            app: None,
            value,
            time: at(5),
        })
    };
    gauge(Value::GaugeDelta(-10.0)); // a new gauge sent -10 is -10
    gauge(Value::GaugeDelta(4.0));
    assert_eq!(
        types_of(&engine.snapshot(&last_minute(), at(100)), "acme")[0].gauge,
        Some(-6.0)
    );
    gauge(Value::Gauge(333.0));
    gauge(Value::GaugeDelta(f64::NAN));
    assert_eq!(
        types_of(&engine.snapshot(&last_minute(), at(100)), "acme")[0].gauge,
        Some(333.0)
    );
}

#[test]
fn sets_count_distinct_members_per_window() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let members: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    for (i, member) in members.iter().enumerate() {
        for repeat in 0..3u64 {
            recorder.record(&Event {
                account: "acme",
                event_type: "uniques",
                app: None,
                value: Value::SetMember(member),
                time: at(i as u64 * 100 + repeat),
            });
        }
    }
    let within_error = |estimate: Option<u64>| estimate.is_some_and(|e| e.abs_diff(50) <= 3);
    recorder.flush();
    let stats = &types_of(&engine.snapshot(&last_minute(), at(6000)), "acme")[0];
    assert!(within_error(stats.distinct), "{:?}", stats.distinct);
    assert_eq!(stats.window_total, 150);
    // Two minutes later the members have left the 1-minute window, but not the hour's.
    recorder.flush();
    let stats = &types_of(&engine.snapshot(&last_minute(), at(126_000)), "acme")[0];
    assert_eq!(stats.distinct, Some(0));
    let hour = SnapshotRequest {
        window: Window {
            level: 1,
            buckets: 60,
        },
        ..last_minute()
    };
    recorder.flush();
    let stats = &types_of(&engine.snapshot(&hour, at(126_000)), "acme")[0];
    assert!(within_error(stats.distinct), "{:?}", stats.distinct);
}

/// A snapshot for a moment before an account's latest event (a UI's clock a little behind an
/// ingest thread's, or a paused view) must not count that event in the window through the
/// coarser bucket that also holds it.
#[test]
fn events_after_the_snapshot_time_stay_out_of_its_window() {
    let engine = engine();
    let mut recorder = engine.recorder();
    for second in 0..=30 {
        recorder.record(&count("acme", "x", 1, at(60_000 + second * 1000)));
    }
    recorder.record(&count("acme", "x", 100, at(60_000 + 45_000)));
    recorder.flush();
    for buckets in [60, 300] {
        let request = SnapshotRequest {
            window: Window { level: 0, buckets },
            ..last_minute()
        };
        let snap = engine.snapshot(&request, at(60_000 + 30_500));
        assert_eq!(account(&snap, "acme").window_total, 31, "{buckets} buckets");
        let later = engine.snapshot(&request, at(60_000 + 45_500));
        assert_eq!(account(&later, "acme").window_total, 131, "{buckets} buckets");
    }
}

#[test]
fn old_buckets_leave_the_window_but_not_the_totals() {
    let engine = engine();
    let mut recorder = engine.recorder();
    recorder.record(&count("acme", "x", 7, at(0)));
    // 10 minutes later: beyond the 5-minute fine ring, inside the hour.
    recorder.record(&count("acme", "x", 1, at(600_000)));
    let five_minutes = SnapshotRequest {
        window: Window {
            level: 0,
            buckets: 300,
        },
        ..last_minute()
    };
    recorder.flush();
    let snap = engine.snapshot(&five_minutes, at(600_500));
    assert_eq!(account(&snap, "acme").window_total, 1);
    assert_eq!(account(&snap, "acme").total, 8);
    let hour = SnapshotRequest {
        window: Window {
            level: 1,
            buckets: 60,
        },
        ..last_minute()
    };
    recorder.flush();
    let snap = engine.snapshot(&hour, at(600_500));
    assert_eq!(account(&snap, "acme").window_total, 8);
    assert_eq!(snap.stack.totals.len(), 60);
    assert_eq!(snap.stack.totals[59], 1);
    assert_eq!(snap.stack.totals[49], 7);
    // A late event whose 1 s slot was recycled (epoch 300 shares a slot with epoch 600) is
    // reported as too old there, and still counted in the total and the coarser rings.
    recorder.record(&count("acme", "x", 1, at(300_000)));
    recorder.flush();
    let snap = engine.snapshot(&hour, at(600_500));
    assert_eq!(account(&snap, "acme").total, 9);
    assert_eq!(account(&snap, "acme").window_total, 9);
    assert_eq!(snap.totals.too_old, 1);
}

#[test]
fn rejections_are_counted_with_escaped_evidence() {
    let engine = engine();
    engine.reject(Rejection::Json, "EOF while parsing", b"{\"type\":\"pagev", at(1));
    engine.reject(Rejection::Utf8, "invalid utf-8", b"acme.x:1|c\xff\x1b[2J", at(2));
    engine.reject_many(Rejection::QueueFull, 5);
    let snap = engine.snapshot(&last_minute(), at(10));
    assert_eq!(snap.totals.rejected, 7);
    let reasons: Vec<(Rejection, u64)> = snap.rejections.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        reasons,
        [
            (Rejection::Json, 1),
            (Rejection::Utf8, 1),
            (Rejection::QueueFull, 5)
        ]
    );
    assert_eq!(snap.recent_rejects[1].payload, "acme.x:1|c\\xff\\x1b[2J");
}

#[test]
fn all_types_totals_over_accounts() {
    let engine = engine();
    let mut recorder = engine.recorder();
    recorder.record(&count("acme", "pageview", 3, at(1)));
    recorder.record(&count("globex", "pageview", 2, at(1)));
    recorder.record(&count("globex", "signup", 1, at(1)));
    let request = SnapshotRequest {
        all_types: true,
        ..last_minute()
    };
    recorder.flush();
    let snap = engine.snapshot(&request, at(1000));
    let types: Vec<(&str, u64)> = snap.types.iter().map(|t| (&*t.name, t.window_total)).collect();
    assert_eq!(types, [("pageview", 5), ("signup", 1)]);
}

#[test]
fn all_types_have_percentiles_and_distinct_counts_over_accounts() {
    let engine = engine();
    let mut recorder = engine.recorder();
    // 1..=50 ms from one account and 51..=100 ms from another: together, 1..=100.
    for ms in 1..=100u32 {
        let account = if ms <= 50 { "acme" } else { "globex" };
        let timing = Value::Timing {
            ms: f64::from(ms),
            count: 1,
        };
        let member = format!("user-{}", ms % 30);
        for (event_type, value) in [("api", timing), ("visitors", Value::SetMember(&member))] {
            recorder.record(&Event {
                account,
                event_type,
                app: None,
                value,
                time: at(500),
            });
        }
    }
    recorder.flush();
    let request = SnapshotRequest {
        all_types: true,
        ..last_minute()
    };
    let snap = engine.snapshot(&request, at(1000));
    let api = snap.types.iter().find(|t| &*t.name == "api").expect("api");
    assert_eq!((api.total, api.window_total), (100, 100));
    let timing = api.timing.as_ref().expect("percentiles over all accounts");
    assert_eq!((timing.count, timing.min, timing.max), (100, 1.0, 100.0));
    for (got, exact) in [(timing.p50, 50.0), (timing.p90, 90.0), (timing.p99, 99.0)] {
        assert!((got - exact).abs() / exact <= 0.02, "{got} vs {exact}");
    }
    let visitors = snap
        .types
        .iter()
        .find(|t| &*t.name == "visitors")
        .expect("visitors");
    assert_eq!(
        visitors.distinct,
        Some(30),
        "members seen by both accounts count once"
    );
    // Each account's own view is unchanged.
    let acme_api = types_of(&snap, "acme")
        .into_iter()
        .find(|t| &*t.name == "api")
        .expect("api");
    assert_eq!(acme_api.timing.map(|t| t.max), Some(50.0));
}

#[test]
fn types_past_the_overall_cap_fold_into_other_there_only() {
    let config = EngineConfig {
        max_types: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, at(0)).expect("valid config");
    let mut recorder = engine.recorder();
    for (account, event_type) in [("acme", "a"), ("acme", "b"), ("globex", "c"), ("globex", "a")] {
        recorder.record(&count(account, event_type, 1, at(1)));
    }
    recorder.flush();
    let request = SnapshotRequest {
        all_types: true,
        ..last_minute()
    };
    let snap = engine.snapshot(&request, at(1000));
    let mut overall: Vec<(&str, u64)> = snap.types.iter().map(|t| (&*t.name, t.total)).collect();
    overall.sort();
    assert_eq!(overall, [("(other)", 1), ("a", 2), ("b", 1)]);
    let globex: Vec<String> = types_of(&snap, "globex")
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        globex.contains(&"c".to_owned()),
        "the account keeps its own types: {globex:?}"
    );
}

#[test]
fn snapshots_round_trip_through_json() {
    let engine = engine();
    let mut recorder = engine.recorder();
    recorder.record(&count("acme", "pageview", 3, at(1)));
    engine.reject(Rejection::Statsd, "bad rate", b"x:1|c|@7", at(1));
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(1000));
    let json = serde_json::to_string(&snap).expect("serialises");
    let back: Snapshot = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, snap);
    assert!(json.contains("\"reason\":\"statsd\""), "{json}");
}

#[test]
fn presets_and_invalid_configs() {
    let engine = engine();
    assert_eq!(
        engine.window_presets(),
        [
            Window {
                level: 0,
                buckets: 60
            },
            Window {
                level: 0,
                buckets: 300
            },
            Window {
                level: 1,
                buckets: 60
            },
            Window {
                level: 2,
                buckets: 24
            },
        ]
    );
    let bad = EngineConfig {
        resolutions: vec![Resolution::new(0, 10)],
        ..EngineConfig::default()
    };
    assert!(Engine::new(bad, at(0)).is_err());
    let config: EngineConfig = serde_json::from_str(r#"{"max_accounts": 5}"#).expect("partial config");
    assert_eq!(config.max_accounts, 5);
    assert_eq!(config.resolutions, EngineConfig::default().resolutions);
}

#[test]
fn long_names_are_bounded() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let long = "a".repeat(10_000);
    recorder.record(&count(&long, &long, 1, at(1)));
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(1000));
    assert_eq!(snap.accounts[0].name.len(), tally_core::MAX_NAME_BYTES);
}

#[test]
fn buffered_counts_reach_the_rings_without_an_explicit_flush() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let total = |engine: &Engine| engine.snapshot(&last_minute(), at(900)).totals.total;
    // Many pairs, many events: all added up in the recorder, once it knows the pairs (its
    // table publishes what it holds before it grows).
    for i in 0..100 {
        recorder.record(&count("acme", &format!("x{i}"), 1, at(100)));
    }
    recorder.flush();
    assert_eq!(total(&engine), 100);
    for i in 0..1000 {
        recorder.record(&count("acme", &format!("x{}", i % 100), 1, at(100)));
    }
    assert_eq!(total(&engine), 100, "buffered in the recorder");
    let every = tally_core::PUBLISH_EVERY_MS;
    recorder.publish_if_due(at(100));
    assert_eq!(total(&engine), 100, "waiting from now");
    recorder.publish_if_due(at(100 + every));
    assert_eq!(total(&engine), 1100, "published when due");
    recorder.record(&count("acme", "x", 1, at(100)));
    recorder.publish_if_due(at(300));
    recorder.publish_if_due(at(300 + every - 1));
    assert_eq!(total(&engine), 1100, "not due yet");
    recorder.publish_if_due(at(300 + every));
    assert_eq!(total(&engine), 1101, "due");
    for _ in 0..256 {
        recorder.record(&count("acme", "x", 1, at(100)));
    }
    recorder.record(&count("acme", "x", 1, at(1100)));
    assert_eq!(total(&engine), 1357, "flushed when time moved to the next bucket");
    let window = engine.snapshot(&last_minute(), at(1500));
    assert_eq!(
        window.stack.totals[58..],
        [1357, 0],
        "each count in its own bucket"
    );
    drop(recorder);
    assert_eq!(total(&engine), 1358, "flushed on drop");
}

#[test]
fn a_window_may_start_before_the_origin() {
    // Two minutes after an engine starts at the top of the hour, a 5-minute window reaches back
    // before it; its interior is read from minute buckets, its edges from second buckets.
    let engine = engine();
    let mut recorder = engine.recorder();
    for s in 0..120 {
        recorder.record(&count("acme", "x", 1, at(s * 1000)));
    }
    recorder.flush();
    let five_minutes = SnapshotRequest {
        window: Window {
            level: 0,
            buckets: 300,
        },
        ..last_minute()
    };
    let snap = engine.snapshot(&five_minutes, at(121_500));
    assert_eq!(account(&snap, "acme").window_total, 120);
    assert_eq!(snap.stack.totals.len(), 300);
    assert_eq!(snap.stack.totals.iter().sum::<u64>(), 120);
}

/// Issue 11, item 1: totals saturate instead of wrapping, and a bucket past its maximum is
/// counted as saturated rather than silently capped.
#[test]
fn exact_totals_saturate_instead_of_wrapping() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let huge = tally_core::MAX_COUNT;
    for i in 0..3000 {
        recorder.record(&count("ovf", "x", huge, at(i)));
    }
    recorder.record(&count("ovf", "x", 1, at(3000)));
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(3500));
    let ovf = account(&snap, "ovf");
    assert_eq!(
        snap.totals.total,
        u64::MAX,
        "3000 x 2^53 passes u64::MAX: it must stop there"
    );
    assert_eq!(ovf.total, u64::MAX);
    assert_eq!(types_of(&snap, "ovf")[0].total, u64::MAX);
    assert!(
        snap.totals.saturated > 0,
        "saturation is counted: {:?}",
        snap.totals
    );
    // 1 s buckets hold 2^32 - 1, as the ring's documentation says.
    let engine = self::engine();
    let mut recorder = engine.recorder();
    recorder.record(&count("big", "x", (1 << 32) - 1, at(0)));
    recorder.flush();
    let snap = engine.snapshot(&last_minute(), at(500));
    assert_eq!(snap.totals.window_total, (1 << 32) - 1);
    assert_eq!(snap.totals.saturated, 0);
}

/// Issue 12: a filter stacks only the matching accounts, and the bars are their sum.
#[test]
fn a_filter_stacks_only_matching_accounts() {
    let engine = engine();
    let mut recorder = engine.recorder();
    for (name, n) in [("globex", 5), ("glowworm", 3), ("acme", 100)] {
        recorder.record(&count(name, "x", n, at(0)));
    }
    recorder.flush();
    let request = SnapshotRequest {
        filter: Some("GLO".into()),
        ..last_minute()
    };
    let snap = engine.snapshot(&request, at(500));
    let names: Vec<&str> = snap.stack.layers.iter().map(|l| &*l.name).collect();
    assert_eq!(names, ["globex", "glowworm"]);
    assert_eq!(
        snap.stack.totals.iter().sum::<u64>(),
        8,
        "acme is not in the bars"
    );
    assert_eq!(snap.stack.filter.as_deref(), Some("glo"));
    assert_eq!(snap.totals.window_total, 108, "the totals are not filtered");
    let narrow = SnapshotRequest { top: 1, ..request };
    let snap = engine.snapshot(&narrow, at(500));
    let names: Vec<&str> = snap.stack.layers.iter().map(|l| &*l.name).collect();
    assert_eq!(names, ["globex", OTHER], "the matching ones past top are (other)");
    assert_eq!(snap.stack.totals.iter().sum::<u64>(), 8);
}

/// A wall screen's "today": the events from a time on, read from the finest ring that still
/// holds that time; none before the engine began, `None` past what any ring holds.
#[test]
fn events_since_a_time_come_from_the_finest_ring_that_reaches_back() {
    let origin = Timestamp::from_millis(1_700_000_000_000 / 3_600_000 * 3_600_000);
    let engine = Engine::new(EngineConfig::default(), origin).expect("valid");
    let mut recorder = engine.recorder();
    // An event every minute for ten hours, then one a second for the last two minutes.
    let minute = |m: u64| origin.saturating_add_millis(m * 60_000);
    for m in 0..600 {
        recorder.record(&count("acme", "x", 1, minute(m)));
    }
    let now = minute(600);
    for s in 0..120 {
        recorder.record(&count(
            "acme",
            "x",
            1,
            now.saturating_sub_millis(120_000 - s * 1000),
        ));
    }
    recorder.flush();
    // The last minute: its sixty seconds, and the minutely event that began it.
    assert_eq!(
        engine.events_since(now.saturating_sub_millis(60_000), now),
        Some(61),
        "1 s ring"
    );
    assert_eq!(
        engine.events_since(minute(570), now),
        Some(30 + 120),
        "1 min ring"
    );
    assert_eq!(
        engine.events_since(minute(300), now),
        Some(300 + 120),
        "1 h ring, whole hours"
    );
    assert_eq!(
        engine.events_since(Timestamp::from_millis(0), now),
        Some(720),
        "from the start"
    );
    let request = SnapshotRequest {
        since: Some(minute(300)),
        ..SnapshotRequest::default()
    };
    assert_eq!(engine.snapshot(&request, now).totals.since, Some(420));
    let tomorrow = now.saturating_add_millis(30 * 3_600_000);
    assert_eq!(engine.events_since(minute(0), tomorrow), None, "past every ring");
}

/// 100,000 accounts x 5 types fit in 1 GiB: the engine's own count stays within 10 KiB an
/// account whatever its size (the memory bench measures the resident figure at 100,000).
#[test]
fn an_account_with_five_types_takes_at_most_10_kib() {
    let engine = engine();
    let mut recorder = engine.recorder();
    let accounts = 2_000;
    for i in 0..accounts {
        let name = format!("account-{i:06}");
        for kind in ["pageview", "order.create", "order.update", "signup", "api"] {
            recorder.record(&count(&name, kind, 1, at(1000)));
        }
    }
    recorder.flush();
    let each = engine.heap_bytes() / accounts;
    assert!(each <= 10 * 1024, "{each} bytes an account");
    assert!(
        each >= 9 * 1024,
        "six series of 384 four-byte buckets are 9 KiB: {each}"
    );
}

#[test]
fn rows_are_ranked_by_window_then_rate_then_name_and_keep_their_own_numbers() {
    let engine = engine();
    let mut recorder = engine.recorder();
    // Names that share their first 16 bytes and more, in an order that is not the ranking's;
    // an account's events all fall in the window, and its total says which account it is.
    let names: Vec<String> = (0..300u64)
        .map(|i| format!("customer-website-{:03}", (i * 137) % 300))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let i = i as u64;
        // Three accounts for each window total; within each, older or newer events.
        let events = 1 + i % 100;
        let second = if i.is_multiple_of(3) { 10 } else { 58 };
        recorder.record(&count(name, "pageview", events, at(second * 1000)));
        recorder.record(&count(name, "pageview", i * 1000, at(0)));
    }
    recorder.flush();
    let request = SnapshotRequest {
        window: Window {
            level: 0,
            buckets: 50,
        },
        ..last_minute()
    };
    let snap = engine.snapshot(&request, at(59_000));
    assert_eq!(snap.accounts.len(), names.len());
    for pair in snap.accounts.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let order = (b.window_total.cmp(&a.window_total))
            .then(b.rate.total_cmp(&a.rate))
            .then(a.name.cmp(&b.name));
        assert_eq!(order, std::cmp::Ordering::Less, "{} before {}", a.name, b.name);
    }
    for row in &snap.accounts {
        let i = names.iter().position(|n| *n == *row.name).expect("a known name");
        let events = 1 + i as u64 % 100;
        assert_eq!(row.total, i as u64 * 1000 + events, "{}", row.name);
        assert_eq!(row.window_total, events, "{}", row.name);
        assert_eq!(row.rate > 0.0, !i.is_multiple_of(3), "{}", row.name);
    }
    assert!(snap.accounts.iter().take(20).all(|row| row.detail.is_some()));
    assert!(snap.accounts.iter().skip(20).all(|row| row.detail.is_none()));
}
