//! Helpers for the end-to-end tests: find the built binaries, start them, read their output.
//!
//! The binaries are built by `scripts/test` before the tests run (`cargo build --bins`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
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

/// What the state directories' names start with, then the test process's id and a run number.
const STATE_HOMES: &str = "tally-tests-state-";

/// A state directory (`XDG_STATE_HOME`) for one run of a binary: never the user's, and
/// never another test's (tally restores its windows from there at start). The test harness
/// gives no hook at a process's exit, so each process removes those that ended ones left.
pub fn state_home() -> PathBuf {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| remove_ended_state_homes(&std::env::temp_dir(), Path::new("/proc")));
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{STATE_HOMES}{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a state directory for the tests");
    dir
}

/// Removes the state directories in `temp` of test processes no longer running (no
/// `processes/<pid>`).
fn remove_ended_state_homes(temp: &Path, processes: &Path) {
    for entry in std::fs::read_dir(temp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = (name.to_str())
            .and_then(|name| name.strip_prefix(STATE_HOMES))
            .and_then(|rest| rest.split('-').next());
        if pid.is_some_and(|pid| !processes.join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `tally` (or another of the binaries), keeping its state in a [`state_home`] of its own.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(binary(name));
    command.env("XDG_STATE_HOME", state_home());
    command
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
        Stat::command("stat", args)
    }

    /// `tally hub --json`: the same reports, plus its outputs.
    pub fn hub(args: &[&str]) -> Stat {
        Stat::command("hub", args)
    }

    fn command(command: &str, args: &[&str]) -> Stat {
        let mut child = self::command("tally")
            .arg(command)
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

    /// What the running tally holds in memory, in KiB (its `VmRSS`).
    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("tally's /proc status");
        (status.lines())
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// Asks tally to stop as a supervisor would (SIGTERM) and waits for it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().expect("tally exits")
    }

    /// Sends `signal` (`STOP`, `TERM`, ...) to the running tally.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
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

/// Dropping a running tally kills it at once (SIGKILL), as a crash would.
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

/// A TCP port that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("ephemeral port")
        .port()
}

/// The source of `kind` in a report.
pub fn source<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} source in {report:#}"))
}

/// The Python with the real peers (pyzmq, websockets, datadog, requests), set up by `scripts/test` in
/// `target/peers` (or named by `TALLY_PEERS_PYTHON`).
pub fn peers_python() -> PathBuf {
    if let Some(python) = std::env::var_os("TALLY_PEERS_PYTHON") {
        return python.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("target/peers/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test sets up the hub peers (python3 -m venv target/peers && target/peers/bin/pip install -r tests/peers/requirements.txt)",
        python.display()
    );
    python
}

/// A real hub that tally did not write (a script in `tests/peers/`), driven by commands on its
/// stdin; each command returns once the peer has sent what it was asked to.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    replies: Receiver<String>,
}

impl Peer {
    pub fn start(script: &str, args: &[&str]) -> Peer {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("peers")
            .join(script);
        let mut child = Command::new(peers_python())
            .arg(path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts the peer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut peer = Peer { child, replies };
        peer.expect_reply("ready");
        peer
    }

    fn expect_reply(&mut self, wanted: &str) {
        match self.replies.recv_timeout(Duration::from_secs(20)) {
            Ok(reply) if reply == wanted => {}
            other => panic!("peer answered {other:?}, expected {wanted}"),
        }
    }

    /// Sends one command and waits for its `ok`.
    pub fn run(&mut self, command: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .expect("peer is running");
        self.expect_reply("ok");
    }

    /// Sends a signal to the peer (`STOP` freezes it as a hung hub would be, `CONT` thaws it).
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// Kills the peer at once (no goodbye to its clients), as a crashing hub would go.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -SIGNAL pid`, which must succeed.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("runs kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A private CA in `dir`, and a certificate for `localhost` (and 127.0.0.1) that it signs,
/// made with the `openssl` command: the paths of the CA's certificate, the server's
/// certificate and its key.
pub fn localhost_certificate(dir: &std::path::Path) -> (String, String, String) {
    std::fs::create_dir_all(dir).expect("temp dir");
    let path = |name: &str| dir.join(name).display().to_string();
    let (ca, cert, key) = (path("ca.pem"), path("cert.pem"), path("key.pem"));
    let (ca_key, request, extensions) = (path("ca.key"), path("leaf.csr"), path("leaf.ext"));
    std::fs::write(
        &extensions,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("writes");
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl").args(args).output().expect("runs openssl");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    };
    let rsa = ["-newkey", "rsa:2048", "-nodes"];
    openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", "/CN=tally test CA"],
            &rsa[..],
            &["-keyout", &ca_key, "-out", &ca],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=localhost"],
            &rsa[..],
            &["-keyout", &key, "-out", &request],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-CAcreateserial",
        "-in",
        &request,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-out",
        &cert,
        "-extfile",
        &extensions,
    ]);
    (ca, cert, key)
}

/// POSTs `lines` (StatsD) to tally's `--http` at `url` with curl, and checks the `202`.
pub fn post_events(url: &str, lines: &str) {
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{url}/events"))
        .args(["--data-binary", lines])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&status.stdout), "202");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ended_processes_state_homes_are_removed() {
        let base = std::env::temp_dir().join(format!("tally-tests-sweep-{}", std::process::id()));
        let (temp, processes) = (base.join("tmp"), base.join("proc"));
        let running = temp.join(format!("{STATE_HOMES}111-0"));
        let ended = temp.join(format!("{STATE_HOMES}222-3"));
        let unrelated = temp.join("222-other");
        for dir in [&running, &ended, &unrelated, &processes.join("111")] {
            std::fs::create_dir_all(dir.join("tally")).expect("test directories");
        }
        remove_ended_state_homes(&temp, &processes);
        let kept = [&running, &ended, &unrelated].map(|dir| dir.exists());
        std::fs::remove_dir_all(&base).expect("cleaned up");
        assert_eq!(kept, [true, false, true]);
    }
}
