//! Colours and sizes: the same account colours as the terminal view, on a dark, light or
//! wall-screen (high-contrast, large) style.

use crate::state::ThemeChoice;
use egui::{Color32, Visuals};
use tally_core::palette::{self, Rgb};
use tally_core::{AccountStats, AlertType, CheckStatus};

/// An account's (or type's) colour, by its palette index.
pub fn layer_colour(theme: ThemeChoice, index: u8) -> Color32 {
    let table = match theme {
        ThemeChoice::ColourBlind => &palette::COLOUR_BLIND,
        ThemeChoice::Dark | ThemeChoice::Light => &palette::DEFAULT,
    };
    let Rgb(r, g, b) = table[(index as usize).min(table.len() - 1)];
    Color32::from_rgb(r, g, b)
}

/// An account's colour: its layer's, or `(other)`'s when it is folded into that layer.
pub fn account_colour(theme: ThemeChoice, account: &AccountStats) -> Color32 {
    layer_colour(theme, account.colour.unwrap_or(palette::OTHER_COLOUR))
}

pub const GOOD: Color32 = Color32::from_rgb(0x3f, 0xb9, 0x50);
pub const BAD: Color32 = Color32::from_rgb(0xf8, 0x51, 0x49);
pub const WARN: Color32 = Color32::from_rgb(0xd2, 0x99, 0x22);

/// A service check's status, as a colour.
pub fn check_colour(status: CheckStatus) -> Color32 {
    match status {
        CheckStatus::Ok => GOOD,
        CheckStatus::Warning => WARN,
        CheckStatus::Critical => BAD,
        CheckStatus::Unknown => Color32::GRAY,
    }
}

/// A DogStatsD event's alert type, as a colour.
pub fn alert_colour(alert: AlertType) -> Color32 {
    match alert {
        AlertType::Error => BAD,
        AlertType::Warning => WARN,
        AlertType::Success => GOOD,
        AlertType::Info => Color32::from_rgb(0x58, 0xa6, 0xff),
    }
}

/// The visuals for a theme; the wall screen is always dark and high-contrast.
pub fn visuals(theme: ThemeChoice, kiosk: bool) -> Visuals {
    let mut visuals = match theme {
        ThemeChoice::Light if !kiosk => Visuals::light(),
        _ => Visuals::dark(),
    };
    if kiosk {
        visuals.override_text_color = Some(Color32::WHITE);
        visuals.panel_fill = Color32::BLACK;
        visuals.extreme_bg_color = Color32::BLACK;
        visuals.window_fill = Color32::BLACK;
    }
    visuals
}

/// The wall screen's zoom: text sized for the screen's height in pixels, so that 1080p is
/// read from across a room (about 2x a laptop's size).
pub fn kiosk_zoom(screen_height_px: f32, native_pixels_per_point: f32) -> f32 {
    (screen_height_px / 540.0 / native_pixels_per_point.max(0.5)).clamp(1.0, 4.0)
}
