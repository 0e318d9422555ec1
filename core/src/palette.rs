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

/// Distinct, saturated colours that read well on a dark background; last entry: `(other)`.
pub const DEFAULT: [Rgb; PALETTE_LEN + 1] = [
    Rgb(0x4e, 0x9a, 0xf1), // blue
    Rgb(0xf2, 0x8e, 0x2b), // orange
    Rgb(0x59, 0xc9, 0x5f), // green
    Rgb(0xe1, 0x57, 0x59), // red
    Rgb(0xb0, 0x7a, 0xe8), // purple
    Rgb(0xed, 0xc9, 0x48), // yellow
    Rgb(0x3f, 0xc8, 0xc8), // teal
    Rgb(0xff, 0x8f, 0xc8), // pink
    Rgb(0xa3, 0xd9, 0x4a), // lime
    Rgb(0xc2, 0x8d, 0x5f), // brown
    Rgb(0x8f, 0xa8, 0xff), // periwinkle
    Rgb(0xff, 0xb3, 0x8a), // peach
    Rgb(0x80, 0x80, 0x80), // (other): grey
];

/// Okabe-Ito's colour-blind-safe set, extended with lighter and darker variants.
pub const COLOUR_BLIND: [Rgb; PALETTE_LEN + 1] = [
    Rgb(0x00, 0x72, 0xb2), // blue
    Rgb(0xe6, 0x9f, 0x00), // orange
    Rgb(0x00, 0x9e, 0x73), // bluish green
    Rgb(0xd5, 0x5e, 0x00), // vermillion
    Rgb(0xcc, 0x79, 0xa7), // reddish purple
    Rgb(0xf0, 0xe4, 0x42), // yellow
    Rgb(0x56, 0xb4, 0xe9), // sky blue
    Rgb(0x88, 0x4d, 0xb0), // violet
    Rgb(0x7f, 0xd1, 0xb9), // light green
    Rgb(0xff, 0xc2, 0x66), // light orange
    Rgb(0x9d, 0xc3, 0xe6), // light blue
    Rgb(0xa0, 0x55, 0x2a), // brown
    Rgb(0x99, 0x99, 0x99), // (other): grey
];

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
