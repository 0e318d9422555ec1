//! One palette definition for both UIs, so an account has the same colour everywhere.
//!
//! An account's colour index comes from a hash of its name that is stable across processes and
//! versions (FNV-1a), so the terminal view and the desktop app agree without talking to each
//! other. When two accounts on screen want the same index, [`assign`] moves the later one (in
//! name order, so the result does not depend on rank) to the next free index.

use serde::{Deserialize, Serialize};

/// How many colours accounts cycle through; `(other)` has its own, [`OTHER_COLOUR`].
pub const PALETTE_LEN: usize = 12;
/// The index of the `(other)` layer's colour in every palette.
pub const OTHER_COLOUR: u8 = PALETTE_LEN as u8;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Saturated colours that read well on a dark background, chosen by a search for the set whose
/// closest pair is as far apart as it can be in OKLab (0.15; red is left to alerts). Last
/// entry: `(other)`.
pub const DEFAULT: [Rgb; PALETTE_LEN + 1] = [
    Rgb(0xdd, 0x66, 0x00), // orange
    Rgb(0x44, 0xcc, 0xff), // sky blue
    Rgb(0xff, 0xaa, 0xff), // light pink
    Rgb(0xee, 0xcc, 0x22), // yellow
    Rgb(0x00, 0xdd, 0x00), // green
    Rgb(0x33, 0xee, 0xbb), // mint
    Rgb(0xdd, 0xaa, 0x99), // tan
    Rgb(0x00, 0x88, 0xff), // blue
    Rgb(0xff, 0x11, 0xcc), // magenta
    Rgb(0x66, 0x99, 0x11), // olive
    Rgb(0xaa, 0x55, 0xff), // violet
    Rgb(0xcc, 0x77, 0xbb), // mauve
    Rgb(0x80, 0x80, 0x80), // (other): grey
];

/// Okabe-Ito's seven colour-blind-safe colours, and five more chosen (like [`DEFAULT`]'s) to
/// stay apart with protanopia and deuteranopia too; `(other)` darker than the grey that
/// deuteranopes confuse with reddish purple.
pub const COLOUR_BLIND: [Rgb; PALETTE_LEN + 1] = [
    Rgb(0xe6, 0x9f, 0x00), // orange
    Rgb(0x56, 0xb4, 0xe9), // sky blue
    Rgb(0x00, 0x9e, 0x73), // bluish green
    Rgb(0xf0, 0xe4, 0x42), // yellow
    Rgb(0x00, 0x72, 0xb2), // blue
    Rgb(0xd5, 0x5e, 0x00), // vermillion
    Rgb(0xcc, 0x79, 0xa7), // reddish purple
    Rgb(0xcc, 0x22, 0x99), // raspberry
    Rgb(0x55, 0xee, 0xff), // light cyan
    Rgb(0xee, 0xdd, 0xaa), // sand
    Rgb(0x66, 0xcc, 0xcc), // teal
    Rgb(0xcc, 0x22, 0xee), // purple
    Rgb(0x60, 0x60, 0x60), // (other): dark grey
];

/// `rgb` in OKLab (Ottosson 2020): lightness, green-red, blue-yellow, where equal distances
/// look about equally different, unlike in sRGB.
pub fn oklab(Rgb(r, g, b): Rgb) -> [f32; 3] {
    let linear = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (linear(r), linear(g), linear(b));
    let l = (0.412_221_46 * r + 0.536_332_55 * g + 0.051_445_995 * b).cbrt();
    let m = (0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b).cbrt();
    let s = (0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b).cbrt();
    [
        0.210_454_26 * l + 0.793_617_8 * m - 0.004_072_047 * s,
        1.977_998_5 * l - 2.428_592_2 * m + 0.450_593_7 * s,
        0.025_904_037 * l + 0.782_771_77 * m - 0.808_675_77 * s,
    ]
}

/// How different two colours look: their distance in OKLab. About 0.02 is barely visible; the
/// palettes keep every pair of their colours far more apart than that (see the tests).
pub fn distance(a: Rgb, b: Rgb) -> f32 {
    let (a, b) = (oklab(a), oklab(b));
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// The colour index an account would like: a hash of its name.
pub fn preferred(account: &str) -> u8 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in account.as_bytes() {
        hash ^= byte as u32;
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % PALETTE_LEN as u32) as u8
}

/// Colour indices for the accounts shown together, in the order given. Each gets its preferred
/// index unless an account earlier in name order took it; then the next free one. Once more
/// accounts are shown than there are colours, indices repeat.
pub fn assign(accounts: &[&str]) -> Vec<u8> {
    let mut by_name: Vec<usize> = (0..accounts.len()).collect();
    by_name.sort_by_key(|&i| accounts[i]);
    let mut taken = [false; PALETTE_LEN];
    let mut colours = vec![0; accounts.len()];
    for i in by_name {
        let want = preferred(accounts[i]) as usize;
        let free = (0..PALETTE_LEN)
            .map(|step| (want + step) % PALETTE_LEN)
            .find(|&c| !taken[c]);
        let colour = match free {
            Some(c) => {
                taken[c] = true;
                c
            }
            None => want,
        };
        colours[i] = colour as u8;
    }
    colours
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn preferred_colour_is_pinned() {
        // Other processes (the other UI, older versions) must compute the same indices.
        let seen = ["acme", "globex", "initech", "umbrella"].map(preferred);
        assert_eq!(seen, [7, 10, 1, 9]);
    }

    /// The smallest distance between two entries of `palette`, seen through `view`.
    fn closest_pair(palette: &[Rgb], view: impl Fn(Rgb) -> Rgb) -> f32 {
        let mut closest = f32::MAX;
        for (i, &a) in palette.iter().enumerate() {
            for &b in &palette[i + 1..] {
                closest = closest.min(distance(view(a), view(b)));
            }
        }
        closest
    }

    /// Machado et al. (2009)'s simulation of a full colour-vision deficiency, in linear RGB.
    fn simulate(matrix: [[f32; 3]; 3]) -> impl Fn(Rgb) -> Rgb {
        move |Rgb(r, g, b)| {
            let linear = |c: u8| {
                let c = f32::from(c) / 255.0;
                if c <= 0.040_45 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            let v = [linear(r), linear(g), linear(b)];
            let encode = |row: [f32; 3]| {
                let c = (row[0] * v[0] + row[1] * v[1] + row[2] * v[2]).clamp(0.0, 1.0);
                let c = if c <= 0.003_130_8 {
                    12.92 * c
                } else {
                    1.055 * c.powf(1.0 / 2.4) - 0.055
                };
                (c * 255.0).round() as u8
            };
            Rgb(encode(matrix[0]), encode(matrix[1]), encode(matrix[2]))
        }
    }

    const PROTANOPIA: [[f32; 3]; 3] = [
        [0.152_286, 1.052_583, -0.204_868],
        [0.114_503, 0.786_281, 0.099_216],
        [-0.003_882, -0.048_116, 1.051_998],
    ];
    const DEUTERANOPIA: [[f32; 3]; 3] = [
        [0.367_322, 0.860_646, -0.227_968],
        [0.280_085, 0.672_501, 0.047_413],
        [-0.011_82, 0.042_94, 0.968_881],
    ];

    #[test]
    fn oklab_matches_its_reference_values() {
        let [l, a, b] = oklab(Rgb(255, 255, 255));
        assert!((l - 1.0).abs() < 1e-3 && a.abs() < 1e-3 && b.abs() < 1e-3);
        let [l, a, b] = oklab(Rgb(255, 0, 0));
        assert!((l - 0.628).abs() < 1e-3 && (a - 0.225).abs() < 1e-3 && (b - 0.126).abs() < 1e-3);
    }

    /// Any two accounts on screen at once have different entries (see `assign`), so every pair
    /// of a palette must look clearly different: blue next to periwinkle once did not.
    #[test]
    fn every_pair_of_colours_is_far_apart() {
        let default = closest_pair(&DEFAULT, |c| c);
        assert!(default >= 0.15, "default palette: {default:.3}");
        for (view, name) in [
            (Box::new(|c| c) as Box<dyn Fn(Rgb) -> Rgb>, "normal vision"),
            (Box::new(simulate(PROTANOPIA)), "protanopia"),
            (Box::new(simulate(DEUTERANOPIA)), "deuteranopia"),
        ] {
            let closest = closest_pair(&COLOUR_BLIND, view);
            assert!(closest >= 0.07, "colour-blind palette, {name}: {closest:.3}");
        }
        // The old default palette had blue and periwinkle 0.084 apart; this test catches that.
        let old = [Rgb(0x4e, 0x9a, 0xf1), Rgb(0x8f, 0xa8, 0xff)];
        assert!(closest_pair(&old, |c| c) < 0.1);
    }

    #[test]
    fn shown_accounts_get_distinct_colours_independent_of_order() {
        let names: Vec<String> = (0..PALETTE_LEN).map(|i| format!("acct-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let colours = assign(&refs);
        let mut sorted = colours.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), PALETTE_LEN, "all distinct: {colours:?}");
        let reversed: Vec<&str> = refs.iter().rev().copied().collect();
        let mut again = assign(&reversed);
        again.reverse();
        assert_eq!(colours, again, "rank order must not change colours");
    }
}
