//! Colours and glyphs: the palette shared with the desktop app, a colour-blind-safe one, and
//! `NO_COLOR`, where layers are told apart by their glyph instead.

use ratatui::style::{Color, Modifier, Style};
use tally_core::palette::{self, Rgb};

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeName {
    /// Saturated colours for dark terminals
    #[default]
    Default,
    /// Okabe-Ito colours, distinguishable with the common colour-vision deficiencies
    ColourBlind,
}

#[derive(Clone, Debug)]
pub struct Theme {
    colour: bool,
    palette: [Rgb; palette::PALETTE_LEN + 1],
}

/// Glyphs for stacked layers when there is no colour, densest first.
const GLYPHS: [&str; 8] = ["█", "▓", "▒", "░", "#", "=", "+", ":"];

impl Theme {
    pub fn new(name: ThemeName, colour: bool) -> Self {
        let palette = match name {
            ThemeName::Default => palette::DEFAULT,
            ThemeName::ColourBlind => palette::COLOUR_BLIND,
        };
        Theme { colour, palette }
    }

    /// Colour unless `NO_COLOR` is set (to anything non-empty, as no-color.org says).
    pub fn from_env(name: ThemeName) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::new(name, !no_color)
    }

    pub fn has_colour(&self) -> bool {
        self.colour
    }

    /// The style of a layer (account or type) with colour index `colour`.
    pub fn layer(&self, colour: u8) -> Style {
        if !self.colour {
            return Style::default();
        }
        let Rgb(r, g, b) = self.palette[(colour as usize).min(palette::PALETTE_LEN)];
        Style::default().fg(Color::Rgb(r, g, b))
    }

    /// The glyph that fills layer number `layer` (from the bottom) of a bar.
    pub fn fill(&self, layer: usize) -> &'static str {
        if self.colour {
            "█"
        } else {
            GLYPHS[layer % GLYPHS.len()]
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn muted(&self) -> Style {
        if self.colour {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    /// For things that need attention: bad input, a source down, `PAUSED`.
    pub fn alert(&self) -> Style {
        let style = Style::default().add_modifier(Modifier::BOLD);
        if self.colour {
            style.fg(Color::Black).bg(Color::Yellow)
        } else {
            style.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn good(&self) -> Style {
        if self.colour {
            Style::default().fg(Color::Green)
        } else {
            Style::default()
        }
    }

    pub fn bad(&self) -> Style {
        if self.colour {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}
