//! Numbers, durations and names as every report and view writes them.

use std::borrow::Cow;

/// Characters that must never reach a terminal as they are: controls (C0, DEL, C1), which
/// can move the cursor, retitle the window or clear the screen, and the bidirectional
/// overrides, which reorder what is shown.
pub fn is_unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `name` safe to print: every [`is_unprintable`] character as `\u{1b}`. Borrows when
/// nothing needs escaping (names the decoders let through never do).
pub fn printable(name: &str) -> Cow<'_, str> {
    if !name.chars().any(is_unprintable) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if is_unprintable(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `1234567` -> `1.2M`; `999` -> `999`.
pub fn short_number(n: f64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (size, unit) in UNITS {
        if n.abs() >= size {
            return format!("{:.1}{unit}", n / size);
        }
    }
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// `90s` -> "90s", `300000` -> "5m", `3600000` -> "1h": the largest unit that divides exactly.
pub fn human_duration(ms: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    if ms == 0 {
        return "0s".to_owned();
    }
    let (size, unit) = UNITS
        .into_iter()
        .find(|(size, _)| ms.is_multiple_of(*size))
        .unwrap_or((1, "ms"));
    format!("{}{unit}", ms / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_print_without_terminal_controls() {
        assert!(matches!(printable("acme café €"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\u{1b}]0;PWNED\u{7}x\u{202e}"),
            "\\u{1b}]0;PWNED\\u{7}x\\u{202e}"
        );
    }

    #[test]
    fn numbers_are_short_and_readable() {
        assert_eq!(short_number(999.0), "999");
        assert_eq!(short_number(1234.0), "1.2k");
        assert_eq!(short_number(3_400_000.0), "3.4M");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(0.0), "0");
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(human_duration(300_000), "5m");
        assert_eq!(human_duration(90_000), "90s");
        assert_eq!(human_duration(1500), "1500ms");
        assert_eq!(human_duration(86_400_000), "1d");
    }
}
