//! The end of plain quoted-string text, eight bytes at a time (SWAR): the one byte-level
//! trick of the auth-param scanner, kept here with its own tests. Digest values are mostly
//! long runs of hex between quotes (a 64-character nonce and response); finding where such a
//! run ends a word at a time instead of a byte at a time is most of the scanner's speed.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Plain quoted-string text: printable ASCII but `"` and `\`.
#[inline]
fn is_plain(c: u8) -> bool {
    (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\'
}

/// High bit set in the bytes of `w` equal to `c`; exact up to the lowest one (a borrow
/// only runs upwards from a byte that matched).
#[inline]
fn eq(w: u64, c: u8) -> u64 {
    let x = w ^ (LO * u64::from(c));
    x.wrapping_sub(LO) & !x & HI
}

/// High bit set in the bytes of `w` that are not plain: below 0x20, DEL, `"`, `\` or
/// non-ASCII; exact up to the lowest one, as each term is.
#[inline]
fn not_plain(w: u64) -> u64 {
    (w.wrapping_sub(LO * 0x20) & !w & HI) | eq(w, 0x7f) | eq(w, b'"') | eq(w, b'\\') | (w & HI)
}

/// Index of the first byte at or after `i` that is not plain quoted-string text (`"`, `\`,
/// a control byte, DEL or a non-ASCII byte), `s.len()` when there is none.
#[inline]
pub(super) fn plain_end(s: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = s.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let m = not_plain(u64::from_le_bytes(*chunk));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && is_plain(s[i]) {
        i += 1;
    }
    i.min(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(s: &[u8], i: usize) -> usize {
        s.iter()
            .skip(i)
            .position(|&c| !is_plain(c))
            .map_or(s.len(), |k| i + k)
    }

    #[test]
    fn every_byte_value_in_every_lane() {
        for c in 0..=255u8 {
            for lane in 0..12 {
                let mut s = [b'a'; 12];
                s[lane] = c;
                let want = if is_plain(c) { 12 } else { lane };
                assert_eq!(plain_end(&s, 0), want, "byte {c:#x} at {lane}");
            }
        }
        assert_eq!(plain_end(b"0123456789abcdef0123456789abcdef\"", 0), 32);
        assert_eq!(plain_end(b"", 0), 0);
        assert_eq!(plain_end(b"ab", 5), 2);
    }

    proptest! {
        /// Agrees with a byte-at-a-time scan, from any start, for any bytes (biased to
        /// plain text with the odd stop in it).
        #[test]
        fn agrees_with_bytewise(
            s in prop::collection::vec(prop_oneof![8 => 0x20u8..0x7f, 1 => any::<u8>()], 0..80),
            i in 0usize..90,
        ) {
            prop_assert_eq!(plain_end(&s, i), reference(&s, i));
        }
    }
}
