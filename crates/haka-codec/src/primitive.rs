//! The data representations of section 1.5, as nom parsers over a packet body and as writers.
//!
//! Parsers work on `&[u8]` slices of the body and return what they read borrowed from it
//! ([`MqttStrRef`], [`TopicNameRef`], [`TopicFilterRef`], `&[u8]`), validated; an owned packet
//! turns each into a [`Bytes`] slice of the frame with [`share`], so it shares the received
//! buffer instead of copying it.

use bytes::{BufMut, Bytes};
use nom::IResult;

use crate::{DecodeError, MqttStrRef, PacketId, PacketType, TopicFilterRef, TopicNameRef};

/// What went wrong inside a body parser. `Eof` becomes [`DecodeError::Truncated`] once the
/// packet type is known.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// The body ended before a field.
    Eof,
    /// A field broke a rule of the specification.
    Invalid(DecodeError),
}

impl<I> nom::error::ParseError<I> for ParseError {
    fn from_error_kind(_input: I, _kind: nom::error::ErrorKind) -> Self {
        // The body is complete, so the only way a primitive parser fails is running out.
        Self::Eof
    }

    fn append(_input: I, _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, ParseError>;

/// Stops parsing with a rule violation.
pub(crate) fn invalid<'a, T>(e: impl Into<DecodeError>) -> PResult<'a, T> {
    Err(nom::Err::Failure(ParseError::Invalid(e.into())))
}

/// Runs a body parser over the whole body of a `packet_type` packet: running out of bytes is
/// [`DecodeError::Truncated`], bytes left over are [`DecodeError::TrailingBytes`].
#[inline(always)]
pub(crate) fn parse_body<'a, T>(
    packet_type: PacketType,
    body: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, DecodeError> {
    match parser(body) {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(DecodeError::TrailingBytes {
            packet_type,
            extra: rest.len(),
        }),
        Err(
            nom::Err::Failure(ParseError::Invalid(e)) | nom::Err::Error(ParseError::Invalid(e)),
        ) => Err(e),
        Err(_) => Err(DecodeError::Truncated(packet_type)),
    }
}

// The primitives below are nom parsers (functions from input to `IResult`, which nom's
// combinators and `Parser` accept) written out by hand: nom's own `be_u8`, `be_u16` and
// `length_data` go through its generic `Input` trait, whose calls the compiler does not
// inline here, and cost more than the reads themselves on packets of a few dozen bytes.

/// A byte.
#[inline(always)]
pub(crate) fn u8(i: &[u8]) -> PResult<'_, u8> {
    match i.split_first() {
        Some((&byte, rest)) => Ok((rest, byte)),
        None => eof(),
    }
}

/// A big-endian two-byte integer (section 1.5.2).
#[inline(always)]
pub(crate) fn u16(i: &[u8]) -> PResult<'_, u16> {
    match i.split_first_chunk::<2>() {
        Some((&bytes, rest)) => Ok((rest, u16::from_be_bytes(bytes))),
        None => eof(),
    }
}

/// The body ended before a field: nom's recoverable error, which
/// [`parse_body`] reports as [`DecodeError::Truncated`].
#[inline(always)]
fn eof<'a, T>() -> PResult<'a, T> {
    Err(nom::Err::Error(ParseError::Eof))
}

/// A packet identifier: two bytes, never 0 [MQTT-2.3.1-1].
#[inline(always)]
pub(crate) fn packet_id(i: &[u8]) -> PResult<'_, PacketId> {
    let (i, id) = u16(i)?;
    match PacketId::new(id) {
        Ok(id) => Ok((i, id)),
        Err(e) => invalid(e),
    }
}

/// A two-byte length followed by that many bytes (section 1.5.3).
#[inline(always)]
pub(crate) fn length_prefixed(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, len) = u16(i)?;
    match i.split_at_checked(usize::from(len)) {
        Some((field, rest)) => Ok((rest, field)),
        None => eof(),
    }
}

/// A UTF-8 encoded string [MQTT-1.5.3-1], [MQTT-1.5.3-2], borrowed from the body.
#[inline(always)]
pub(crate) fn mqtt_str(i: &[u8]) -> PResult<'_, MqttStrRef<'_>> {
    let (i, raw) = length_prefixed(i)?;
    // [MQTT-1.5.3-1] The character data in a UTF-8 encoded string MUST be well-formed UTF-8.
    // Rust's validation also refuses the surrogates U+D800..U+DFFF that the rule names.
    match MqttStrRef::from_wire(raw) {
        Ok(s) => Ok((i, s)),
        Err(e) => invalid(e),
    }
}

/// A topic name: a string without wildcards [MQTT-3.3.2-2], never empty [MQTT-4.7.3-1].
#[inline(always)]
pub(crate) fn topic_name(i: &[u8]) -> PResult<'_, TopicNameRef<'_>> {
    let (i, raw) = length_prefixed(i)?;
    match TopicNameRef::from_wire(raw) {
        Ok(topic) => Ok((i, topic)),
        Err(e) => invalid(e),
    }
}

/// A topic filter with its wildcards in place [MQTT-4.7.1-2], [MQTT-4.7.1-3].
#[inline(always)]
pub(crate) fn topic_filter(i: &[u8]) -> PResult<'_, TopicFilterRef<'_>> {
    let (i, raw) = length_prefixed(i)?;
    match TopicFilterRef::from_wire(raw) {
        Ok(filter) => Ok((i, filter)),
        Err(e) => invalid(e),
    }
}

/// `sub` as a slice of `frame`, sharing its buffer, when `sub` lies inside `frame`.
///
/// This is how a borrowed packet becomes an owned one without a copy: each field it borrows
/// from the frame becomes a [`Bytes`] handle on the same memory.
#[inline]
pub(crate) fn share(frame: &Bytes, sub: &[u8]) -> Option<Bytes> {
    let start = (sub.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    if start <= frame.len() && sub.len() <= frame.len() - start {
        Some(frame.slice(start..start + sub.len()))
    } else {
        None
    }
}

/// Writes a two-byte length and `bytes`; the caller guarantees `bytes.len() <= 65_535`.
#[inline]
pub(crate) fn put_length_prefixed(dst: &mut impl BufMut, bytes: &[u8]) {
    debug_assert!(bytes.len() <= usize::from(u16::MAX));
    dst.put_u16(bytes.len() as u16);
    dst.put_slice(bytes);
}
