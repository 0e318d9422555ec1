//! Eight bytes at a time: tests on every byte of a `u64` read little-endian from a payload,
//! each answering with bit 7 of the bytes that pass. Decoders scan names and strings with them
//! instead of a byte at a time (a branch a byte was their main cost); the lowest byte that
//! passes is `mask.trailing_zeros() / 8`.

/// Bit 7 of each byte of a word.
pub(super) const HIGH: u64 = 0x8080_8080_8080_8080;
/// Bits 0 to 6 of each byte.
const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
pub(super) const ONES: u64 = 0x0101_0101_0101_0101;

/// The eight bytes of `bytes` from `at`, if there are eight.
#[inline(always)]
pub(super) fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().expect("eight bytes")))
}

/// How many bytes of `bytes` from `at` come before the first that `stops` marks, read eight at
/// a time. Stops short of the last few bytes (fewer than eight), which the caller reads one at a
/// time: the count is then of the bytes before them.
#[inline(always)]
pub(super) fn run_until(bytes: &[u8], at: usize, stops: impl Fn(u64) -> u64) -> usize {
    let mut run = 0;
    while let Some(word) = word_at(bytes, at + run) {
        let marked = stops(word);
        if marked != 0 {
            return run + marked.trailing_zeros() as usize / 8;
        }
        run += 8;
    }
    run
}

/// Bit 7 set in each byte of `word` equal to `byte` (exactly: no carry crosses bytes).
#[inline(always)]
pub(super) fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    !(((x & LOW) + LOW) | x | LOW)
}

/// Bit 7 set in each byte of `word` in `low..=high` (both ASCII).
#[inline(always)]
pub(super) fn within(word: u64, low: u8, high: u8) -> u64 {
    let seven = word & LOW;
    let at_least = seven + ONES * u64::from(0x80 - low);
    let above = seven + ONES * u64::from(0x7f - high);
    at_least & !above & !word & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position of a word, among neighbours that pass and that do
    /// not: each test marks exactly the bytes it should.
    #[test]
    fn each_test_marks_exactly_the_bytes_that_pass() {
        let expect = |word: u64, test: &dyn Fn(u8) -> bool| {
            (word.to_le_bytes().iter().enumerate())
                .filter(|&(_, &b)| test(b))
                .fold(0u64, |mask, (i, _)| mask | 0x80 << (8 * i))
        };
        for neighbour in [0x00, b'"', b'a', 0x7f, 0x80, 0xff] {
            for byte in 0..=255u8 {
                for at in 0..8 {
                    let mut bytes = [neighbour; 8];
                    bytes[at] = byte;
                    let word = u64::from_le_bytes(bytes);
                    assert_eq!(equal(word, b'"'), expect(word, &|b| b == b'"'), "{bytes:?}");
                    assert_eq!(equal(word, 0), expect(word, &|b| b == 0), "{bytes:?}");
                    assert_eq!(
                        within(word, b' ', b'~'),
                        expect(word, &|b| (b' '..=b'~').contains(&b)),
                        "{bytes:?}"
                    );
                    assert_eq!(
                        within(word, b'0', b'9'),
                        expect(word, &|b| b.is_ascii_digit()),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_run_ends_at_the_first_marked_byte_or_before_the_last_few() {
        let quotes = |word| equal(word, b'"');
        assert_eq!(run_until(b"0123456789\"abcdef", 0, quotes), 10);
        assert_eq!(run_until(b"0123456789\"abcdef", 3, quotes), 7);
        assert_eq!(
            run_until(b"01234567\"", 0, quotes),
            8,
            "the last byte is the caller's"
        );
        assert_eq!(run_until(b"0123\"", 0, quotes), 0);
    }

    #[test]
    fn a_word_is_read_only_where_eight_bytes_are() {
        let bytes = *b"0123456789";
        assert_eq!(word_at(&bytes, 2), Some(u64::from_le_bytes(*b"23456789")));
        assert_eq!(word_at(&bytes, 3), None);
        assert_eq!(word_at(&bytes, usize::MAX), None);
    }
}
