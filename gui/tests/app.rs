//! The desktop dashboard built on fixed data and a fixed clock, driven through egui_kittest:
//! widgets are found through the accessibility tree, as a screen reader would.

mod common;

use common::{NOW, fixture, source};
use egui_kittest::kittest::Queryable;
use std::sync::atomic::Ordering::Relaxed;
use tally_core::SourceState;
use tally_core::Timestamp;
use tally_gui::Mode;
use tally_gui::{KioskConfig, KioskView};

#[test]
fn accounts_show_in_the_legend_and_the_table_busiest_first() {
    let fixture = fixture();
    let harness = fixture.harness(Mode::Laptop);
    for account in ["acme", "globex", "initech"] {
        // Once in the chart's legend, once in the accounts table.
        assert_eq!(harness.get_all_by_label(account).count(), 2, "{account}");
    }
    let accounts = &harness.state().state.snapshot.accounts;
    let names: Vec<&str> = accounts.iter().map(|a| &*a.name).collect();
    assert_eq!(names, ["acme", "globex", "initech"]);
    harness.get_by_label("total 420");
}

#[test]
fn pause_freezes_the_chart_and_resume_catches_up() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    harness.get_by_label("Pause").click();
    harness.run_steps(2);
    fixture.record("acme", 100);
    fixture.advance(&mut harness);
    assert_eq!(
        harness.state().state.snapshot.totals.total,
        420,
        "frozen while paused"
    );
    harness.get_by_label("PAUSED");
    harness.get_by_label("Resume").click();
    harness.run_steps(2);
    fixture.advance(&mut harness);
    assert_eq!(harness.state().state.snapshot.totals.total, 520);
    harness.get_by_label("total 520");
    assert!(harness.query_by_label("PAUSED").is_none());
}

#[test]
fn the_window_selector_changes_the_bucket_count() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    assert_eq!(harness.state().state.snapshot.stack.totals.len(), 60);
    harness.get_by_label("5 min").click();
    harness.run_steps(2);
    assert_eq!(harness.state().state.snapshot.stack.totals.len(), 300);
    harness.get_by_label("1 h").click();
    harness.run_steps(2);
    let snapshot = &harness.state().state.snapshot;
    assert_eq!(
        (snapshot.stack.totals.len(), snapshot.stack.bucket_ms),
        (60, 60_000)
    );
}

#[test]
fn clicking_an_account_drills_into_its_types_and_timings() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    // All accounts' types, with percentiles over every account's timings.
    harness.get_by_label("timings / value");
    assert!(
        harness.get_all_by_label_contains("p50 ").next().is_some(),
        "percentiles in the all-accounts types table"
    );
    harness
        .get_all_by_label("acme")
        .next()
        .expect("table row")
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().state.snapshot.stack.focus.as_deref(),
        Some("acme")
    );
    harness.get_by_label("acme: events by type");
    harness.get_by_label_contains("timings: p50 ");
    // The account's types and, below, all accounts' types.
    assert_eq!(harness.get_all_by_label("timings / value").count(), 2);
    harness.get_by_label("All accounts").click();
    harness.run_steps(2);
    assert_eq!(harness.state().state.snapshot.stack.focus, None);
}

#[test]
fn kiosk_mode_has_no_controls_and_shows_a_clock() {
    let fixture = fixture();
    let harness = fixture.harness(Mode::Kiosk(KioskConfig::default()));
    for control in ["Pause", "5 min", "Accounts", "Details"] {
        assert!(harness.query_by_label(control).is_none(), "{control} is shown");
    }
    // The feed's zone (UTC here), named after the time.
    harness.get_by_label(&format!("{} UTC", Timestamp::from_millis(NOW).utc_clock()));
    harness.get_by_label("last event 0s ago");
    assert!(harness.query_by_label_contains("SOURCE").is_none());
}

#[test]
fn the_wall_chart_names_every_stacked_account_beside_it_not_in_a_legend() {
    let fixture = fixture();
    for i in 0..14u64 {
        fixture.record(&format!("store-{i:02}"), 100 + i);
    }
    let harness = fixture.harness(Mode::Kiosk(KioskConfig::default()));
    assert_eq!(harness.state().state.kiosk_view(), KioskView::Chart);
    let layers = &harness.state().state.snapshot.stack.layers;
    let stacked: Vec<&str> = (layers.iter())
        .map(|layer| &*layer.name)
        .filter(|&name| name != tally_core::OTHER)
        .collect();
    assert!(stacked.len() > 8, "more than fit the old list: {stacked:?}");
    for name in stacked {
        // Once, in the list beside the chart: no legend over the bars.
        assert_eq!(harness.get_all_by_label(name).count(), 1, "{name}");
    }
    harness.get_by_label(tally_core::OTHER);
}

#[test]
fn the_wall_list_fits_beside_the_chart_under_a_banner() {
    let fixture = fixture();
    for i in 0..14u64 {
        fixture.record(&format!("store-{i:02}"), 100 + i);
    }
    let mut harness = fixture.harness(Mode::Kiosk(KioskConfig::default()));
    *fixture.sources.lock().expect("lock") = vec![source(SourceState::Disconnected, NOW)];
    fixture.advance(&mut harness);
    harness.get_by_label("SOURCE DISCONNECTED: zmq tcp://hub:6000");
    let screen = harness.ctx.content_rect();
    let other = harness.get_by_label(tally_core::OTHER).rect();
    assert!(other.bottom() <= screen.bottom(), "{other:?} below {screen:?}");
}

#[test]
fn a_source_going_down_shows_the_banner_and_recovery_clears_it() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Kiosk(KioskConfig::default()));
    *fixture.sources.lock().expect("lock") = vec![source(SourceState::Disconnected, NOW)];
    fixture.advance(&mut harness);
    harness.get_by_label("SOURCE DISCONNECTED: zmq tcp://hub:6000");
    *fixture.sources.lock().expect("lock") = vec![source(SourceState::Connected, NOW + 1000)];
    fixture.advance(&mut harness);
    assert!(harness.query_by_label_contains("SOURCE").is_none());
    // Connected, but nothing for a while: stale.
    fixture.clock.fetch_add(30_000, Relaxed);
    harness.run_steps(2);
    harness.get_by_label_contains("STALE: no events for 3");
}

#[test]
fn kiosk_views_rotate_by_themselves() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Kiosk(KioskConfig {
        rotate: Some(std::time::Duration::from_secs(30)),
        ..KioskConfig::default()
    }));
    assert_eq!(harness.state().state.kiosk_view(), KioskView::Chart);
    fixture.clock.fetch_add(30_000, Relaxed);
    harness.run_steps(2);
    assert_eq!(harness.state().state.kiosk_view(), KioskView::TopAccount);
    assert_eq!(
        harness.state().state.snapshot.stack.focus.as_deref(),
        Some("acme")
    );
    harness.get_by_label("Top account: acme, by type");
    fixture.clock.fetch_add(30_000, Relaxed);
    harness.run_steps(2);
    assert_eq!(harness.state().state.kiosk_view(), KioskView::Types);
    harness.get_by_label("api.latency");
}

#[test]
fn dragging_the_chart_stops_following_live_until_asked_back() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    assert!(harness.query_by_label("Back to live").is_none());
    // Pan: drag across the middle of the chart.
    let (from, to) = (egui::pos2(400.0, 350.0), egui::pos2(250.0, 350.0));
    harness.hover_at(from);
    harness.run_steps(1);
    harness.drag_at(from);
    harness.run_steps(1);
    harness.hover_at(to);
    harness.run_steps(1);
    harness.drop_at(to);
    harness.run_steps(2);
    assert!(!harness.state().state.follow_live, "panning leaves live");
    harness.get_by_label("Back to live").click();
    harness.run_steps(2);
    assert!(harness.state().state.follow_live);
    assert!(harness.query_by_label("Back to live").is_none());
}

/// eframe's storage, in memory.
#[derive(Default)]
struct Stored(std::collections::HashMap<String, String>);

impl eframe::Storage for Stored {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn window_theme_and_panels_are_remembered_between_runs() {
    use eframe::App as _;
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    harness.get_by_label("1 h").click();
    harness.get_by_label("Details").click();
    harness.run_steps(2);
    let mut storage = Stored::default();
    harness.state_mut().save(&mut storage);
    let remembered = tally_gui::GuiApp::remembered(Some(&storage));
    assert_eq!((remembered.window, remembered.show_details), (2, false));
    assert_eq!(remembered, harness.state().state.remembered);
    assert_eq!(
        tally_gui::GuiApp::remembered(None),
        tally_gui::Remembered::default()
    );
}

#[test]
fn clicking_a_legend_entry_hides_and_shows_its_account() {
    use egui::accesskit::{Role, Toggled};
    use egui_kittest::kittest::NodeT as _;
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    let shown = |harness: &egui_kittest::Harness<'_, tally_gui::GuiApp>| {
        let entry = harness.get_by_role_and_label(Role::CheckBox, "globex");
        entry.accesskit_node().toggled() == Some(Toggled::True)
    };
    assert!(shown(&harness));
    harness.get_by_role_and_label(Role::CheckBox, "globex").click();
    harness.run_steps(2);
    assert!(!shown(&harness), "hidden");
    let acme = harness.get_by_role_and_label(Role::CheckBox, "acme");
    assert_eq!(
        acme.accesskit_node().toggled(),
        Some(Toggled::True),
        "the others stay"
    );
    harness.get_by_role_and_label(Role::CheckBox, "globex").click();
    harness.run_steps(2);
    assert!(shown(&harness), "shown again");
}

/// Issue 12: hiding a layer from the legend takes its height out of the bars above it: each
/// bar's top is the sum of the visible layers, none floats where the hidden one was.
#[test]
fn hiding_a_legend_entry_restacks_the_bars_from_zero() {
    use egui::accesskit::Role;
    use tally_gui::view::chart::{hidden_layers, stacked_bars};
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    harness.get_by_role_and_label(Role::CheckBox, "acme").click();
    harness.run_steps(2);
    let hidden = hidden_layers(&harness.ctx);
    let layers = stacked_bars(&harness.state().state, &hidden);
    let names: Vec<(&str, bool)> = layers.iter().map(|l| (&*l.name, l.hidden)).collect();
    assert_eq!(
        names,
        [("acme", true), ("globex", false), ("initech", false)],
        "bottom first"
    );
    let buckets = layers[0].bars.len();
    let mut checked = 0;
    for bucket in 0..buckets {
        let visible: Vec<&egui_plot::Bar> = layers
            .iter()
            .filter(|l| !l.hidden)
            .map(|l| &l.bars[bucket])
            .collect();
        let sum: f64 = visible.iter().map(|bar| bar.value).sum();
        let top = visible
            .last()
            .map(|bar| bar.base_offset.unwrap_or(0.0) + bar.value);
        assert_eq!(top, Some(sum), "bucket {bucket}");
        assert_eq!(
            visible[0].base_offset,
            Some(0.0),
            "globex rests on zero, not on acme"
        );
        checked += usize::from(sum > 0.0);
    }
    assert!(checked >= 59, "bars with events: {checked}");
}

/// Issue 12: hovering a bar shows its time range and every layer's count and share.
#[test]
fn hovering_a_bar_shows_its_bucket() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    harness.hover_at(egui::pos2(400.0, 500.0));
    harness.run_steps(3);
    let range = harness.get_by_label_contains(" – ");
    let text = format!("{range:?}");
    assert!(text.contains("UTC"), "{text}");
    harness.get_by_label("57%"); // acme: 3 pageviews and a timing of 7 events each second
    harness.get_by_label("14%"); // initech: 1 of 7
}

/// Issue 12: a wall screen that boots into an outage says so: a hub never reached, or no
/// event at all since the start, shows the red banner once ten seconds have passed.
#[test]
fn the_wall_screen_warns_of_an_outage_from_boot() {
    let fixture = fixture();
    let mut never = source(SourceState::Connecting, NOW);
    never.last_message = None;
    *fixture.sources.lock().expect("lock") = vec![never.clone()];
    let mut harness = fixture.harness(Mode::Kiosk(KioskConfig::default()));
    assert!(harness.query_by_label_contains("SOURCE").is_none(), "not at once");
    fixture.clock.fetch_add(11_000, Relaxed);
    harness.run_steps(2);
    harness.get_by_label("SOURCE NOT CONNECTED: zmq tcp://hub:6000");

    // Listening, but nothing ever arrived.
    let fixture = self::fixture();
    let mut quiet = source(SourceState::Listening, NOW);
    quiet.last_message = None;
    *fixture.sources.lock().expect("lock") = vec![quiet];
    let mut harness = fixture.harness(Mode::Kiosk(KioskConfig::default()));
    assert!(harness.query_by_label_contains("NO EVENTS").is_none());
    fixture.clock.fetch_add(12_000, Relaxed);
    harness.run_steps(2);
    harness.get_by_label("NO EVENTS since the start, 12s ago");
}

/// Issue 12: the wall's tiles: big numbers from the snapshot, coloured by state.
#[test]
fn the_wall_screen_has_tiles_that_change_colour_with_state() {
    use tally_core::{CheckStatus, Notice, ServiceCheck};
    use tally_gui::Tile;
    use tally_gui::wall::Mood;
    let fixture = fixture();
    let tiles: Vec<Tile> = [
        "rate",
        "today",
        "bad",
        "sources",
        "checks",
        "p99:acme/api.latency",
    ]
    .iter()
    .map(|t| t.parse().expect("a tile"))
    .collect();
    let config = KioskConfig {
        tiles: tiles.clone(),
        ..KioskConfig::default()
    };
    let mut harness = fixture.harness(Mode::Kiosk(config));
    for label in [
        "events/s",
        "events today",
        "bad input",
        "sources up",
        "checks",
        "p99 acme/api.latency",
    ] {
        harness.get_by_label(label);
    }
    let read = |harness: &egui_kittest::Harness<'_, tally_gui::GuiApp>| {
        let state = &harness.state().state;
        tiles.iter().map(|t| t.read(state)).collect::<Vec<_>>()
    };
    let readings = read(&harness);
    let values: Vec<&str> = readings.iter().map(|r| r.value.as_str()).collect();
    // 7 events a second; all 420 since midnight; nothing bad; 1 of 1 source up; no checks;
    // acme's timings were 10..69 ms, one a second.
    assert_eq!(values, ["7", "420", "0", "1/1", "none", "69 ms"]);
    assert_eq!(readings[3].mood, Mood::Good);
    assert_eq!(
        readings[0].sparkline.len(),
        59,
        "the window's bars but the one under way"
    );

    fixture.engine.notice(Notice::Check(ServiceCheck {
        name: "db.up".into(),
        status: CheckStatus::Critical,
        time: Timestamp::from_millis(NOW),
        host: None,
        message: None,
        tags: vec![],
    }));
    fixture.engine.reject(
        tally_core::Rejection::Json,
        "EOF while parsing",
        b"{",
        Timestamp::from_millis(NOW),
    );
    *fixture.sources.lock().expect("lock") = vec![source(SourceState::Disconnected, NOW)];
    fixture.advance(&mut harness);
    let readings = read(&harness);
    assert_eq!((readings[2].value.as_str(), readings[2].mood), ("1", Mood::Bad));
    assert_eq!((readings[3].value.as_str(), readings[3].mood), ("0/1", Mood::Bad));
    assert_eq!(
        (readings[4].value.as_str(), readings[4].mood),
        ("db.up critical", Mood::Bad)
    );
    harness.get_by_label("db.up critical");
}

/// Issue 12: the busiest accounts as large bars, a view chosen in the `[kiosk]` table.
#[test]
fn the_wall_screen_shows_the_views_it_is_given() {
    let fixture = fixture();
    let config: KioskConfig = toml::from_str("views = [\"accounts\"]\ntiles = []").expect("parses");
    let harness = fixture.harness(Mode::Kiosk(config));
    harness.get_by_label("Busiest accounts");
    for (account, rate) in [("acme", "4/s"), ("globex", "2/s"), ("initech", "1/s")] {
        harness.get_by_label(account);
        harness.get_by_label(rate);
    }
    assert!(harness.query_by_label("events/s").is_none(), "no tiles");
}

/// Issue 12: DogStatsD events are listed with the details (and drawn on the chart); a service
/// check shows in the top bar by its status.
#[test]
fn events_and_service_checks_show_on_the_laptop() {
    use tally_core::{AlertType, Annotation, CheckStatus, Notice, ServiceCheck};
    let fixture = fixture();
    fixture.engine.notice(Notice::Annotation(Annotation {
        time: Timestamp::from_millis(NOW - 20_000),
        title: "Deploy shop v2.1".into(),
        text: "rolled out by the CI".into(),
        alert: AlertType::Success,
        ..Annotation::default()
    }));
    fixture.engine.notice(Notice::Check(ServiceCheck {
        name: "db.up".into(),
        status: CheckStatus::Warning,
        time: Timestamp::from_millis(NOW),
        host: None,
        message: Some("replica lag 30s".into()),
        tags: vec![],
    }));
    let mut harness = fixture.harness(Mode::Laptop);
    fixture.advance(&mut harness);
    harness.get_by_label_contains("success Deploy shop v2.1");
    harness.get_by_label("db.up warning");
    assert_eq!(harness.state().state.snapshot.annotations.len(), 1);
}

/// Issue 14: outputs show next to the sources: a working one just named, one that cannot
/// reach its server with its address and state, its warning on hover.
#[test]
fn outputs_show_their_health_in_the_top_bar() {
    use tally_core::{OutputKind, OutputStatus};
    let fixture = fixture();
    let output = |kind, address: &str, state| OutputStatus {
        kind,
        address: address.into(),
        state,
        published: 10,
        bytes: 0,
        connections: 0,
        refused: 0,
        closed_idle: None,
        dropped: 0,
        note: String::new(),
    };
    *fixture.outputs.lock().expect("not poisoned") = vec![
        output(
            OutputKind::History,
            "/var/lib/tally/tally.db",
            SourceState::Connected,
        ),
        output(
            OutputKind::Graphite,
            "tcp://graphite:2003",
            SourceState::Disconnected,
        ),
    ];
    let harness = fixture.harness(Mode::Laptop);
    harness.get_by_label("» history");
    harness.get_by_label("» graphite tcp://graphite:2003 disconnected");
}

/// Issue 14: `History` in the top bar opens a window with the last days and months from the
/// history, stacked by type; it follows the focused account, and closes.
#[test]
fn the_history_window_shows_days_and_months_by_type() {
    let fixture = fixture();
    let mut harness = fixture.harness(Mode::Laptop);
    assert!(harness.query_by_label("By day, the last 30 days").is_none());
    harness.get_by_label("History").click();
    harness.run_steps(3);
    harness.get_by_label("History: all");
    harness.get_by_label("By day, the last 30 days");
    harness.get_by_label("By month, the last 12 months");
    assert!(
        harness.query_all_by_label("signup").count() >= 1,
        "the types in the legends"
    );
    harness.get_by_label("History").click();
    harness.run_steps(3);
    assert!(harness.query_by_label("By day, the last 30 days").is_none());
}
