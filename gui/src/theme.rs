//! Colours and sizes: the same account colours as the terminal view, on a dark, light or
//! wall-screen (high-contrast, large) style.

use crate::state::ThemeChoice;
use crate::wall::Mood;
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

/// The wall screen's zoom: the screen's height in pixels over 540, so that [`kiosk_text`]'s
/// sizes come to the same share of any screen (a 1080p screen at 2x a laptop's size).
pub fn kiosk_zoom(screen_height_px: f32, native_pixels_per_point: f32) -> f32 {
    (screen_height_px / 540.0 / native_pixels_per_point.max(0.5)).clamp(1.0, 8.0)
}

/// The wall screen's text, in points before [`kiosk_zoom`]: the smallest, 17 points, is 3.1%
/// of the screen's height, readable across a room; the tiles' numbers are [`KIOSK_NUMBER`].
pub fn kiosk_text(style: &mut egui::Style) {
    use egui::{FontFamily, FontId, TextStyle};
    style.text_styles = [
        (TextStyle::Small, FontId::new(17.0, FontFamily::Proportional)),
        (TextStyle::Body, FontId::new(17.0, FontFamily::Proportional)),
        (TextStyle::Button, FontId::new(17.0, FontFamily::Proportional)),
        (TextStyle::Monospace, FontId::new(17.0, FontFamily::Monospace)),
        (TextStyle::Heading, FontId::new(24.0, FontFamily::Proportional)),
    ]
    .into();
}

/// A tile's big number, in points before [`kiosk_zoom`].
pub const KIOSK_NUMBER: f32 = 44.0;

/// A wall tile's background for its mood.
pub fn mood_fill(mood: Mood) -> Color32 {
    match mood {
        Mood::Neutral => Color32::from_gray(0x22),
        Mood::Good => Color32::from_rgb(0x12, 0x4a, 0x22),
        Mood::Warning => Color32::from_rgb(0x6b, 0x4e, 0x05),
        Mood::Bad => Color32::from_rgb(0x8a, 0x16, 0x16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text on the wall screen is at least 3% of the screen's height, whatever the
    /// screen (the issue measured axis labels at 1.9%).
    #[test]
    fn wall_text_is_at_least_three_percent_of_the_screen() {
        let mut style = egui::Style::default();
        kiosk_text(&mut style);
        let smallest = (style.text_styles.values())
            .map(|font| font.size)
            .fold(f32::MAX, f32::min);
        for height in [600.0, 800.0, 1080.0, 1440.0, 2160.0, 4320.0] {
            for pixels_per_point in [1.0, 2.0] {
                let zoom = kiosk_zoom(height, pixels_per_point);
                let share = smallest * zoom * pixels_per_point / height;
                assert!(share >= 0.03, "{height} px at {pixels_per_point}x: {share:.3}");
            }
        }
    }
}
