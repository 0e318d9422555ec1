//! TCP and Unix-domain stream listeners over real sockets.

mod common;

use common::{total, wait_for};

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use tally_collector::collector::Collector;
use tally_collector::config::SourceArgs;
use tally_core::Rejection;
use tally_core::{SourceKind, SourceStatus};

fn collector(tcp: bool, unix: Option<PathBuf>) -> Collector {
    let args = SourceArgs {
        no_udp: Some(true),
        tcp: if tcp {
            vec!["127.0.0.1:0".parse().expect("address")]
        } else {
            vec![]
        },
        unix: unix.into_iter().collect(),
        ..SourceArgs::default()
    };
    let settings = args.settings().expect("valid");
    Collector::start(&settings).expect("starts")
}

fn tcp_address(collector: &Collector) -> std::net::SocketAddr {
    let tcp = collector
        .sources()
        .into_iter()
        .find(|s| s.kind == SourceKind::Tcp);
    tcp.expect("a TCP listener").address.parse().expect("an address")
}

fn source(collector: &Collector, kind: &str) -> SourceStatus {
    collector
        .sources()
        .into_iter()
        .find(|s| s.kind.as_str() == kind)
        .expect("source")
}

#[test]
fn many_tcp_connections_with_lines_split_anywhere() {
    let collector = collector(true, None);
    let address = tcp_address(&collector);
    let connections = 40;
    let writers: Vec<_> = (0..connections)
        .map(|c| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(address).expect("connects");
                stream.set_nodelay(true).expect("nodelay");
                let mut text = String::new();
                for i in 0..250 {
                    if i % 5 == 0 {
                        text.push_str(&format!(
                            "{{\"type\":\"pageview\",\"data\":{{\"account\":\"conn{c}\"}}}}\n"
                        ));
                    } else {
                        text.push_str(&format!("conn{c}.hit:1|c\r\n"));
                    }
                }
                // Write in odd-sized pieces so lines straddle reads.
                for piece in text.as_bytes().chunks(7 + c) {
                    stream.write_all(piece).expect("writes");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    let snapshot = wait_for(collector.engine(), |s| s.totals.total >= 250 * connections as u64);
    for c in 0..connections {
        assert_eq!(total(&snapshot, &format!("conn{c}")), 250, "conn{c}");
    }
    assert_eq!(snapshot.totals.rejected, 0);
    let tcp = source(&collector, "tcp");
    assert_eq!(tcp.received, 250 * connections as u64);
    collector.stop();
}

#[test]
fn an_over_long_line_is_rejected_and_the_connection_goes_on() {
    let collector = collector(true, None);
    let mut stream = TcpStream::connect(tcp_address(&collector)).expect("connects");
    stream.write_all(b"acme.before:1|c\n").expect("writes");
    let long = vec![b'x'; 200 * 1024];
    stream.write_all(&long).expect("writes");
    stream
        .write_all(b"\nacme.after:1|c\nacme.last:1|c")
        .expect("writes");
    drop(stream); // the last line has no newline: end of stream ends it
    let snapshot = wait_for(collector.engine(), |s| s.totals.total >= 3);
    assert_eq!(
        total(&snapshot, "acme"),
        3,
        "before, after, and the unterminated last line"
    );
    let reasons: Vec<(Rejection, u64)> = snapshot.rejections.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(reasons, [(Rejection::Oversize, 1)]);
    assert!(
        snapshot.recent_rejects[0].payload.len() < 1000,
        "evidence is cut short"
    );
    collector.stop();
}

#[test]
fn unix_sockets_replace_stale_files_and_refuse_live_ones() {
    let dir = std::env::temp_dir().join(format!("tally-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("tally.sock");
    // A stale socket file, left by a process that is gone.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("binds"));
    assert!(path.exists());
    let collector = collector(false, Some(path.clone()));
    let mut stream = UnixStream::connect(&path).expect("connects");
    stream
        .write_all(b"acme.unix:2|c\nacme.unix:3|c\n")
        .expect("writes");
    let snapshot = wait_for(collector.engine(), |s| s.totals.total >= 5);
    assert_eq!(total(&snapshot, "acme"), 5);
    assert_eq!(source(&collector, "unix").connections, Some(1));
    // A second collector on the same path is refused: the first one answers there.
    let args = SourceArgs {
        no_udp: Some(true),
        unix: vec![path.clone()],
        ..SourceArgs::default()
    };
    let error = Collector::start(&args.settings().expect("valid")).expect_err("in use");
    assert!(error.to_string().contains("already in use"), "{error}");
    drop(stream);
    collector.stop();
    assert!(!path.exists(), "the socket file is removed on stop");
    let _ = std::fs::remove_dir(&dir);
}
