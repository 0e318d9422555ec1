//! The dashboard drawn into ratatui's TestBackend from a fixed engine, fixed sources and a fixed
//! clock: text snapshots of each view at 80x24 and 160x48, colours checked cell by cell.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use std::sync::Arc;
use tally_core::palette::{self, Rgb};
use tally_core::{Engine, EngineConfig, Event, Rejection, Timestamp, Value};
use tally_core::{SourceState, SourceStatus};
use tally_tui::app::{App, Overlay};
use tally_tui::theme::{Depth, Theme, ThemeName};
use tally_tui::ui;

const T0: u64 = 1_700_002_800_000; // 23:00:00 UTC, a whole hour

/// The fixtures' accounts and their weights (events a second, before a swell).
const ACCOUNTS: [(&str, u64); 5] = [
    ("acme", 9),
    ("globex", 5),
    ("initech", 3),
    ("umbrella", 2),
    ("hooli", 1),
];

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

/// An engine with two minutes of steady, known traffic (five accounts, a few types, timings
/// and a gauge), and a dashboard showing it at a fixed time.
struct Fixture {
    engine: Arc<Engine>,
    app: App,
    now: Timestamp,
}

impl Fixture {
    fn new() -> Fixture {
        let engine = Engine::new(EngineConfig::default(), at(0)).expect("valid");
        let mut recorder = engine.recorder();
        for second in 0..120u64 {
            let time = at(second * 1000 + 100);
            for (name, per_second) in ACCOUNTS {
                // A swell, so the bars have a shape.
                let n = per_second * (1 + (second / 20) % 3);
                let count = |event_type, n| Event {
                    account: name,
                    event_type,
                    app: Some("shop"),
                    value: Value::Count(n),
                    time,
                };
                recorder.record(&count("pageview", n));
                recorder.record(&count("order.create", n / 3));
                let ms = 20.0 + (second % 50) as f64;
                let timing = Value::Timing { ms, count: 1 };
                recorder.record(&Event {
                    account: name,
                    event_type: "api.latency",
                    app: None,
                    value: timing,
                    time,
                });
            }
            let gauge = Value::Gauge(42.0);
            recorder.record(&Event {
                account: "acme",
                event_type: "queue.depth",
                app: None,
                value: gauge,
                time,
            });
        }
        recorder.flush();
        engine.reject(
            Rejection::Statsd,
            "sample rate must be in (0, 1]",
            b"acme.x:1|c|@7",
            at(60_000),
        );
        engine.reject(
            Rejection::Json,
            "EOF while parsing an object",
            b"{\"type\":\"page",
            at(61_000),
        );
        let now = at(120_500);
        let app = App::new(engine.window_presets(), engine.snapshot(&Default::default(), now));
        let mut fixture = Fixture { engine, app, now };
        fixture.refresh();
        fixture
    }

    /// What the main loop does on a tick: a snapshot for what the app now asks for.
    fn refresh(&mut self) {
        let sources = vec![SourceStatus {
            kind: tally_core::SourceKind::Udp,
            address: "127.0.0.1:8125".into(),
            state: SourceState::Listening,
            received: 1000,
            events: 5000,
            bad: 2,
            bytes: 40_000,
            rate: 250.0,
            last_message: Some(self.now),
            connections: None,
            refused: None,
            closed_idle: None,
            kernel_drops: Some(0),
            dropped: None,
            reconnects: None,
            note: String::new(),
        }];
        let snapshot = self.engine.snapshot(&self.app.request(), self.now);
        self.app.update(snapshot, sources);
    }
}

fn app() -> App {
    Fixture::new().app
}

fn render(app: &App, theme: &Theme, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|frame| ui::draw(frame, app, theme)).expect("draws");
    terminal
}

fn press(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// The table's accounts, in the order shown.
fn row_names(app: &App) -> Vec<String> {
    app.rows().iter().map(|a| a.name.to_string()).collect()
}

/// `/`, the text, `Enter`: what a user types to filter.
fn filter_by(app: &mut App, text: &str) {
    press(app, KeyCode::Char('/'));
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
    press(app, KeyCode::Enter);
}

/// Palette entry `index` of the default theme, as a 24-bit terminal shows it.
fn palette_colour(index: u8) -> Color {
    let Rgb(r, g, b) = palette::DEFAULT[index as usize];
    Color::Rgb(r, g, b)
}

fn colour() -> Theme {
    Theme::new(ThemeName::Default, Depth::TrueColour)
}

#[test]
fn dashboard_at_80x24() {
    assert_snapshot!(render(&app(), &colour(), 80, 24).backend());
}

#[test]
fn dashboard_at_160x48() {
    assert_snapshot!(render(&app(), &colour(), 160, 48).backend());
}

#[test]
fn drill_down_by_type() {
    let mut fixture = Fixture::new();
    press(&mut fixture.app, KeyCode::Enter);
    assert_eq!(fixture.app.drill.as_deref(), Some("acme"));
    fixture.refresh();
    assert_eq!(fixture.app.shown().stack.focus.as_deref(), Some("acme"));
    assert_snapshot!(
        "drill_down_80x24",
        render(&fixture.app, &colour(), 80, 24).backend()
    );
    assert_snapshot!(
        "drill_down_160x48",
        render(&fixture.app, &colour(), 160, 48).backend()
    );
}

/// Issue 12: the clock is the user's local time, labelled with its zone (UTC only if asked).
#[test]
fn the_clock_is_local_and_names_its_zone() {
    let mut app = app();
    app.clock = tally_core::Clock::new(jiff::tz::TimeZone::get("America/New_York").expect("tzdb"));
    let terminal = render(&app, &colour(), 80, 24);
    let header: String = (terminal.backend().buffer().content.iter().take(80))
        .map(|cell| cell.symbol())
        .collect();
    assert!(header.contains("18:02:00 EST"), "{header}");
}

/// Issue 12: `/` filters the chart as well as the table, and the chart's title says so.
#[test]
fn a_filter_applies_to_the_chart_too() {
    let mut fixture = Fixture::new();
    filter_by(&mut fixture.app, "o");
    fixture.refresh();
    let layers: Vec<String> = (fixture.app.shown().stack.layers.iter())
        .map(|l| l.name.to_string())
        .collect();
    assert_eq!(layers, ["globex", "hooli"], "only the accounts the table shows");
    let terminal = render(&fixture.app, &colour(), 80, 24);
    let screen: String = (terminal.backend().buffer().content.iter())
        .map(|cell| cell.symbol())
        .collect();
    assert!(screen.contains("accounts matching \"o\""), "{screen}");
    assert!(
        !screen.contains("acme"),
        "acme is neither in the chart nor the table"
    );
}

#[test]
fn help_and_bad_input_views() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    assert_eq!(app.overlay, Overlay::Help);
    assert_snapshot!("help_80x24", render(&app, &colour(), 80, 24).backend());
    assert_snapshot!("help_160x48", render(&app, &colour(), 160, 48).backend());
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.overlay, Overlay::None, "any key closes it");
    press(&mut app, KeyCode::Char('b'));
    assert_eq!(app.overlay, Overlay::BadInput);
    assert_snapshot!("bad_input_80x24", render(&app, &colour(), 80, 24).backend());
    assert_snapshot!("bad_input_160x48", render(&app, &colour(), 160, 48).backend());
}

/// A click on a table row selects that account; elsewhere it selects nothing.
#[test]
fn clicks_find_the_account_row() {
    let app = app();
    let screen = ratatui::layout::Rect::new(0, 0, 160, 48);
    let table = ui::areas(screen, &app).accounts.expect("accounts shown");
    let rows = app.rows();
    assert_eq!(
        ui::account_at(screen, &app, table.y + 2)
            .map(|i| rows[i].name.to_string())
            .as_deref(),
        Some("acme")
    );
    assert_eq!(
        ui::account_at(screen, &app, table.y + 4)
            .map(|i| rows[i].name.to_string())
            .as_deref(),
        Some("initech")
    );
    assert_eq!(ui::account_at(screen, &app, table.y + 1), None, "the header row");
    assert_eq!(
        ui::account_at(screen, &app, table.y + 2 + rows.len() as u16),
        None,
        "below the last row"
    );
    assert_eq!(ui::account_at(screen, &app, 0), None, "the summary line");
}

#[test]
fn no_color_tells_layers_apart_by_glyph() {
    let theme = Theme::new(ThemeName::Default, Depth::None);
    let terminal = render(&app(), &theme, 160, 48);
    let buffer = terminal.backend().buffer();
    assert!(
        buffer
            .content()
            .iter()
            .all(|cell| cell.fg == Color::Reset && cell.bg == Color::Reset)
    );
    assert_snapshot!(terminal.backend());
}

/// The bars' and the legend's colours are the palette's colours of each layer's account.
#[test]
fn bars_and_legend_use_each_accounts_palette_colour() {
    let app = app();
    let terminal = render(&app, &colour(), 160, 48);
    let buffer = terminal.backend().buffer();
    let stack = &app.shown().stack;
    let layer_colours: Vec<Color> = stack.layers.iter().map(|l| palette_colour(l.colour)).collect();
    // Every filled cell of the chart is one of the layers' colours, and each layer shows.
    let area = ui::areas(buffer.area, &app).chart;
    let mut seen = vec![false; layer_colours.len()];
    for y in area.y..area.y + area.height {
        for x in area.x..area.x + area.width {
            let cell = &buffer[(x, y)];
            if "▁▂▃▄▅▆▇█".contains(cell.symbol()) {
                let layer = layer_colours.iter().position(|c| *c == cell.fg);
                assert!(layer.is_some(), "cell ({x},{y}) has {:?}", cell.fg);
                seen[layer.unwrap_or(0)] = true;
            }
        }
    }
    assert!(seen.iter().all(|s| *s), "every layer is drawn: {seen:?}");
    // The legend: each name preceded by its colour swatch.
    let legend = ui::areas(buffer.area, &app).legend;
    let line: String = (legend.x..legend.x + legend.width)
        .map(|x| buffer[(x, legend.y)].symbol())
        .collect();
    for layer in &stack.layers {
        let at = line.find(&*layer.name).expect("name in the legend");
        let swatch_x = legend.x + line[..at].chars().count() as u16 - 3;
        assert_eq!(
            buffer[(swatch_x, legend.y)].fg,
            palette_colour(layer.colour),
            "{}",
            layer.name
        );
    }
}

#[test]
fn keys_pause_change_window_filter_sort_and_quit() {
    let mut app = app();
    let live_total = app.shown().totals.total;
    press(&mut app, KeyCode::Char(' '));
    assert!(app.paused());
    let mut later = app.live.clone();
    later.totals.total += 100;
    app.update(later, vec![]);
    assert_eq!(app.shown().totals.total, live_total, "the view is frozen");
    assert_eq!(app.live.totals.total, live_total + 100, "data keeps coming");
    press(&mut app, KeyCode::Char('p'));
    assert!(!app.paused());

    assert_eq!(app.request().window.buckets, 60);
    press(&mut app, KeyCode::Char('+'));
    assert_eq!(app.request().window.buckets, 300);
    press(&mut app, KeyCode::Char('+'));
    press(&mut app, KeyCode::Char('+'));
    press(&mut app, KeyCode::Char('+'));
    assert_eq!(
        (app.request().window.level, app.request().window.buckets),
        (2, 24),
        "stops at the longest"
    );
    press(&mut app, KeyCode::Char('-'));
    assert_eq!(app.request().window.level, 1);

    filter_by(&mut app, "glo");
    assert_eq!(row_names(&app), ["globex"]);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.rows().len(), 5, "Esc clears the filter first");

    press(&mut app, KeyCode::Char('s'));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(
        row_names(&app),
        ["acme", "globex", "hooli", "initech", "umbrella"],
        "sorted by name"
    );
    press(&mut app, KeyCode::Char('S'));
    assert_eq!(
        row_names(&app),
        ["umbrella", "initech", "hooli", "globex", "acme"],
        "S reverses"
    );
    press(&mut app, KeyCode::Char('S'));

    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(
        app.selected_account().map(|a| a.name.to_string()).as_deref(),
        Some("hooli")
    );
    assert_eq!(app.request().detail_for.as_deref(), Some("hooli"));
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.request().focus.as_deref(), Some("hooli"));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.request().focus, None, "Esc leaves the drill-down first");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.selected, 0, "then it clears the selection");
    press(&mut app, KeyCode::Esc);
    assert!(!app.quit, "Esc never quits: only q does");
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
    let mut app = self::app();
    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit, "Ctrl-C quits (raw mode delivers it as a key)");
}

/// `tab` gives the arrows to the types panel, which highlights its own selection.
#[test]
fn tab_moves_the_arrows_to_the_types_panel() {
    let mut fixture = Fixture::new();
    fixture.refresh();
    let app = &mut fixture.app;
    let (account, types) = app.types();
    assert_eq!(account, Some("acme"), "the selected account's types");
    assert!(types.len() >= 2, "the fixture gives acme several types");
    press(app, KeyCode::Tab);
    press(app, KeyCode::Down);
    assert_eq!(
        (app.selected, app.type_selected),
        (0, 1),
        "the types moved, not the accounts"
    );
    for _ in 0..20 {
        press(app, KeyCode::Down);
    }
    assert_eq!(
        app.type_selected,
        app.types().1.len() - 1,
        "stops at the last type"
    );
    let second = app.types().1[1].name.to_string();
    press(app, KeyCode::Up);
    while app.type_selected > 1 {
        press(app, KeyCode::Up);
    }
    let screen = render(app, &colour(), 160, 48);
    let buffer = screen.backend().buffer();
    let reversed = |y: u16| {
        let cells = (0..buffer.area.width).map(|x| &buffer[(x, y)]);
        cells
            .filter(|cell| cell.modifier.contains(ratatui::style::Modifier::REVERSED))
            .map(|cell| cell.symbol())
            .collect::<String>()
    };
    let highlighted: Vec<String> = (0..buffer.area.height)
        .map(reversed)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        highlighted.iter().any(|line| line.contains(&*second)),
        "the selected type ({second}) is highlighted: {highlighted:?}"
    );
    press(app, KeyCode::Tab);
    press(app, KeyCode::Down);
    assert_eq!((app.selected, app.type_selected), (1, 1), "back to the accounts");
}

/// With no account selected (a filter that matches none), the types panel shows every account's
/// types, with timing percentiles over all of them.
#[test]
fn types_of_all_accounts_have_percentiles_over_all_of_them() {
    let mut fixture = Fixture::new();
    filter_by(&mut fixture.app, "nobody");
    fixture.refresh();
    let (account, types) = fixture.app.types();
    assert_eq!(account, None);
    let latency = types
        .iter()
        .find(|t| &*t.name == "api.latency")
        .expect("api.latency");
    let timing = latency.timing.as_ref().expect("percentiles over all accounts");
    // A timing from each of the five accounts in each of the window's 59 seconds with events.
    assert_eq!(timing.count, 5 * 59);
    let screen = format!("{:?}", render(&fixture.app, &colour(), 160, 48).backend());
    assert!(screen.contains("types, all accounts"), "{screen}");
    assert!(screen.contains("p50 ") && screen.contains(" p90 "), "{screen}");
}

/// The header marks a source with a warning by (!); the bad-input view says what it is.
#[test]
fn source_warnings_are_spelled_out_in_the_bad_input_view() {
    let mut app = app();
    let mut sources = app.sources.clone();
    sources[0].note = "receive buffer 208 KiB of 8192 KiB asked".into();
    let snapshot = app.live.clone();
    app.update(snapshot, sources);
    let header = format!("{:?}", render(&app, &colour(), 160, 48).backend());
    assert!(header.contains("listening (!)"), "{header}");
    press(&mut app, KeyCode::Char('b'));
    let screen = format!("{:?}", render(&app, &colour(), 160, 48).backend());
    assert!(screen.contains("source warnings"), "{screen}");
    assert!(
        screen.contains("udp 127.0.0.1:8125 receive buffer 208 KiB of 8192 KiB asked"),
        "{screen}"
    );
}

/// Below 100 columns there is room for one list: `tab` swaps the accounts for the types.
#[test]
fn a_narrow_screen_shows_the_list_that_has_the_arrows() {
    let mut app = app();
    let screen = format!("{:?}", render(&app, &colour(), 80, 24).backend());
    assert!(
        screen.contains("accounts (5") && !screen.contains("types of"),
        "{screen}"
    );
    press(&mut app, KeyCode::Tab);
    let screen = format!("{:?}", render(&app, &colour(), 80, 24).backend());
    assert!(
        screen.contains("types of acme") && screen.contains("pageview"),
        "{screen}"
    );
    assert!(!screen.contains("accounts (5"), "{screen}");
    let area = ratatui::layout::Rect::new(0, 0, 80, 24);
    let lists = ui::areas(area, &app).types.expect("types shown");
    assert_eq!(
        ui::account_at(area, &app, lists.y + 2),
        None,
        "no account under a click"
    );
    press(&mut app, KeyCode::Tab);
    let screen = format!("{:?}", render(&app, &colour(), 80, 24).backend());
    assert!(screen.contains("accounts (5"), "{screen}");
}

/// A day and an hour of traffic (every 20 s, five accounts in a daily swell), so that every
/// window, 24 hours included, has bars from its first column to its last.
fn a_day_of_traffic() -> (Arc<Engine>, Timestamp) {
    let engine = Engine::new(EngineConfig::default(), at(0)).expect("valid");
    let mut recorder = engine.recorder();
    // Every 20 s, then every second for the last six minutes (the 1 s buckets' reach).
    let end = 25 * 3600 * 1000;
    let times = (0..end - 360_000)
        .step_by(20_000)
        .chain((end - 360_000..end).step_by(1000));
    for ms in times {
        let time = at(ms + 500);
        let swell = 1 + (ms / 1_800_000) % 4; // half-hour steps
        for (name, weight) in ACCOUNTS {
            recorder.record(&Event {
                account: name,
                event_type: "pageview",
                app: None,
                value: Value::Count(weight * swell),
                time,
            });
        }
        recorder.flush();
    }
    (engine, at(end + 900))
}

/// The characters of screen row `y`.
fn row_text(terminal: &Terminal<TestBackend>, y: u16) -> String {
    let buffer = terminal.backend().buffer();
    (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect()
}

/// Issue 12: whatever the terminal's size, the chart spans the whole window it names: the
/// axis starts at the window's start (`-5m`), the columns say what they merge, and bars
/// reach from the plot's first column to its last.
#[test]
fn the_chart_shows_the_whole_window_at_every_size() {
    let (engine, now) = a_day_of_traffic();
    for (width, height) in [(80, 24), (120, 36), (200, 50)] {
        let mut app = App::new(engine.window_presets(), engine.snapshot(&Default::default(), now));
        for (step, window) in ["1m", "5m", "1h", "1d"].into_iter().enumerate() {
            if step > 0 {
                press(&mut app, KeyCode::Char('+'));
            }
            let snapshot = engine.snapshot(&app.request(), now);
            app.update(snapshot, vec![]);
            let terminal = render(&app, &colour(), width, height);
            assert_snapshot!(format!("window_{window}_{width}x{height}"), terminal.backend());

            let chart = ui::areas(Rect::new(0, 0, width, height), &app).chart;
            let axis = row_text(&terminal, chart.y + chart.height - 1);
            let plot_x = ui::AXIS_WIDTH as usize;
            assert!(
                axis[plot_x..].starts_with(&format!("-{window}")),
                "{width}x{height}: {axis}"
            );
            assert!(axis.trim_end().ends_with("now"), "{axis}");
            let title = row_text(&terminal, chart.y);
            assert!(title.contains(" column, by account"), "{title}");
            // The bottom row of the plot: filled from the first column to the last but the
            // newest, which may be the bucket just begun.
            let bottom: Vec<String> = (terminal.backend().buffer().content.iter())
                .skip((chart.y + chart.height - 2) as usize * width as usize)
                .take(width as usize)
                .map(|cell| cell.symbol().to_owned())
                .collect();
            let columns = ui::Columns::fit(&app.shown().stack, width as usize - plot_x);
            let last_full = plot_x + columns.cells(columns.groups.len() - 1).start;
            assert!(
                bottom[plot_x..last_full].iter().all(|s| s != " "),
                "{window} at {width}x{height}: a gap in {:?}",
                bottom.concat()
            );
        }
    }
}

/// Issue 12: a cell holds two layers (the glyph's colour below, its background above), and
/// tops are rounded from the running sum, so each layer drawn keeps its share of the bar to
/// within an eighth of a cell. Read back from the screen, cell by cell.
#[test]
fn every_layer_keeps_its_share_within_an_eighth() {
    let app = app();
    let terminal = render(&app, &colour(), 200, 50);
    let buffer = terminal.backend().buffer();
    let stack = &app.shown().stack;
    let layer_of = |colour: Color| {
        stack
            .layers
            .iter()
            .position(|l| palette_colour(l.colour) == colour)
    };
    let chart = ui::areas(buffer.area, &app).chart;
    let rows = chart.height - 2; // less the title and the time axis
    let plot_x = chart.x + ui::AXIS_WIDTH;
    let columns = ui::Columns::fit(stack, (chart.width - ui::AXIS_WIDTH) as usize);
    let sums = columns.sums(stack);
    let max = sums.iter().map(|c| c.iter().sum::<u64>()).max().unwrap_or(0);
    let scale = ui::Scale::new(max, rows);
    let eighths = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
    let (mut checked, mut layers) = (0, 0);
    for (index, column) in sums.iter().enumerate() {
        let x = plot_x + columns.cells(index).start as u16;
        let mut drawn = vec![0i64; stack.layers.len()];
        for y in chart.y + 1..chart.y + 1 + rows {
            let cell = &buffer[(x, y)];
            let Some(e) = eighths.iter().position(|g| *g == cell.symbol()) else {
                continue;
            };
            let e = e as i64 + 1;
            drawn[layer_of(cell.fg).expect("a layer's colour")] += e;
            if let Some(upper) = layer_of(cell.bg) {
                drawn[upper] += 8 - e;
            }
        }
        let exact: Vec<f64> = (column.iter())
            .map(|&v| v as f64 * f64::from(rows) * 8.0 / scale.top as f64)
            .collect();
        let bar: f64 = exact.iter().sum();
        let total: i64 = drawn.iter().sum();
        assert!(
            (total as f64 - bar).abs() <= 1.0,
            "column {index}: bar {total} for {bar:.1}"
        );
        // A cell shows two parts at most: where three meet (layers, or the empty space above
        // the bar), the smallest is not drawn. Those layers are excused.
        let tops = ui::layer_tops(column, scale.top, rows, true);
        let mut excused = vec![false; column.len()];
        for row in 0..u64::from(rows) {
            let (low, high) = (row * 8, row * 8 + 8);
            let mut below = 0;
            let inside: Vec<usize> = (tops.iter().enumerate())
                .filter(|(_, top)| {
                    let inside = **top > low.max(below) && below < high;
                    below = **top;
                    inside
                })
                .map(|(layer, _)| layer)
                .collect();
            let empty_above = (low..high).contains(&below) && below > low;
            if inside.len() + usize::from(empty_above) >= 3 {
                inside.iter().for_each(|&layer| excused[layer] = true);
            }
        }
        for (layer, (&d, &e)) in drawn.iter().zip(&exact).enumerate() {
            layers += 1;
            if excused[layer] {
                continue;
            }
            assert!(
                (d as f64 - e).abs() <= 1.0,
                "column {index}, {}: drawn {d} eighths for {e:.2}",
                stack.layers[layer].name
            );
            checked += 1;
        }
    }
    assert!(
        checked * 10 >= layers * 6,
        "only {checked} of {layers} layers checked"
    );
}

/// Issue 12: 256 and 16 colours: the palette as the terminal shows it, each layer distinct.
#[test]
fn fewer_colours_still_tell_accounts_apart() {
    let app = app();
    for (depth, name) in [(Depth::Ansi256, "colours_256"), (Depth::Ansi16, "colours_16")] {
        let theme = Theme::new(ThemeName::Default, depth);
        let terminal = render(&app, &theme, 120, 36);
        let buffer = terminal.backend().buffer();
        let legend = ui::areas(buffer.area, &app).legend;
        let line = row_text(&terminal, legend.y);
        let mut seen = vec![];
        for layer in &app.shown().stack.layers {
            let at = line.find(&*layer.name).expect("in the legend");
            let swatch = buffer[(legend.x + line[..at].chars().count() as u16 - 3, legend.y)].fg;
            assert_eq!(swatch, theme.colour(layer.colour));
            seen.push(format!("{}: {swatch:?}", layer.name));
        }
        let mut distinct = seen.iter().map(|s| s.split(": ").nth(1)).collect::<Vec<_>>();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), seen.len(), "{seen:?}");
        assert_snapshot!(name, seen.join("\n"));
    }
}

/// Issue 12: without colour every layer has a pattern of its own, and the accounts table
/// marks each account with its layer's pattern.
#[test]
fn without_colour_each_account_has_its_own_pattern_in_chart_and_table() {
    let app = app();
    let theme = Theme::new(ThemeName::Default, Depth::None);
    let terminal = render(&app, &theme, 120, 36);
    let legend_y = ui::areas(Rect::new(0, 0, 120, 36), &app).legend.y;
    let legend = row_text(&terminal, legend_y);
    let mut patterns = vec![];
    for layer in &app.shown().stack.layers {
        let at = legend.find(&format!(" {}", layer.name)).expect("in the legend");
        let pattern: String = legend[..at].chars().last().into_iter().collect();
        assert_eq!(pattern, theme.fill(layer.colour), "{}", layer.name);
        patterns.push(pattern.clone());
        let table_row = (0..36)
            .map(|y| row_text(&terminal, y))
            .find(|row| row.contains(&format!(" {} ", layer.name)) && row.contains('%'))
            .expect("a table row");
        assert!(
            table_row.contains(&format!("{pattern} {}", layer.name)),
            "{table_row}"
        );
    }
    let count = patterns.len();
    patterns.sort();
    patterns.dedup();
    assert_eq!(patterns.len(), count, "distinct patterns");
}

/// Issue 12: the legend never ends in a swatch without its name: what does not fit is
/// counted instead.
#[test]
fn a_legend_that_does_not_fit_says_how_many_more() {
    let (engine, now) = a_day_of_traffic();
    let mut recorder = engine.recorder();
    for i in 0..8 {
        recorder.record(&Event {
            account: &format!("a-rather-long-account-name-{i}"),
            event_type: "pageview",
            app: None,
            value: Value::Count(10),
            time: now.saturating_sub_millis(400),
        });
    }
    recorder.flush();
    let app = App::new(engine.window_presets(), engine.snapshot(&Default::default(), now));
    let terminal = render(&app, &colour(), 80, 24);
    let legend = row_text(&terminal, ui::areas(Rect::new(0, 0, 80, 24), &app).legend.y);
    let legend = legend.trim_end();
    assert!(legend.ends_with(" more"), "{legend}");
    let swatches = legend.matches("██ ").count();
    let names = (app.shown().stack.layers.iter())
        .filter(|l| legend.contains(&format!("██ {}", l.name)))
        .count();
    assert_eq!(swatches, names, "every swatch has its name: {legend}");
    let shown = swatches
        + legend
            .split('+')
            .nth(1)
            .and_then(|m| m.split(' ').next()?.parse::<usize>().ok())
            .unwrap_or(0);
    assert_eq!(shown, app.shown().stack.layers.len(), "{legend}");
}

/// Issue 12: at 80x24 the header keeps what matters (paused, rate, bad input, a source
/// down, help) and drops the rest; sources wrap onto more lines instead of being cut.
#[test]
fn the_header_keeps_what_matters_on_a_small_screen() {
    let mut fixture = Fixture::new();
    press(&mut fixture.app, KeyCode::Char(' '));
    let mut sources = fixture.app.sources.clone();
    let mut hub = sources[0].clone();
    hub.kind = tally_core::SourceKind::Zmq;
    hub.address = "tcp://hub.example.internal:6000".into();
    hub.state = SourceState::Disconnected;
    let mut ws = hub.clone();
    ws.kind = tally_core::SourceKind::Ws;
    ws.address = "ws://events.example.internal:5555/ws".into();
    sources.extend([hub, ws]);
    let snapshot = fixture.app.live.clone();
    fixture.app.update(snapshot, sources);
    let terminal = render(&fixture.app, &colour(), 80, 24);
    let header = row_text(&terminal, 0);
    for wanted in ["PAUSED", "78.2/s", "bad 2", "2 sources down", "? help"] {
        assert!(header.contains(wanted), "{wanted} in {header:?}");
    }
    let terminal = render(&fixture.app, &colour(), 100, 30);
    let top: String = (1..4).map(|y| row_text(&terminal, y)).collect();
    for address in [
        "127.0.0.1:8125",
        "hub.example.internal:6000",
        "events.example.internal:5555",
    ] {
        assert!(top.contains(address), "{address} in {top:?}");
    }
}

/// Issue 12: DogStatsD events are marked over their column (in their alert's colour), a
/// failing service check shows in the header, and `e` lists both.
#[test]
fn events_are_marked_on_the_chart_and_checks_shown() {
    use tally_core::{AlertType, Annotation, CheckStatus, Notice, ServiceCheck};
    let mut fixture = Fixture::new();
    fixture.engine.notice(Notice::Annotation(Annotation {
        time: at(90_200),
        title: "Deploy shop v2.1".into(),
        text: "rolled out by the CI".into(),
        alert: AlertType::Error,
        host: Some("web-1".into()),
        tags: vec!["env:prod".into()],
        ..Annotation::default()
    }));
    for (name, status) in [("db.up", CheckStatus::Critical), ("api.up", CheckStatus::Ok)] {
        fixture.engine.notice(Notice::Check(ServiceCheck {
            name: name.into(),
            status,
            time: at(100_000),
            host: None,
            message: Some("replica lag 30s".into()),
            tags: vec![],
        }));
    }
    fixture.refresh();
    let terminal = render(&fixture.app, &colour(), 120, 36);
    let buffer = terminal.backend().buffer();
    let chart = ui::areas(buffer.area, &fixture.app).chart;
    let stack = &fixture.app.shown().stack;
    let columns = ui::Columns::fit(stack, (chart.width - ui::AXIS_WIDTH) as usize);
    // 90.2 s is the 31st second of the minute the window shows (60.5 s to 120.5 s ago).
    let bucket = ((at(90_200).as_millis() - stack.start.as_millis()) / 1000) as usize;
    let column = (columns.groups.iter())
        .position(|g| g.contains(&bucket))
        .expect("in the window");
    let x = chart.x + ui::AXIS_WIDTH + columns.cells(column).start as u16;
    let marker = &buffer[(x, chart.y + 1)];
    assert_eq!((marker.symbol(), marker.fg), ("▼", Color::Red), "at column {x}");
    let markers = (0..buffer.area.width).filter(|&x| buffer[(x, chart.y + 1)].symbol() == "▼");
    assert_eq!(markers.count(), 1);
    assert!(
        row_text(&terminal, 0).contains("db.up critical"),
        "{}",
        row_text(&terminal, 0)
    );

    press(&mut fixture.app, KeyCode::Char('e'));
    assert_eq!(fixture.app.overlay, Overlay::Notices);
    let terminal = render(&fixture.app, &colour(), 80, 24);
    assert_snapshot!("events_and_checks_80x24", terminal.backend());
    let screen: String = (0..24).map(|y| row_text(&terminal, y)).collect();
    for wanted in [
        "critical db.up",
        "ok       api.up",
        "Deploy shop v2.1",
        "rolled out by the CI",
        "host web-1",
    ] {
        assert!(screen.contains(wanted), "{wanted} in {screen}");
    }
}

/// Issue 14: outputs' health shows like a source's: a mirror that cannot reach its server is
/// counted in the header (`1 output down`), named with its address and state on the sources
/// line, and its warning spelled out in the bad-input view; a healthy one is just named.
#[test]
fn outputs_down_show_like_sources() {
    use tally_core::{OutputKind, OutputStatus};
    let mut fixture = Fixture::new();
    let output = |kind, address: &str, state, note: &str| OutputStatus {
        kind,
        address: address.into(),
        state,
        published: 10,
        bytes: 0,
        connections: 0,
        refused: 0,
        closed_idle: None,
        dropped: 3,
        note: note.into(),
    };
    fixture.app.outputs = vec![
        output(
            OutputKind::History,
            "/home/ops/.local/state/tally/tally.db",
            SourceState::Connected,
            "",
        ),
        output(
            OutputKind::Redis,
            "redis://cache:6379",
            SourceState::Disconnected,
            "cannot connect: refused",
        ),
    ];
    let terminal = render(&fixture.app, &colour(), 80, 24);
    assert!(
        row_text(&terminal, 0).contains("1 output down"),
        "{}",
        row_text(&terminal, 0)
    );
    let terminal = render(&fixture.app, &colour(), 120, 30);
    let top: String = (1..4).map(|y| row_text(&terminal, y)).collect();
    assert!(top.contains("→ history"), "{top:?}");
    assert!(
        !top.contains("tally.db"),
        "a healthy output is just named: {top:?}"
    );
    assert!(
        top.contains("→ redis redis://cache:6379 disconnected 3 dropped (!)"),
        "{top:?}"
    );
    press(&mut fixture.app, KeyCode::Char('b'));
    let terminal = render(&fixture.app, &colour(), 120, 30);
    let screen: String = (0..30).map(|y| row_text(&terminal, y)).collect();
    assert!(screen.contains("output warnings"), "{screen:?}");
    assert!(
        screen.contains("redis redis://cache:6379 cannot connect: refused"),
        "{screen:?}"
    );
}

/// Issue 14: `h` shows the history (`?` is help): the last days and months, each a bar stacked
/// by type with the legend's fills, newest at the bottom, its total after it; at 80x24 and
/// without colour, where every type has its own pattern.
#[test]
fn the_history_overlay_stacks_days_and_months_by_type() {
    use tally_core::HistoryView;
    let mut fixture = Fixture::new();
    let row = |period: &str, kind: &str, count| (period.to_owned(), kind.to_owned(), count);
    let days: Vec<_> = (1..=30)
        .flat_map(|day| {
            let label = format!("2026-11-{day:02}");
            [row(&label, "pageview", 100 + day), row(&label, "signup", day)]
        })
        .collect();
    let months = [
        row("2026-10", "pageview", 2_000),
        row("2026-11", "pageview", 3_000),
        row("2026-11", "signup", 465),
    ];
    fixture.app.history = Some(Ok(HistoryView::new("acme", &days, &months)));
    press(&mut fixture.app, KeyCode::Char('?'));
    assert_eq!(fixture.app.overlay, tally_tui::app::Overlay::Help);
    press(&mut fixture.app, KeyCode::Char('x'));
    press(&mut fixture.app, KeyCode::Char('h'));
    assert_eq!(fixture.app.overlay, tally_tui::app::Overlay::History);
    let plain = Theme::new(ThemeName::Default, Depth::None);
    let terminal = render(&fixture.app, &plain, 80, 24);
    let screen: Vec<String> = (0..24).map(|y| row_text(&terminal, y)).collect();
    let text = screen.join("\n");
    assert!(text.contains("by day") && text.contains("by month"), "{text}");
    let newest = screen
        .iter()
        .find(|l| l.contains("2026-11-30"))
        .expect("the newest day");
    assert!(newest.contains(" 160 "), "pageview 130 + signup 30: {newest}");
    assert!(
        !text.contains("2026-11-01"),
        "the oldest days give way at 24 rows: {text}"
    );
    let november = screen.iter().find(|l| l.contains("2026-11 ")).expect("November");
    assert!(november.contains("3.5k"), "{november}");
    // Two types, two patterns, in the legend and in the bars.
    let colours = tally_core::palette::assign(&["pageview", "signup"]);
    let (pageview, signup) = (plain.fill(colours[0]), plain.fill(colours[1]));
    assert_ne!(pageview, signup);
    let legend = &screen[2];
    for (fill, name) in [(pageview, "pageview"), (signup, "signup")] {
        assert!(legend.contains(&format!("{fill}{fill} {name}")), "{legend}");
    }
    assert!(
        newest.contains(&pageview.repeat(3)) && newest.contains(signup),
        "{newest}"
    );
    press(&mut fixture.app, KeyCode::Char('x'));
    assert_eq!(
        fixture.app.overlay,
        tally_tui::app::Overlay::None,
        "any key closes it"
    );
}
