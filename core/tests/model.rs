//! Property test: whatever events arrive, in whatever order and with whatever gaps, every window
//! of every resolution holds exactly what a naive model computes from the event list.
//!
//! The engine's contract for windows: a snapshot taken at or after the latest event time sees
//! every event of the window. (Late events whose ring slot was already recycled are outside
//! every window by then; they are still in the totals.) That holds however the events are handed
//! over (by their names or under their StatsD buckets) and however few pairs the recorder's
//! name cache holds.

use proptest::prelude::*;
use std::collections::BTreeMap;
use tally_core::{Engine, EngineConfig, Event, Resolution, SnapshotRequest, Timestamp, Value, Window};

const T0: u64 = 1_700_002_800_000; // a multiple of the coarsest bucket, so the origin is T0
const ACCOUNTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
const TYPES: [&str; 3] = ["pageview", "order.create", "api"];

/// Small rings so that short runs wrap many times: rings shorter than the next resolution's
/// bucket, and rings that hold several of them (where windows are read from whole coarse buckets,
/// with our buckets added or subtracted at the ends).
fn resolutions(layout: usize) -> Vec<Resolution> {
    match layout {
        0 => vec![
            Resolution::new(100, 7),
            Resolution::new(1000, 5),
            Resolution::new(3000, 4),
        ],
        _ => vec![
            Resolution::new(100, 30),
            Resolution::new(1000, 12),
            Resolution::new(4000, 5),
        ],
    }
}

#[derive(Clone, Debug)]
struct Recorded {
    account: usize,
    event_type: usize,
    offset_ms: u64,
    n: u64,
}

fn recorded(offset: impl Strategy<Value = u64>) -> impl Strategy<Value = Recorded> {
    (0..ACCOUNTS.len(), 0..TYPES.len(), offset, 1u64..5).prop_map(|(account, event_type, offset_ms, n)| {
        Recorded {
            account,
            event_type,
            offset_ms,
            n,
        }
    })
}

fn events() -> impl Strategy<Value = Vec<Recorded>> {
    let offset = prop_oneof![
        4 => 0u64..30_000,
        // Long gaps: far later (and, shuffled, far earlier) than the rest.
        1 => 1_000_000u64..1_030_000,
    ];
    prop_oneof![
        3 => prop::collection::vec(recorded(offset), 0..150),
        // Runs that end just after the origin, so windows start before it.
        1 => prop::collection::vec(recorded(0u64..2_500), 0..20),
    ]
}

/// Events per bucket epoch, for one account (and optionally one type), at one resolution.
fn model(
    events: &[Recorded],
    bucket_ms: u64,
    account: usize,
    event_type: Option<usize>,
) -> BTreeMap<u64, u64> {
    let mut buckets = BTreeMap::new();
    for e in events {
        if e.account == account && event_type.is_none_or(|t| t == e.event_type) {
            *buckets.entry(e.offset_ms / bucket_ms).or_default() += e.n;
        }
    }
    buckets
}

fn window_values(buckets: &BTreeMap<u64, u64>, last: u64, len: usize) -> Vec<u64> {
    (0..len as u64)
        .map(|i| {
            let epoch = (last + 1 + i).checked_sub(len as u64);
            epoch.map_or(0, |e| buckets.get(&e).copied().unwrap_or(0))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_window_matches_the_model(
        events in events(),
        extra_ms in prop_oneof![Just(0u64), 0u64..1_000, 0u64..20_000],
        windows in prop::collection::vec((0usize..3, 1u32..30), 1..4),
        layout in 0usize..2,
        spelled in any::<bool>(),
        cached_pairs in prop_oneof![Just(tally_core::Recorder::MAX_CACHED_NAMES), 1usize..6],
    ) {
        let resolutions = resolutions(layout);
        let config = EngineConfig { resolutions: resolutions.clone(), ..EngineConfig::default() };
        let engine = Engine::new(config, Timestamp::from_millis(T0)).expect("valid");
        // A small cache starts again often, in the middle of blocks too.
        let mut recorder = engine.recorder_caching(cached_pairs);
        for e in &events {
            let event = Event {
                account: ACCOUNTS[e.account],
                event_type: TYPES[e.event_type],
                app: None,
                value: Value::Count(e.n),
                time: Timestamp::from_millis(T0 + e.offset_ms),
            };
            if spelled {
                recorder.record_spelled(&event, &format!("{}.{}", event.account, event.event_type));
            } else {
                recorder.record(&event);
            }
        }
        let now_offset = events.iter().map(|e| e.offset_ms).max().unwrap_or(0) + extra_ms;
        let now = Timestamp::from_millis(T0 + now_offset);

        for (level, buckets) in windows {
            let resolution = resolutions[level];
            let len = buckets.min(resolution.buckets) as usize;
            let last = now_offset / resolution.bucket_ms;
            let request = SnapshotRequest {
                window: Window { level, buckets },
                top: ACCOUNTS.len(),
                detail: ACCOUNTS.len(),
                all_types: true,
                ..SnapshotRequest::default()
            };
            recorder.flush();
            let snap = engine.snapshot(&request, now);
            let mut heights = vec![0u64; len];
            for (a, name) in ACCOUNTS.iter().enumerate() {
                let expected = window_values(&model(&events, resolution.bucket_ms, a, None), last, len);
                let total: u64 = events.iter().filter(|e| e.account == a).map(|e| e.n).sum();
                for (h, v) in heights.iter_mut().zip(&expected) {
                    *h += v;
                }
                let Some(stats) = snap.accounts.iter().find(|s| &*s.name == *name) else {
                    prop_assert_eq!(total, 0, "{} missing", name);
                    continue;
                };
                prop_assert_eq!(stats.total, total, "{} total", name);
                prop_assert_eq!(stats.window_total, expected.iter().sum::<u64>(), "{} window", name);
                let detail = stats.detail.as_ref().expect("all accounts detailed");
                prop_assert_eq!(&detail.sparkline, &expected, "{} buckets", name);
                for (t, type_name) in TYPES.iter().enumerate() {
                    let expected = window_values(&model(&events, resolution.bucket_ms, a, Some(t)), last, len);
                    let got = detail.types.iter().find(|s| &*s.name == *type_name).map_or(0, |s| s.window_total);
                    prop_assert_eq!(got, expected.iter().sum::<u64>(), "{}/{}", name, type_name);
                }
            }
            for (t, type_name) in TYPES.iter().enumerate() {
                let expected: u64 = (0..ACCOUNTS.len())
                    .map(|a| window_values(&model(&events, resolution.bucket_ms, a, Some(t)), last, len).iter().sum::<u64>())
                    .sum();
                let got = snap.types.iter().find(|s| &*s.name == *type_name).map_or(0, |s| s.window_total);
                prop_assert_eq!(got, expected, "{} over all accounts", type_name);
            }
            prop_assert_eq!(&snap.stack.totals, &heights);
            prop_assert_eq!(snap.totals.window_total, heights.iter().sum::<u64>());
            prop_assert_eq!(snap.totals.total, events.iter().map(|e| e.n).sum::<u64>());
        }
    }
}
