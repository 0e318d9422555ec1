//! The real desktop app in a real (virtual) X display: `tally-gui --demo` opens a window,
//! draws the dashboard, and quits cleanly when asked (SIGTERM). The screenshot is kept in
//! `target/tally-gui-smoke.png` for CI to publish.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A display number nobody uses (its lock file is absent).
fn free_display() -> u32 {
    (90 + std::process::id() % 50..200)
        .find(|n| !PathBuf::from(format!("/tmp/.X{n}-lock")).exists())
        .expect("a free display")
}

fn unique_colours(png: &PathBuf) -> u64 {
    let output = Command::new("identify")
        .args(["-format", "%k"])
        .arg(png)
        .output()
        .expect("runs identify");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn the_demo_window_opens_draws_and_quits_on_request() {
    let display = format!(":{}", free_display());
    let _xvfb = Killed(
        Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1280x800x24"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (scripts/test installs it)"),
    );
    std::thread::sleep(Duration::from_secs(1));
    let home = std::env::temp_dir().join(format!("tally-gui-home-{}", std::process::id()));
    let mut app = Killed(
        Command::new(tally_tests::binary("tally-gui"))
            .args(["--demo", "--no-udp"])
            .env("DISPLAY", &display)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .env("HOME", &home)
            .stderr(Stdio::null())
            .spawn()
            .expect("tally-gui starts"),
    );
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tally-gui-smoke.png");
    // Software GL in a debug build: give it time to draw, and the demo time to send.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            app.0.try_wait().expect("status").is_none(),
            "tally-gui exited early"
        );
        let taken = Command::new("import")
            .args(["-display", &display, "-window", "root"])
            .arg(&shot)
            .status()
            .expect("runs import");
        // A drawn dashboard has many colours (accounts, text); a blank screen has one.
        if taken.success() && unique_colours(&shot) > 50 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing drawn; see {}", shot.display());
    }
    let pid = app.0.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = app.0.try_wait().expect("status") {
            break status;
        }
        assert!(Instant::now() < deadline, "tally-gui did not quit on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&home);
}
