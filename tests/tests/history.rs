//! The history end to end: `tally stat --http --state DIR` keeping counts across restarts
//! (SIGTERM and `kill -9`), `tally history`, the classic stats API with curl, and what
//! happens to a broken, newer or busy database.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tally_tests::{Stat, free_tcp_port, post_events};

const WAIT: Duration = Duration::from_secs(20);

fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-history-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `tally stat` with HTTP on a free port, keeping history in `dir` (every 200 ms unless
/// `extra` says otherwise).
fn serve(dir: &Path, extra: &[&str]) -> (Stat, String) {
    let address = format!("127.0.0.1:{}", free_tcp_port());
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec![
        "--no-udp",
        "--http",
        &address,
        "--interval",
        "100ms",
        "--state",
        dir,
    ];
    if !extra.contains(&"--checkpoint-interval") {
        args.extend(["--checkpoint-interval", "200ms"]);
    }
    args.extend_from_slice(extra);
    let mut stat = Stat::start(&args);
    stat.wait_for(WAIT, |r| !history(r).is_null());
    (stat, format!("http://{address}"))
}

/// The history's entry in a report's outputs.
fn history(report: &Value) -> &Value {
    (report["outputs"].as_array().into_iter().flatten())
        .find(|o| o["kind"] == "history")
        .unwrap_or(&Value::Null)
}

/// Waits until the history has written `events` events.
fn written(stat: &mut Stat, events: u64) -> Value {
    stat.wait_for(WAIT, |r| history(r)["received"].as_u64() >= Some(events))
}

/// `tally history ARGS --state DIR --json`'s counts: (period, type, count).
fn stored(dir: &Path, args: &[&str]) -> Vec<(String, String, u64)> {
    let output = tally_tests::command("tally")
        .arg("history")
        .args(args)
        .args(["--json", "--state", dir.to_str().expect("utf-8")])
        .output()
        .expect("tally history runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    (document["counts"].as_array().into_iter().flatten())
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
            (text("period"), text("type"), c["count"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn total(counts: &[(String, String, u64)]) -> u64 {
    counts.iter().map(|(_, _, n)| n).sum()
}

/// Issue 14: counts survive a clean stop and a `kill -9` (what was checkpointed), and a
/// restart counts on top: never twice.
#[test]
fn counts_survive_sigterm_and_kill_9() {
    let dir = state_dir("restart");
    let (mut first, url) = serve(&dir, &[]);
    post_events(&url, "acme.pageview:5|c\nglobex.pageview:1|c");
    written(&mut first, 6);
    assert!(first.terminate().success());

    let (mut second, url) = serve(&dir, &[]);
    post_events(&url, "acme.pageview:3|c\nacme.signup:2|c");
    written(&mut second, 5);
    drop(second); // kill -9

    let acme = stored(&dir, &["acme", "--by", "hour", "--utc"]);
    assert_eq!(total(&acme), 10, "{acme:?}");
    let pageviews = stored(&dir, &["acme", "--type", "pageview", "--by", "month"]);
    assert_eq!(total(&pageviews), 8, "{pageviews:?}");
    assert_eq!(
        total(&stored(&dir, &["all", "--by", "day"])),
        11,
        "every account under all"
    );

    // Events that arrive after the last checkpoint die with a killed tally: at most one
    // checkpoint interval's worth, and never what was kept before.
    let (mut third, url) = serve(&dir, &["--checkpoint-interval", "1h"]);
    post_events(&url, "acme.pageview:7|c");
    // On top of the 10 it restored.
    third.wait_for(WAIT, |r| tally_tests::account_total(r, "acme") == 17);
    drop(third);
    assert_eq!(total(&stored(&dir, &["acme", "--by", "hour"])), 10);
    let _ = std::fs::remove_dir_all(&dir);
}

/// curl's answer: status, headers, body.
fn fetch(url: &str) -> (u16, String, String) {
    let output = Command::new("curl")
        .args(["-s", "-i", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

/// `/api/snapshot?window=WINDOW`, with what depends on the moment it is taken (rates,
/// shares, sources, outputs) left out, and its bars apart.
fn windows_of(url: &str, window: &str) -> (Value, Value) {
    let (status, _, body) = fetch(&format!("{url}/api/snapshot?window={window}"));
    assert_eq!(status, 200, "{body}");
    let mut report: Value = serde_json::from_str(&body).expect("JSON");
    let bars = report["bars"].take();
    let object = report.as_object_mut().expect("an object");
    for moment in ["time", "sources", "outputs", "bars"] {
        object.remove(moment);
    }
    for key in ["rate", "peak_rate"] {
        object["totals"].as_object_mut().expect("totals").remove(key);
    }
    for account in report["accounts"].as_array_mut().into_iter().flatten() {
        let account = account.as_object_mut().expect("an account");
        account.remove("rate");
        account.remove("share");
        for kind in account["types"].as_object_mut().expect("types").values_mut() {
            kind.as_object_mut().expect("a type").remove("rate");
        }
    }
    (report, bars)
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Issue 14: after a restart (SIGTERM, and `kill -9` after a checkpoint), the windows show
/// what a tally that never stopped shows for the same events: totals, window totals,
/// timings, distinct counts, gauges, rejections; and the time it was down is an empty gap.
#[test]
fn windows_survive_sigterm_and_kill_9() {
    let (dir, never_dir) = (state_dir("windows"), state_dir("windows-never"));
    let (mut kept, mut url) = serve(&dir, &[]);
    let (never, never_url) = serve(&never_dir, &[]);
    let batch = |n: u32| {
        format!(
            "acme.view:{n}|c\nacme.latency:{}|ms\nacme.users:u{n}|s\nacme.temp:{n}|g\nglobex.view:1|c\nnot a metric",
            10 * n
        )
    };
    let mut downtime = vec![];
    for n in 1..=3 {
        if n > 1 {
            let stopped = now_ms();
            if n == 2 {
                assert!(kept.terminate().success());
            } else {
                drop(kept); // kill -9, after the checkpoint below
            }
            std::thread::sleep(Duration::from_millis(2_500));
            (kept, url) = serve(&dir, &[]);
            downtime.push((stopped, now_ms()));
        }
        post_events(&url, &batch(n));
        post_events(&never_url, &batch(n));
        written(&mut kept, 5);
    }
    for window in ["5m", "1h", "24h"] {
        let ((report, bars), (expected, expected_bars)) =
            (windows_of(&url, window), windows_of(&never_url, window));
        assert_eq!(report, expected, "the {window} window");
        let sum = |bars: &Value| -> u64 {
            bars["totals"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .sum()
        };
        assert_eq!(sum(&bars), sum(&expected_bars), "the {window} window's bars");
    }
    assert_eq!(expected_totals(&url), (6 + 3 * 4, 3), "events and rejections");
    // By second: nothing while it was down, events before and after.
    let (_, bars) = windows_of(&url, "5m");
    let (start, bucket_ms) = (
        bars["start"].as_u64().expect("start"),
        bars["bucket_ms"].as_u64().expect("width"),
    );
    let counts: Vec<u64> = bars["totals"]
        .as_array()
        .expect("bars")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let at = |ms: u64| ((ms - start) / bucket_ms) as usize;
    for (stopped, started) in downtime {
        let down = &counts[at(stopped) + 1..at(started)];
        assert!(
            !down.is_empty() && down.iter().all(|&n| n == 0),
            "down from {stopped} to {started}: {counts:?}"
        );
        assert!(counts[..at(stopped) + 1].iter().any(|&n| n > 0), "{counts:?}");
        assert!(counts[at(started)..].iter().any(|&n| n > 0), "{counts:?}");
    }
    drop(never);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&never_dir);
}

/// The total events and rejections of the snapshot at `url`.
fn expected_totals(url: &str) -> (u64, u64) {
    let (report, _) = windows_of(url, "1h");
    let totals = &report["totals"];
    (
        totals["total"].as_u64().unwrap_or(0),
        totals["rejected"].as_u64().unwrap_or(0),
    )
}

/// Issue 14: the classic stats API answers from the history: the listings, a year, a month
/// and a day, with padded and unpadded dates, JSONP, and the no-cache headers.
#[test]
fn the_classic_stats_api_answers_from_the_history() {
    let dir = state_dir("classic");
    let (mut stat, url) = serve(&dir, &["--utc"]);
    post_events(&url, "acme.pageview:4|c\nglobex.pageview:1|c");
    written(&mut stat, 5);
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let (year, month, day, hour) = (now.year(), now.month(), now.day(), now.hour());
    let stats = format!("{url}/stats");
    let host = url.trim_start_matches("http://");

    let (status, head, body) = fetch(&format!("{stats}/track/acme/pageview/{year}"));
    assert_eq!(status, 200);
    for header in [
        "cache-control: no-store, no-cache, must-revalidate, private, proxy-revalidate",
        "pragma: no-cache",
        "expires: fri, 24 nov 2000 01:00:00 gmt",
        "content-type: application/json",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
    let document: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(document["data"][month.to_string()], 4, "{document}");
    assert_eq!(
        (
            &document["type"],
            &document["account"],
            &document["event"],
            &document["year"],
            &document["day"]
        ),
        (
            &Value::from("track"),
            &Value::from("acme"),
            &Value::from("pageview"),
            &Value::from(year.to_string()),
            &Value::from("")
        )
    );
    assert_eq!(
        document["links"][0],
        format!("http://{host}/stats/track/acme/pageview/{year}/{month}")
    );

    for (padded_month, padded_day) in [
        (format!("{month:02}"), format!("{day:02}")),
        (month.to_string(), day.to_string()),
    ] {
        let (_, _, body) = fetch(&format!("{stats}/track/acme/pageview/{year}/{padded_month}"));
        let month_document: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(month_document["data"][day.to_string()], 4, "{month_document}");
        let (_, _, body) = fetch(&format!(
            "{stats}/track/all/pageview/{year}/{padded_month}/{padded_day}"
        ));
        let day_document: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(day_document["data"][hour.to_string()], 5, "{day_document}");
        assert_eq!(day_document["month"], padded_month.as_str(), "echoes the path");
    }

    let (status, head, body) = fetch(&format!("{stats}/track/acme/pageview/{year}?callback=showStats"));
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    let json = body
        .strip_prefix("showStats(")
        .and_then(|b| b.strip_suffix(')'))
        .expect("JSONP");
    assert_eq!(serde_json::from_str::<Value>(json).expect("JSON"), document);
    assert_eq!(fetch(&format!("{stats}/track?callback=alert(1)//")).0, 400);

    let (_, _, body) = fetch(&format!("{stats}/track"));
    let listing: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(listing["data"], Value::Null);
    let accounts: Vec<&str> = (listing["links"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        accounts,
        [
            format!("http://{host}/stats/track/acme"),
            format!("http://{host}/stats/track/all"),
            format!("http://{host}/stats/track/globex")
        ]
    );
    let (_, _, body) = fetch(&format!("{stats}/"));
    let root: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        root["links"],
        serde_json::json!([format!("http://{host}/stats/track")])
    );
    assert_eq!(fetch(&format!("{stats}/track/acme/pageview/twenty")).0, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A state directory whose database is `contents`, with a history-less tally started on
/// it: the report once the history said what it made of the file.
fn start_on(name: &str, prepare: impl FnOnce(&Path)) -> (PathBuf, Stat, Value) {
    let dir = state_dir(name);
    std::fs::create_dir_all(&dir).expect("dir");
    prepare(&dir);
    let (mut stat, _) = serve(&dir, &[]);
    let report = stat.wait_for(WAIT, |r| !history(r)["state"].is_null());
    (dir, stat, report)
}

/// A real database with some history in it, made by a tally that then stopped cleanly.
fn made_by_tally(dir: &Path) {
    let (mut stat, url) = serve(dir, &[]);
    post_events(
        &url,
        &(0..200)
            .map(|i| format!("acct{i}.pageview:1|c\n"))
            .collect::<String>(),
    );
    written(&mut stat, 200);
    assert!(stat.terminate().success());
}

fn moved_aside(dir: &Path) -> Vec<PathBuf> {
    (std::fs::read_dir(dir).expect("lists").flatten())
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains("tally.db.corrupt-"))
        .filter(|path| !path.to_string_lossy().ends_with("-wal") && !path.to_string_lossy().ends_with("-shm"))
        .collect()
}

/// What a test does to a state directory's database.
type Breakage = fn(&Path);

const GARBAGE: &[u8] = b"these are someone's notes, not a database";

fn garbage(dir: &Path) {
    std::fs::write(dir.join("tally.db"), GARBAGE).expect("writes");
}

fn truncated(dir: &Path) {
    made_by_tally(dir);
    let file = (std::fs::OpenOptions::new().write(true))
        .open(dir.join("tally.db"))
        .expect("opens");
    let length = file.metadata().expect("size").len();
    file.set_len(length / 2).expect("truncates");
}

/// Every page after the first has its header's first bytes (the page's kind and layout)
/// inverted.
fn flipped(dir: &Path) {
    made_by_tally(dir);
    let path = dir.join("tally.db");
    let mut bytes = std::fs::read(&path).expect("reads");
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    for start in (page..bytes.len()).step_by(page) {
        for byte in &mut bytes[start..start + 8] {
            *byte = !*byte;
        }
    }
    std::fs::write(&path, bytes).expect("writes");
}

/// Issue 14: a database that is garbage, truncated or has flipped bytes is reported, moved
/// aside (its bytes kept) and a new history begun; tally runs on.
#[test]
fn a_broken_database_is_moved_aside_with_a_warning() {
    let breakages: [(&str, Breakage); 3] = [
        ("garbage", garbage),
        ("truncated", truncated),
        ("flipped", flipped),
    ];
    for (name, breakage) in breakages {
        let (dir, mut stat, report) = start_on(name, breakage);
        let note = history(&report)["note"].as_str().unwrap_or_default().to_owned();
        assert!(note.contains("moved aside to"), "{name}: {note}");
        let aside = moved_aside(&dir);
        assert_eq!(aside.len(), 1, "{name}: {aside:?}");
        if name == "garbage" {
            assert_eq!(std::fs::read(&aside[0]).expect("kept"), GARBAGE);
        }
        // A fresh history, written to.
        let url = format!(
            "http://{}",
            tally_tests::source(&report, "http")["address"]
                .as_str()
                .expect("address")
        );
        post_events(&url, "acme.pageview:2|c");
        written(&mut stat, 2);
        assert_ne!(
            history(stat.last.as_ref().expect("a report"))["state"],
            "disconnected"
        );
        drop(stat);
        assert_eq!(total(&stored(&dir, &["acme"])), 2, "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 14: a database from a newer tally is refused with a clear message and left exactly
/// as it was; a second tally on a directory in use says so and runs without history.
#[test]
fn a_newer_or_busy_database_is_left_alone() {
    let (dir, stat, report) = start_on("newer", |dir| {
        made_by_tally(dir);
        let set = Command::new("python3")
            .args(["-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA user_version = 99'); db.commit()"])
            .arg(dir.join("tally.db"))
            .status()
            .expect("python3 runs");
        assert!(set.success());
    });
    let before = std::fs::read(dir.join("tally.db")).expect("reads");
    let history_status = history(&report);
    assert_eq!(history_status["state"], "disconnected", "{history_status}");
    let note = history_status["note"].as_str().unwrap_or_default();
    assert!(note.contains("written by a newer tally (schema 99"), "{note}");
    drop(stat);
    assert_eq!(
        std::fs::read(dir.join("tally.db")).expect("reads"),
        before,
        "untouched"
    );
    assert!(moved_aside(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);

    let dir = state_dir("busy");
    let (_first, _) = serve(&dir, &[]);
    let (mut second, url) = serve(&dir, &[]);
    let report = second.wait_for(WAIT, |r| history(r)["state"] == "disconnected");
    let note = history(&report)["note"].as_str().unwrap_or_default().to_owned();
    assert!(note.contains("in use by another tally"), "{note}");
    post_events(&url, "acme.pageview:1|c");
    second.wait_for(WAIT, |r| tally_tests::account_total(r, "acme") == 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real redis-server on a free loopback port, its data in `dir` written at every command
/// (so that a killed server comes back with what it had), stopped when dropped.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    fn start(dir: &Path, port: u16) -> RedisServer {
        std::fs::create_dir_all(dir).expect("redis's dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test installs it)");
        let server = RedisServer { child, port };
        let deadline = std::time::Instant::now() + WAIT;
        while server.cli(&["ping"]) != "PONG" {
            assert!(std::time::Instant::now() < deadline, "redis-server answers");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A hash's fields and counts.
    fn hash(&self, key: &str) -> std::collections::BTreeMap<String, u64> {
        let reply = self.cli(&["hgetall", key]);
        let lines: Vec<&str> = reply.lines().collect();
        (lines.chunks(2))
            .filter_map(|pair| Some((pair.first()?.to_string(), pair.get(1)?.parse().ok()?)))
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mirror's entry in a report's outputs.
fn mirror(report: &Value) -> &Value {
    (report["outputs"].as_array().into_iter().flatten())
        .find(|o| o["kind"] == "redis")
        .unwrap_or(&Value::Null)
}

/// Issue 14: `--redis` writes what the classic aggregator wrote (unpadded fields, the same
/// under `all`, day keys that expire), and a Redis killed and restarted mid-run loses
/// nothing and counts nothing twice; what could not be sent is counted.
#[test]
fn the_redis_mirror_writes_the_classic_keys_and_survives_a_restart() {
    let dir = state_dir("redis");
    let port = free_tcp_port();
    let redis = RedisServer::start(&dir.join("redis"), port);
    let url = format!("redis://127.0.0.1:{port}");
    let (mut stat, http) = serve(&dir, &["--utc", "--redis", &url]);
    post_events(&http, "acme.pageview:4|c\nglobex.pageview:1|c");
    stat.wait_for(WAIT, |r| mirror(r)["received"].as_u64() >= Some(5));
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let (y, m, d, h) = (now.year(), now.month(), now.day(), now.hour());
    let one = |field: String, n: u64| std::collections::BTreeMap::from([(field, n)]);
    assert_eq!(
        redis.hash(&format!("track:acme:pageview:{y}")),
        one(m.to_string(), 4)
    );
    assert_eq!(
        redis.hash(&format!("track:acme:pageview:{y}:{m}")),
        one(d.to_string(), 4)
    );
    let day = format!("track:acme:pageview:{y}:{m}:{d}");
    assert_eq!(redis.hash(&day), one(h.to_string(), 4));
    assert_eq!(
        redis.hash(&format!("track:all:pageview:{y}:{m}:{d}")),
        one(h.to_string(), 5)
    );
    let ttl: i64 = redis.cli(&["ttl", &day]).parse().expect("a number");
    assert!(ttl > 29 * 86_400, "day keys expire after 30 days: {ttl}");

    // Redis dies; events go on arriving and are kept for it.
    drop(redis);
    post_events(&http, "acme.pageview:3|c");
    stat.wait_for(WAIT, |r| history(r)["received"].as_u64() >= Some(8));
    let report = stat.wait_for(WAIT, |r| mirror(r)["state"] == "disconnected");
    assert!(
        mirror(&report)["note"].as_str().is_some_and(|n| !n.is_empty()),
        "{report:#}"
    );
    let redis = RedisServer::start(&dir.join("redis"), port);
    let report = stat.wait_for(WAIT, |r| {
        let sent = mirror(r)["received"].as_u64().unwrap_or(0);
        sent + mirror(r)["dropped"].as_u64().unwrap_or(0) >= 8
    });
    let dropped = mirror(&report)["dropped"].as_u64().unwrap_or(0);
    let mirrored = redis.hash(&day)[&h.to_string()];
    assert_eq!(
        mirrored + dropped,
        7,
        "acme's 7 events: mirrored once or counted as dropped"
    );
    assert_eq!(dropped, 0, "Redis was gone between sends: nothing was in flight");
    drop(stat);
    let _ = std::fs::remove_dir_all(&dir);
}
