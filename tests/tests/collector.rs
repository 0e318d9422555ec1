//! The `tally` binary's collector, end to end: real processes, real loopback sockets.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::Duration;
use tally_tests::{Peer, Stat, account_total, free_udp_port, udp_source};

const WAIT: Duration = Duration::from_secs(60);

fn send(port: u16, args: &[&str]) -> Value {
    let output = tally_tests::command("tally")
        .args(["send", "--json", "--to", &format!("127.0.0.1:{port}")])
        .args(args)
        .output()
        .expect("runs tally send");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("send --json prints its report")
}

fn listen_args(port: u16) -> Vec<String> {
    [
        "--no-udp",
        "--udp",
        &format!("127.0.0.1:{port}"),
        "--interval",
        "100ms",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn stat_counts_exactly_what_send_sent_in_every_format() {
    let port = free_udp_port();
    let args = listen_args(port);
    let mut stat = Stat::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Wait for the listener before sending.
    stat.wait_for(WAIT, |r| udp_source(r)["state"] == "listening");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for args in [
        [
            "--format",
            "json",
            "--count",
            "3000",
            "--accounts",
            "4",
            "--rate",
            "20000",
        ],
        [
            "--format",
            "msgpack",
            "--count",
            "3000",
            "--accounts",
            "6",
            "--rate",
            "20000",
        ],
        [
            "--format",
            "statsd",
            "--count",
            "20000",
            "--accounts",
            "9",
            "--per-datagram",
            "20",
        ],
    ] {
        let report = send(port, &args);
        for pair in report["accounts"].as_array().expect("accounts") {
            *expected
                .entry(pair[0].as_str().expect("name").to_owned())
                .or_default() += pair[1].as_u64().expect("count");
        }
    }
    let sent: u64 = expected.values().sum();
    assert_eq!(sent, 26_000);
    let report = stat.wait_for(WAIT, |r| r["totals"]["total"].as_u64() >= Some(sent));
    for (account, n) in &expected {
        assert_eq!(account_total(&report, account), *n, "{account}");
    }
    assert_eq!(report["totals"]["total"], sent);
    assert_eq!(report["totals"]["rejected"], 0);
    let udp = udp_source(&report);
    assert_eq!(udp["received"], 3000 + 3000 + 1000);
    assert_eq!(udp["kernel_drops"], 0);
    // Per-type totals are in the JSON too.
    let acme = report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["account"] == "acme")
        .expect("acme");
    assert!(acme["types"]["pageview"]["total"].as_u64() > Some(0), "{acme}");
}

#[test]
fn bad_input_is_counted_by_reason_and_good_input_still_counts() {
    let port = free_udp_port();
    let args = listen_args(port);
    let mut stat = Stat::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    stat.wait_for(WAIT, |r| udp_source(r)["state"] == "listening");
    // 64 KiB of noise: once read as text (not valid UTF-8), once as a msgpack map prefix.
    let noise = |first: u8| -> Vec<u8> {
        let tail = (1..65_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80);
        std::iter::once(first).chain(tail).collect()
    };
    let (garbage, garbage_map) = (noise(0xc1), noise(0x80));
    let msgpack_wrong_types =
        rmp_serde::to_vec_named(&serde_json::json!({"type": "x", "data": 5})).expect("encodes");
    let corpus: [(&[u8], &str); 9] = [
        (&garbage_map, "msgpack"),
        (br#"{"type":"pageview","data":{"account":"acme""#, "json"),
        (b"acme.page\xff:1|c", "utf8"),
        (&garbage, "utf8"),
        (&msgpack_wrong_types, "msgpack"),
        (b"acme.x:1|c|@1.5", "statsd"),
        (b"acme.t:-3|ms", "statsd"),
        (b"acme.x:1|q", "unknown_type"),
        (br#"{"type":"pageview","data":{}}"#, "no_account"),
    ];
    let good: &[u8] = b"acme.ok:1|c\nglobex.ok:2|c";
    let socket = UdpSocket::bind("127.0.0.1:0").expect("sender");
    let rounds = 50;
    for _ in 0..rounds {
        for (bad, _) in &corpus {
            socket.send_to(good, ("127.0.0.1", port)).expect("send");
            socket.send_to(bad, ("127.0.0.1", port)).expect("send");
        }
    }
    let bad_total = rounds * corpus.len() as u64;
    let report = stat.wait_for(WAIT, |r| {
        // The source counts its bad datagrams after the engine's rejections: wait for both.
        r["totals"]["rejected"].as_u64() >= Some(bad_total)
            && r["totals"]["total"].as_u64() >= Some(3 * bad_total)
            && udp_source(r)["bad"].as_u64() >= Some(bad_total)
    });
    assert_eq!(account_total(&report, "acme"), bad_total);
    assert_eq!(account_total(&report, "globex"), 2 * bad_total);
    let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, reason) in &corpus {
        *by_reason.entry(reason).or_default() += rounds;
    }
    for (reason, n) in by_reason {
        assert_eq!(
            report["rejections"][reason], n,
            "{reason}: {}",
            report["rejections"]
        );
    }
    assert_eq!(udp_source(&report)["bad"], bad_total);
}

#[test]
fn errors_are_one_clear_line() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let output = tally_tests::command("tally")
        .args([
            "stat",
            "--no-udp",
            "--udp",
            &format!("127.0.0.1:{port}"),
            "--count",
            "1",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("tally: UDP 127.0.0.1:"), "{stderr}");
    assert!(
        stderr.contains("already in use") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    let output = tally_tests::command("tally")
        .args(["stat", "--udp", "nonsense"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value 'nonsense'"));
}

#[test]
fn the_demo_sends_lively_realistic_traffic_through_a_real_socket() {
    let mut stat = Stat::start(&["--demo", "--no-udp", "--interval", "500ms"]);
    let report = stat.wait_for(WAIT, |r| {
        r["totals"]["accounts"].as_u64() >= Some(20) && r["totals"]["total"].as_u64() >= Some(300)
    });
    // It arrives through a real UDP listener (a private one, with --no-udp).
    let udp = udp_source(&report);
    assert!(udp["received"].as_u64() > Some(0), "{udp}");
    assert_eq!(
        report["totals"]["rejected"], 0,
        "the demo's payloads are all valid"
    );
    // Long-tailed: the busiest account has several times the median's traffic.
    let totals: Vec<u64> = report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["total"].as_u64())
        .collect();
    let (top, median) = (totals[0], totals[totals.len() / 2]);
    assert!(top >= 4 * median.max(1), "top {top}, median {median}: {totals:?}");
    // Several kinds of events: counters, timings, gauges, sets.
    let types: std::collections::BTreeSet<&str> = report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .flat_map(|a| {
            a["types"]
                .as_object()
                .into_iter()
                .flat_map(|t| t.keys().map(String::as_str))
        })
        .collect();
    for expected in ["pageview", "api.latency", "order.create"] {
        assert!(types.contains(expected), "{types:?}");
    }
}

/// Issue 11, item 10: a name built to drive a terminal (retitle it, clear it) is never
/// printed raw: not by `tally stat`'s table, not in its JSON (which JSON-escapes anyway).
#[test]
fn hostile_names_never_reach_the_terminal_raw() {
    let port = free_udp_port();
    let mut child = tally_tests::command("tally")
        .args(["stat", "--no-udp", "--udp", &format!("127.0.0.1:{port}")])
        .args(["--interval", "300ms", "--count", "4"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let hostile = br#"{"type":"x\u001b[2J","data":{"account":"\u001b]0;PWNED\u0007\u001b[2Jevil\u009b31m"}}"#;
    for _ in 0..20 {
        socket.send_to(hostile, ("127.0.0.1", port)).expect("sends");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("piped"), &mut stdout).expect("reads");
    assert!(child.wait().expect("exits").success());
    assert!(stdout.contains("PWNED"), "the account is shown: {stdout}");
    for control in ['\u{1b}', '\u{7}', '\u{9b}'] {
        assert!(!stdout.contains(control), "{control:?} printed raw: {stdout:?}");
    }
}

/// Issue 11, item 11: a secret in a bad `--ws-header` or in a bad configuration line is not
/// echoed to stderr.
#[test]
fn secrets_in_bad_flags_and_files_are_not_echoed() {
    let secret = "s3cr3t-T0KEN";
    let output = tally_tests::command("tally")
        .args(["stat", "--ws-header", &format!("Authorization Bearer {secret}")])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("--ws-header"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    let dir = std::env::temp_dir().join(format!("tally-secret-{port}", port = free_udp_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, text) in [
        (
            "header",
            format!("ws_header = [\"Authorization Bearer {secret}\"]\n"),
        ),
        (
            "url",
            format!("ws = [\"wss://ops:{secret}@hub.example/ws\"] oops\n"),
        ),
        ("type", format!("udp = \"wss://ops:{secret}@hub.example/ws\"\n")),
    ] {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("writes");
        let output = tally_tests::command("tally")
            .args(["stat", "--config", &path.display().to_string()])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("line 1, column"),
            "{stderr}"
        );
        assert!(!stderr.contains(secret), "{name}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 11, item 13: `tally stat` and `tally hub` stop cleanly on SIGTERM, SIGINT and
/// SIGHUP: a last whole report, the Unix socket file removed, a zero exit.
#[test]
fn headless_commands_stop_cleanly_on_signals() {
    for (command, signal) in [
        ("stat", "TERM"),
        ("stat", "INT"),
        ("hub", "HUP"),
        ("stat", "QUIT"),
    ] {
        let dir = std::env::temp_dir().join(format!("tally-signal-{}", free_udp_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("tally.sock");
        let mut args = vec![
            "--no-udp",
            "--unix",
            socket.to_str().expect("path"),
            "--interval",
            "1h",
        ];
        if command == "hub" {
            args.extend(["--serve-ws", "127.0.0.1:0"]);
        }
        let child = tally_tests::command("tally")
            .arg(command)
            .arg("--json")
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        let deadline = std::time::Instant::now() + WAIT;
        while !socket.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut producer = std::os::unix::net::UnixStream::connect(&socket).expect("connects");
        std::io::Write::write_all(&mut producer, b"acme.x:5|c\n").expect("writes");
        drop(producer);
        std::thread::sleep(Duration::from_millis(300));
        tally_tests::send_signal(child.id(), signal);
        let output = child.wait_with_output().expect("exits");
        assert!(
            output.status.success(),
            "{command} on SIG{signal}: {:?}",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{command} on SIG{signal}: a last report, whole: {e}: {stdout}"));
        assert_eq!(account_total(&last, "acme"), 5, "{last:#}");
        assert!(
            !socket.exists(),
            "{command} on SIG{signal} left {}",
            socket.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 11, item 8: `stat --json` stays small however many accounts there are: the busiest
/// `--top` (100 by default), and the rest summed in `left_out`.
#[test]
fn stat_json_lists_the_top_accounts_and_sums_the_rest() {
    let port = free_udp_port();
    let mut stat = Stat::start(&listen_args(port).iter().map(String::as_str).collect::<Vec<_>>());
    stat.wait_for(WAIT, |_| true);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for account in 0..150 {
        let line = format!("acct{account}.hit:{}|c", account + 1);
        socket
            .send_to(line.as_bytes(), ("127.0.0.1", port))
            .expect("sends");
    }
    let total: u64 = (1..=150).sum();
    let report = stat.wait_for(WAIT, |r| r["totals"]["total"] == total);
    let listed = report["accounts"].as_array().expect("accounts");
    assert_eq!(listed.len(), 100, "{report:#}");
    assert_eq!(report["left_out"]["accounts"], 50);
    let shown: u64 = listed.iter().map(|a| a["total"].as_u64().unwrap_or(0)).sum();
    assert_eq!(shown + report["left_out"]["total"].as_u64().unwrap_or(0), total);
    assert_eq!(listed[0]["account"], "acct149", "busiest first");
}

/// Issue 12 (headless): `stat --json` has what the dashboards show per type: timing
/// percentiles, a gauge's last value, distinct set members.
#[test]
fn stat_json_has_timings_gauges_and_distinct_counts() {
    let port = free_udp_port();
    let mut stat = Stat::start(&listen_args(port).iter().map(String::as_str).collect::<Vec<_>>());
    stat.wait_for(WAIT, |_| true);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut lines: Vec<String> = (1..=100).map(|ms| format!("api.latency:{ms}|ms")).collect();
    lines.push("api.queue:7|g".into());
    lines.extend((0..50).map(|u| format!("api.users:user{u}|s")));
    for chunk in lines.chunks(20) {
        socket
            .send_to(chunk.join("\n").as_bytes(), ("127.0.0.1", port))
            .expect("sends");
    }
    let report = stat.wait_for(WAIT, |r| r["totals"]["total"] == 151);
    let types = &report["accounts"][0]["types"];
    let timing = &types["latency"]["timing"];
    assert_eq!(timing["count"], 100, "{types:#}");
    let p99 = timing["p99"].as_f64().expect("p99");
    assert!((97.0..=101.0).contains(&p99), "{timing:#}");
    assert_eq!(timing["max"], 100.0);
    assert_eq!(types["queue"]["gauge"], 7.0);
    // An estimate (HyperLogLog), near exact for small sets.
    let distinct = types["users"]["distinct"].as_u64().expect("distinct");
    assert!((47..=53).contains(&distinct), "{distinct}");
}

/// Issue 12: what Datadog's own client sends besides metrics, events (a deploy) and service
/// checks, is kept and shown, not counted as bad input; the metrics around it still count.
#[test]
fn dogstatsd_events_and_service_checks_from_datadogs_client() {
    let port = free_udp_port();
    let listen = listen_args(port);
    let args: Vec<&str> = listen.iter().map(String::as_str).collect();
    let mut stat = Stat::start(&args);
    stat.wait_for(Duration::from_secs(10), |r| udp_source(r)["state"] == "listening");
    let mut app = Peer::start("dogstatsd.py", &["--port", &port.to_string()]);
    app.run("count acme.checkout 3");
    app.run("deploy Deploy shop v2.1");
    app.run("check db.up 0");
    app.run("check cache.up 1");
    app.run("check db.up 2");
    app.run("count acme.checkout 4");
    let report = stat.wait_for(Duration::from_secs(10), |r| {
        account_total(r, "acme") == 7 && r["checks"].as_array().is_some_and(|c| c.len() == 2)
    });
    assert_eq!(report["totals"]["rejected"], 0, "{report:#}");
    let annotations = report["annotations"].as_array().expect("annotations");
    assert_eq!(annotations.len(), 1, "{report:#}");
    let deploy = &annotations[0];
    assert_eq!(deploy["title"], "Deploy shop v2.1");
    assert_eq!(deploy["text"], "shop v2.1 rolled out\nby the CI");
    assert_eq!(deploy["alert"], "success");
    assert_eq!(deploy["host"], "web-1");
    assert_eq!(deploy["source"], "ci");
    assert_eq!(deploy["aggregation_key"], "deploys");
    assert_eq!(deploy["tags"], serde_json::json!(["env:prod", "team:shop"]));
    let checks: Vec<(String, String)> = (report["checks"].as_array().expect("checks").iter())
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("db.up".to_owned(), "critical".to_owned()),
            ("cache.up".to_owned(), "warning".to_owned())
        ],
        "each check's last status, the most troubled first"
    );
    assert_eq!(report["checks"][0]["message"], "replica lag 30s");
}
