//! Helpers for the end-to-end tests: find the built binaries, start them, read their output.
//!
//! The binaries are built by `scripts/test` before the tests run (`cargo build --bins`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A binary of this workspace, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("test executable path");
    let dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("ephemeral port")
        .port()
}

/// A running `tally stat --json`, its reports arriving on a channel.
#[derive(Debug)]
pub struct Stat {
    child: Child,
    reports: Receiver<Value>,
    pub last: Option<Value>,
}

impl Stat {
    pub fn start(args: &[&str]) -> Stat {
        let mut child = Command::new(binary("tally"))
            .arg("stat")
            .arg("--json")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts tally stat");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, reports) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let report: Value = serde_json::from_str(&line).expect("each line is a JSON report");
                if send.send(report).is_err() {
                    return;
                }
            }
        });
        Stat {
            child,
            reports,
            last: None,
        }
    }

    /// Reads reports until `done` holds for one (returned) or `timeout` passes (panics with
    /// the last report).
    pub fn wait_for(&mut self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) => {
                    let finished = done(&report);
                    self.last = Some(report);
                    if finished {
                        return self.last.clone().expect("just set");
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("timed out; last report: {:#?}", self.last),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("tally stat exited; last report: {:#?}", self.last)
                }
            }
        }
    }
}

impl Drop for Stat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The total of `account` in a `stat --json` report (0 if absent).
pub fn account_total(report: &Value, account: &str) -> u64 {
    report["accounts"]
        .as_array()
        .and_then(|accounts| accounts.iter().find(|a| a["account"] == account))
        .and_then(|a| a["total"].as_u64())
        .unwrap_or(0)
}

/// The UDP source of a report (the first one).
pub fn udp_source(report: &Value) -> &Value {
    report["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == "udp"))
        .expect("a udp source")
}
