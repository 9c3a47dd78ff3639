//! UNSUBSCRIBE (section 3.10): the client withdraws subscriptions.

use bytes::{BufMut, Bytes};

use super::subscribe::{count_entries, MAX_PREALLOCATED};
use crate::{
    primitive::{invalid, packet_id, parse_body, put_length_prefixed, topic_filter},
    DecodeError, PacketId, PacketType, TopicFilter, ValueError,
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

    pub(crate) fn parse(body: &Bytes) -> Result<Self, DecodeError> {
        parse_body(PacketType::Unsubscribe, body, |i| {
            let (mut i, packet_id) = packet_id(i)?;
            let mut filters = Vec::with_capacity(count_entries(i, 0).min(MAX_PREALLOCATED));
            while !i.is_empty() {
                let (rest, filter) = topic_filter(body, i)?;
                filters.push(filter);
                i = rest;
            }
            // [MQTT-3.10.3-2] The Payload of an UNSUBSCRIBE packet MUST contain at least one
            // Topic Filter.
            if filters.is_empty() {
                return invalid(DecodeError::EmptyUnsubscribe);
            }
            Ok((i, Self { packet_id, filters }))
        })
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
