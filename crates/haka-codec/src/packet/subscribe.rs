//! SUBSCRIBE (section 3.8): the client asks for messages matching topic filters.

use bytes::{BufMut, Bytes};

use crate::{
    primitive::{invalid, packet_id, parse_body, put_length_prefixed, topic_filter, u8},
    DecodeError, PacketId, PacketType, QoS, TopicFilter, ValueError,
};

/// SUBSCRIBE: one or more topic filters, each with the highest QoS the client wants for it.
/// Its fixed-header flags are 0b0010 [MQTT-3.8.1-1].
///
/// ```
/// # use haka_codec::{PacketId, QoS, Subscribe, Subscription, TopicFilter};
/// let subscribe = Subscribe::new(
///     PacketId::new(10)?,
///     vec![Subscription::new(TopicFilter::new("sensors/#")?, QoS::AtLeastOnce)],
/// )?;
/// assert_eq!(subscribe.subscriptions().len(), 1);
/// assert!(Subscribe::new(PacketId::new(11)?, vec![]).is_err());
/// # Ok::<(), haka_codec::ValueError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscribe {
    /// Identifies the request until its SUBACK.
    pub packet_id: PacketId,
    subscriptions: Vec<Subscription>,
}

/// One topic filter of a SUBSCRIBE with its requested QoS (section 3.8.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct Subscription {
    /// The filter.
    pub filter: TopicFilter,
    /// The highest QoS at which the server may send matching messages.
    pub qos: QoS,
}

impl Subscription {
    /// A subscription to `filter` at `qos`.
    pub fn new(filter: TopicFilter, qos: QoS) -> Self {
        Self { filter, qos }
    }
}

impl Subscribe {
    /// A SUBSCRIBE for `subscriptions`, which must not be empty [MQTT-3.8.3-3].
    pub fn new(packet_id: PacketId, subscriptions: Vec<Subscription>) -> Result<Self, ValueError> {
        if subscriptions.is_empty() {
            return Err(ValueError::EmptyList);
        }
        Ok(Self {
            packet_id,
            subscriptions,
        })
    }

    /// The subscriptions, in the order they were requested; never empty.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Takes the subscriptions out.
    pub fn into_subscriptions(self) -> Vec<Subscription> {
        self.subscriptions
    }

    pub(crate) fn parse(body: &Bytes) -> Result<Self, DecodeError> {
        parse_body(PacketType::Subscribe, body, |i| {
            let (mut i, packet_id) = packet_id(i)?;
            // Count the entries first so that a list of ordinary size is allocated once. The
            // count is capped: entries of forged, empty filters take 3 bytes on the wire but
            // a `Subscription` each in memory, and are refused only when parsed.
            let mut subscriptions = Vec::with_capacity(count_entries(i, 1).min(MAX_PREALLOCATED));
            while !i.is_empty() {
                let (rest, filter) = topic_filter(body, i)?;
                let (rest, options) = u8(rest)?;
                // [MQTT-3.8.3-4] The Server MUST treat a SUBSCRIBE packet as malformed and
                // close the Network Connection if any of Reserved bits in the payload are
                // non-zero, or QoS is not 0,1 or 2.
                let Ok(qos) = QoS::from_u8(options) else {
                    return invalid(DecodeError::InvalidSubscriptionOptions(options));
                };
                subscriptions.push(Subscription { filter, qos });
                i = rest;
            }
            // [MQTT-3.8.3-3] The payload of a SUBSCRIBE packet MUST contain at least one Topic
            // Filter / QoS pair.
            if subscriptions.is_empty() {
                return invalid(DecodeError::EmptySubscribe);
            }
            Ok((
                i,
                Self {
                    packet_id,
                    subscriptions,
                },
            ))
        })
    }

    pub(crate) fn body_len(&self) -> usize {
        2 + self
            .subscriptions
            .iter()
            .map(|s| s.filter.as_mqtt_string().encoded_len() + 1)
            .sum::<usize>()
    }

    pub(crate) const fn first_byte(&self) -> u8 {
        ((PacketType::Subscribe as u8) << 4) | 0b0010
    }

    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.packet_id.get());
        for s in &self.subscriptions {
            put_length_prefixed(dst, s.filter.as_bytes());
            dst.put_u8(s.qos as u8);
        }
    }
}

/// The most list entries allocated before any is parsed; longer lists grow as they are parsed.
pub(crate) const MAX_PREALLOCATED: usize = 64;

/// Counts the length-prefixed entries of a list, each followed by `trailer` bytes, stopping
/// where the input ends or an entry runs past it.
pub(crate) fn count_entries(mut i: &[u8], trailer: usize) -> usize {
    let mut count = 0;
    while let [hi, lo, rest @ ..] = i {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])) + trailer;
        count += 1;
        match rest.get(len..) {
            Some(next) => i = next,
            None => break,
        }
    }
    count
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Subscribe {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let packet_id = u.arbitrary()?;
        let mut subscriptions = vec![u.arbitrary()?];
        subscriptions.extend(
            u.arbitrary_iter::<Subscription>()?
                .take(20)
                .collect::<Result<Vec<_>, _>>()?,
        );
        Ok(Self {
            packet_id,
            subscriptions,
        })
    }
}
