//! UTF-8 encoded strings and binary data (sections 1.5.3 and 3.1.3).

use std::{fmt, ops::Deref};

use bytes::Bytes;
use bytestring::ByteString;

use crate::ValueError;

/// The longest string or binary field a two-byte length prefix can carry.
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// A UTF-8 encoded string as MQTT allows it: well-formed UTF-8 without U+0000, at most 65,535
/// bytes long.
///
/// It is backed by [`Bytes`], so a string decoded from a packet shares the packet's buffer
/// instead of copying it, and cloning it is cheap.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MqttString(ByteString);

impl MqttString {
    /// The empty string.
    pub const fn empty() -> Self {
        Self(ByteString::from_static(""))
    }

    /// A string from a `'static` text, checked like [`MqttString::new`].
    pub fn from_static(s: &'static str) -> Result<Self, ValueError> {
        check_str(s)?;
        Ok(Self(ByteString::from_static(s)))
    }

    /// A string holding `s`, or why MQTT does not allow it.
    ///
    /// ```
    /// # use haka_codec::{MqttString, ValueError};
    /// assert_eq!(MqttString::new("caf\u{e9}").unwrap().as_str(), "caf\u{e9}");
    /// assert_eq!(MqttString::new("a\0b"), Err(ValueError::NullCharacter));
    /// ```
    pub fn new(s: impl Into<String>) -> Result<Self, ValueError> {
        let s = s.into();
        check_str(&s)?;
        Ok(Self(ByteString::from(s)))
    }

    /// A string over `bytes`, without copying them, after checking that they are well-formed
    /// UTF-8 [MQTT-1.5.3-1] without U+0000 [MQTT-1.5.3-2] and at most 65,535 bytes long.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, ValueError> {
        if bytes.len() > MAX_FIELD_LEN {
            return Err(ValueError::StringTooLong { len: bytes.len() });
        }
        let scanned = Scanned::new(bytes);
        // [MQTT-1.5.3-2] A UTF-8 encoded string MUST NOT include an encoding of the null
        // character U+0000.
        if scanned.nul() {
            return Err(ValueError::NullCharacter);
        }
        Self::from_scanned(scanned)
    }

    /// Builds a string from scanned bytes that hold no U+0000 and are at most 65,535 bytes
    /// long: what is left to check is UTF-8, and only when they are not ASCII.
    #[inline]
    #[allow(unsafe_code)] // The one unchecked conversion of the crate, proved just above it.
    pub(crate) fn from_scanned(scanned: Scanned) -> Result<Self, ValueError> {
        debug_assert!(!scanned.nul() && scanned.bytes.len() <= MAX_FIELD_LEN);
        if scanned.ascii {
            debug_assert!(scanned.bytes.is_ascii());
            // SAFETY: `Scanned::new` looked at every byte of `scanned.bytes` (its fields are
            // private to this module, so nothing else can pair bytes with another scan) and
            // found none with its high bit set: ASCII, which is well-formed UTF-8. Decoding
            // short topics is the hot path, and validating them again would cost as much as
            // the rest of the PUBLISH.
            return Ok(Self(unsafe {
                ByteString::from_bytes_unchecked(scanned.bytes)
            }));
        }
        // [MQTT-1.5.3-1] The character data in a UTF-8 encoded string MUST be well-formed
        // UTF-8. Rust's validation also refuses the surrogates U+D800..U+DFFF the rule names.
        ByteString::try_from(scanned.bytes)
            .map(Self)
            .map_err(|_| ValueError::InvalidUtf8)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTF-8 bytes, sharing this string's buffer.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Length in bytes (not characters).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes the string takes on the wire, with its length prefix.
    pub(crate) fn encoded_len(&self) -> usize {
        2 + self.0.len()
    }
}

/// Checks what the type system does not: length, and no U+0000.
pub(crate) fn check_str(s: &str) -> Result<(), ValueError> {
    if s.len() > MAX_FIELD_LEN {
        return Err(ValueError::StringTooLong { len: s.len() });
    }
    // [MQTT-1.5.3-2] A UTF-8 encoded string MUST NOT include an encoding of the null character
    // U+0000.
    if s.as_bytes().contains(&0) {
        return Err(ValueError::NullCharacter);
    }
    Ok(())
}

/// Bytes with what one pass over them found: the bytes that MQTT strings and topics forbid or
/// give a meaning to, and whether they are plain ASCII. The fields are private so that the
/// findings cannot be paired with other bytes.
#[derive(Debug)]
pub(crate) struct Scanned {
    bytes: Bytes,
    nul: bool,
    wildcard: bool,
    ascii: bool,
}

impl Scanned {
    /// Scans `bytes` eight at a time. Strings in MQTT packets are short (topics of a few dozen
    /// bytes), where one word-at-a-time pass beats separate searches and a UTF-8 validation.
    #[inline]
    pub(crate) fn new(bytes: Bytes) -> Self {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        const PLUS: u64 = ONES * b'+' as u64;
        const HASH: u64 = ONES * b'#' as u64;
        // Has its high bit set in some byte exactly when some byte of `x` is zero (bytes
        // above the first zero byte may be flagged too, which does not change "some").
        let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        let (mut nul, mut wildcard, mut high) = (0u64, 0u64, 0u64);
        let mut word = |x: u64| {
            nul |= zero_bytes(x);
            wildcard |= zero_bytes(x ^ PLUS) | zero_bytes(x ^ HASH);
            high |= x & HIGHS;
        };
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            word(u64::from_le_bytes(w));
        }
        // The tail, padded with a byte that is none of the above.
        let mut w = [b'a'; 8];
        w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        word(u64::from_le_bytes(w));
        Self {
            bytes,
            nul: nul != 0,
            wildcard: wildcard != 0,
            ascii: high == 0,
        }
    }

    /// The bytes scanned.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether a byte is 0x00 (U+0000).
    pub(crate) fn nul(&self) -> bool {
        self.nul
    }

    /// Whether a byte is `+` or `#`.
    pub(crate) fn wildcard(&self) -> bool {
        self.wildcard
    }
}

impl Deref for MqttString {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MqttString {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for MqttString {
    type Error = ValueError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for MqttString {
    type Error = ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl PartialEq<str> for MqttString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MqttString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Binary data with a two-byte length prefix (a will message, a password): at most 65,535
/// bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct BinaryData(Bytes);

impl BinaryData {
    /// The data `bytes`, or [`ValueError::BinaryTooLong`] when it exceeds 65,535 bytes.
    ///
    /// ```
    /// # use haka_codec::BinaryData;
    /// assert!(BinaryData::new(vec![0; 65_535]).is_ok());
    /// assert!(BinaryData::new(vec![0; 65_536]).is_err());
    /// ```
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, ValueError> {
        let bytes = bytes.into();
        if bytes.len() > MAX_FIELD_LEN {
            return Err(ValueError::BinaryTooLong { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// The data.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        2 + self.0.len()
    }
}

impl Deref for BinaryData {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for BinaryData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A password: binary data that never appears in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(BinaryData);

impl Password {
    /// The password `bytes`, at most 65,535 of them.
    ///
    /// ```
    /// # use haka_codec::Password;
    /// let password = Password::new("hunter2").unwrap();
    /// assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    /// ```
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, ValueError> {
        BinaryData::new(bytes).map(Self)
    }

    /// The secret itself.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn data(&self) -> &BinaryData {
        &self.0
    }
}

impl From<BinaryData> for Password {
    fn from(data: BinaryData) -> Self {
        Self(data)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_each_byte_at_every_position() {
        let scan = |bytes: &[u8]| {
            let s = Scanned::new(Bytes::copy_from_slice(bytes));
            (s.nul, s.wildcard, s.ascii)
        };
        for len in 0..40 {
            let clean = vec![b'a'; len];
            let none = (false, false, true);
            assert_eq!(scan(&clean), none);
            for pos in 0..len {
                for (byte, expected) in [
                    (0, (true, false, true)),
                    (b'+', (false, true, true)),
                    (b'#', (false, true, true)),
                    (0x80, (false, false, false)),
                    (0xff, (false, false, false)),
                    // Neighbours in value are nothing special.
                    (1, none),
                    (b'*', none),
                    (b'$', none),
                    (b'"', none),
                    (b',', none),
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
    fn non_ascii_strings_are_still_validated() {
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"caf\xc3\xa9")).map(|s| s.len()),
            Ok(5)
        );
        assert_eq!(
            MqttString::from_bytes(Bytes::from_static(b"caf\xc3")),
            Err(ValueError::InvalidUtf8)
        );
    }
}

#[cfg(feature = "arbitrary")]
mod arbitrary_impls {
    use arbitrary::{Arbitrary, Result, Unstructured};

    use super::*;

    impl<'a> Arbitrary<'a> for MqttString {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let s: String = u.arbitrary()?;
            let mut s: String = s.chars().filter(|&c| c != '\0').collect();
            while s.len() > MAX_FIELD_LEN {
                s.pop();
            }
            Self::new(s).map_err(|_| arbitrary::Error::IncorrectFormat)
        }
    }

    impl<'a> Arbitrary<'a> for BinaryData {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let len = u.arbitrary_len::<u8>()?.min(MAX_FIELD_LEN);
            Ok(Self(Bytes::copy_from_slice(u.bytes(len)?)))
        }
    }

    impl<'a> Arbitrary<'a> for Password {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            Ok(Self(u.arbitrary()?))
        }
    }
}
