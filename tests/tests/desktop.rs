//! The real desktop app in a real (virtual) X display: `tally-gui --demo` opens a window,
//! draws the dashboard, and quits cleanly when asked (SIGTERM); `--kiosk` fills a screen that
//! has no window manager and warns of a hub it never reached. The screenshots are kept in
//! `target/` for CI to publish.

use std::io::{BufRead, BufReader};
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

/// `tally-gui ARGS` on `display`, its settings under `home`.
fn start_gui(display: &str, home: &std::path::Path, args: &[&str]) -> Killed {
    Killed(
        tally_tests::command("tally-gui")
            .args(args)
            .env("DISPLAY", display)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .stderr(Stdio::null())
            .spawn()
            .expect("tally-gui starts"),
    )
}

/// A virtual screen of `size` (`1280x800`), with no window manager. Xvfb picks a free display
/// itself and names it once it accepts clients (`-displayfd`): two tests starting at once never
/// pick the same one, whatever lock files killed servers left behind.
fn xvfb(size: &str) -> (Killed, String) {
    let mut server = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", &format!("{size}x24")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb runs (scripts/test installs it)");
    let mut number = String::new();
    let stdout = server.stdout.take().expect("piped");
    BufReader::new(stdout)
        .read_line(&mut number)
        .expect("reads Xvfb's display");
    let number = number.trim().to_owned();
    assert!(!number.is_empty(), "Xvfb did not start");
    (Killed(server), format!(":{number}"))
}

/// The screen of `display` as a PNG at `shot`.
fn screenshot(display: &str, shot: &PathBuf) -> bool {
    (Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(shot))
    .status()
    .expect("runs import")
    .success()
}

fn assert_running(app: &mut Killed) {
    assert!(
        app.0.try_wait().expect("status").is_none(),
        "tally-gui exited early"
    );
}

/// SIGTERM, and the exit status within 15 s.
fn stop(app: &mut Killed) -> std::process::ExitStatus {
    let pid = app.0.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = app.0.try_wait().expect("status") {
            return status;
        }
        assert!(Instant::now() < deadline, "tally-gui did not quit on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_window_opens_draws_and_quits_on_request() {
    let (_xvfb, display) = xvfb("1280x800");
    let home = std::env::temp_dir().join(format!("tally-gui-home-{}", std::process::id()));
    let mut app = start_gui(&display, &home, &["--demo", "--no-udp"]);
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tally-gui-smoke.png");
    // Software GL in a debug build: give it time to draw, and the demo time to send.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        assert_running(&mut app);
        // A drawn dashboard has many colours (accounts, text); a blank screen has one.
        if screenshot(&display, &shot) && unique_colours(&shot) > 50 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing drawn; see {}", shot.display());
    }
    let status = stop(&mut app);
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&home);
}

/// The size and place of the window named `tally`: `(width, height, x, y)`.
fn window_geometry(display: &str) -> Option<(u32, u32, i32, i32)> {
    let output = Command::new("xwininfo")
        .args(["-display", display, "-name", "tally"])
        .output()
        .expect("runs xwininfo (scripts/test installs x11-utils)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Option<i64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(name))?;
        line.split(':').nth(1)?.trim().parse().ok()
    };
    Some((
        field("Width")? as u32,
        field("Height")? as u32,
        field("Absolute upper-left X")? as i32,
        field("Absolute upper-left Y")? as i32,
    ))
}

/// How much of the picture is the banner's red (0 to 1).
fn share_of_banner_red(png: &PathBuf) -> f64 {
    let output = Command::new("convert")
        .arg(png)
        .args(["-fill", "black", "-fuzz", "4%", "+opaque", "#f85149"])
        .args(["-fill", "white", "-fuzz", "4%", "-opaque", "#f85149"])
        .args(["-format", "%[fx:mean]", "info:"])
        .output()
        .expect("runs convert");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

/// Issue 12: a wall screen with no window manager (a kiosk box booting into X alone) fills
/// the whole screen, and a hub that is unreachable from boot shows the red banner; the
/// wall's settings do not become the laptop app's.
#[test]
fn the_wall_screen_fills_a_bare_screen_and_warns_from_boot() {
    let (_xvfb, display) = xvfb("1600x1000");
    let home = std::env::temp_dir().join(format!("tally-kiosk-home-{}", std::process::id()));
    let unreachable = format!("ws://127.0.0.1:{}/ws", tally_tests::free_tcp_port());
    let mut app = start_gui(&display, &home, &["--kiosk", "--ws", &unreachable]);
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tally-kiosk-smoke.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        assert_running(&mut app);
        let filled = window_geometry(&display) == Some((1600, 1000, 0, 0));
        // The banner is a red band across the screen: well over 1% of it.
        if filled && screenshot(&display, &shot) && share_of_banner_red(&shot) > 0.01 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "window {:?}, banner red {:.4}; see {}",
            window_geometry(&display),
            share_of_banner_red(&shot),
            shot.display()
        );
    }
    let status = stop(&mut app);
    assert!(status.success(), "{status}");
    let laptop_settings = home.join(".local/share/tally");
    assert!(
        !laptop_settings.exists(),
        "the wall screen wrote the laptop app's settings in {}",
        laptop_settings.display()
    );
    let _ = std::fs::remove_dir_all(&home);
}
