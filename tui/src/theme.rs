//! Colours and glyphs: the palette shared with the desktop app, a colour-blind-safe one, as
//! many colours as the terminal shows (24-bit, 256 or 16), and `NO_COLOR`, where every layer
//! is told apart by a pattern of its own.

use ratatui::style::{Color, Modifier, Style};
use tally_core::palette::{self, Rgb};
use tally_core::{AlertType, CheckStatus};

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeName {
    /// Saturated colours for dark terminals
    #[default]
    Default,
    /// Okabe-Ito colours, distinguishable with the common colour-vision deficiencies
    ColourBlind,
}

/// How many colours the terminal can show.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Depth {
    TrueColour,
    Ansi256,
    Ansi16,
    /// `NO_COLOR`, or a terminal without colours.
    None,
}

impl Depth {
    /// What the environment says, the way terminals announce it: `NO_COLOR` (set and not
    /// empty, as no-color.org asks) for none, `COLORTERM=truecolor` (or `24bit`) for 24-bit,
    /// a `TERM` with `256color` in it for 256, `TERM=dumb` for none, 16 otherwise.
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Depth {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        if set("NO_COLOR").is_some() {
            return Depth::None;
        }
        if set("COLORTERM").is_some_and(|v| v == "truecolor" || v == "24bit") {
            return Depth::TrueColour;
        }
        match set("TERM") {
            Some(term) if term.contains("256color") => Depth::Ansi256,
            Some(term) if term == "dumb" => Depth::None,
            _ => Depth::Ansi16,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Theme {
    depth: Depth,
    /// Each palette entry as the terminal will show it.
    colours: [Color; palette::PALETTE_LEN + 1],
}

/// A pattern per palette entry for when there is no colour, densest first; the last is
/// `(other)`'s. Shown accounts have distinct palette entries, so distinct patterns too.
const PATTERNS: [&str; palette::PALETTE_LEN + 1] =
    ["█", "▓", "▒", "░", "#", "=", "+", ":", "x", "o", "*", "%", "·"];

impl Theme {
    pub fn new(name: ThemeName, depth: Depth) -> Self {
        let palette = match name {
            ThemeName::Default => palette::DEFAULT,
            ThemeName::ColourBlind => palette::COLOUR_BLIND,
        };
        let colours = match depth {
            Depth::TrueColour | Depth::None => palette.map(|Rgb(r, g, b)| Color::Rgb(r, g, b)),
            Depth::Ansi256 => palette.map(|rgb| Color::Indexed(xterm_256(rgb))),
            Depth::Ansi16 => ansi_16(&palette),
        };
        Theme { depth, colours }
    }

    pub fn from_env(name: ThemeName) -> Self {
        Theme::new(name, Depth::detect(|name| std::env::var(name).ok()))
    }

    pub fn has_colour(&self) -> bool {
        self.depth != Depth::None
    }

    /// Palette entry `colour` as this terminal shows it (also without colour, for tests).
    pub fn colour(&self, colour: u8) -> Color {
        self.colours[(colour as usize).min(palette::PALETTE_LEN)]
    }

    /// The style of a layer (account or type) with palette entry `colour`.
    pub fn layer(&self, colour: u8) -> Style {
        match self.depth {
            Depth::None => Style::default(),
            _ => Style::default().fg(self.colour(colour)),
        }
    }

    /// The background of a cell whose upper part is layer `colour` (see `ui::bars`).
    pub fn layer_below(&self, colour: u8) -> Style {
        match self.depth {
            Depth::None => Style::default(),
            _ => Style::default().bg(self.colour(colour)),
        }
    }

    /// The glyph that fills a layer with palette entry `colour`: a solid block in colour, its
    /// own pattern without (the accounts table's marker uses the same).
    pub fn fill(&self, colour: u8) -> &'static str {
        match self.depth {
            Depth::None => PATTERNS[(colour as usize).min(palette::PALETTE_LEN)],
            _ => "█",
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn muted(&self) -> Style {
        if self.has_colour() {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    /// For things that need attention: bad input, a source down, `PAUSED`.
    pub fn alert(&self) -> Style {
        let style = Style::default().add_modifier(Modifier::BOLD);
        if self.has_colour() {
            style.fg(Color::Black).bg(Color::Yellow)
        } else {
            style.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn good(&self) -> Style {
        if self.has_colour() {
            Style::default().fg(Color::Green)
        } else {
            Style::default()
        }
    }

    pub fn bad(&self) -> Style {
        if self.has_colour() {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// A DogStatsD event's marker, by its alert type.
    pub fn notice(&self, alert: AlertType) -> Style {
        let style = Style::default().add_modifier(Modifier::BOLD);
        if !self.has_colour() {
            return style;
        }
        style.fg(match alert {
            AlertType::Error => Color::Red,
            AlertType::Warning => Color::Yellow,
            AlertType::Success => Color::Green,
            AlertType::Info => Color::Cyan,
        })
    }

    /// A service check's status.
    pub fn check(&self, status: CheckStatus) -> Style {
        match status {
            CheckStatus::Ok => self.good(),
            CheckStatus::Warning => self.notice(AlertType::Warning),
            CheckStatus::Critical => self.bad(),
            CheckStatus::Unknown => self.muted(),
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// The colours of xterm's 256-colour table from 16 on (the first 16 are the user's to
/// choose, so nothing can be known of them): a 6x6x6 cube, then 24 greys.
pub fn xterm_rgb(index: u8) -> Rgb {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match index {
        16..=231 => {
            let i = index - 16;
            Rgb(
                LEVELS[(i / 36) as usize],
                LEVELS[(i / 6 % 6) as usize],
                LEVELS[(i % 6) as usize],
            )
        }
        232..=255 => {
            let level = 8 + (index - 232) * 10;
            Rgb(level, level, level)
        }
        _ => Rgb(0, 0, 0),
    }
}

/// The entry of xterm's table (16..=255) that looks most like `rgb`.
fn xterm_256(rgb: Rgb) -> u8 {
    (16..=255u8)
        .min_by(|&a, &b| {
            let da = palette::distance(rgb, xterm_rgb(a));
            let db = palette::distance(rgb, xterm_rgb(b));
            da.total_cmp(&db)
        })
        .unwrap_or(16)
}

/// The twelve coloured ANSI colours (not black, white or the greys), as xterm shows them by
/// default: what a 16-colour terminal has to tell accounts apart.
const ANSI_16: [(Color, Rgb); 12] = [
    (Color::Red, Rgb(205, 0, 0)),
    (Color::Green, Rgb(0, 205, 0)),
    (Color::Yellow, Rgb(205, 205, 0)),
    (Color::Blue, Rgb(0, 0, 238)),
    (Color::Magenta, Rgb(205, 0, 205)),
    (Color::Cyan, Rgb(0, 205, 205)),
    (Color::LightRed, Rgb(255, 0, 0)),
    (Color::LightGreen, Rgb(0, 255, 0)),
    (Color::LightYellow, Rgb(255, 255, 0)),
    (Color::LightBlue, Rgb(92, 92, 255)),
    (Color::LightMagenta, Rgb(255, 0, 255)),
    (Color::LightCyan, Rgb(0, 255, 255)),
];

/// Each account colour to the nearest ANSI colour not yet taken, so that the twelve stay
/// twelve; `(other)` is grey.
fn ansi_16(palette: &[Rgb; palette::PALETTE_LEN + 1]) -> [Color; palette::PALETTE_LEN + 1] {
    let mut taken = [false; ANSI_16.len()];
    let mut colours = [Color::DarkGray; palette::PALETTE_LEN + 1];
    for (slot, &rgb) in colours.iter_mut().zip(&palette[..palette::PALETTE_LEN]) {
        let nearest = (0..ANSI_16.len()).filter(|&i| !taken[i]).min_by(|&a, &b| {
            let da = palette::distance(rgb, ANSI_16[a].1);
            let db = palette::distance(rgb, ANSI_16[b].1);
            da.total_cmp(&db)
        });
        if let Some(i) = nearest {
            taken[i] = true;
            *slot = ANSI_16[i].0;
        }
    }
    colours
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| (vars.iter().find(|(n, _)| *n == name)).map(|(_, v)| v.to_string())
    }

    #[test]
    fn depth_follows_what_the_terminal_announces() {
        let cases: [(&[(&str, &str)], Depth); 7] = [
            (
                &[("COLORTERM", "truecolor"), ("TERM", "xterm-256color")],
                Depth::TrueColour,
            ),
            (&[("COLORTERM", "24bit")], Depth::TrueColour),
            (&[("TERM", "tmux-256color")], Depth::Ansi256),
            (&[("TERM", "xterm")], Depth::Ansi16),
            (&[], Depth::Ansi16),
            (&[("TERM", "dumb")], Depth::None),
            (&[("NO_COLOR", "1"), ("COLORTERM", "truecolor")], Depth::None),
        ];
        for (vars, depth) in cases {
            assert_eq!(Depth::detect(env(vars)), depth, "{vars:?}");
        }
        assert_eq!(
            Depth::detect(env(&[("NO_COLOR", ""), ("TERM", "xterm")])),
            Depth::Ansi16,
            "an empty NO_COLOR is not set"
        );
    }

    #[test]
    fn fewer_colours_keep_accounts_apart() {
        for name in [ThemeName::Default, ThemeName::ColourBlind] {
            for depth in [Depth::Ansi256, Depth::Ansi16] {
                let theme = Theme::new(name, depth);
                let distinct: HashSet<String> = (0..palette::PALETTE_LEN as u8)
                    .map(|c| format!("{:?}", theme.colour(c)))
                    .collect();
                assert_eq!(distinct.len(), palette::PALETTE_LEN, "{name:?} {depth:?}");
            }
            // 256 colours: every pair still a clear step apart (24-bit is tested in the core).
            let theme = Theme::new(name, Depth::Ansi256);
            let rgb = |c: u8| match theme.colour(c) {
                Color::Indexed(i) => xterm_rgb(i),
                other => panic!("{other:?}"),
            };
            for a in 0..=palette::PALETTE_LEN as u8 {
                for b in a + 1..=palette::PALETTE_LEN as u8 {
                    let d = palette::distance(rgb(a), rgb(b));
                    assert!(d >= 0.07, "{name:?}: {a} and {b} at {d:.3}");
                }
            }
        }
    }

    #[test]
    fn without_colour_every_entry_has_its_own_pattern() {
        let theme = Theme::new(ThemeName::Default, Depth::None);
        let patterns: HashSet<&str> = (0..=palette::PALETTE_LEN as u8).map(|c| theme.fill(c)).collect();
        assert_eq!(patterns.len(), palette::PALETTE_LEN + 1);
        assert_eq!(theme.layer(3), Style::default());
    }
}
