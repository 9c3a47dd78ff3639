//! SUBSCRIBE (section 3.8): the client asks for messages matching topic filters.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::{
    primitive::{
        invalid, length_prefixed, packet_id, parse_body, put_length_prefixed, topic_filter, u8,
    },
    DecodeError, MqttStrRef, PacketId, PacketType, QoS, TopicFilter, TopicFilterRef, ValueError,
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

/// SUBSCRIBE borrowed from the bytes it was decoded from, by
/// [`Codec::decode_ref`](crate::Codec::decode_ref): the counterpart of [`Subscribe`].
///
/// Every filter and requested QoS was checked when the packet was parsed, by the same rules
/// as the owned decode; [`SubscribeRef::subscriptions`] then reads them from the packet's
/// bytes as it goes, without allocating.
///
/// ```
/// # use haka_codec::{Codec, PacketId, PacketRef, QoS, Subscribe, Subscription, TopicFilter};
/// let subscribe = Subscribe::new(
///     PacketId::new(3)?,
///     vec![
///         Subscription::new(TopicFilter::new("a/+")?, QoS::AtLeastOnce),
///         Subscription::new(TopicFilter::new("b/#")?, QoS::AtMostOnce),
///     ],
/// )?;
/// let mut wire = bytes::BytesMut::new();
/// Codec::new().encode(&subscribe.into(), &mut wire)?;
///
/// let Some((PacketRef::Subscribe(s), _)) = Codec::new().decode_ref(&wire)? else {
///     panic!("a whole SUBSCRIBE")
/// };
/// assert_eq!(s.len(), 2);
/// let filters: Vec<(&str, QoS)> = s.subscriptions().map(|s| (s.filter.as_str(), s.qos)).collect();
/// assert_eq!(filters, [("a/+", QoS::AtLeastOnce), ("b/#", QoS::AtMostOnce)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SubscribeRef<'a> {
    /// Identifies the request until its SUBACK.
    pub packet_id: PacketId,
    /// The payload: one or more validated entries, each a filter and its options byte.
    entries: &'a [u8],
    /// How many entries `entries` holds.
    len: usize,
}

/// One topic filter of a borrowed SUBSCRIBE with its requested QoS: the counterpart of
/// [`Subscription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SubscriptionRef<'a> {
    /// The filter.
    pub filter: TopicFilterRef<'a>,
    /// The highest QoS at which the server may send matching messages.
    pub qos: QoS,
}

impl<'a> SubscribeRef<'a> {
    /// The subscriptions, in the order they were requested; never empty.
    pub fn subscriptions(&self) -> Subscriptions<'a> {
        Subscriptions {
            rest: self.entries,
            len: self.len,
        }
    }

    /// Number of subscriptions; never 0.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a SUBSCRIBE holds at least one subscription [MQTT-3.8.3-3].
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The owned SUBSCRIBE, whose filters share `frame` when they lie inside it (as they do
    /// in a packet decoded from `frame`) and are copied otherwise.
    pub fn to_owned_in(&self, frame: &Bytes) -> Subscribe {
        // `len` counts entries that were parsed, not a length read from the wire.
        let mut subscriptions = Vec::with_capacity(self.len);
        subscriptions.extend(self.subscriptions().map(|s| Subscription {
            filter: s.filter.to_owned_in(frame),
            qos: s.qos,
        }));
        Subscribe {
            packet_id: self.packet_id,
            subscriptions,
        }
    }

    /// Parses the whole `body` of a SUBSCRIBE, checking every entry.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::Subscribe, body, |i| {
            let (entries, packet_id) = packet_id(i)?;
            let (mut i, mut len) = (entries, 0);
            while !i.is_empty() {
                let (rest, _filter) = topic_filter(i)?;
                let (rest, options) = u8(rest)?;
                // [MQTT-3.8.3-4] The Server MUST treat a SUBSCRIBE packet as malformed and
                // close the Network Connection if any of Reserved bits in the payload are
                // non-zero, or QoS is not 0,1 or 2.
                if QoS::from_u8(options).is_err() {
                    return invalid(DecodeError::InvalidSubscriptionOptions(options));
                }
                len += 1;
                i = rest;
            }
            // [MQTT-3.8.3-3] The payload of a SUBSCRIBE packet MUST contain at least one Topic
            // Filter / QoS pair.
            if len == 0 {
                return invalid(DecodeError::EmptySubscribe);
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

impl fmt::Debug for SubscribeRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribeRef")
            .field("packet_id", &self.packet_id)
            .field("subscriptions", &self.subscriptions())
            .finish()
    }
}

/// The subscriptions of a [`SubscribeRef`], read from the packet's bytes as they are iterated.
#[derive(Clone)]
pub struct Subscriptions<'a> {
    rest: &'a [u8],
    len: usize,
}

impl<'a> Iterator for Subscriptions<'a> {
    type Item = SubscriptionRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<SubscriptionRef<'a>> {
        // The entries were checked when the packet was parsed; reading them again cannot fail,
        // and would end the iteration rather than panic if it did.
        let (rest, filter) = length_prefixed(self.rest).ok()?;
        let (&options, rest) = rest.split_first()?;
        let filter = MqttStrRef::from_wire(filter).ok()?;
        let qos = QoS::from_u8(options).ok()?;
        self.rest = rest;
        self.len = self.len.saturating_sub(1);
        Some(SubscriptionRef {
            filter: TopicFilterRef::from_valid(filter.as_str()),
            qos,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl ExactSizeIterator for Subscriptions<'_> {}

impl std::iter::FusedIterator for Subscriptions<'_> {}

impl fmt::Debug for Subscriptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
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
