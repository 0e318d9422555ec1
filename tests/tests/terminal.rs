//! The terminal dashboard in a real terminal: `tally` runs in tmux, `tally send` feeds it, and
//! the screen is read with `capture-pane`, as a person would see it.

use std::process::Command;
use std::time::{Duration, Instant};
use tally_tests::{binary, free_udp_port};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(name: &str, command: &str) -> Tmux {
        let session = format!("tally-{name}-{}", std::process::id());
        // Tests start sessions in parallel; when no tmux server runs yet, two of them racing
        // to start it can make one fail. Trying again finds the server up.
        let started = (0..5).any(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            Command::new("tmux")
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &session,
                    "-x",
                    "120",
                    "-y",
                    "40",
                    command,
                ])
                .status()
                .expect("tmux runs (scripts/test installs it)")
                .success()
        });
        assert!(started, "tmux could not start a session");
        Tmux { session }
    }

    fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            let status = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, key])
                .status()
                .expect("send-keys");
            assert!(status.success());
        }
    }

    /// A flag tmux keeps for the pane's terminal, such as `alternate_on`.
    fn flag(&self, name: &str) -> bool {
        let output = Command::new("tmux")
            .args([
                "display-message",
                "-p",
                "-t",
                &self.session,
                &format!("#{{{name}}}"),
            ])
            .output()
            .expect("display");
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }

    fn alternate_screen(&self) -> bool {
        self.flag("alternate_on")
    }

    /// The screen once `done` holds for it; panics with the screen after 20 s.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// `tally send`: `count` StatsD counters spread over `accounts` accounts.
fn send(port: u16, count: u32, accounts: u32) {
    let sent = tally_tests::command("tally")
        .args(["send", "--to", &format!("127.0.0.1:{port}")])
        .args(["--count", &count.to_string(), "--accounts", &accounts.to_string()])
        .output()
        .expect("tally send");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
}

/// Rows of the accounts table: a rank, then the colour swatch.
fn table_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|line| {
            // `  1 █ acme ...`: the rank right-aligned in three columns.
            line.get(..3)
                .is_some_and(|rank| rank.trim().parse::<u32>().is_ok())
                && line.get(3..).is_some_and(|rest| rest.starts_with(" █ "))
        })
        .collect()
}

/// The number right after `label` on the line where it first appears.
fn number_after(screen: &str, label: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.contains(label))?;
    let rest = &line[line.find(label)? + label.len()..];
    rest.split_whitespace().next().map(str::to_owned)
}

#[test]
fn the_dashboard_shows_what_arrives_and_answers_keys() {
    let port = free_udp_port();
    let tally = binary("tally");
    let state = std::env::temp_dir().join(format!("tally-tui-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let command = format!(
        "{} --no-udp --udp 127.0.0.1:{port} --fps 10 --state {} --checkpoint-interval 200ms; {AFTER_EXIT}",
        tally.display(),
        state.display()
    );
    let tmux = Tmux::start("keys", &command);
    tmux.wait_for("the dashboard", |s| {
        s.contains("column, by account") && s.contains("listening")
    });
    assert!(tmux.alternate_screen(), "the dashboard uses the alternate screen");

    send(port, 900, 3);
    let screen = tmux.wait_for("accounts and counts", |s| {
        ["acme", "globex", "initech"].iter().all(|a| s.contains(a)) && s.contains("total 900")
    });
    // Each account's window total in the table: 300 each.
    for account in ["acme", "globex", "initech"] {
        let row = table_rows(&screen)
            .into_iter()
            .find(|l| l.contains(account))
            .expect("a table row");
        assert!(row.contains(" 300 "), "{row}");
    }

    tmux.keys(&["?"]);
    tmux.wait_for("help", |s| s.contains(" keys ") && s.contains("pause / resume"));
    tmux.keys(&["x"]);
    tmux.wait_for("help closed", |s| !s.contains("pause / resume"));

    tmux.keys(&["p"]);
    tmux.wait_for("PAUSED", |s| s.contains("PAUSED"));
    send(port, 100, 1);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        number_after(&tmux.screen(), "total").as_deref(),
        Some("900"),
        "frozen while paused"
    );
    tmux.keys(&["p"]);
    tmux.wait_for("live again, with the new events", |s| {
        !s.contains("PAUSED") && s.contains("total 1.0k")
    });

    tmux.keys(&["+"]);
    tmux.wait_for("the 5-minute window", |s| {
        s.contains("│ 5m │") && s.contains("-5m ")
    });

    tmux.keys(&["/", "g", "l", "o", "Enter"]);
    let screen = tmux.wait_for("the filter", |s| s.contains("filter: glo"));
    let table = table_rows(&screen);
    assert!(table.len() == 1 && table[0].contains("globex"), "{screen}");

    // Issue 14: `h` shows the selected account's days and months from the history.
    tmux.keys(&["h"]);
    let month = jiff::Zoned::now().strftime("%Y-%m").to_string();
    let screen = tmux.wait_for("the history", |s| {
        s.contains("history: globex") && s.contains("by day") && s.contains(&month)
    });
    let this_month = (screen.lines())
        .find(|l| l.contains(&format!(" {month} ")))
        .expect("this month's row");
    assert!(
        this_month.contains('█') && this_month.contains(" 300 "),
        "globex's 300: {screen}"
    );
    tmux.keys(&["x"]);
    tmux.wait_for("the history closed", |s| !s.contains("by month"));
    let _ = std::fs::remove_dir_all(&state);

    assert!(tmux.flag("mouse_any_flag"), "the dashboard takes the mouse");
    tmux.keys(&["q"]);
    let screen = assert_exited_and_restored(&tmux, 0, "q");
    assert!(
        !screen.contains("column, by account"),
        "the dashboard is gone:\n{screen}"
    );
}

/// An idle dashboard in tmux, and the pattern that finds its process.
fn idle_dashboard(name: &str) -> (Tmux, String) {
    let port = free_udp_port();
    let tally = binary("tally");
    let argv = format!("{} --no-udp --udp 127.0.0.1:{port}", tally.display());
    let state = tally_tests::state_home();
    let tmux = Tmux::start(
        name,
        &format!("XDG_STATE_HOME={} {argv}; {AFTER_EXIT}", state.display()),
    );
    tmux.wait_for("the dashboard", |s| s.contains("column, by account"));
    // Anchored: the tmux shell's own command line contains the same words.
    (tmux, format!("^{argv}"))
}

/// What a program run in tmux leaves behind it: `EXITED <status>`, then the terminal's line
/// settings (`stty -a`, which shows `-icanon -echo` while raw mode is still on).
const AFTER_EXIT: &str = "echo EXITED $?; stty -a; echo STTY-DONE; sleep 30";

/// Waits for the program to exit with `status` and checks the terminal is back to how a shell
/// needs it: the normal screen, no mouse reporting, a visible cursor, line editing and echo.
/// Returns the screen.
fn assert_exited_and_restored(tmux: &Tmux, status: i32, how: &str) -> String {
    let screen = tmux.wait_for("exit", |s| s.contains("STTY-DONE"));
    assert!(screen.contains(&format!("EXITED {status}")), "{screen}");
    assert!(!tmux.alternate_screen(), "the normal screen after {how}");
    assert!(!tmux.flag("mouse_any_flag"), "mouse reporting off after {how}");
    assert!(tmux.flag("cursor_flag"), "the cursor is shown after {how}");
    let settings: Vec<&str> = screen.split_whitespace().collect();
    for setting in ["icanon", "echo"] {
        assert!(
            settings.contains(&setting),
            "`{setting}` is back on after {how} (raw mode off):\n{screen}"
        );
    }
    screen
}

#[test]
fn sigterm_restores_the_terminal() {
    let (tmux, process) = idle_dashboard("sigterm");
    let status = Command::new("pkill")
        .args(["-TERM", "-f", &process])
        .status()
        .expect("pkill");
    assert!(status.success());
    assert_exited_and_restored(&tmux, 0, "SIGTERM");
}

/// Issue 11, item 12: SIGINT and SIGQUIT sent from outside (`kill -INT`, a supervisor) end
/// the dashboard like `q`, as SIGTERM does, instead of leaving the alternate screen and mouse
/// reporting on.
#[test]
fn sigint_and_sigquit_from_outside_restore_the_terminal() {
    for signal in ["INT", "QUIT"] {
        let (tmux, process) = idle_dashboard(&format!("sig{}", signal.to_lowercase()));
        let status = Command::new("pkill")
            .args([&format!("-{signal}"), "-f", &process])
            .status()
            .expect("pkill");
        assert!(status.success());
        assert_exited_and_restored(&tmux, 0, &format!("SIG{signal}"));
    }
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    let (tmux, _) = idle_dashboard("ctrl-c");
    tmux.keys(&["C-c"]);
    assert_exited_and_restored(&tmux, 0, "Ctrl-C");
}

/// A dashboard whose terminal goes away (SSH dropped, pane closed) must not stay behind.
#[test]
fn a_hung_up_terminal_ends_the_dashboard() {
    let (tmux, process) = idle_dashboard("hangup");
    let pid = || {
        let output = Command::new("pgrep")
            .args(["-f", &process])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert!(!pid().is_empty(), "running");
    drop(tmux);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pid().is_empty() {
        assert!(Instant::now() < deadline, "tally {} outlived its terminal", pid());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `tally` restores the terminal from a panic hook; the probe takes the terminal through the
/// same code and panics on a key press, as a bug in the dashboard would.
#[test]
fn a_panic_restores_the_terminal_and_shows_its_message() {
    let probe = env!("CARGO_BIN_EXE_panic-probe");
    let tmux = Tmux::start("panic", &format!("{probe}; {AFTER_EXIT}"));
    tmux.wait_for("the probe", |s| s.contains("press a key to panic"));
    assert!(
        tmux.alternate_screen() && tmux.flag("mouse_any_flag"),
        "the terminal is taken"
    );
    tmux.keys(&["x"]);
    let screen = assert_exited_and_restored(&tmux, 101, "a panic");
    assert!(
        screen.contains("panicked on purpose"),
        "the panic message is on the normal screen:\n{screen}"
    );
}
