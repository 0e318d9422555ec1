//! The HTTP input end to end: `tally stat --http` against real clients: curl, Python
//! `requests`, and a headless Chromium loading a page that shows the tracking pixel.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tally_tests::{Stat, account_total, free_tcp_port, peers_python, source};

/// `tally stat --json --http 127.0.0.1:PORT` (and `extra`), its URL once it listens.
fn serve(extra: &[&str]) -> (Stat, String) {
    let port = free_tcp_port();
    let address = format!("127.0.0.1:{port}");
    let mut args = vec!["--no-udp", "--http", &address, "--interval", "100ms"];
    args.extend_from_slice(extra);
    let mut stat = Stat::start(&args);
    stat.wait_for(Duration::from_secs(10), |r| {
        source(r, "http")["state"] == "listening"
    });
    (stat, format!("http://{address}"))
}

/// curl's answer: the status, then the body.
fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn type_total(report: &Value, account: &str, kind: &str) -> u64 {
    (report["accounts"].as_array().into_iter().flatten())
        .find(|a| a["account"] == account)
        .map_or(0, |a| a["types"][kind]["total"].as_u64().unwrap_or(0))
}

/// Issue 13: every body `POST /events` takes, from Python `requests` over one keep-alive
/// connection, counted exactly; a broken one answered 400 with its reason.
#[test]
fn posted_events_of_every_kind_are_counted() {
    let (mut stat, url) = serve(&[]);
    let output = Command::new(peers_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/post_events.py"))
        .arg(format!("{url}/events"))
        .output()
        .expect("the producer runs");
    let answers: Vec<Value> = (String::from_utf8_lossy(&output.stdout).lines())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(answers.len(), 6, "{}", String::from_utf8_lossy(&output.stderr));
    for answer in &answers[..5] {
        assert_eq!(answer["status"], 202, "{answer}");
        assert_eq!(answer["answer"]["rejected"], 0, "{answer}");
    }
    let accepted: Vec<u64> = answers[..5]
        .iter()
        .map(|a| a["answer"]["accepted"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(accepted, [1, 2, 3, 1, 2]);
    assert_eq!(answers[5]["status"], 400);
    let reason = answers[5]["answer"]["reasons"][0].as_str().unwrap_or("");
    assert!(reason.starts_with("json: "), "{reason}");
    // The StatsD body holds a counter of 2 and a timing: two events, three counted. A report
    // printed between the last good body and the broken one already has the total: wait for both.
    let report = stat.wait_for(Duration::from_secs(10), |r| {
        r["totals"]["total"] == 10 && r["rejections"]["json"] == 1
    });
    assert_eq!(type_total(&report, "acme", "signup"), 1);
    assert_eq!(type_total(&report, "acme", "order"), 1);
    assert_eq!(type_total(&report, "globex", "login"), 3);
    assert_eq!(type_total(&report, "initech", "signup"), 1, "msgpack");
    assert_eq!(type_total(&report, "acme", "checkout"), 2, "StatsD");
    assert_eq!(report["rejections"]["json"], 1);
    assert_eq!(source(&report, "http")["events"], 9);
}

/// Issue 13: what cannot be taken gets a clear status and is counted, and what was counted
/// before stays: an oversize body (413), an unknown type (415), a browser page from another
/// site (403), a wrong token (401).
#[test]
fn bad_requests_get_clear_statuses_and_are_counted() {
    let (mut stat, url) = serve(&[
        "--http-body-limit",
        "1KiB",
        "--http-allow-origin",
        "https://shop.example.com",
    ]);
    let events = format!("{url}/events");
    assert_eq!(curl(&[&events, "-d", "acme.ok:5|c"]).0, 202);
    let big = "acme.x:1|c\n".repeat(200);
    let (status, body) = curl(&[&events, "--data-binary", &big]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body over 1024 bytes"), "{body}");
    let (status, body) = curl(&[&events, "-H", "Content-Type: image/png", "-d", "x"]);
    assert_eq!(status, 415, "{body}");
    let (status, body) = curl(&[&events, "-H", "Origin: https://evil.example", "-d", "acme.x:1|c"]);
    assert_eq!(status, 403, "{body}");
    let (status, _) = curl(&[
        &events,
        "-H",
        "Origin: https://shop.example.com",
        "-d",
        "acme.ok:1|c",
    ]);
    assert_eq!(status, 202, "an allowed origin");
    let (status, body) = curl(&[&format!("{url}/healthz")]);
    assert_eq!((status, body.trim()), (200, "ok"));
    let report = stat.wait_for(Duration::from_secs(10), |r| {
        r["totals"]["rejected"] == 3 && account_total(r, "acme") == 6
    });
    assert_eq!(report["rejections"]["oversize"], 1);
    assert_eq!(report["rejections"]["unknown_type"], 1);
    assert_eq!(report["rejections"]["auth"], 1);
}

/// Issue 13: with `--token`, a producer's token in the `Authorization` header or the query
/// lets its events in without one in each payload; a wrong one is 401.
#[test]
fn tokens_come_in_a_header_or_the_query() {
    let dir = std::env::temp_dir().join(format!("tally-http-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "s3cret\n").expect("writes");
    let (mut stat, url) = serve(&["--token", tokens.to_str().expect("utf-8 path")]);
    let events = format!("{url}/events");
    assert_eq!(
        curl(&[&events, "-H", "Authorization: Bearer s3cret", "-d", "acme.a:1|c"]).0,
        202
    );
    assert_eq!(
        curl(&[&format!("{events}?access_token=s3cret"), "-d", "acme.b:1|c"]).0,
        202
    );
    assert_eq!(
        curl(&[&events, "-d", "s3cret.acme.c:1|c"]).0,
        202,
        "a token in the payload"
    );
    assert_eq!(
        curl(&[&events, "-H", "Authorization: Bearer nope", "-d", "acme.d:1|c"]).0,
        401
    );
    assert_eq!(curl(&[&events, "-d", "acme.e:1|c"]).0, 400, "no token anywhere");
    let pixel = format!("{url}/r/shop/acme/pageview?access_token=s3cret");
    assert_eq!(curl(&[&pixel]).0, 200);
    let (status, _) = curl(&[&format!("{url}/r/shop/acme/pageview")]);
    assert_eq!(status, 200, "the image is sent even when the event is refused");
    let report = stat.wait_for(Duration::from_secs(10), |r| r["rejections"]["auth"] == 3);
    assert_eq!(account_total(&report, "acme"), 4, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: a real browser showing a page with the pixel five times (one a unique visitor):
/// five page views and one unique, exactly, and the GIF with its no-cache headers.
#[test]
fn a_browser_page_with_the_pixel_counts_each_view() {
    let (mut stat, url) = serve(&[]);
    let (status, _) = curl(&["-D", "-", &format!("{url}/r/shop/acme/pageview")]);
    assert_eq!(status, 200);
    let dir = std::env::temp_dir().join(format!("tally-pixel-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let images: String = (1..=5)
        .map(|n| {
            let unique = if n == 1 { "&unq=1" } else { "" };
            format!("<img src=\"{url}/r/shop/globex/pageview?page={n}{unique}\" width=1 height=1>\n")
        })
        .collect();
    let page = dir.join("page.html");
    std::fs::write(&page, format!("<!doctype html><title>shop</title>\n{images}")).expect("writes");
    let chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test installs it)");
    assert!(
        chromium.status.success(),
        "{}",
        String::from_utf8_lossy(&chromium.stderr)
    );
    let report = stat.wait_for(Duration::from_secs(15), |r| account_total(r, "globex") == 6);
    assert_eq!(type_total(&report, "globex", "pageview"), 5);
    assert_eq!(type_total(&report, "globex", "unique"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pixel's exact answer, as the classic hub gave it.
/// Issue 13: 10,000 connections opened at once and left idle (half of them stalled inside a
/// request) cannot lock anyone out or grow memory without bound: the server holds at most
/// `--max-connections` (1,024 by default), refuses or displaces the rest and counts them, a
/// real client still gets through, and nothing already counted is lost.
#[test]
fn ten_thousand_idle_connections_are_bounded_and_counted() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use std::io::Write;
    const IDLE: usize = 10_000;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the open-file limit");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raised to the hard limit");
    }
    assert!(
        hard > IDLE as u64 + 512,
        "this test needs {IDLE} open files (ulimit -Hn: {hard})"
    );
    let (mut stat, url) = serve(&[]);
    let address = url.trim_start_matches("http://").to_owned();
    assert_eq!(curl(&[&format!("{url}/events"), "-d", "before.x:5|c"]).0, 202);
    stat.wait_for(Duration::from_secs(10), |r| r["totals"]["total"] == 5);
    let before_kib = stat.resident_kib();

    let idle: Vec<std::net::TcpStream> = (0..IDLE)
        .filter_map(|i| {
            let mut connection = std::net::TcpStream::connect(&address).ok()?;
            if i % 2 == 0 {
                // Stalled inside a request: headers promise a body that never comes.
                let partial = b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nacme";
                let _ = connection.write_all(partial);
            }
            Some(connection)
        })
        .collect();
    assert_eq!(idle.len(), IDLE, "every connect completes (the kernel's backlog)");
    let report = stat.wait_for(Duration::from_secs(30), |r| {
        let http = source(r, "http");
        let turned_away = http["refused"].as_u64().unwrap_or(0) + http["closed_idle"].as_u64().unwrap_or(0);
        turned_away >= (IDLE - 1024) as u64
    });
    let http = source(&report, "http");
    assert!(http["connections"].as_u64() <= Some(1024), "{http}");

    // Once the idle ones have been quiet a second, a newcomer displaces the quietest.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(curl(&[&format!("{url}/events"), "-d", "after.x:3|c"]).0, 202);
    assert_eq!(curl(&[&format!("{url}/healthz")]).0, 200);
    let report = stat.wait_for(Duration::from_secs(10), |r| r["totals"]["total"] == 8);
    assert_eq!(account_total(&report, "before"), 5, "nothing counted was lost");
    let grown_kib = stat.resident_kib().saturating_sub(before_kib);
    assert!(
        grown_kib < 64 * 1024,
        "holding the idle connections took {grown_kib} KiB"
    );
    drop(idle);
}

#[test]
fn the_pixel_is_a_gif_that_nothing_caches() {
    let (_stat, url) = serve(&[]);
    let output = Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("{url}/r/shop/acme/pageview"),
        ])
        .output()
        .expect("curl runs");
    let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
    for wanted in [
        "content-type: image/gif",
        "content-length: 43",
        "cache-control: no-store, no-cache, must-revalidate, private, proxy-revalidate",
        "pragma: no-cache",
        "expires: fri, 24 nov 2000 01:00:00 gmt",
    ] {
        assert!(headers.contains(wanted), "{wanted} in {headers}");
    }
}

/// Issue 13: HTTP connections take the listeners' slots: an idle one is closed after
/// `--idle-timeout`, and at `--max-connections` the quietest gives way to a newcomer.
#[test]
fn idle_http_connections_time_out_and_give_way() {
    use std::io::Read;
    let (mut stat, url) = serve(&["--max-connections", "2", "--idle-timeout", "2s"]);
    let address = url.trim_start_matches("http://").to_owned();
    let idle: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(&address).expect("connects"))
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    // Both slots are taken by connections quiet for over a second: a request still gets in.
    let (status, body) = curl(&[&format!("{url}/healthz")]);
    assert_eq!((status, body.trim()), (200, "ok"));
    for mut connection in idle {
        connection
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        assert_eq!(connection.read(&mut byte).ok(), Some(0), "closed by the server");
    }
    let report = stat.wait_for(Duration::from_secs(10), |r| {
        source(r, "http")["closed_idle"].as_u64() >= Some(2)
    });
    assert_eq!(source(&report, "http")["refused"], 0);
}

/// Python's Prometheus parser's reading of `url`: every sample.
fn scrape(url: &str, token: Option<&str>) -> Vec<Value> {
    let output = Command::new(peers_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/parse_metrics.py"))
        .arg(url)
        .args(token)
        .output()
        .expect("the parser runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("samples as JSON")
}

fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    (samples.iter())
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64())
}

/// Issue 13: `/metrics` read by Prometheus' own parser: exact counters per account and
/// type, timing summaries, gauges, distinct counts and tally's health; no more accounts named
/// than `top`, the rest as `(other)`.
#[test]
fn metrics_parse_with_prometheus_and_stay_bounded() {
    let (mut stat, url) = serve(&["--metrics-top", "2"]);
    let lines = "acme.checkout:3|c\nacme.latency:10|ms\nacme.latency:30|ms\nacme.queue:7|g\nacme.visitors:a|s\nacme.visitors:b|s\nglobex.x:2|c\ninitech.x:1|c\numbrella.x:1|c\nbad line\n";
    assert_eq!(curl(&[&format!("{url}/events"), "--data-binary", lines]).0, 202);
    // acme: 3 + 2 timings + a gauge + 2 set members; globex 2, initech 1, umbrella 1.
    stat.wait_for(Duration::from_secs(10), |r| r["totals"]["total"] == 12);
    let samples = scrape(&format!("{url}/metrics?top=10"), None);
    let events = |account, kind| {
        sample(
            &samples,
            "tally_events_total",
            &[("account", account), ("type", kind)],
        )
    };
    assert_eq!(events("acme", "checkout"), Some(3.0));
    assert_eq!(events("globex", "x"), Some(2.0));
    let latency = [("account", "acme"), ("type", "latency")];
    assert_eq!(sample(&samples, "tally_timing_ms_count", &latency), Some(2.0));
    let p99 = sample(
        &samples,
        "tally_timing_ms",
        &[latency[0], latency[1], ("quantile", "0.99")],
    );
    assert!(p99.is_some_and(|v| (29.0..=31.0).contains(&v)), "{p99:?}");
    assert_eq!(
        sample(&samples, "tally_gauge", &[("account", "acme"), ("type", "queue")]),
        Some(7.0)
    );
    assert_eq!(
        sample(
            &samples,
            "tally_distinct",
            &[("account", "acme"), ("type", "visitors")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&samples, "tally_rejected_total", &[("reason", "statsd")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&samples, "tally_source_up", &[("kind", "http")]),
        Some(1.0)
    );

    // As --metrics-top says: two accounts named, the rest summed under (other).
    let bounded = scrape(&format!("{url}/metrics"), None);
    let mut accounts: Vec<&str> = (bounded.iter())
        .filter(|s| s["name"] == "tally_events_total")
        .filter_map(|s| s["labels"]["account"].as_str())
        .collect();
    accounts.sort();
    accounts.dedup();
    assert_eq!(accounts, ["(other)", "acme", "globex"]);
    assert_eq!(
        sample(&bounded, "tally_events_total", &[("account", "(other)")]),
        Some(2.0)
    );
}

/// Issue 13: `/api/snapshot` is a `tally stat --json` line, for the window and top asked.
#[test]
fn the_api_gives_the_stat_document() {
    let (mut stat, url) = serve(&[]);
    assert_eq!(
        curl(&[&format!("{url}/events"), "-d", "acme.a:5|c\nglobex.b:1|c"]).0,
        202
    );
    stat.wait_for(Duration::from_secs(10), |r| r["totals"]["total"] == 6);
    let (status, body) = curl(&[&format!("{url}/api/snapshot?window=1h&top=1")]);
    assert_eq!(status, 200, "{body}");
    let document: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(document["window_seconds"], 3600.0);
    assert_eq!(document["totals"]["total"], 6);
    assert_eq!(document["accounts"][0]["account"], "acme");
    assert_eq!(document["accounts"][0]["types"]["a"]["total"], 5);
    assert_eq!(document["left_out"]["accounts"], 1);
    assert_eq!(source(&document, "http")["state"], "listening");
    let (status, body) = curl(&[&format!("{url}/api/snapshot?window=7m")]);
    assert_eq!(status, 400, "{body}");
}

/// Issue 13: with readers' tokens, the read routes want one, as the classic hub took them:
/// Bearer, Basic (user ignored), or `access_token` in the query or a POSTed form; 401 in plain
/// words otherwise.
#[test]
fn readers_show_a_token_four_ways() {
    let dir = std::env::temp_dir().join(format!("tally-http-readers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tokens = dir.join("readers");
    std::fs::write(&tokens, "r3ad\n").expect("writes");
    let (_stat, url) = serve(&["--http-read-token", tokens.to_str().expect("utf-8 path")]);
    let api = format!("{url}/api/snapshot");
    let (status, body) = curl(&[&api]);
    assert_eq!(status, 401);
    assert!(body.contains("a reader's token is needed"), "{body}");
    assert_eq!(curl(&[&api, "-H", "Authorization: Bearer nope"]).0, 401);
    assert_eq!(curl(&[&api, "-H", "Authorization: Bearer r3ad"]).0, 200);
    assert_eq!(curl(&[&api, "-u", "anyone:r3ad"]).0, 200, "Basic");
    assert_eq!(curl(&[&format!("{api}?access_token=r3ad")]).0, 200);
    assert_eq!(curl(&[&api, "-d", "access_token=r3ad"]).0, 200, "a POSTed form");
    assert_eq!(curl(&[&api, "-d", "access_token=nope"]).0, 401);
    let (status, body) = curl(&[&api, "-H", "Content-Type: text/plain", "-d", "access_token=r3ad"]);
    assert_eq!(status, 415, "a form, or nothing: {body}");
    let oversize = format!("access_token=r3ad&pad={}", "x".repeat(10_000));
    assert_eq!(curl(&[&api, "-d", &oversize]).0, 413);
    let samples = scrape(&format!("{url}/metrics"), Some("r3ad"));
    assert!(sample(&samples, "tally_rate", &[]).is_some());
    assert_eq!(curl(&[&format!("{url}/healthz")]).0, 200, "health needs no token");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A firehose reader (tests/peers/sse_reader.py) started in the background: its lines.
struct Reader {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Reader {
    fn start(url: &str, count: usize, args: &[&str]) -> Reader {
        use std::io::BufRead;
        let mut child = Command::new(peers_python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/sse_reader.py"))
            .args([url, &count.to_string()])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the reader runs");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let reader = Reader { child, lines };
        assert_eq!(reader.line(), "ready");
        reader
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from the reader")
    }

    /// The `count` events it prints: (id, account).
    fn events(&self, count: usize) -> Vec<(Option<u64>, String)> {
        (0..count)
            .map(|_| {
                let event: Value = serde_json::from_str(&self.line()).expect("JSON");
                let id = event["id"].as_str().and_then(|id| id.parse().ok());
                (
                    id,
                    event["data"]["data"]["account"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 13: the SSE firehose, read with sseclient-py: every event with an `id:`, each way
/// of showing a reader's token (header, Basic, query, POSTed form), `?raw` JSON lines, and a resume with `Last-Event-ID`.
#[test]
fn the_firehose_streams_every_event_and_resumes() {
    let dir = std::env::temp_dir().join(format!("tally-firehose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tokens = dir.join("readers");
    std::fs::write(&tokens, "r3ad\n").expect("writes");
    let (_stat, url) = serve(&[
        "--serve-sse",
        "--http-read-token",
        tokens.to_str().expect("utf-8"),
    ]);
    let firehose = format!("{url}/firehose");
    let post = |accounts: &[&str]| {
        let lines: String = accounts.iter().map(|a| format!("{a}.pageview:1|c\n")).collect();
        assert_eq!(curl(&[&format!("{url}/events"), "--data-binary", &lines]).0, 202);
    };
    let refused = Command::new(peers_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/sse_reader.py"))
        .args([&firehose, "1"])
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2), "no token: refused");
    assert!(String::from_utf8_lossy(&refused.stderr).starts_with("401"));

    let bearer = Reader::start(&firehose, 3, &["--bearer", "r3ad"]);
    let basic = Reader::start(&firehose, 3, &["--basic", "r3ad"]);
    let raw = Reader::start(&firehose, 3, &["--query", "r3ad", "--raw"]);
    let form = Reader::start(&firehose, 3, &["--form", "r3ad"]);
    post(&["a1", "a2", "a3"]);
    let seen = bearer.events(3);
    let accounts: Vec<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(accounts, ["a1", "a2", "a3"]);
    let ids: Vec<u64> = seen.iter().filter_map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 3, "every event has an id");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    assert_eq!(basic.events(3), seen);
    assert_eq!(form.events(3), seen, "a token in a POSTed form");
    let raw: Vec<String> = raw.events(3).into_iter().map(|(_, a)| a).collect();
    assert_eq!(raw, ["a1", "a2", "a3"], "?raw: JSON lines");

    // Gone after the first event; back with Last-Event-ID: the rest, then live.
    post(&["b1", "b2"]);
    let after_first = ids[0].to_string();
    let resumed = Reader::start(
        &firehose,
        5,
        &["--bearer", "r3ad", "--last-event-id", &after_first],
    );
    let missed: Vec<String> = resumed.events(4).into_iter().map(|(_, a)| a).collect();
    assert_eq!(missed, ["a2", "a3", "b1", "b2"]);
    post(&["c1"]);
    assert_eq!(resumed.events(1)[0].1, "c1");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Posts `count` events, `acct0.x:1|c` on, in batches of 5,000 lines.
fn post_numbered(url: &str, count: usize) {
    for batch in (0..count).step_by(5000) {
        let lines: String = (batch..count.min(batch + 5000))
            .map(|i| format!("acct{i}.x:1|c\n"))
            .collect();
        assert_eq!(curl(&[&format!("{url}/events"), "--data-binary", &lines]).0, 202);
    }
}

/// What a firehose reader saw was every one of `count` events from `post_numbered`, in order.
fn saw_every_numbered(seen: &[(Option<u64>, String)], count: usize) -> bool {
    seen.len() == count && (seen.iter().enumerate()).all(|(i, (_, account))| *account == format!("acct{i}"))
}

/// Issue 13: a firehose client that stops reading altogether (its socket's buffers full, so
/// nothing more can be sent) falls idle and is closed at the idle timeout, while another
/// keeps up with every event.
#[test]
fn a_stalled_firehose_client_is_closed_while_another_keeps_up() {
    use std::io::Write;
    const EVENTS: usize = 100_000;
    let (mut stat, url) = serve(&["--serve-sse", "--idle-timeout", "2s"]);
    let address = url.trim_start_matches("http://").to_owned();
    let mut stalled = std::net::TcpStream::connect(&address).expect("connects");
    stalled
        .write_all(b"GET /firehose HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("asks");
    let reader = Reader::start(&format!("{url}/firehose"), EVENTS, &["--raw"]);
    post_numbered(&url, EVENTS);
    assert!(
        saw_every_numbered(&reader.events(EVENTS), EVENTS),
        "the reader kept up"
    );
    // Reports queue up while the reader is read: the one that counts is the first with
    // everything in it.
    let report = stat.wait_for(Duration::from_secs(20), |r| {
        source(r, "http")["closed_idle"].as_u64() >= Some(1) && r["totals"]["total"] == EVENTS as u64
    });
    let firehose = (report["outputs"].as_array().into_iter().flatten())
        .find(|o| o["kind"] == "serve-sse")
        .expect("the firehose output");
    assert_eq!(firehose["received"], EVENTS as u64, "published");
}

/// Issue 13: a slow firehose client, one that falls more than 8,192 events behind, is cut off
/// when it next reads (its stream ends) and counted as `dropped`, while another keeps up
/// with every event; the idle timeout plays no part.
#[test]
fn a_client_too_far_behind_is_cut_off_and_counted() {
    use std::io::{Read, Write};
    let (mut stat, url) = serve(&["--serve-sse"]);
    let address = url.trim_start_matches("http://").to_owned();
    let mut slow = std::net::TcpStream::connect(&address).expect("connects");
    slow.write_all(b"GET /firehose?raw HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("asks");
    const EVENTS: usize = 100_000;
    let reader = Reader::start(&format!("{url}/firehose"), EVENTS, &["--raw"]);
    post_numbered(&url, EVENTS);
    assert!(
        saw_every_numbered(&reader.events(EVENTS), EVENTS),
        "the reader kept up"
    );

    // The slow client reads at last: what was already on its way, then the end of the stream.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a timeout");
    let mut received = Vec::new();
    let mut buffer = vec![0; 1 << 16];
    while !received.ends_with(b"\r\n0\r\n\r\n") {
        match slow.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) => panic!("the slow client's stream never ended: {error}"),
        }
    }
    let lines = String::from_utf8_lossy(&received).matches("\"account\"").count();
    assert!(lines < EVENTS, "cut off before the end ({lines} events)");
    let report = stat.wait_for(Duration::from_secs(20), |r| {
        let cut_off = (r["outputs"].as_array().into_iter().flatten())
            .any(|o| o["kind"] == "serve-sse" && o["dropped"].as_u64() > Some(0));
        cut_off && r["totals"]["total"] == EVENTS as u64
    });
    let firehose = (report["outputs"].as_array().into_iter().flatten())
        .find(|o| o["kind"] == "serve-sse")
        .expect("the firehose output");
    assert!(
        firehose["note"]
            .as_str()
            .is_some_and(|n| n.contains("cut off a client")),
        "{firehose}"
    );
    assert_eq!(source(&report, "http")["closed_idle"], 0, "not the idle timeout");
    assert_eq!(report["totals"]["total"], EVENTS as u64);
}

/// Issue 13: a firehose client that keeps reading is never idle, however quiet the firehose:
/// heartbeats come more often than the idle timeout, and what is sent counts as activity.
#[test]
fn a_reading_firehose_client_outlives_the_idle_timeout() {
    let (mut stat, url) = serve(&["--serve-sse", "--idle-timeout", "2s"]);
    let reader = Reader::start(&format!("{url}/firehose"), 1, &[]);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        curl(&[&format!("{url}/events"), "--data-binary", "late.x:1|c"]).0,
        202
    );
    assert_eq!(reader.events(1)[0].1, "late");
    let report = stat.wait_for(Duration::from_secs(10), |r| r["totals"]["total"] == 1);
    assert_eq!(source(&report, "http")["closed_idle"], 0);
}

/// Issue 13: a tally subscribed to another tally's firehose (`--sse`, with a reader's token
/// in `--sse-header`) counts exactly what the first one accepted.
#[test]
fn tally_subscribed_to_tallys_firehose_counts_exactly() {
    let dir = std::env::temp_dir().join(format!("tally-sse-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tokens = dir.join("readers");
    std::fs::write(&tokens, "r3ad\n").expect("writes");
    let (mut hub, url) = serve(&[
        "--serve-sse",
        "--http-read-token",
        tokens.to_str().expect("utf-8"),
    ]);
    let firehose = format!("{url}/firehose");
    let mut watcher = Stat::start(&[
        "--sse",
        &firehose,
        "--sse-header",
        "Authorization: Bearer r3ad",
        "--interval",
        "100ms",
    ]);
    watcher.wait_for(Duration::from_secs(10), |r| {
        source(r, "sse")["state"] == "connected"
    });
    let lines: String = (0..500)
        .map(|i| {
            format!(
                "acct{}.pageview:1|c\nacct{}.latency:{}|ms\n",
                i % 7,
                i % 7,
                i % 50
            )
        })
        .collect();
    assert_eq!(curl(&[&format!("{url}/events"), "--data-binary", &lines]).0, 202);
    let sent = hub.wait_for(Duration::from_secs(10), |r| r["totals"]["total"] == 1000);
    let seen = watcher.wait_for(Duration::from_secs(20), |r| r["totals"]["total"] == 1000);
    for account in (0..7).map(|i| format!("acct{i}")) {
        assert_eq!(
            account_total(&seen, &account),
            account_total(&sent, &account),
            "{account}"
        );
    }
    assert_eq!(seen["totals"]["rejected"], 0);
    assert_eq!(source(&seen, "sse")["events"], 1000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: `--sse-listen` serves the firehose on a port of its own, on any path, as the
/// classic hub's own port did.
#[test]
fn the_firehose_has_a_listener_of_its_own() {
    let port = free_tcp_port();
    let own = format!("127.0.0.1:{port}");
    let (_stat, url) = serve(&["--sse-listen", &own]);
    let reader = Reader::start(&format!("http://{own}/any/path"), 2, &[]);
    let lines = "acme.a:1|c\nglobex.b:1|c\n";
    assert_eq!(curl(&[&format!("{url}/events"), "--data-binary", lines]).0, 202);
    let accounts: Vec<String> = reader.events(2).into_iter().map(|(_, a)| a).collect();
    assert_eq!(accounts, ["acme", "globex"]);
    let (status, _) = curl(&[&format!("{url}/firehose")]);
    assert_eq!(status, 404, "not on --http without --serve-sse");
}
