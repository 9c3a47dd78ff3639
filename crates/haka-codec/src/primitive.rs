//! The data representations of section 1.5, as nom parsers over a packet body and as writers.
//!
//! Parsers work on `&[u8]` slices of the body; whatever they return that outlives the parse
//! (strings, topics, binary data) is turned into a [`Bytes`] slice of the body with
//! [`Bytes::slice_ref`], so it shares the received buffer instead of copying it.

use bytes::{BufMut, Bytes};
use nom::{
    multi::length_data,
    number::complete::{be_u16, be_u8},
    IResult, Parser,
};

use crate::{BinaryData, DecodeError, MqttString, PacketId, PacketType, TopicFilter, TopicName};

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

#[inline]
pub(crate) fn u8(i: &[u8]) -> PResult<'_, u8> {
    be_u8(i)
}

#[inline]
pub(crate) fn u16(i: &[u8]) -> PResult<'_, u16> {
    be_u16(i)
}

/// A packet identifier: two bytes, never 0 [MQTT-2.3.1-1].
#[inline]
pub(crate) fn packet_id(i: &[u8]) -> PResult<'_, PacketId> {
    let (i, id) = be_u16(i)?;
    match PacketId::new(id) {
        Ok(id) => Ok((i, id)),
        Err(e) => invalid(e),
    }
}

/// A two-byte length followed by that many bytes (section 1.5.3).
#[inline]
pub(crate) fn length_prefixed(i: &[u8]) -> PResult<'_, &[u8]> {
    length_data(be_u16).parse(i)
}

/// A UTF-8 encoded string [MQTT-1.5.3-1], [MQTT-1.5.3-2], sharing `body`.
pub(crate) fn string<'a>(body: &Bytes, i: &'a [u8]) -> PResult<'a, MqttString> {
    let (i, raw) = length_prefixed(i)?;
    // [MQTT-1.5.3-1] The character data in a UTF-8 encoded string MUST be well-formed UTF-8.
    // Rust's validation also refuses the surrogates U+D800..U+DFFF that the rule names.
    match MqttString::from_bytes(body.slice_ref(raw)) {
        Ok(s) => Ok((i, s)),
        Err(e) => invalid(e),
    }
}

/// A topic name: a string without wildcards [MQTT-3.3.2-2], never empty [MQTT-4.7.3-1].
#[inline]
pub(crate) fn topic_name<'a>(body: &Bytes, i: &'a [u8]) -> PResult<'a, TopicName> {
    let (i, raw) = length_prefixed(i)?;
    match TopicName::from_bytes(body.slice_ref(raw)) {
        Ok(topic) => Ok((i, topic)),
        Err(e) => invalid(e),
    }
}

/// A topic filter with its wildcards in place [MQTT-4.7.1-2], [MQTT-4.7.1-3].
pub(crate) fn topic_filter<'a>(body: &Bytes, i: &'a [u8]) -> PResult<'a, TopicFilter> {
    let (i, raw) = length_prefixed(i)?;
    match TopicFilter::from_bytes(body.slice_ref(raw)) {
        Ok(filter) => Ok((i, filter)),
        Err(e) => invalid(e),
    }
}

/// Binary data with a two-byte length, sharing `body`.
pub(crate) fn binary<'a>(body: &Bytes, i: &'a [u8]) -> PResult<'a, BinaryData> {
    let (i, raw) = length_prefixed(i)?;
    match BinaryData::new(body.slice_ref(raw)) {
        Ok(data) => Ok((i, data)),
        Err(e) => invalid(e),
    }
}

/// Writes a two-byte length and `bytes`; the caller guarantees `bytes.len() <= 65_535`.
#[inline]
pub(crate) fn put_length_prefixed(dst: &mut impl BufMut, bytes: &[u8]) {
    debug_assert!(bytes.len() <= usize::from(u16::MAX));
    dst.put_u16(bytes.len() as u16);
    dst.put_slice(bytes);
}
