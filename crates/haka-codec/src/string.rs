//! UTF-8 encoded strings and binary data (sections 1.5.3 and 3.1.3), owned and borrowed.
//!
//! One validator serves both: [`MqttStrRef::from_wire`] checks bytes in one pass, and the
//! owned [`MqttString`] is built from what it accepted, sharing the bytes it was checked on.

use std::{fmt, ops::Deref};

use bytes::Bytes;
use bytestring::ByteString;

use crate::{primitive::share, scan::Scanned, ValueError};

/// The longest string or binary field a two-byte length prefix can carry.
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// A UTF-8 encoded string as MQTT allows it: well-formed UTF-8 without U+0000, at most 65,535
/// bytes long.
///
/// It is backed by [`Bytes`], so a string decoded from a packet shares the packet's buffer
/// instead of copying it, and cloning it is cheap. Its borrowed counterpart is [`MqttStrRef`].
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
        Self::from_bytes_checked(bytes, |b| MqttStrRef::from_wire(b))
    }

    /// A string over `bytes`, without copying them, once `check` has accepted them: the
    /// owned constructors of strings and topics share their borrowed validators this way.
    #[inline]
    pub(crate) fn from_bytes_checked(
        bytes: Bytes,
        check: impl FnOnce(&[u8]) -> Result<MqttStrRef<'_>, ValueError>,
    ) -> Result<Self, ValueError> {
        check(&bytes)?;
        ByteString::try_from(bytes)
            .map(Self)
            .map_err(|_| ValueError::InvalidUtf8)
    }

    /// The string `s` holds, sharing `frame` when `s` lies inside it and copied otherwise.
    #[inline]
    pub(crate) fn from_ref_in(s: MqttStrRef<'_>, frame: &Bytes) -> Self {
        Self(byte_string_in(s.0, frame))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, borrowed as the validated [`MqttStrRef`].
    pub fn as_ref_str(&self) -> MqttStrRef<'_> {
        MqttStrRef(&self.0)
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

/// A UTF-8 encoded string as MQTT allows it, borrowed: the counterpart of [`MqttString`] in a
/// packet decoded by [`Codec::decode_ref`](crate::Codec::decode_ref).
///
/// Once it exists it is well-formed UTF-8 without U+0000 and at most 65,535 bytes long; it
/// dereferences to `str`.
///
/// ```
/// # use haka_codec::{MqttStrRef, ValueError};
/// let s = MqttStrRef::new("caf\u{e9}")?;
/// assert_eq!(s.len(), 5);
/// assert_eq!(s, "caf\u{e9}");
/// assert_eq!(MqttStrRef::new("a\0b"), Err(ValueError::NullCharacter));
/// # Ok::<(), ValueError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MqttStrRef<'a>(&'a str);

impl<'a> MqttStrRef<'a> {
    /// The string `s`, or why MQTT does not allow it.
    pub fn new(s: &'a str) -> Result<Self, ValueError> {
        check_str(s)?;
        Ok(Self(s))
    }

    /// The string in `bytes`, after checking in one pass that they are at most 65,535 bytes
    /// of well-formed UTF-8 [MQTT-1.5.3-1] without U+0000 [MQTT-1.5.3-2].
    #[inline(always)]
    pub(crate) fn from_wire(bytes: &'a [u8]) -> Result<Self, ValueError> {
        let scanned = Scanned::new(bytes)?;
        // [MQTT-1.5.3-2] A UTF-8 encoded string MUST NOT include an encoding of the null
        // character U+0000.
        if scanned.nul() {
            return Err(ValueError::NullCharacter);
        }
        scanned.to_str().map(Self)
    }

    /// A string already known to be valid: the text of another validated string.
    pub(crate) const fn from_valid(s: &'a str) -> Self {
        Self(s)
    }

    /// The text, for as long as the bytes it borrows.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// Length in bytes (not characters).
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The owned string, sharing `frame` when this string lies inside it (as it does in a
    /// packet decoded from `frame`) and copied otherwise.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use haka_codec::MqttStrRef;
    /// let frame = Bytes::from_static(b"xhello");
    /// let s = MqttStrRef::new(std::str::from_utf8(&frame[1..])?)?;
    /// let owned = s.to_owned_in(&frame);
    /// assert_eq!(owned, "hello");
    /// assert_eq!(owned.as_bytes().as_ptr(), frame[1..].as_ptr()); // not copied
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_owned_in(&self, frame: &Bytes) -> MqttString {
        MqttString::from_ref_in(*self, frame)
    }

    /// The owned string, copied.
    pub fn to_mqtt_string(&self) -> MqttString {
        MqttString(ByteString::from(self.0))
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

/// The text `s` as a `ByteString`: a slice of `frame` when `s` lies inside it, a copy
/// otherwise.
#[inline]
pub(crate) fn byte_string_in(s: &str, frame: &Bytes) -> ByteString {
    match share(frame, s.as_bytes()) {
        // The slice holds the bytes of `s`, so the check cannot fail; it costs a pass over
        // them, which the owned decode can afford (the borrowed one has none of it).
        Some(bytes) => ByteString::try_from(bytes).unwrap_or_else(|_| ByteString::from(s)),
        None => ByteString::from(s),
    }
}

macro_rules! borrowed_str_impls {
    ($ty:ident) => {
        impl Deref for $ty<'_> {
            type Target = str;

            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $ty<'_> {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $ty<'_> {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty<'_> {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use borrowed_str_impls;

borrowed_str_impls!(MqttStrRef);

impl<'a> TryFrom<&'a str> for MqttStrRef<'a> {
    type Error = ValueError;

    fn try_from(s: &'a str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl PartialEq<MqttString> for MqttStrRef<'_> {
    fn eq(&self, other: &MqttString) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<MqttStrRef<'_>> for MqttString {
    fn eq(&self, other: &MqttStrRef<'_>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<MqttStrRef<'_>> for MqttString {
    fn from(s: MqttStrRef<'_>) -> Self {
        s.to_mqtt_string()
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

    /// The data, borrowed as [`BinaryDataRef`].
    pub fn as_ref_data(&self) -> BinaryDataRef<'_> {
        BinaryDataRef(&self.0)
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

    /// The password, borrowed as [`PasswordRef`].
    pub fn as_ref_password(&self) -> PasswordRef<'_> {
        PasswordRef(self.0.as_ref_data())
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

/// Binary data borrowed from a decoded packet (a will message): at most 65,535 bytes. The
/// counterpart of [`BinaryData`]; it dereferences to `[u8]`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BinaryDataRef<'a>(&'a [u8]);

impl<'a> BinaryDataRef<'a> {
    /// The data `bytes`, or [`ValueError::BinaryTooLong`] when it exceeds 65,535 bytes.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ValueError> {
        if bytes.len() > MAX_FIELD_LEN {
            return Err(ValueError::BinaryTooLong { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// Data whose length came from a two-byte prefix, or from another [`BinaryData`].
    pub(crate) const fn from_valid(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The data, for as long as the bytes it borrows.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The owned data, sharing `frame` when the bytes lie inside it and copied otherwise.
    pub fn to_owned_in(&self, frame: &Bytes) -> BinaryData {
        BinaryData(share_or_copy(frame, self.0))
    }
}

impl Deref for BinaryDataRef<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0
    }
}

impl fmt::Debug for BinaryDataRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// A password borrowed from a decoded CONNECT: bytes that never appear in `Debug` output or
/// logs. The counterpart of [`Password`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordRef<'a>(BinaryDataRef<'a>);

impl<'a> PasswordRef<'a> {
    /// The password `bytes`, at most 65,535 of them.
    ///
    /// ```
    /// # use haka_codec::PasswordRef;
    /// let password = PasswordRef::new(b"hunter2")?;
    /// assert_eq!(format!("{password:?}"), "PasswordRef(<redacted>)");
    /// assert_eq!(password.expose(), b"hunter2");
    /// # Ok::<(), haka_codec::ValueError>(())
    /// ```
    pub fn new(bytes: &'a [u8]) -> Result<Self, ValueError> {
        BinaryDataRef::new(bytes).map(Self)
    }

    /// The secret itself.
    pub const fn expose(&self) -> &'a [u8] {
        self.0.as_bytes()
    }

    /// The owned password, sharing `frame` when the bytes lie inside it and copied otherwise.
    pub fn to_owned_in(&self, frame: &Bytes) -> Password {
        Password(self.0.to_owned_in(frame))
    }
}

impl<'a> From<BinaryDataRef<'a>> for PasswordRef<'a> {
    fn from(data: BinaryDataRef<'a>) -> Self {
        Self(data)
    }
}

impl fmt::Debug for PasswordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordRef(<redacted>)")
    }
}

/// `sub` as `Bytes`: a slice of `frame` when it lies inside it, a copy otherwise.
#[inline]
pub(crate) fn share_or_copy(frame: &Bytes, sub: &[u8]) -> Bytes {
    share(frame, sub).unwrap_or_else(|| Bytes::copy_from_slice(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

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
