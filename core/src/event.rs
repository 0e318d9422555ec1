//! What tally counts: one event of one account, borrowed from the decoder's buffer.

use crate::time::Timestamp;

/// The account (and type) that events are folded into once a cap is reached.
pub const OTHER: &str = "(other)";

/// Names longer than this are cut (at a character boundary) so that no producer can make the
/// engine hold arbitrarily large strings.
pub const MAX_NAME_BYTES: usize = 128;

/// The most one event may stand for (2^53, the largest count a JSON number or an `f64` holds
/// exactly). Larger counts are rejected as [`crate::Rejection::CountTooLarge`], so no single
/// event can push an exact total near `u64::MAX`; every add past this point saturates.
pub const MAX_COUNT: u64 = 1 << 53;

/// One event, as decoded. Strings borrow from the datagram: recording allocates nothing once
/// the account and type have been seen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event<'a> {
    pub account: &'a str,
    /// `pageview`, `order.create`, or what a StatsD bucket has after the account segment.
    pub event_type: &'a str,
    pub app: Option<&'a str>,
    pub value: Value<'a>,
    /// Arrival time, stamped by the collector.
    pub time: Timestamp,
}

/// The kind of an event and its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A counter increment (a JSON event is `Count(1)`).
    Count(u64),
    /// A timing in milliseconds; `count` is how many events it stands for (1 / sample rate).
    Timing { ms: f64, count: u64 },
    /// A gauge set to a value.
    Gauge(f64),
    /// A gauge changed by a signed amount (a gauge not seen before starts at 0).
    GaugeDelta(f64),
    /// A member of a set (distinct values are counted).
    SetMember(&'a str),
}

impl Value<'_> {
    /// How much this event adds to its account's and type's counts.
    pub fn events(&self) -> u64 {
        match *self {
            Value::Count(n) => n,
            Value::Timing { count, .. } => count,
            Value::Gauge(_) | Value::GaugeDelta(_) | Value::SetMember(_) => 1,
        }
    }
}

/// Why a sampled count was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleError {
    /// The value is negative, infinite or not a number.
    BadValue,
    /// The rate is not in `(0, 1]`.
    BadRate,
    /// The count would be above [`MAX_COUNT`].
    TooLarge,
}

/// How many events a sampled counter stands for, StatsD style: `value / rate`, rounded to the
/// nearest whole event (`5|c|@0.1` is 50), at most [`MAX_COUNT`].
pub fn scale_sampled(value: f64, rate: f64) -> Result<u64, SampleError> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(SampleError::BadValue);
    }
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(SampleError::BadRate);
    }
    let count = (value / rate).round();
    if count > MAX_COUNT as f64 {
        return Err(SampleError::TooLarge);
    }
    Ok(count as u64)
}

/// `name` cut to at most [`MAX_NAME_BYTES`], on a character boundary.
pub fn clamp_name(name: &str) -> &str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sampled_counts_follow_statsd() {
        assert_eq!(scale_sampled(5.0, 0.1), Ok(50));
        assert_eq!(scale_sampled(1.0, 1.0), Ok(1));
        assert_eq!(scale_sampled(1.0, 0.3), Ok(3));
        assert_eq!(scale_sampled(-1.0, 1.0), Err(SampleError::BadValue));
        assert_eq!(scale_sampled(f64::NAN, 1.0), Err(SampleError::BadValue));
        assert_eq!(scale_sampled(1.0, 0.0), Err(SampleError::BadRate));
        assert_eq!(scale_sampled(1.0, 1.5), Err(SampleError::BadRate));
        assert_eq!(scale_sampled(MAX_COUNT as f64, 1.0), Ok(MAX_COUNT));
        assert_eq!(scale_sampled(1e19, 1.0), Err(SampleError::TooLarge));
        assert_eq!(scale_sampled(1.0, 1e-300), Err(SampleError::TooLarge));
        assert_eq!(Value::Timing { ms: 3.0, count: 10 }.events(), 10);
        assert_eq!(Value::Gauge(-4.0).events(), 1);
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary() {
        let name = "é".repeat(100);
        let cut = clamp_name(&name);
        assert!(cut.len() <= MAX_NAME_BYTES);
        assert_eq!(cut.len(), 128);
        let odd = format!("a{}", "é".repeat(100));
        assert_eq!(clamp_name(&odd).len(), 127);
        assert_eq!(clamp_name("acme"), "acme");
    }
}
