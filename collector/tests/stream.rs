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
    collector_with(tcp, unix, SourceArgs::default())
}

fn collector_with(tcp: bool, unix: Option<PathBuf>, base: SourceArgs) -> Collector {
    let args = SourceArgs {
        no_udp: Some(true),
        tcp: if tcp {
            vec!["127.0.0.1:0".parse().expect("address")]
        } else {
            vec![]
        },
        unix: unix.into_iter().collect(),
        // Tests must not read or write the user's state.
        no_state: Some(true),
        ..base
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

/// Issue 11, item 7: the limit is exact, whatever the reads' sizes: 64 KiB passes, one byte
/// more is refused (a 75,601-byte line of 2,700 metrics used to be accepted).
#[test]
fn the_line_limit_is_exact() {
    let collector = collector(true, None);
    let mut stream = TcpStream::connect(tcp_address(&collector)).expect("connects");
    // `acme.xxx...:1|c:1|c...`, exactly `len` bytes before its newline.
    let line_of = |len: usize| {
        let metrics = (len - 10) / 4;
        let mut line = b"acme.".to_vec();
        line.resize(len - 4 * metrics, b'x');
        line.extend(b":1|c".repeat(metrics));
        line.push(b'\n');
        line
    };
    // A short line first, so the long ones straddle reads at an odd offset.
    stream.write_all(b"acme.start:1|c\n").expect("writes");
    let fits = line_of(64 * 1024);
    let metrics_in_fits = fits.windows(2).filter(|w| w == b"|c").count() as u64;
    assert_eq!(fits.len(), 64 * 1024 + 1);
    stream.write_all(&fits).expect("writes");
    stream.write_all(&line_of(64 * 1024 + 1)).expect("writes");
    stream.write_all(&line_of(75_601)).expect("writes");
    stream.write_all(b"acme.end:1|c\n").expect("writes");
    drop(stream);
    let snapshot = wait_for(collector.engine(), |s| {
        s.totals.total >= 2 + metrics_in_fits && s.totals.rejected >= 2
    });
    assert_eq!(total(&snapshot, "acme"), 2 + metrics_in_fits);
    let reasons: Vec<(Rejection, u64)> = snapshot.rejections.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(reasons, [(Rejection::Oversize, 2)]);
    collector.stop();
}

/// Issue 11, item 4: idle connections cannot lock real clients out. At the cap the quietest
/// connection gives way to a new one; a silent one is closed after the idle timeout; both are
/// counted, and so is a refusal when every connection is busy.
#[test]
fn idle_connections_give_way_and_time_out() {
    let cap = 8;
    let base = SourceArgs {
        max_connections: Some(cap),
        idle_timeout: Some(std::time::Duration::from_secs(3)),
        ..SourceArgs::default()
    };
    let collector = collector_with(true, None, base);
    let address = tcp_address(&collector);
    let idle: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect(address).expect("connects"))
        .collect();
    let listener = || source(&collector, "tcp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while listener().connections != Some(cap as u64) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        listener().connections,
        Some(cap as u64),
        "the idlers fill the cap"
    );
    std::thread::sleep(std::time::Duration::from_millis(1200));
    // A real client at the cap is served: the quietest idler gives way.
    let mut client = TcpStream::connect(address).expect("connects");
    client.write_all(b"real.hit:1|c\n").expect("writes");
    let snapshot = wait_for(collector.engine(), |s| s.totals.total >= 1);
    assert_eq!(total(&snapshot, "real"), 1);
    assert_eq!(listener().closed_idle, Some(1));
    assert_eq!(listener().connections, Some(cap as u64));
    // After the idle timeout, the silent ones are all closed (the client wrote since).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while listener().connections != Some(0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = listener();
    assert_eq!(status.connections, Some(0), "{status:?}");
    assert_eq!(status.closed_idle, Some(cap as u64 + 1), "{status:?}");
    assert_eq!(status.refused, Some(0));
    drop((idle, client));
    // Busy connections are not displaced: the newcomer is refused, and counted.
    let mut busy: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect(address).expect("connects"))
        .collect();
    for stream in &mut busy {
        stream.write_all(b"busy.hit:1|c\n").expect("writes");
    }
    wait_for(collector.engine(), |s| s.totals.total > cap as u64);
    let mut refused = TcpStream::connect(address).expect("the kernel accepts");
    refused
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut refused, &mut byte);
    assert!(matches!(read, Ok(0) | Err(_)), "closed by the listener: {read:?}");
    assert_eq!(listener().refused, Some(1));
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
        no_state: Some(true),
        ..SourceArgs::default()
    };
    let error = Collector::start(&args.settings().expect("valid")).expect_err("in use");
    assert!(error.to_string().contains("already in use"), "{error}");
    drop(stream);
    collector.stop();
    assert!(!path.exists(), "the socket file is removed on stop");
    let _ = std::fs::remove_dir(&dir);
}
