//! One pass over the bytes of a string or topic: what they hold that MQTT forbids or gives a
//! meaning to, and whether they are plain ASCII, which makes them text at no further cost.
//!
//! Strings in packets are short (topics of a few dozen bytes), where looking at eight or
//! sixteen bytes at a time with a few masks beats a search per rule and a UTF-8 validation.
//! This module holds the crate's one unchecked UTF-8 conversion, [`Scanned::to_str`], beside
//! the scans that prove it.

use crate::{string::MAX_FIELD_LEN, ValueError};

/// Bytes with what one pass over them found: whether one is `+` or `#` (which topics forbid
/// or give a meaning to), and whether they are plain ASCII without 0x00 (which makes them a
/// valid string at no further cost). The fields are private so that the findings cannot be
/// paired with other bytes.
#[derive(Debug)]
pub(crate) struct Scanned<'a> {
    bytes: &'a [u8],
    wildcard: bool,
    plain: bool,
}

impl<'a> Scanned<'a> {
    /// The scan of a topic filter of 8 to 16 bytes that is plain ASCII, without 0x00, and
    /// whose wildcards all stand where [MQTT-4.7.1-2] and [MQTT-4.7.1-3] allow them; `None`
    /// for any other bytes, which [`Scanned::new`] and the byte-by-byte checks then look at.
    ///
    /// Filters are short, and this is all a SUBSCRIBE's filter costs: two overlapping words
    /// cover the filter, a few masks over them find every byte that matters, and only the
    /// wildcards (one or two in a filter) have their neighbours looked at.
    #[inline(always)]
    pub(crate) fn short_filter(bytes: &'a [u8]) -> Option<Self> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const LOW7: u64 = ONES * 0x7f;
        const HIGHS: u64 = ONES * 0x80;
        let n = bytes.len();
        let (Some(first), Some(last), true) =
            (bytes.first_chunk::<8>(), bytes.last_chunk::<8>(), n <= 16)
        else {
            return None;
        };
        let (lo, hi) = (u64::from_le_bytes(*first), u64::from_le_bytes(*last));
        // Some byte is 0x00 or above 0x7f (`x - ONES` may also flag bytes above a zero byte,
        // which changes nothing: there is a zero byte then).
        if (lo.wrapping_sub(ONES) | lo | hi.wrapping_sub(ONES) | hi) & HIGHS != 0 {
            return None;
        }
        // The high bit of each byte that is `+` or `#`, exactly (no borrow between bytes):
        // `+` is 0x2b and `#` is 0x23, and with bit 3 set both are `+`.
        let wildcards = |x: u64| {
            let y = (x | (ONES * 0x08)) ^ (ONES * u64::from(b'+'));
            !(((y & LOW7).wrapping_add(LOW7)) | y | LOW7)
        };
        // The last word starts at `n - 8`: its bytes that the first word covered are skipped.
        let in_place = |i: usize| {
            let separator_before = i == 0 || bytes.get(i - 1) == Some(&b'/');
            let next = bytes.get(i + 1);
            match bytes.get(i) {
                // [MQTT-4.7.1-2] `#` on its own or after a separator, and last.
                Some(b'#') => separator_before && next.is_none(),
                // [MQTT-4.7.1-3] `+` occupies an entire level.
                _ => separator_before && next.is_none_or(|&b| b == b'/'),
            }
        };
        let mut found = false;
        for (start, mut mask) in [
            (0, wildcards(lo)),
            // With 8 bytes, the last word is the first one: all of it is skipped.
            (
                n - 8,
                wildcards(hi) & u64::MAX.checked_shl(8 * (16 - n) as u32).unwrap_or(0),
            ),
        ] {
            while mask != 0 {
                if !in_place(start + (mask.trailing_zeros() / 8) as usize) {
                    return None;
                }
                mask &= mask - 1;
                found = true;
            }
        }
        Some(Self {
            bytes,
            wildcard: found,
            plain: true,
        })
    }

    /// Scans `bytes` eight at a time, or refuses them when they exceed 65,535 bytes.
    ///
    /// Strings in MQTT packets are short (topics of a few dozen bytes), where one
    /// word-at-a-time pass beats separate searches and a UTF-8 validation. The last word
    /// overlaps the one before it rather than being padded: flags are or-ed together, so a
    /// byte seen twice changes nothing, and a constant-size load costs no `memcpy` call.
    #[inline(always)]
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, ValueError> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        // `+` is 0x2b and `#` is 0x23: they differ only in bit 3, so setting that bit in every
        // byte turns both, and nothing else, into `+`.
        const BIT3: u64 = ONES * 0x08;
        const PLUS: u64 = ONES * b'+' as u64;
        if bytes.len() > MAX_FIELD_LEN {
            return Err(ValueError::StringTooLong { len: bytes.len() });
        }
        let (mut wildcard, mut other) = (0u64, 0u64);
        // For each word, bits that end up set under `HIGHS` exactly when some byte is `+` or
        // `#` (in `wildcard`), or when some byte is 0x00 or has its high bit set (in `other`).
        // `(y - ONES) & !y` sets the high bit of some byte exactly when some byte of `y` is
        // zero (bytes above the first zero byte may be flagged too, which does not change
        // "some"); `(x - ONES) | x` flags the zero bytes of `x` the same way, and the bytes
        // whose high bit is set.
        let mut word = |x: u64| {
            let y = (x | BIT3) ^ PLUS;
            wildcard |= y.wrapping_sub(ONES) & !y;
            other |= x.wrapping_sub(ONES) | x;
        };
        let load = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().unwrap_or([b'a'; 8]));
        if let (Some(first), Some(last), true) = (
            bytes.first_chunk::<16>(),
            bytes.last_chunk::<16>(),
            (17..=32).contains(&bytes.len()),
        ) {
            // 17 to 32 bytes, most topics: the first sixteen and the last sixteen, without a
            // loop.
            word(load(&first[..8]));
            word(load(&first[8..]));
            word(load(&last[..8]));
            word(load(&last[8..]));
        } else if let (Some(last), true) = (bytes.last_chunk::<16>(), bytes.len() > 32) {
            // Sixteen bytes at a time, then the last sixteen, overlapping.
            let mut rest = bytes;
            while let Some((chunk, tail)) = rest.split_first_chunk::<16>() {
                word(load(&chunk[..8]));
                word(load(&chunk[8..]));
                rest = tail;
            }
            if !rest.is_empty() {
                word(load(&last[..8]));
                word(load(&last[8..]));
            }
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<8>(), bytes.last_chunk::<8>())
        {
            // 8 to 16 bytes: the first eight and the last eight.
            word(u64::from_le_bytes(*first));
            word(u64::from_le_bytes(*last));
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
        {
            // 4 to 7 bytes: the first four and the last four.
            word(
                u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32,
            );
        } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
            // 1 to 3 bytes: the first, the middle and the last, padded with a byte that is
            // none of the above.
            let middle = bytes[bytes.len() / 2];
            word(u64::from_le_bytes([
                first, middle, last, b'a', b'a', b'a', b'a', b'a',
            ]));
        }
        let (wildcard, other) = (wildcard & HIGHS, other & HIGHS);
        Ok(Self {
            bytes,
            wildcard: wildcard != 0,
            plain: other == 0,
        })
    }

    /// Whether a byte is 0x00 (U+0000).
    #[inline]
    pub(crate) fn nul(&self) -> bool {
        !self.plain && self.bytes.contains(&0)
    }

    /// Whether every byte is ASCII and none is 0x00: a valid string [MQTT-1.5.3-1],
    /// [MQTT-1.5.3-2], known without looking at the bytes again.
    #[inline]
    pub(crate) fn plain(&self) -> bool {
        self.plain
    }

    /// Whether a byte is `+` or `#`.
    #[inline]
    pub(crate) fn wildcard(&self) -> bool {
        self.wildcard
    }

    /// The bytes as text: at no cost when the scan found them ASCII, validated otherwise.
    #[inline]
    #[allow(unsafe_code)] // The one unchecked UTF-8 conversion of the crate, proved beside it.
    pub(crate) fn to_str(&self) -> Result<&'a str, ValueError> {
        if self.plain {
            debug_assert!(self.bytes.is_ascii());
            // SAFETY: `plain` is set only by `Scanned::new` and `Scanned::short_filter`, after
            // looking at every byte of `self.bytes` (the fields are private to this module, so
            // nothing else can pair bytes with another scan) and finding none with its high
            // bit set: ASCII, which is well-formed UTF-8. Measured: validating them again
            // (`str::from_utf8`) makes a borrowed PUBLISH decode cost 67 % more instructions,
            // a CONNECT 86 % more and a ten-filter SUBSCRIBE twice as many.
            return Ok(unsafe { std::str::from_utf8_unchecked(self.bytes) });
        }
        to_str_slow(self.bytes)
    }
}

/// [MQTT-1.5.3-1] The character data in a UTF-8 encoded string MUST be well-formed UTF-8.
/// Rust's validation also refuses the surrogates U+D800..U+DFFF the rule names.
#[cold]
fn to_str_slow(bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|_| ValueError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_each_byte_at_every_position() {
        let scan = |bytes: &[u8]| {
            let s = Scanned::new(bytes).unwrap();
            (s.nul(), s.wildcard(), s.plain)
        };
        for len in 0..40 {
            let clean = vec![b'a'; len];
            let none = (false, false, true);
            assert_eq!(scan(&clean), none);
            for pos in 0..len {
                for (byte, expected) in [
                    (0, (true, false, false)),
                    (b'+', (false, true, true)),
                    (b'#', (false, true, true)),
                    (0x80, (false, false, false)),
                    (0xff, (false, false, false)),
                    // Neighbours in value, or in bits, are nothing special.
                    (1, none),
                    (b'*', none),
                    (b'$', none),
                    (b'"', none),
                    (b',', none),
                    (b'\'', none),
                    (0x03, none),
                    (0x0b, none),
                    (0x2f, none),
                    (0x7f, none),
                ] {
                    let mut bytes = clean.clone();
                    bytes[pos] = byte;
                    assert_eq!(scan(&bytes), expected, "len {len} pos {pos} byte {byte}");
                }
            }
        }
    }

    #[test]
    fn short_filters_agree_with_the_full_checks() {
        let check = |bytes: &[u8]| {
            let full = crate::TopicFilterRef::from_wire_general(bytes).is_ok();
            if let Some(scanned) = Scanned::short_filter(bytes) {
                assert!(full, "{bytes:?} passes the short path only");
                assert_eq!(scanned.to_str().map(str::as_bytes), Ok(bytes));
                assert_eq!(
                    scanned.wildcard(),
                    bytes.iter().any(|&b| b == b'+' || b == b'#')
                );
            } else if (8..=16).contains(&bytes.len()) && bytes.is_ascii() && !bytes.contains(&0) {
                assert!(!full, "{bytes:?} is refused by the short path only");
            }
        };
        // Every filter of up to 16 bytes over a small alphabet, sampled.
        let alphabet = [b'a', b'/', b'+', b'#', 0, 0x80];
        for len in 1..=16u32 {
            let count = 6u64.pow(len.min(7));
            for seed in 0..count.min(50_000) {
                let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(len);
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        alphabet[(s >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                check(&bytes);
            }
        }
        for ok in [
            "a/b/+",
            "sensors/room0/+",
            "+/+/+/+/+/+/+/+/",
            "#",
            "a/#",
            "/+/",
        ] {
            check(ok.as_bytes());
        }
    }
}
