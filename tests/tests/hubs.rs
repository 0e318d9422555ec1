//! tally subscribed to real hubs it did not write: a libzmq PUB (pyzmq, heartbeats on) and a
//! Python `websockets` server that refuses handshakes without `Origin`; then tally as a hub
//! for other tallies. Exact counts, and the faults a hub brings: absent at start, killed and
//! restarted, oversize and garbage messages.

use serde_json::Value;
use std::time::Duration;
use tally_tests::{Peer, Stat, account_total, free_tcp_port, source};

const WAIT: Duration = Duration::from_secs(20);

fn state_of(report: &Value, kind: &str) -> String {
    source(report, kind)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn zmq_hub(port: u16) -> Peer {
    Peer::start("zmq_hub.py", &["--bind", &format!("tcp://127.0.0.1:{port}")])
}

fn ws_hub(port: u16, extra: &[&str]) -> Peer {
    let port = port.to_string();
    let args: Vec<&str> = ["--port", port.as_str()]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    Peer::start("ws_hub.py", &args)
}

/// `tally stat` subscribed to `flag url`, reporting every 100 ms.
fn subscriber(flag: &str, url: &str, extra: &[&str]) -> Stat {
    let mut args = vec!["--no-udp", flag, url, "--interval", "100ms"];
    args.extend_from_slice(extra);
    Stat::start(&args)
}

fn wait_connected(stat: &mut Stat, kind: &str) -> Value {
    stat.wait_for(WAIT, |r| state_of(r, kind) == "connected")
}

/// Waits for `account` to reach `expected`, then checks a little later that it stays there.
fn assert_counts_exactly(stat: &mut Stat, expected: &[(&str, u64)]) -> Value {
    stat.wait_for(WAIT, |r| expected.iter().all(|&(a, n)| account_total(r, a) >= n));
    std::thread::sleep(Duration::from_millis(400));
    let report = stat.wait_for(WAIT, |_| true);
    for &(account, n) in expected {
        assert_eq!(account_total(&report, account), n, "{account} in {report:#}");
    }
    report
}

/// Subscribes to `url` with nothing else and waits until the source's note says `why`.
fn assert_refused(url: &str, why: &str) {
    let mut refused = subscriber("--ws", url, &[]);
    let report = refused.wait_for(WAIT, |r| {
        source(r, "ws")["note"].as_str().is_some_and(|n| n.contains(why))
    });
    assert_ne!(state_of(&report, "ws"), "connected", "{report:#}");
}

/// `tally stat --json` run for a fixed number of reports (`extra` gives it `--count` and its
/// sources) while `during` drives the peer: its last report, its whole output, and its log.
fn stat_to_the_end(extra: &[&str], env: &[(&str, &str)], during: impl FnOnce()) -> (Value, String, String) {
    let log = std::env::temp_dir().join(format!(
        "tally-stat-{}-{}.log",
        std::process::id(),
        free_tcp_port()
    ));
    let child = tally_tests::command("tally")
        .args(["stat", "--json", "--no-udp", "--interval", "100ms"])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starts tally");
    during();
    let output = child.wait_with_output().expect("tally runs to its count");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = std::fs::read_to_string(&log).expect("log");
    let _ = std::fs::remove_file(&log);
    let last = serde_json::from_str(stdout.lines().last().expect("reports")).expect("JSON");
    (last, stdout, stderr)
}

#[test]
fn zmq_json_msgpack_and_zlib_lists_from_a_libzmq_hub_count_exactly() {
    let port = free_tcp_port();
    let mut hub = zmq_hub(port);
    let mut stat = subscriber("--zmq", &format!("tcp://127.0.0.1:{port}"), &[]);
    wait_connected(&mut stat, "zmq");
    hub.run("json acme 500");
    hub.run("msgpack globex 300");
    hub.run("zlib initech 40");
    let report = assert_counts_exactly(&mut stat, &[("acme", 500), ("globex", 300), ("initech", 40)]);
    let zmq = source(&report, "zmq");
    assert_eq!(
        (zmq["received"].as_u64(), zmq["bad"].as_u64()),
        (Some(801), Some(0))
    );
    assert_eq!(zmq["dropped"].as_u64(), Some(0));
}

#[test]
fn zmq_topics_are_filtered_by_prefix() {
    let port = free_tcp_port();
    let mut hub = zmq_hub(port);
    let url = format!("tcp://127.0.0.1:{port}");
    let mut stat = subscriber("--zmq", &url, &["--zmq-topic", "order"]);
    wait_connected(&mut stat, "zmq");
    hub.run("typed pageview acme 7");
    hub.run("typed order.create acme 10");
    hub.run("typed order.update globex 4");
    let report = assert_counts_exactly(&mut stat, &[("acme", 10), ("globex", 4)]);
    assert_eq!(source(&report, "zmq")["received"].as_u64(), Some(14));
}

#[test]
fn zmq_hub_absent_at_start_then_killed_and_restarted() {
    let port = free_tcp_port();
    let mut stat = subscriber("--zmq", &format!("tcp://127.0.0.1:{port}"), &[]);
    let report = stat.wait_for(WAIT, |_| true);
    assert_eq!(state_of(&report, "zmq"), "connecting", "no hub yet");

    let mut hub = zmq_hub(port);
    wait_connected(&mut stat, "zmq");
    hub.run("json acme 100");
    assert_counts_exactly(&mut stat, &[("acme", 100)]);

    hub.kill();
    stat.wait_for(WAIT, |r| state_of(r, "zmq") == "disconnected");
    let mut hub = zmq_hub(port);
    let report = wait_connected(&mut stat, "zmq");
    assert_eq!(source(&report, "zmq")["reconnects"].as_u64(), Some(1));
    hub.run("json acme 100");
    // Nothing lost from before the restart, nothing counted twice.
    assert_counts_exactly(&mut stat, &[("acme", 200)]);
}

#[test]
fn zmq_garbage_and_oversize_messages_are_counted_and_a_huge_one_costs_only_a_reconnect() {
    let port = free_tcp_port();
    let mut hub = zmq_hub(port);
    let mut stat = subscriber("--zmq", &format!("tcp://127.0.0.1:{port}"), &[]);
    wait_connected(&mut stat, "zmq");
    hub.run("json acme 50");
    hub.run("garbage 5");
    // The engine counts a rejection as it decodes, the source after the receive: a report may
    // fall between the two.
    let report = stat.wait_for(WAIT, |r| {
        r["rejections"]["json"] == 5 && source(r, "zmq")["bad"].as_u64() == Some(5)
    });
    assert_eq!(account_total(&report, "acme"), 50, "{report:#}");

    // Issue 11, item 6: over the 1 MiB limit, a message is counted as oversize, as over
    // WebSocket, and the connection stays.
    hub.run("oversize 10000000");
    let report = stat.wait_for(WAIT, |r| r["rejections"]["oversize"] == 1);
    assert_eq!(source(&report, "zmq")["reconnects"], 0, "{report:#}");
    // Past libzmq's own limit (16 MiB) the hub is disconnected; tally reconnects.
    hub.run("oversize 20000000");
    let report = stat.wait_for(WAIT, |r| source(r, "zmq")["reconnects"].as_u64() >= Some(1));
    assert_eq!(state_of(&report, "zmq"), "connected");
    hub.run("json acme 50");
    assert_counts_exactly(&mut stat, &[("acme", 100)]);
}

#[test]
fn websocket_text_binary_and_array_frames_count_exactly() {
    let port = free_tcp_port();
    // The peer refuses handshakes without Origin, so connecting at all proves tally sends one.
    let mut hub = ws_hub(port, &[]);
    let mut stat = subscriber("--ws", &format!("ws://127.0.0.1:{port}/ws"), &[]);
    wait_connected(&mut stat, "ws");
    hub.run("wait-clients 1");
    hub.run("json acme 200");
    hub.run("msgpack globex 100");
    hub.run("array initech 50");
    let report = assert_counts_exactly(&mut stat, &[("acme", 200), ("globex", 100), ("initech", 50)]);
    let ws = source(&report, "ws");
    assert_eq!(
        (ws["received"].as_u64(), ws["events"].as_u64()),
        (Some(301), Some(350))
    );
}

#[test]
fn websocket_auth_headers_work_and_never_show() {
    let port = free_tcp_port();
    let secret = "Bearer s3cret-9f8e7d";
    let mut hub = ws_hub(port, &["--require-header", &format!("Authorization: {secret}")]);
    let url = format!("ws://127.0.0.1:{port}/ws");

    // Without the header the hub refuses, and tally says why.
    assert_refused(&url, "401");

    let header = format!("Authorization: {secret}");
    let args = ["--count", "40", "--ws", &url, "--ws-header", &header];
    let (last, stdout, stderr) = stat_to_the_end(&args, &[("TALLY_LOG", "trace")], || {
        hub.run("wait-clients 1");
        hub.run("json acme 25");
    });
    assert_eq!(account_total(&last, "acme"), 25, "authorised: {last:#}");
    assert!(
        !stdout.contains("s3cret") && !stderr.contains("s3cret"),
        "the secret leaked"
    );
    assert!(stderr.contains("TRACE"), "the log was on: {stderr}");
}

#[test]
fn websocket_hub_absent_killed_restarted_and_abusive() {
    let port = free_tcp_port();
    let mut stat = subscriber("--ws", &format!("ws://127.0.0.1:{port}/ws"), &[]);
    let report = stat.wait_for(WAIT, |_| true);
    assert_eq!(state_of(&report, "ws"), "connecting", "no hub yet");

    let mut hub = ws_hub(port, &[]);
    wait_connected(&mut stat, "ws");
    hub.run("wait-clients 1");
    hub.run("json acme 100");
    assert_counts_exactly(&mut stat, &[("acme", 100)]);

    hub.kill();
    stat.wait_for(WAIT, |r| state_of(r, "ws") == "disconnected");
    let mut hub = ws_hub(port, &[]);
    wait_connected(&mut stat, "ws");
    hub.run("wait-clients 1");
    hub.run("json acme 100");
    hub.run("garbage 3");
    assert_counts_exactly(&mut stat, &[("acme", 200)]);

    // An oversize frame is refused, counted, and the connection made again.
    hub.run("oversize 2000000");
    let report = stat.wait_for(WAIT, |r| r["rejections"]["oversize"] == 1);
    assert_eq!(report["rejections"]["json"], 3);
    let report = stat.wait_for(WAIT, |r| source(r, "ws")["reconnects"].as_u64() >= Some(2));
    assert!(state_of(&report, "ws") == "connected", "{report:#}");
    hub.run("wait-clients 1");
    hub.run("json acme 10");
    assert_counts_exactly(&mut stat, &[("acme", 210)]);

    // A hub that keeps doing it (three connections in a row, counting the one above) trips
    // the breaker instead of being hammered.
    for _ in 0..2 {
        hub.run("wait-clients 1");
        hub.run("oversize 2000000");
    }
    stat.wait_for(WAIT, |r| {
        source(r, "ws")["note"]
            .as_str()
            .is_some_and(|n| n.contains("paused"))
    });
}

#[test]
fn tally_to_tally_hub_to_tally_over_both_transports() {
    let (udp, zmq, ws) = (tally_tests::free_udp_port(), free_tcp_port(), free_tcp_port());
    let zmq_url = format!("tcp://127.0.0.1:{zmq}");
    let ws_addr = format!("127.0.0.1:{ws}");
    let mut hub = Stat::hub(&[
        "--udp",
        &format!("127.0.0.1:{udp}"),
        "--publish-zmq",
        &zmq_url,
        "--serve-ws",
        &ws_addr,
        "--interval",
        "100ms",
    ]);
    let mut over_zmq = subscriber("--zmq", &zmq_url, &[]);
    let mut over_ws = subscriber("--ws", &format!("ws://{ws_addr}/ws"), &[]);
    wait_connected(&mut over_zmq, "zmq");
    wait_connected(&mut over_ws, "ws");
    hub.wait_for(WAIT, |r| r["outputs"][1]["connections"] == 1);

    let sent = tally_tests::command("tally")
        .args([
            "send",
            "--json",
            "--to",
            &format!("127.0.0.1:{udp}"),
            "--count",
            "3000",
        ])
        .args([
            "--accounts",
            "3",
            "--format",
            "statsd",
            "--per-datagram",
            "10",
            "--rate",
            "50000",
        ])
        .output()
        .expect("tally send runs");
    assert!(sent.status.success());
    let sent: Value = serde_json::from_slice(&sent.stdout).expect("send report");
    let expected: Vec<(String, u64)> = sent["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                a[0].as_str().expect("name").to_owned(),
                a[1].as_u64().expect("count"),
            )
        })
        .collect();
    let expected: Vec<(&str, u64)> = expected.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    assert_eq!(expected.iter().map(|e| e.1).sum::<u64>(), 3000);

    let at_hub = assert_counts_exactly(&mut hub, &expected);
    assert_counts_exactly(&mut over_zmq, &expected);
    assert_counts_exactly(&mut over_ws, &expected);
    for output in at_hub["outputs"].as_array().expect("outputs") {
        assert_eq!(output["dropped"], 0, "{output:#}");
    }
}

#[test]
fn a_websocket_client_that_stops_reading_is_dropped_with_a_count() {
    let (udp, ws) = (tally_tests::free_udp_port(), free_tcp_port());
    let mut hub = Stat::hub(&[
        "--udp",
        &format!("127.0.0.1:{udp}"),
        "--serve-ws",
        &format!("127.0.0.1:{ws}"),
        "--interval",
        "100ms",
    ]);
    hub.wait_for(WAIT, |_| true);
    // A client that completes the handshake, then never reads again.
    let (status, _lazy) = ws_handshake(ws, "/ws", &[]);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    hub.wait_for(WAIT, |r| r["outputs"][0]["connections"] == 1);

    let sent = tally_tests::command("tally")
        .args(["send", "--to", &format!("127.0.0.1:{udp}"), "--count", "200000"])
        .args(["--format", "statsd", "--per-datagram", "20", "--rate", "400000"])
        .output()
        .expect("tally send runs");
    assert!(sent.status.success());
    let report = hub.wait_for(WAIT, |r| r["outputs"][0]["connections"] == 0);
    let served = &report["outputs"][0];
    assert!(served["dropped"].as_u64() > Some(0), "{served:#}");
    assert!(
        served["note"]
            .as_str()
            .is_some_and(|n| n.contains("dropped a client")),
        "{served:#}"
    );
}

#[test]
fn a_frozen_zmq_hub_is_noticed_by_heartbeats_and_recovers_when_it_thaws() {
    let port = free_tcp_port();
    let mut hub = zmq_hub(port);
    let mut stat = subscriber("--zmq", &format!("tcp://127.0.0.1:{port}"), &[]);
    wait_connected(&mut stat, "zmq");
    hub.run("json acme 10");
    assert_counts_exactly(&mut stat, &[("acme", 10)]);

    // A hung hub keeps its TCP connection open: only heartbeats can tell.
    hub.signal("STOP");
    let report = stat.wait_for(WAIT, |r| state_of(r, "zmq") == "disconnected");
    assert_eq!(account_total(&report, "acme"), 10);
    hub.signal("CONT");
    wait_connected(&mut stat, "zmq");
    hub.run("json acme 10");
    assert_counts_exactly(&mut stat, &[("acme", 20)]);
}

#[test]
fn several_zmq_hubs_at_once_add_up() {
    let (first, second) = (free_tcp_port(), free_tcp_port());
    let (mut a, mut b) = (zmq_hub(first), zmq_hub(second));
    let mut stat = Stat::start(&[
        "--no-udp",
        "--zmq",
        &format!("tcp://127.0.0.1:{first}"),
        "--zmq",
        &format!("tcp://127.0.0.1:{second}"),
        "--interval",
        "100ms",
    ]);
    stat.wait_for(WAIT, |r| {
        let zmq = r["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["kind"] == "zmq");
        zmq.filter(|s| s["state"] == "connected").count() == 2
    });
    a.run("json acme 30");
    b.run("json acme 12");
    b.run("msgpack globex 5");
    assert_counts_exactly(&mut stat, &[("acme", 42), ("globex", 5)]);
}

#[test]
fn wss_hubs_are_verified_against_the_system_trust_store() {
    let dir = std::env::temp_dir().join(format!("tally-wss-{}", std::process::id()));
    let (ca, cert, key) = tally_tests::localhost_certificate(&dir);
    let port = free_tcp_port();
    let mut hub = ws_hub(port, &["--tls", &cert, &key]);
    let url = format!("wss://localhost:{port}/ws");

    // Not trusted: the handshake fails, and tally says so.
    assert_refused(&url, "cannot connect");

    // Trusted through the system store (SSL_CERT_FILE names it, as for any rustls client).
    let args = ["--count", "50", "--ws", &url];
    let (last, _, _) = stat_to_the_end(&args, &[("SSL_CERT_FILE", &ca)], || {
        hub.run("wait-clients 1");
        hub.run("json acme 15");
    });
    assert_eq!(account_total(&last, "acme"), 15, "{last:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: an https:// firehose, verified like a wss:// hub: refused while its certificate
/// is not trusted, counted exactly once the system's store (`SSL_CERT_FILE`) trusts it.
#[test]
fn https_firehoses_are_verified_against_the_system_trust_store() {
    let dir = std::env::temp_dir().join(format!("tally-https-sse-{}", std::process::id()));
    let (ca, cert, key) = tally_tests::localhost_certificate(&dir);
    let port = free_tcp_port().to_string();
    let mut hub = Peer::start("sse_hub.py", &["--port", &port, "--tls", &cert, &key]);
    let url = format!("https://localhost:{port}/firehose");

    let mut untrusted = subscriber("--sse", &url, &[]);
    let report = untrusted.wait_for(WAIT, |r| {
        source(r, "sse")["note"]
            .as_str()
            .is_some_and(|n| n.contains("cannot connect"))
    });
    assert_ne!(state_of(&report, "sse"), "connected", "{report:#}");
    drop(untrusted);

    let args = ["--count", "50", "--sse", &url];
    let (last, _, _) = stat_to_the_end(&args, &[("SSL_CERT_FILE", &ca)], || {
        hub.run("wait-clients 1");
        hub.run("json acme 15");
    });
    assert_eq!(account_total(&last, "acme"), 15, "{last:#}");
    assert_eq!(state_of(&last, "sse"), "connected", "{last:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_frozen_websocket_hub_times_out_and_recovers_when_it_thaws() {
    let port = free_tcp_port();
    let mut hub = ws_hub(port, &[]);
    let mut stat = subscriber("--ws", &format!("ws://127.0.0.1:{port}/ws"), &[]);
    wait_connected(&mut stat, "ws");
    hub.run("wait-clients 1");
    hub.run("json acme 10");
    assert_counts_exactly(&mut stat, &[("acme", 10)]);

    // Frozen: the connection stays open, but nothing answers tally's pings.
    hub.signal("STOP");
    let silent = |r: &Value| {
        source(r, "ws")["note"]
            .as_str()
            .is_some_and(|n| n.contains("silent for"))
    };
    let report = stat.wait_for(Duration::from_secs(40), silent);
    assert_ne!(state_of(&report, "ws"), "connected");
    hub.signal("CONT");
    wait_connected(&mut stat, "ws");
    hub.run("wait-clients 1");
    hub.run("json acme 10");
    assert_counts_exactly(&mut stat, &[("acme", 20)]);
}

/// A raw WebSocket handshake to `tally hub`'s server: the reply's status line, and the stream.
fn ws_handshake(port: u16, path: &str, headers: &[&str]) -> (String, std::net::TcpStream) {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for header in headers {
        request.push_str(&format!("{header}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("writes");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut status = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut status)
        .expect("a reply");
    (status.trim_end().to_owned(), stream)
}

/// Issue 11, item 9: a web page on another site cannot read the hub's events (cross-site
/// WebSocket hijacking): browser origins are refused unless allowed, non-browser clients (no
/// Origin) are served, and with --read-token every subscriber needs a reader's token, which
/// the producers' tokens are not.
#[test]
fn serve_ws_refuses_foreign_origins_and_wants_a_read_token_when_told() {
    let dir = std::env::temp_dir().join(format!("tally-read-token-{}", free_tcp_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (readers, producers) = (dir.join("readers"), dir.join("producers"));
    std::fs::write(&readers, "reader-s3cret\n").expect("writes");
    std::fs::write(&producers, "producer-s3cret\n").expect("writes");
    let open = free_tcp_port();
    let mut hub = Stat::hub(&[
        "--no-udp",
        "--tcp",
        "127.0.0.1:0",
        "--serve-ws",
        &format!("127.0.0.1:{open}"),
    ]);
    hub.wait_for(WAIT, |_| true);
    let (status, _) = ws_handshake(open, "/ws", &["Origin: https://evil.example"]);
    assert!(status.contains(" 403 "), "{status}");
    let (status, _) = ws_handshake(open, "/ws", &[]);
    assert!(
        status.contains(" 101 "),
        "no Origin: not a browser, served: {status}"
    );
    let report = hub.wait_for(WAIT, |r| r["outputs"][0]["refused"] == 1);
    assert_eq!(report["outputs"][0]["refused"], 1, "{report:#}");
    drop(hub);

    let guarded = free_tcp_port();
    let readers_arg = readers.display().to_string();
    let producers_arg = producers.display().to_string();
    let mut hub = Stat::hub(&[
        "--no-udp",
        "--tcp",
        "127.0.0.1:0",
        "--token",
        &producers_arg,
        "--serve-ws",
        &format!("127.0.0.1:{guarded}"),
        "--ws-allow-origin",
        "https://dash.example",
        "--read-token",
        &readers_arg,
    ]);
    hub.wait_for(WAIT, |_| true);
    let expect = |path: &str, headers: &[&str], code: &str| {
        let (status, _) = ws_handshake(guarded, path, headers);
        assert!(
            status.contains(&format!(" {code} ")),
            "{path} {headers:?}: {status}"
        );
    };
    expect(
        "/ws",
        &[
            "Origin: https://dash.example",
            "Authorization: Bearer reader-s3cret",
        ],
        "101",
    );
    expect("/ws?access_token=reader-s3cret", &[], "101");
    expect("/ws", &["Origin: https://dash.example"], "401");
    expect("/ws", &["Authorization: Bearer producer-s3cret"], "401");
    expect(
        "/ws",
        &[
            "Origin: https://evil.example",
            "Authorization: Bearer reader-s3cret",
        ],
        "403",
    );
    let report = hub.wait_for(WAIT, |r| r["outputs"][0]["refused"] == 3);
    let note = report["outputs"][0]["note"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!note.contains("s3cret"), "{note}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 11, item 4 for `serve-ws`: subscribers that answer no ping are closed after the idle
/// timeout, and at the cap the quietest gives way to a new subscriber; both counted.
#[test]
fn idle_websocket_subscribers_give_way_and_time_out() {
    let port = free_tcp_port();
    let mut hub = Stat::hub(&[
        "--no-udp",
        "--tcp",
        "127.0.0.1:0",
        "--serve-ws",
        &format!("127.0.0.1:{port}"),
        "--max-connections",
        "4",
        "--idle-timeout",
        "3s",
        "--interval",
        "100ms",
    ]);
    hub.wait_for(WAIT, |_| true);
    let idle: Vec<_> = (0..4).map(|_| ws_handshake(port, "/ws", &[]).1).collect();
    hub.wait_for(WAIT, |r| r["outputs"][0]["connections"] == 4);
    std::thread::sleep(Duration::from_millis(1200));
    let (status, newcomer) = ws_handshake(port, "/ws", &[]);
    assert!(
        status.contains(" 101 "),
        "at the cap, a newcomer is served: {status}"
    );
    let report = hub.wait_for(WAIT, |r| r["outputs"][0]["closed_idle"] == 1);
    assert_eq!(report["outputs"][0]["connections"], 4, "{report:#}");
    // None of them answers pings: after the idle timeout all are closed.
    let report = hub.wait_for(WAIT, |r| r["outputs"][0]["connections"] == 0);
    assert_eq!(report["outputs"][0]["closed_idle"], 5, "{report:#}");
    assert_eq!(report["outputs"][0]["refused"], 0, "{report:#}");
    drop((idle, newcomer));
}

/// Issue 11, item 5: the ZeroMQ publisher holds a bounded number of subscribers (refusing the
/// rest, counted, through libzmq's ZAP hook), and one that stops reading is disconnected by
/// heartbeats instead of pinning memory for ever; its slot then serves a waiting subscriber.
#[test]
fn zmq_subscribers_are_capped_and_a_stalled_one_is_let_go() {
    let (udp, zmq) = (tally_tests::free_udp_port(), free_tcp_port());
    let zmq_url = format!("tcp://127.0.0.1:{zmq}");
    let mut hub = Stat::hub(&[
        "--udp",
        &format!("127.0.0.1:{udp}"),
        "--publish-zmq",
        &zmq_url,
        "--max-connections",
        "2",
        "--interval",
        "100ms",
    ]);
    let first = subscriber("--zmq", &zmq_url, &[]);
    let mut second = subscriber("--zmq", &zmq_url, &[]);
    wait_connected(&mut second, "zmq");
    hub.wait_for(WAIT, |r| r["outputs"][0]["connections"] == 2);
    let mut third = subscriber("--zmq", &zmq_url, &[]);
    // A refused subscriber is a connection for the moment it takes libzmq to close it.
    let served = |r: &Value| r["outputs"][0]["connections"] == 2;
    hub.wait_for(WAIT, |r| {
        r["outputs"][0]["refused"].as_u64() >= Some(1) && served(r)
    });
    std::thread::sleep(Duration::from_secs(2));
    let report = hub.wait_for(WAIT, |_| true);
    let refused = report["outputs"][0]["refused"].as_u64().unwrap_or_default();
    assert!(
        refused <= 8,
        "the refused subscriber backs off: {refused} tries in ~2 s"
    );
    assert_ne!(state_of(&third.wait_for(WAIT, |_| true), "zmq"), "connected");

    // The first stops (SIGSTOP): its heartbeats go unanswered, and the hub lets it go.
    first.signal("STOP");
    wait_connected(&mut third, "zmq");
    let report = hub.wait_for(WAIT, |r| r["outputs"][0]["connections"] == 2);
    assert!(report["outputs"][0]["refused"].as_u64() >= Some(1), "{report:#}");
    first.signal("CONT");
}
