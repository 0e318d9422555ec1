//! The stacked bar chart: one column per time bucket, newest on the right, each bar stacked by
//! layer (account, or type when drilled down) in the snapshot's stable order.

use crate::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use tally_core::short_number;
use tally_core::{Stack, human_duration};

/// Partial cell heights, in eighths.
const EIGHTHS: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

pub struct StackedBars<'a> {
    pub stack: &'a Stack,
    pub theme: &'a Theme,
}

impl StackedBars<'_> {
    /// The layer whose share of the bar covers `eighth` (counted from the bottom).
    fn layer_at(boundaries: &[u64], eighth: u64) -> Option<usize> {
        boundaries.iter().position(|&top| eighth < top)
    }
}

impl Widget for StackedBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let stack = self.stack;
        if area.height < 3 || area.width < 12 {
            return;
        }
        let plot_height = area.height - 1; // the last row is the time axis
        let max = stack.totals.iter().copied().max().unwrap_or(0).max(1);
        let labels = [
            short_number(max as f64),
            short_number((max / 2) as f64),
            "0".to_owned(),
        ];
        let axis_width = labels.iter().map(|l| l.len()).max().unwrap_or(1) as u16 + 1;
        let plot = Rect::new(area.x + axis_width, area.y, area.width - axis_width, plot_height);

        // Newest bucket on the right; as many as fit, one or more cells wide each.
        let buckets = stack.totals.len();
        let width_each = ((plot.width as usize) / buckets.max(1)).clamp(1, 3);
        let shown = buckets.min(plot.width as usize / width_each);
        let first = buckets - shown;
        let left = plot.x + plot.width - (shown * width_each) as u16;

        for (column, bucket) in (first..buckets).enumerate() {
            // Cumulative tops of each layer, in eighths of a cell.
            let mut cumulative = 0u64;
            let boundaries: Vec<u64> = stack
                .layers
                .iter()
                .map(|layer| {
                    cumulative += layer.values[bucket];
                    cumulative * u64::from(plot_height) * 8 / max
                })
                .collect();
            let top = boundaries.last().copied().unwrap_or(0);
            for row in 0..plot_height {
                let (low, high) = (u64::from(row) * 8, u64::from(row) * 8 + 8);
                if top <= low {
                    break;
                }
                // The layer covering the middle of the cell, or the topmost one in a partial cell.
                let layer = if top >= high {
                    Self::layer_at(&boundaries, low + 4)
                } else {
                    Self::layer_at(&boundaries, top - 1)
                };
                let Some(layer) = layer else { continue };
                let glyph = if top >= high {
                    self.theme.fill(layer)
                } else {
                    EIGHTHS[(top - low) as usize]
                };
                let glyph = if self.theme.has_colour() || top >= high {
                    glyph
                } else {
                    self.theme.fill(layer)
                };
                let style = self.theme.layer(stack.layers[layer].colour);
                let y = plot.y + plot_height - 1 - row;
                for dx in 0..width_each {
                    let x = left + (column * width_each + dx) as u16;
                    buf[(x, y)].set_symbol(glyph).set_style(style);
                }
            }
        }

        // The y axis: maximum, half, zero.
        let muted = self.theme.muted();
        for (label, row) in labels.iter().zip([0, plot_height / 2, plot_height - 1]) {
            buf.set_stringn(
                area.x,
                plot.y + row,
                format!("{label:>w$}", w = axis_width as usize - 1),
                axis_width as usize,
                muted,
            );
        }
        // The time axis: how far back the first shown bucket is, and now.
        let span = human_duration(shown as u64 * stack.bucket_ms);
        let axis_y = area.y + plot_height;
        buf.set_string(left, axis_y, format!("-{span}"), muted);
        let now = format!("now ({} buckets)", human_duration(stack.bucket_ms));
        let now_x = (plot.x + plot.width).saturating_sub(now.len() as u16);
        if now_x > left + span.len() as u16 + 2 {
            buf.set_string(now_x, axis_y, now, muted);
        }
    }
}

/// One line mapping layer colours (or glyphs) to names, `(other)` last.
pub fn legend<'a>(stack: &'a Stack, theme: &Theme) -> Line<'a> {
    let mut spans = Vec::with_capacity(stack.layers.len() * 2);
    for (i, layer) in stack.layers.iter().enumerate() {
        spans.push(Span::styled(
            format!("{}{} ", theme.fill(i), theme.fill(i)),
            theme.layer(layer.colour),
        ));
        spans.push(Span::styled(format!("{}  ", layer.name), Style::default()));
    }
    Line::from(spans)
}
