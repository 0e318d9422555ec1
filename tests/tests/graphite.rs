//! Graphite end to end: `tally stat --graphite` against a real carbon-cache (Debian's
//! graphite-carbon, started here on free ports), read back with whisper-fetch; carbon killed
//! and started again mid-run.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_tests::{Stat, free_tcp_port, post_events};

const WAIT: Duration = Duration::from_secs(30);

/// carbon-cache in the foreground, its whisper files under `dir`, one second per point.
struct Carbon {
    child: Child,
}

impl Carbon {
    fn start(dir: &Path, port: u16) -> Carbon {
        let conf = dir.join("conf");
        for sub in ["conf", "storage/whisper", "log", "run"] {
            std::fs::create_dir_all(dir.join(sub)).expect("carbon's directories");
        }
        let config = format!(
            "[cache]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\nWHITELISTS_DIR = {d}/storage/lists/\n\
             CONF_DIR = {d}/conf/\nLOG_DIR = {d}/log/\nPID_DIR = {d}/run/\nENABLE_LOGROTATION = False\nUSER =\n\
             MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = 10000\nMAX_CREATES_PER_MINUTE = inf\nENABLE_TAGS = False\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\nENABLE_UDP_LISTENER = False\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query}\nWHISPER_AUTOFLUSH = True\n",
            d = dir.display(),
            pickle = free_tcp_port(),
            query = free_tcp_port(),
        );
        std::fs::write(conf.join("carbon.conf"), config).expect("writes");
        std::fs::write(
            conf.join("storage-schemas.conf"),
            "[everything]\npattern = .*\nretentions = 1s:1h\n",
        )
        .expect("writes");
        let child = Command::new("carbon-cache")
            .arg(format!("--config={}", conf.join("carbon.conf").display()))
            .args(["--debug", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("carbon-cache runs (scripts/test installs graphite-carbon)");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "carbon listens on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Carbon { child }
    }
}

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The points whisper-fetch reads from a metric's file (none if it is not there yet).
fn points(dir: &Path, metric: &str) -> Vec<f64> {
    let file: PathBuf = dir
        .join("storage/whisper")
        .join(format!("{}.wsp", metric.replace('.', "/")));
    if !file.exists() {
        return vec![];
    }
    let output = Command::new("whisper-fetch")
        .arg("--from")
        .arg((jiff::Timestamp::now().as_second() - 600).to_string())
        .arg(&file)
        .output()
        .expect("whisper-fetch runs (python3-whisper)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn sum(dir: &Path, metric: &str) -> f64 {
    points(dir, metric).iter().sum()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn graphite(report: &Value) -> &Value {
    (report["outputs"].as_array().into_iter().flatten())
        .find(|o| o["kind"] == "graphite")
        .unwrap_or(&Value::Null)
}

/// Issue 14: counters, timers, gauges and sets reach carbon under statsd's names, exactly per
/// interval; carbon killed mid-run: tally reconnects when it is back and sends what waited.
#[test]
fn carbon_receives_statsd_named_aggregates_and_what_waited_while_it_was_away() {
    let dir = std::env::temp_dir().join(format!("tally-graphite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_tcp_port();
    let carbon = Carbon::start(&dir, port);
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let target = format!("127.0.0.1:{port}");
    let mut stat = Stat::start(&[
        "--no-udp",
        "--http",
        &http,
        "--interval",
        "200ms",
        "--no-state",
        "--graphite",
        &target,
        "--graphite-interval",
        "1s",
    ]);
    stat.wait_for(WAIT, |r| tally_tests::source(r, "http")["state"] == "listening");
    let url = format!("http://{http}");
    post_events(
        &url,
        "acme.pageview:5|c\nacme.latency:10|ms\nacme.latency:30|ms\nacme.queue:7|g\nacme.visitors:a|s\nacme.visitors:b|s",
    );
    // Carbon writes each metric's file in its own time: each is waited for.
    for (metric, expected) in [
        ("stats.counters.acme.pageview.count", 5.0),
        ("stats.timers.acme.latency.count", 2.0),
        ("stats.gauges.acme.queue", 7.0),
        ("stats.sets.acme.visitors.count", 2.0),
    ] {
        wait_until(metric, || sum(&dir, metric) == expected);
    }
    wait_until("the upper timing", || {
        !points(&dir, "stats.timers.acme.latency.upper").is_empty()
    });
    let upper = points(&dir, "stats.timers.acme.latency.upper");
    assert!(upper.iter().all(|v| (29.0..=31.0).contains(v)), "{upper:?}");
    wait_until("the rate", || {
        sum(&dir, "stats.counters.acme.pageview.rate") > 0.0
    });

    // Carbon dies; the next flushes wait for it.
    drop(carbon);
    post_events(&url, "acme.pageview:3|c");
    stat.wait_for(WAIT, |r| graphite(r)["state"] == "disconnected");
    let _carbon = Carbon::start(&dir, port);
    wait_until("what waited, in whisper", || {
        sum(&dir, "stats.counters.acme.pageview.count") == 8.0
    });
    let report = stat.wait_for(WAIT, |r| graphite(r)["state"] == "connected");
    assert_eq!(graphite(&report)["dropped"], 0, "{report:#}");
    drop(stat);
    let _ = std::fs::remove_dir_all(&dir);
}
