//! UNSUBSCRIBE (section 3.10): the client withdraws subscriptions.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::{
    primitive::{
        invalid, length_prefixed, packet_id, parse_body, put_length_prefixed, topic_filter,
    },
    DecodeError, MqttStrRef, PacketId, PacketType, TopicFilter, TopicFilterRef, ValueError,
};

/// UNSUBSCRIBE: one or more topic filters to stop receiving. Its fixed-header flags are
/// 0b0010 [MQTT-3.10.1-1].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unsubscribe {
    /// Identifies the request until its UNSUBACK.
    pub packet_id: PacketId,
    filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE for `filters`, which must not be empty [MQTT-3.10.3-2].
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Result<Self, ValueError> {
        if filters.is_empty() {
            return Err(ValueError::EmptyList);
        }
        Ok(Self { packet_id, filters })
    }

    /// The filters; never empty.
    pub fn filters(&self) -> &[TopicFilter] {
        &self.filters
    }

    /// Takes the filters out.
    pub fn into_filters(self) -> Vec<TopicFilter> {
        self.filters
    }

    pub(crate) fn body_len(&self) -> usize {
        2 + self
            .filters
            .iter()
            .map(|f| f.as_mqtt_string().encoded_len())
            .sum::<usize>()
    }

    pub(crate) const fn first_byte(&self) -> u8 {
        ((PacketType::Unsubscribe as u8) << 4) | 0b0010
    }

    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.packet_id.get());
        for filter in &self.filters {
            put_length_prefixed(dst, filter.as_bytes());
        }
    }
}

/// UNSUBSCRIBE borrowed from the bytes it was decoded from, by
/// [`Codec::decode_ref`](crate::Codec::decode_ref): the counterpart of [`Unsubscribe`].
///
/// Every filter was checked when the packet was parsed; [`UnsubscribeRef::filters`] then reads
/// them from the packet's bytes as it goes, without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct UnsubscribeRef<'a> {
    /// Identifies the request until its UNSUBACK.
    pub packet_id: PacketId,
    /// The payload: one or more validated, length-prefixed filters.
    entries: &'a [u8],
    /// How many filters `entries` holds.
    len: usize,
}

impl<'a> UnsubscribeRef<'a> {
    /// The filters, in the order they were sent; never empty.
    pub fn filters(&self) -> Filters<'a> {
        Filters {
            rest: self.entries,
            len: self.len,
        }
    }

    /// Number of filters; never 0.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: an UNSUBSCRIBE holds at least one filter [MQTT-3.10.3-2].
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The owned UNSUBSCRIBE, whose filters share `frame` when they lie inside it (as they
    /// do in a packet decoded from `frame`) and are copied otherwise.
    pub fn to_owned_in(&self, frame: &Bytes) -> Unsubscribe {
        // `len` counts filters that were parsed, not a length read from the wire.
        let mut filters = Vec::with_capacity(self.len);
        filters.extend(self.filters().map(|filter| filter.to_owned_in(frame)));
        Unsubscribe {
            packet_id: self.packet_id,
            filters,
        }
    }

    /// Parses the whole `body` of an UNSUBSCRIBE, checking every filter.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::Unsubscribe, body, |i| {
            let (entries, packet_id) = packet_id(i)?;
            let (mut i, mut len) = (entries, 0);
            while !i.is_empty() {
                let (rest, _filter) = topic_filter(i)?;
                len += 1;
                i = rest;
            }
            // [MQTT-3.10.3-2] The Payload of an UNSUBSCRIBE packet MUST contain at least one
            // Topic Filter.
            if len == 0 {
                return invalid(DecodeError::EmptyUnsubscribe);
            }
            Ok((
                i,
                Self {
                    packet_id,
                    entries,
                    len,
                },
            ))
        })
    }
}

impl fmt::Debug for UnsubscribeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsubscribeRef")
            .field("packet_id", &self.packet_id)
            .field("filters", &self.filters())
            .finish()
    }
}

/// The filters of an [`UnsubscribeRef`], read from the packet's bytes as they are iterated.
#[derive(Clone)]
pub struct Filters<'a> {
    rest: &'a [u8],
    len: usize,
}

impl<'a> Iterator for Filters<'a> {
    type Item = TopicFilterRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<TopicFilterRef<'a>> {
        // The filters were checked when the packet was parsed; reading them again cannot
        // fail, and would end the iteration rather than panic if it did.
        let (rest, filter) = length_prefixed(self.rest).ok()?;
        let filter = MqttStrRef::from_wire(filter).ok()?;
        self.rest = rest;
        self.len = self.len.saturating_sub(1);
        Some(TopicFilterRef::from_valid(filter.as_str()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl ExactSizeIterator for Filters<'_> {}

impl std::iter::FusedIterator for Filters<'_> {}

impl fmt::Debug for Filters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Unsubscribe {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let packet_id = u.arbitrary()?;
        let mut filters = vec![u.arbitrary()?];
        filters.extend(
            u.arbitrary_iter::<TopicFilter>()?
                .take(20)
                .collect::<Result<Vec<_>, _>>()?,
        );
        Ok(Self { packet_id, filters })
    }
}
