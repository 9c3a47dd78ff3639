//! Topic names and topic filters (section 4.7), owned and borrowed.

use std::{fmt, ops::Deref};

use bytes::Bytes;

use crate::{scan::Scanned, string::borrowed_str_impls, MqttStrRef, MqttString, ValueError};

/// The name of a topic a message is published to: a non-empty [`MqttString`] without
/// wildcards.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(MqttString);

impl TopicName {
    /// The topic name `name`, or why it is not one.
    ///
    /// ```
    /// # use haka_codec::{TopicName, ValueError};
    /// assert!(TopicName::new("sensors/room1/temperature").is_ok());
    /// assert_eq!(TopicName::new("sensors/+"), Err(ValueError::WildcardInTopicName));
    /// assert_eq!(TopicName::new(""), Err(ValueError::EmptyTopic));
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Self, ValueError> {
        let name = name.into();
        check_topic_name(name.as_bytes())?;
        MqttString::new(name).map(Self)
    }

    /// A topic name from a `'static` text, checked like [`TopicName::new`].
    pub fn from_static(name: &'static str) -> Result<Self, ValueError> {
        check_topic_name(name.as_bytes())?;
        MqttString::from_static(name).map(Self)
    }

    /// A topic name over `bytes`, without copying them.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, ValueError> {
        MqttString::from_bytes_checked(bytes, |b| TopicNameRef::from_wire(b).map(|t| t.0)).map(Self)
    }

    /// The name, borrowed as the validated [`TopicNameRef`].
    pub fn as_ref_name(&self) -> TopicNameRef<'_> {
        TopicNameRef(self.0.as_ref_str())
    }

    /// The topic name `s`, if it is one (non-empty, without wildcards).
    pub fn from_mqtt_string(s: MqttString) -> Result<Self, ValueError> {
        check_topic_name(s.as_bytes())?;
        Ok(Self(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as a validated string.
    pub fn as_mqtt_string(&self) -> &MqttString {
        &self.0
    }
}

/// [MQTT-4.7.3-1] All Topic Names and Topic Filters MUST be at least one character long.
/// [MQTT-3.3.2-2] The Topic Name in the PUBLISH Packet MUST NOT contain wildcard characters.
#[cold]
fn check_topic_name(bytes: &[u8]) -> Result<(), ValueError> {
    if bytes.is_empty() {
        return Err(ValueError::EmptyTopic);
    }
    if bytes.iter().any(|&b| b == b'+' || b == b'#') {
        return Err(ValueError::WildcardInTopicName);
    }
    Ok(())
}

/// A topic filter of a subscription: a non-empty [`MqttString`] whose wildcards `+` and `#`
/// stand where the specification allows them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(MqttString);

impl TopicFilter {
    /// The topic filter `filter`, or why it is not one.
    ///
    /// ```
    /// # use haka_codec::{TopicFilter, ValueError};
    /// assert!(TopicFilter::new("sensors/+/temperature").is_ok());
    /// assert!(TopicFilter::new("sensors/#").is_ok());
    /// assert_eq!(TopicFilter::new("sensors#"), Err(ValueError::MisplacedMultiLevelWildcard));
    /// assert_eq!(TopicFilter::new("sensors+"), Err(ValueError::MisplacedSingleLevelWildcard));
    /// ```
    pub fn new(filter: impl Into<String>) -> Result<Self, ValueError> {
        let filter = filter.into();
        check_topic_filter(filter.as_bytes())?;
        MqttString::new(filter).map(Self)
    }

    /// A topic filter from a `'static` text, checked like [`TopicFilter::new`].
    pub fn from_static(filter: &'static str) -> Result<Self, ValueError> {
        check_topic_filter(filter.as_bytes())?;
        MqttString::from_static(filter).map(Self)
    }

    /// A topic filter over `bytes`, without copying them.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, ValueError> {
        MqttString::from_bytes_checked(bytes, |b| TopicFilterRef::from_wire(b).map(|t| t.0))
            .map(Self)
    }

    /// The filter, borrowed as the validated [`TopicFilterRef`].
    pub fn as_ref_filter(&self) -> TopicFilterRef<'_> {
        TopicFilterRef(self.0.as_ref_str())
    }

    /// The topic filter `s`, if it is one (non-empty, wildcards in place).
    pub fn from_mqtt_string(s: MqttString) -> Result<Self, ValueError> {
        check_topic_filter(s.as_bytes())?;
        Ok(Self(s))
    }

    /// The filter.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The filter as a validated string.
    pub fn as_mqtt_string(&self) -> &MqttString {
        &self.0
    }

    /// Whether a message published to `topic` matches this filter (section 4.7).
    ///
    /// ```
    /// # use haka_codec::{TopicFilter, TopicName};
    /// let filter = TopicFilter::new("sport/+/player1").unwrap();
    /// assert!(filter.matches(&TopicName::new("sport/tennis/player1").unwrap()));
    /// assert!(!filter.matches(&TopicName::new("sport/tennis/player2").unwrap()));
    /// let all = TopicFilter::new("#").unwrap();
    /// assert!(!all.matches(&TopicName::new("$SYS/uptime").unwrap()));
    /// ```
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self.as_str(), topic.as_str())
    }
}

/// Whether a message published to `topic` matches `filter` (section 4.7).
fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1] The Server MUST NOT match Topic Filters starting with a wildcard
    // character (# or +) with Topic Names beginning with a $ character.
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            // "sport/#" also matches the parent level "sport" (section 4.7.1.2).
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if topic_levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

/// [MQTT-4.7.3-1] All Topic Names and Topic Filters MUST be at least one character long.
fn check_topic_filter(bytes: &[u8]) -> Result<(), ValueError> {
    let Some(last) = bytes.len().checked_sub(1) else {
        return Err(ValueError::EmptyTopic);
    };
    // Only the bytes around a wildcard matter: find them eight bytes at a time and look at
    // each one's neighbours.
    let separator_before = |i: usize| i == 0 || bytes[i - 1] == b'/';
    let separator_after = |i: usize| i == last || bytes[i + 1] == b'/';
    let check = |i: usize| {
        if bytes[i] == b'#' {
            // [MQTT-4.7.1-2] The multi-level wildcard character MUST be specified either on
            // its own or following a topic level separator. In either case it MUST be the
            // last character specified in the Topic Filter.
            if i != last || !separator_before(i) {
                return Err(ValueError::MisplacedMultiLevelWildcard);
            }
        } else if !separator_before(i) || !separator_after(i) {
            // [MQTT-4.7.1-3] The single-level wildcard can be used at any level in the Topic
            // Filter, including first and last levels. Where it is used it MUST occupy an
            // entire level of the filter.
            return Err(ValueError::MisplacedSingleLevelWildcard);
        }
        Ok(())
    };
    // Each wildcard of the word at `start`, in order, skipping the first `skip` bytes.
    let check_word = |start: usize, word: &[u8; 8], skip: usize| {
        let mut wildcards = wildcard_bytes(u64::from_le_bytes(*word)) & (u64::MAX << (8 * skip));
        while wildcards != 0 {
            check(start + (wildcards.trailing_zeros() / 8) as usize)?;
            wildcards &= wildcards - 1;
        }
        Ok(())
    };
    let Some(last_word) = bytes.last_chunk::<8>() else {
        // Fewer than eight bytes: one at a time.
        for (i, &byte) in bytes.iter().enumerate() {
            if byte == b'+' || byte == b'#' {
                check(i)?;
            }
        }
        return Ok(());
    };
    let mut words = bytes.chunks_exact(8);
    for (w, word) in (&mut words).enumerate() {
        check_word(w * 8, word.try_into().unwrap_or(&[b'a'; 8]), 0)?;
    }
    // The last word overlaps the one before; its bytes already checked are skipped.
    let rest = words.remainder().len();
    if rest > 0 {
        check_word(bytes.len() - 8, last_word, 8 - rest)?;
    }
    Ok(())
}

/// The high bit of each byte of `word` that is `+` or `#`, and of no other byte.
#[inline]
fn wildcard_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // `+` is 0x2b and `#` is 0x23: setting bit 3 of every byte turns both, and nothing else,
    // into `+`.
    let x = (word | (ONES * 0x08)) ^ (ONES * u64::from(b'+'));
    // Exact per byte (no borrow between bytes): 0x80 where the byte of `x` is zero.
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// A topic name borrowed from a decoded packet: the counterpart of [`TopicName`] in a packet
/// decoded by [`Codec::decode_ref`](crate::Codec::decode_ref).
///
/// Once it exists it is a non-empty [`MqttStrRef`] without wildcards [MQTT-3.3.2-2],
/// [MQTT-4.7.3-1]; it dereferences to `str`.
///
/// ```
/// # use haka_codec::{TopicNameRef, ValueError};
/// let topic = TopicNameRef::new("sensors/room1/temperature")?;
/// assert!(topic.starts_with("sensors/"));
/// assert_eq!(TopicNameRef::new("sensors/+"), Err(ValueError::WildcardInTopicName));
/// # Ok::<(), ValueError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicNameRef<'a>(MqttStrRef<'a>);

impl<'a> TopicNameRef<'a> {
    /// The topic name `name`, or why it is not one.
    pub fn new(name: &'a str) -> Result<Self, ValueError> {
        check_topic_name(name.as_bytes())?;
        MqttStrRef::new(name).map(Self)
    }

    /// The topic name in `bytes`, checked in one pass: what [`TopicName::from_bytes`] and the
    /// decoders accept.
    #[inline(always)]
    pub(crate) fn from_wire(bytes: &'a [u8]) -> Result<Self, ValueError> {
        // One pass finds the forbidden bytes; which rule was broken is worked out only when
        // one is there.
        let scanned = Scanned::new(bytes)?;
        if bytes.is_empty() || scanned.wildcard() {
            check_topic_name(bytes)?;
        }
        // [MQTT-1.5.3-2] No encoding of U+0000.
        if scanned.nul() {
            return Err(ValueError::NullCharacter);
        }
        scanned.to_str().map(|s| Self(MqttStrRef::from_valid(s)))
    }

    /// The name, for as long as the bytes it borrows.
    pub const fn as_str(&self) -> &'a str {
        self.0.as_str()
    }

    /// The name as a validated string.
    pub const fn as_mqtt_str(&self) -> MqttStrRef<'a> {
        self.0
    }

    /// The owned topic name, sharing `frame` when the name lies inside it (as it does in a
    /// packet decoded from `frame`) and copied otherwise.
    #[inline]
    pub fn to_owned_in(&self, frame: &Bytes) -> TopicName {
        TopicName(MqttString::from_ref_in(self.0, frame))
    }

    /// The owned topic name, copied.
    pub fn to_topic_name(&self) -> TopicName {
        TopicName(self.0.to_mqtt_string())
    }
}

/// A topic filter borrowed from a decoded SUBSCRIBE or UNSUBSCRIBE: the counterpart of
/// [`TopicFilter`].
///
/// Once it exists it is a non-empty [`MqttStrRef`] whose wildcards stand where the
/// specification allows them [MQTT-4.7.1-2], [MQTT-4.7.1-3]; it dereferences to `str`.
///
/// ```
/// # use haka_codec::{TopicFilterRef, ValueError};
/// assert!(TopicFilterRef::new("sensors/+/temperature").is_ok());
/// assert_eq!(TopicFilterRef::new("sensors#"), Err(ValueError::MisplacedMultiLevelWildcard));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilterRef<'a>(MqttStrRef<'a>);

impl<'a> TopicFilterRef<'a> {
    /// The topic filter `filter`, or why it is not one.
    pub fn new(filter: &'a str) -> Result<Self, ValueError> {
        check_topic_filter(filter.as_bytes())?;
        MqttStrRef::new(filter).map(Self)
    }

    /// The topic filter in `bytes`, checked in one pass: what [`TopicFilter::from_bytes`] and
    /// the decoders accept.
    #[inline(always)]
    pub(crate) fn from_wire(bytes: &'a [u8]) -> Result<Self, ValueError> {
        // Most filters are short and valid: one look at all their bytes at once.
        if let Some(scanned) = Scanned::short_filter(bytes) {
            return scanned.to_str().map(|s| Self(MqttStrRef::from_valid(s)));
        }
        Self::from_wire_general(bytes)
    }

    /// [`TopicFilterRef::from_wire`] for any bytes: the scan, then the rules one by one.
    pub(crate) fn from_wire_general(bytes: &'a [u8]) -> Result<Self, ValueError> {
        let scanned = Scanned::new(bytes)?;
        if bytes.is_empty() || scanned.wildcard() {
            // Check where the wildcards stand.
            check_topic_filter(bytes)?;
        }
        // [MQTT-1.5.3-2] No encoding of U+0000.
        if scanned.nul() {
            return Err(ValueError::NullCharacter);
        }
        scanned.to_str().map(|s| Self(MqttStrRef::from_valid(s)))
    }

    /// A filter already validated once, from its text (a SUBSCRIBE iterating the filters it
    /// checked when it was parsed).
    pub(crate) const fn from_valid(s: &'a str) -> Self {
        Self(MqttStrRef::from_valid(s))
    }

    /// The filter, for as long as the bytes it borrows.
    pub const fn as_str(&self) -> &'a str {
        self.0.as_str()
    }

    /// The filter as a validated string.
    pub const fn as_mqtt_str(&self) -> MqttStrRef<'a> {
        self.0
    }

    /// The owned filter, sharing `frame` when the filter lies inside it (as it does in a
    /// packet decoded from `frame`) and copied otherwise.
    #[inline]
    pub fn to_owned_in(&self, frame: &Bytes) -> TopicFilter {
        TopicFilter(MqttString::from_ref_in(self.0, frame))
    }

    /// The owned filter, copied.
    pub fn to_topic_filter(&self) -> TopicFilter {
        TopicFilter(self.0.to_mqtt_string())
    }

    /// Whether a message published to `topic` matches this filter (section 4.7), like
    /// [`TopicFilter::matches`].
    pub fn matches(&self, topic: TopicNameRef<'_>) -> bool {
        matches(self.as_str(), topic.as_str())
    }
}

borrowed_str_impls!(TopicNameRef);
borrowed_str_impls!(TopicFilterRef);

macro_rules! borrowed_topic_impls {
    ($borrowed:ident, $owned:ident) => {
        impl<'a> TryFrom<&'a str> for $borrowed<'a> {
            type Error = ValueError;

            fn try_from(s: &'a str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl PartialEq<$owned> for $borrowed<'_> {
            fn eq(&self, other: &$owned) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl PartialEq<$borrowed<'_>> for $owned {
            fn eq(&self, other: &$borrowed<'_>) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl<'a> From<$borrowed<'a>> for MqttStrRef<'a> {
            fn from(t: $borrowed<'a>) -> Self {
                t.0
            }
        }
    };
}

borrowed_topic_impls!(TopicNameRef, TopicName);
borrowed_topic_impls!(TopicFilterRef, TopicFilter);

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = ValueError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = ValueError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$ty> for MqttString {
            fn from(t: $ty) -> Self {
                t.0
            }
        }
    };
}

string_newtype_impls!(TopicName);
string_newtype_impls!(TopicFilter);

#[cfg(feature = "arbitrary")]
mod arbitrary_impls {
    use arbitrary::{Arbitrary, Result, Unstructured};

    use super::*;

    /// Builds topic levels from a small alphabet so that wildcards, separators, `$` and
    /// multi-byte characters all show up often.
    fn level(u: &mut Unstructured<'_>, wildcards: bool) -> Result<String> {
        const ALPHABET: &[&str] = &["a", "b", "z", "0", " ", "$", "\u{e9}", "\u{1F600}", "-"];
        if wildcards && u.ratio(1, 5)? {
            return Ok("+".to_owned());
        }
        let len = u.int_in_range(0..=6)?;
        let mut s = String::new();
        for _ in 0..len {
            s.push_str(u.choose(ALPHABET)?);
        }
        Ok(s)
    }

    impl<'a> Arbitrary<'a> for TopicName {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let levels = u.int_in_range(1..=5)?;
            let mut s = level(u, false)?;
            for _ in 1..levels {
                s.push('/');
                s.push_str(&level(u, false)?);
            }
            if s.is_empty() {
                s.push('t');
            }
            Self::new(s).map_err(|_| arbitrary::Error::IncorrectFormat)
        }
    }

    impl<'a> Arbitrary<'a> for TopicFilter {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let levels = u.int_in_range(1..=5)?;
            let mut s = level(u, true)?;
            for _ in 1..levels {
                s.push('/');
                s.push_str(&level(u, true)?);
            }
            if u.ratio(1, 4)? {
                s.push_str(if s.is_empty() { "#" } else { "/#" });
            }
            if s.is_empty() {
                s.push('t');
            }
            Self::new(s).map_err(|_| arbitrary::Error::IncorrectFormat)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_wildcard_placement() {
        for ok in ["#", "+", "+/+", "/+", "a/#", "+/#", "a//b", "/", "$SYS/#"] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for (bad, err) in [
            ("a#", ValueError::MisplacedMultiLevelWildcard),
            ("#/a", ValueError::MisplacedMultiLevelWildcard),
            ("a/#/", ValueError::MisplacedMultiLevelWildcard),
            ("a+", ValueError::MisplacedSingleLevelWildcard),
            ("+a/b", ValueError::MisplacedSingleLevelWildcard),
            ("", ValueError::EmptyTopic),
        ] {
            assert_eq!(TopicFilter::new(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn matching_follows_section_4_7() {
        let m = |f: &str, t: &str| {
            TopicFilter::new(f)
                .unwrap()
                .matches(&TopicName::new(t).unwrap())
        };
        assert!(m("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(m("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
        assert!(m("sport/#", "sport"));
        assert!(m("+/+", "/finance"));
        assert!(m("/+", "/finance"));
        assert!(!m("+", "/finance"));
        assert!(!m("sport/+", "sport"));
        assert!(m("sport/+", "sport/"));
        assert!(m("$SYS/#", "$SYS/broker"));
        assert!(!m("+/monitor/Clients", "$SYS/monitor/Clients"));
    }
}
