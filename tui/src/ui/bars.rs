//! The stacked bar chart: the whole selected window, its start on the left and now on the
//! right, each bar stacked by layer (account, or type when drilled down) in the snapshot's
//! order, which is also the legend's.
//!
//! A window seldom has as many buckets as the chart has columns (300 one-second buckets in 74
//! columns, 24 hours in 150), so buckets are merged into [`Columns`]: a round number of buckets
//! each (`5s` a column), aligned to the clock so that a column keeps its buckets as time moves
//! on, and spread over the whole width. Heights count in eighths of a cell, and each layer's
//! top is rounded from the running sum, so rounding errors never add up: every layer keeps its
//! share within an eighth. Where two layers meet inside a cell, the lower one is the glyph
//! (`▃`) and the upper one its background. DogStatsD events are marked `▼` over their column.

use crate::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use std::ops::Range;
use tally_core::{AlertType, Annotation, Clock, Stack, human_duration, short_number};

/// Partial cell heights, in eighths.
const EIGHTHS: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// The y axis' labels take this many columns: `12.3M` and a space.
pub const AXIS_WIDTH: u16 = 6;

/// How many buckets one column may merge: round numbers, so that a column is `5s` or `10m`.
const MERGES: [u64; 18] = [
    1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440,
];

/// Gaps between the time axis' ticks: round clock intervals, in milliseconds.
const TICKS_MS: [u64; 18] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/// How a stack's buckets are laid over the plot's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    /// Buckets merged into one column.
    pub merge: u64,
    /// What one column covers, in milliseconds.
    pub column_ms: u64,
    /// Each column's buckets (indices into the stack's values), oldest first. The first and
    /// the last may be partial: columns follow the clock, not the window's edges.
    pub groups: Vec<Range<usize>>,
    /// The plot's width in cells; the columns share it out, a cell or more each.
    pub width: usize,
}

impl Columns {
    /// The fewest merged buckets that fit the window into `width` cells.
    pub fn fit(stack: &Stack, width: usize) -> Columns {
        let buckets = stack.totals.len() as u64;
        let bucket_ms = stack.bucket_ms.max(1);
        let first = stack.start.as_millis() / bucket_ms;
        let count = |merge: u64| match buckets {
            0 => 0,
            _ => (first + buckets - 1) / merge - first / merge + 1,
        };
        let merge = (MERGES.into_iter())
            .find(|&merge| count(merge) <= width.max(1) as u64)
            .unwrap_or(buckets.max(1));
        let mut groups: Vec<Range<usize>> = vec![];
        for i in 0..buckets as usize {
            let column = (first + i as u64) / merge;
            match groups.last_mut() {
                Some(last) if (first + last.start as u64) / merge == column => last.end = i + 1,
                _ => groups.push(i..i + 1),
            }
        }
        Columns {
            merge,
            column_ms: merge * bucket_ms,
            groups,
            width,
        }
    }

    /// The cells (from the plot's left edge) that column `index` is drawn in.
    pub fn cells(&self, index: usize) -> Range<usize> {
        let n = self.groups.len().max(1);
        index * self.width / n..(index + 1) * self.width / n
    }

    /// The cell where bucket `bucket` (a fractional index into the stack) starts.
    fn cell_of(&self, bucket: f64) -> usize {
        let index = (self.groups.iter())
            .position(|g| (g.end as f64) > bucket)
            .unwrap_or(self.groups.len().saturating_sub(1));
        let Some(group) = self.groups.get(index) else {
            return 0;
        };
        let cells = self.cells(index);
        let within = (bucket - group.start as f64) / group.len() as f64;
        cells.start + (within * cells.len() as f64) as usize
    }

    /// Each column's events per layer (`[column][layer]`).
    pub fn sums(&self, stack: &Stack) -> Vec<Vec<u64>> {
        (self.groups.iter())
            .map(|group| {
                (stack.layers.iter())
                    .map(|layer| {
                        layer.values[group.clone()]
                            .iter()
                            .copied()
                            .fold(0, u64::saturating_add)
                    })
                    .collect()
            })
            .collect()
    }

    /// The chart's title: what a bar is, and what it is stacked by.
    pub fn title(&self, stack: &Stack) -> String {
        let per = human_duration(self.column_ms);
        match (&stack.focus, &stack.filter) {
            (Some(account), _) => {
                format!(" {account}: events per {per} column, by type (Esc: all accounts) ")
            }
            (None, Some(filter)) => {
                format!(" events per {per} column, accounts matching \"{filter}\" ")
            }
            (None, None) => format!(" events per {per} column, by account "),
        }
    }
}

fn severity(alert: AlertType) -> u8 {
    match alert {
        AlertType::Info => 0,
        AlertType::Success => 1,
        AlertType::Warning => 2,
        AlertType::Error => 3,
    }
}

/// The y axis: a round step and the top it reaches, at or above the tallest bar.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    pub step: u64,
    pub top: u64,
}

impl Scale {
    /// Up to four steps of 1, 2 or 5 times a power of ten; none for an empty chart.
    pub fn new(max: u64, rows: u16) -> Scale {
        if max == 0 {
            return Scale { step: 0, top: 0 };
        }
        let steps = u64::from(rows / 3).clamp(1, 4);
        let wanted = max.div_ceil(steps);
        let mut power = 1u64;
        let step = loop {
            if let Some(step) = [1, 2, 5].map(|m| m * power).into_iter().find(|&s| s >= wanted) {
                break step;
            }
            match power.checked_mul(10) {
                Some(next) => power = next,
                None => break wanted,
            }
        };
        Scale {
            step,
            top: step.saturating_mul(max.div_ceil(step)),
        }
    }

    /// The row (from the bottom) that value `value` is labelled on.
    fn row(self, value: u64, rows: u16) -> u16 {
        if value == 0 || self.top == 0 {
            return 0;
        }
        let row = (u128::from(value) * u128::from(rows)).div_ceil(u128::from(self.top));
        (row as u16).clamp(1, rows) - 1
    }
}

/// The top of each layer (bottom first), in eighths of a cell over `rows` rows, rounded from
/// the running sum. Without colour a cell can show only one layer, so tops are whole cells.
pub fn layer_tops(values: &[u64], top: u64, rows: u16, eighths: bool) -> Vec<u64> {
    let unit: u128 = if eighths { 1 } else { 8 };
    let full = u128::from(rows) * 8 / unit;
    let mut sum: u128 = 0;
    values
        .iter()
        .map(|&value| {
            sum += u128::from(value);
            if top == 0 {
                return 0;
            }
            let rounded = (2 * sum * full + u128::from(top)) / (2 * u128::from(top));
            (rounded.min(full) * unit) as u64
        })
        .collect()
}

/// What one cell of a bar shows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Paint {
    /// One layer fills it.
    Full(usize),
    /// `lower` fills the bottom `eighths`, `upper` the rest.
    Split {
        lower: usize,
        eighths: u64,
        upper: usize,
    },
    /// The bar ends here, `eighths` up: the layer with the most of the cell.
    Top { layer: usize, eighths: u64 },
}

/// The cell `row` rows up a bar whose layers end at `tops`, or `None` above the bar.
pub fn paint(tops: &[u64], row: u16) -> Option<Paint> {
    let (low, high) = (u64::from(row) * 8, u64::from(row) * 8 + 8);
    let bar = *tops.last()?;
    if bar <= low {
        return None;
    }
    let mut below = 0;
    let parts: Vec<(usize, u64)> = (tops.iter().enumerate())
        .filter_map(|(layer, &layer_top)| {
            let part = layer_top.min(high).saturating_sub(below.max(low));
            below = layer_top;
            (part > 0).then_some((layer, part))
        })
        .collect();
    let largest = |parts: &[(usize, u64)]| {
        // The most of the cell; on a tie, the lower layer.
        (parts.iter().rev())
            .max_by_key(|(_, part)| *part)
            .map(|(layer, _)| *layer)
    };
    if bar < high {
        return Some(Paint::Top {
            layer: largest(&parts)?,
            eighths: bar - low,
        });
    }
    let (lower, eighths) = *parts.first()?;
    match largest(&parts[1..]) {
        Some(upper) if eighths < 8 => Some(Paint::Split {
            lower,
            eighths,
            upper,
        }),
        _ => Some(Paint::Full(lower)),
    }
}

pub struct StackedBars<'a> {
    pub stack: &'a Stack,
    /// DogStatsD events in the window: a `▼` over the column they happened in.
    pub annotations: &'a [Annotation],
    pub columns: &'a Columns,
    pub theme: &'a Theme,
    pub clock: &'a Clock,
}

impl StackedBars<'_> {
    fn cell_style(&self, paint: Paint) -> (&'static str, Style) {
        let colour = |layer: usize| self.stack.layers[layer].colour;
        match paint {
            Paint::Full(layer) => (self.theme.fill(colour(layer)), self.theme.layer(colour(layer))),
            Paint::Split {
                lower,
                eighths,
                upper,
            } => (
                EIGHTHS[eighths as usize],
                self.theme
                    .layer(colour(lower))
                    .patch(self.theme.layer_below(colour(upper))),
            ),
            Paint::Top { layer, eighths } => (EIGHTHS[eighths as usize], self.theme.layer(colour(layer))),
        }
    }

    /// A `▼` in the plot's top row over each annotation's column, in its alert's colour
    /// (the most serious where several share a column).
    fn markers(&self, plot: Rect, buf: &mut Buffer) {
        let stack = self.stack;
        let begin = stack.start.as_millis();
        let end = begin + stack.totals.len() as u64 * stack.bucket_ms;
        let mut worst: Vec<Option<AlertType>> = vec![None; plot.width as usize];
        for annotation in self.annotations {
            let time = annotation.time.as_millis();
            if !(begin..end).contains(&time) {
                continue;
            }
            let bucket = (time - begin) as f64 / stack.bucket_ms as f64;
            let cell = self.columns.cell_of(bucket).min(worst.len().saturating_sub(1));
            let seen = &mut worst[cell];
            if seen.is_none_or(|seen| severity(annotation.alert) > severity(seen)) {
                *seen = Some(annotation.alert);
            }
        }
        for (x, alert) in worst.into_iter().enumerate() {
            if let Some(alert) = alert {
                buf[(plot.x + x as u16, plot.y)]
                    .set_symbol("▼")
                    .set_style(self.theme.notice(alert));
            }
        }
    }

    /// Round numbers up the left edge; just `0` when there is nothing to show.
    fn y_axis(&self, area: Rect, rows: u16, scale: Scale, buf: &mut Buffer) {
        let muted = self.theme.muted();
        let mut taken = vec![];
        let values = match scale.step {
            0 => vec![0],
            step => (0..=scale.top / step).map(|i| i * step).collect(),
        };
        for value in values {
            let row = scale.row(value, rows);
            if taken.contains(&row) {
                continue;
            }
            taken.push(row);
            let label = format!("{:>w$}", short_number(value as f64), w = AXIS_WIDTH as usize - 1);
            buf.set_stringn(
                area.x,
                area.y + rows - 1 - row,
                label,
                AXIS_WIDTH as usize - 1,
                muted,
            );
        }
    }

    /// `-5m` at the window's start, clock times at round ticks, and `now`.
    fn time_axis(&self, plot: Rect, y: u16, buf: &mut Buffer) {
        let muted = self.theme.muted();
        let stack = self.stack;
        let width = plot.width as usize;
        let span = stack.totals.len() as u64 * stack.bucket_ms;
        let start = format!("-{}", human_duration(span));
        let now_at = width.saturating_sub(3);
        let mut placed: Vec<Range<usize>> = vec![0..start.len(), now_at..width];
        buf.set_stringn(plot.x, y, &start, width, muted);
        if now_at > start.len() {
            buf.set_string(plot.x + now_at as u16, y, "now", muted);
        }
        let Some(tick) = self.tick(span, width) else {
            return;
        };
        let begin = stack.start.as_millis();
        let offset = self.clock.offset_ms(stack.start);
        let local = (begin as i64 + offset).max(0) as u64;
        let mut at = local.div_ceil(tick) * tick;
        while at < local + span {
            let time = tally_core::Timestamp::from_millis((at as i64 - offset).max(0) as u64);
            let label = match tick % 60_000 {
                0 => self.clock.hours_minutes(time),
                _ => self.clock.time_of_day(time),
            };
            let bucket = (at - local) as f64 / stack.bucket_ms as f64;
            let centre = self.columns.cell_of(bucket);
            let from = centre.saturating_sub(label.len() / 2);
            let cells = from..from + label.len();
            let clear = |r: &Range<usize>| cells.end + 1 < r.start || r.end + 1 < cells.start;
            if cells.end <= width && placed.iter().all(clear) {
                buf.set_string(plot.x + from as u16, y, &label, muted);
                placed.push(cells);
            }
            at += tick;
        }
    }

    /// The shortest round gap between ticks that leaves room for every label, and no more
    /// than one tick a column.
    fn tick(&self, span: u64, width: usize) -> Option<u64> {
        TICKS_MS.into_iter().find(|&tick| {
            let label = if tick % 60_000 == 0 { 5 } else { 8 };
            let ticks = span / tick + 1;
            tick >= self.columns.column_ms && ticks as usize * (label + 4) <= width
        })
    }
}

impl Widget for StackedBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < 3 || area.width < AXIS_WIDTH + 8 {
            return;
        }
        let rows = area.height - 1; // the last row is the time axis
        let plot = Rect::new(area.x + AXIS_WIDTH, area.y, area.width - AXIS_WIDTH, rows);
        let sums = self.columns.sums(self.stack);
        let max = (sums.iter())
            .map(|column| column.iter().copied().fold(0, u64::saturating_add))
            .max()
            .unwrap_or(0);
        let scale = Scale::new(max, rows);
        for (index, column) in sums.iter().enumerate() {
            let tops = layer_tops(column, scale.top, rows, self.theme.has_colour());
            for row in 0..rows {
                let Some(paint) = paint(&tops, row) else { break };
                let (glyph, style) = self.cell_style(paint);
                let y = plot.y + rows - 1 - row;
                for x in self.columns.cells(index) {
                    buf[(plot.x + x as u16, y)].set_symbol(glyph).set_style(style);
                }
            }
        }
        self.markers(plot, buf);
        self.y_axis(area, rows, scale, buf);
        self.time_axis(plot, area.y + rows, buf);
    }
}

/// The layers' swatches and names in stack order (bottom first, `(other)` last), as many as
/// fit in `width`, then how many more there are.
pub fn legend<'a>(stack: &'a Stack, theme: &Theme, width: u16) -> Line<'a> {
    let widths: Vec<usize> = (stack.layers.iter())
        .map(|layer| layer.name.chars().count() + 5)
        .collect();
    let everything_fits = widths.iter().sum::<usize>() <= width as usize;
    let mut spans = Vec::with_capacity(stack.layers.len() * 2);
    let mut used = 0usize;
    for (i, layer) in stack.layers.iter().enumerate() {
        let after = stack.layers.len() - i - 1;
        let more = format!("+{after} more");
        if !everything_fits && used + widths[i] + more.len() > width as usize {
            spans.push(Span::styled(format!("+{} more", after + 1), theme.muted()));
            break;
        }
        used += widths[i];
        let fill = theme.fill(layer.colour);
        spans.push(Span::styled(format!("{fill}{fill} "), theme.layer(layer.colour)));
        spans.push(Span::styled(format!("{}  ", layer.name), Style::default()));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tally_core::{Layer, Timestamp};

    fn stack(start_s: u64, bucket_ms: u64, buckets: usize) -> Stack {
        Stack {
            focus: None,
            filter: None,
            start: Timestamp::from_secs(start_s),
            bucket_ms,
            totals: vec![1; buckets],
            layers: vec![Layer {
                name: Arc::from("acme"),
                colour: 0,
                values: vec![1; buckets],
            }],
        }
    }

    #[test]
    fn columns_merge_a_round_number_of_buckets_aligned_to_the_clock() {
        // Five minutes of seconds in 74 cells: 5 s a column (4 would need 75 or 76).
        let five = Columns::fit(&stack(1_700_000_002, 1000, 300), 74);
        assert_eq!((five.merge, five.column_ms), (5, 5000));
        // Aligned: the first column holds the 3 seconds up to the next multiple of 5.
        assert_eq!(five.groups.first(), Some(&(0..3)));
        assert!(five.groups[1..five.groups.len() - 1].iter().all(|g| g.len() == 5));
        assert_eq!(five.groups.iter().map(|g| g.len()).sum::<usize>(), 300);
        // A day of hours in 150 cells: a column an hour, six or seven cells wide.
        let day = Columns::fit(&stack(1_699_999_200, 3_600_000, 24), 150);
        assert_eq!((day.merge, day.groups.len()), (1, 24));
        assert!((0..24).all(|i| (6..=7).contains(&day.cells(i).len())));
        assert_eq!(day.cells(23).end, 150, "the whole width");
    }

    #[test]
    fn the_y_axis_steps_at_round_numbers() {
        assert_eq!(Scale::new(86, 8), Scale { step: 50, top: 100 });
        assert_eq!(Scale::new(659, 20), Scale { step: 200, top: 800 });
        assert_eq!(Scale::new(1, 8), Scale { step: 1, top: 1 });
        assert_eq!(Scale::new(0, 8), Scale { step: 0, top: 0 }, "empty: a lone 0");
    }

    #[test]
    fn layer_tops_round_the_running_sum() {
        // Three layers of a third each over one row: 3, 5, 8 eighths (not 3, 6, 9).
        assert_eq!(layer_tops(&[1, 1, 1], 3, 1, true), [3, 5, 8]);
        // Without colour, whole cells.
        assert_eq!(layer_tops(&[1, 1, 1], 3, 3, false), [8, 16, 24]);
        assert_eq!(layer_tops(&[0, 0], 0, 4, true), [0, 0]);
    }

    #[test]
    fn a_cell_shows_at_most_two_layers() {
        assert_eq!(paint(&[8, 16], 0), Some(Paint::Full(0)));
        assert_eq!(
            paint(&[3, 16], 0),
            Some(Paint::Split {
                lower: 0,
                eighths: 3,
                upper: 1
            })
        );
        // The bar's top: the layer with most of the cell.
        assert_eq!(paint(&[9, 13], 1), Some(Paint::Top { layer: 1, eighths: 5 }));
        assert_eq!(paint(&[9, 13], 2), None);
    }
}
