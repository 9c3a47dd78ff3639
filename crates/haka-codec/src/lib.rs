//! A strict, zero-copy, streaming codec for the packets of MQTT 3.1.1.
//!
//! `haka-codec` turns bytes into [`Packet`]s and back, and nothing else: it does no I/O, keeps
//! no session state and never panics on what a peer sends. It is the codec of the
//! [Haka](https://github.com/haka-mqtt/haka) MQTT client and stands on its own.
//!
//! ```
//! use bytes::BytesMut;
//! use haka_codec::{Codec, Delivery, Packet, PacketId, Publish, TopicName};
//!
//! let codec = Codec::new();
//!
//! // Encode a QoS 1 PUBLISH.
//! let publish = Publish::new(
//!     TopicName::new("sensors/room1/temperature")?,
//!     Delivery::AtLeastOnce { packet_id: PacketId::new(1)?, dup: false },
//!     &b"21.5"[..],
//! );
//! let mut wire = BytesMut::new();
//! codec.encode(&Packet::Publish(publish.clone()), &mut wire)?;
//!
//! // Decode it back: topic and payload are slices of `wire`'s buffer, not copies.
//! match codec.decode(&mut wire)? {
//!     Some(Packet::Publish(received)) => {
//!         assert_eq!(received.topic, "sensors/room1/temperature");
//!         assert_eq!(&received.payload[..], b"21.5");
//!         assert_eq!(received, publish);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert!(wire.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! - **Frame first, then parse.** [`Codec::decode`] (and [`Codec::decode_ref`]) parses only the
//!   fixed header incrementally. It returns `Ok(None)` (never an error) until the whole packet is
//!   buffered, then parses the body, with [`nom`], from exactly `remaining_length` bytes;
//!   bytes left over inside a packet are an error.
//! - **Bounded.** The incoming size limit is checked against the fixed header before the body
//!   is waited for: a forged remaining length (up to 268,435,455) is refused without
//!   reserving or allocating anything.
//! - **Zero-copy.** Strings, topics and payloads are [`bytes::Bytes`] slices of the received
//!   frame. Decoding a PUBLISH allocates nothing; the borrowed decode allocates nothing for any
//!   packet.
//! - **Parse, don't validate.** [`PacketId`] is never 0, [`QoS`] never 3, a [`TopicName`]
//!   never holds a wildcard, a [`TopicFilter`] holds them only where allowed, an
//!   [`MqttString`] is well-formed UTF-8 without U+0000 and at most 65,535 bytes. Packets are
//!   built from these types, so an invalid packet cannot be built and the encoder cannot emit
//!   one; what is left ([`EncodeError`]) depends on the size of the whole packet.
//! - **Strict.** Every rule of the specification a codec can check is enforced, each with a
//!   [`DecodeError`] variant naming it and the rule's tag beside the code.
//! - **Ready for MQTT 5.0.** [`Packet`], the packet structs and the return-code enums are
//!   `#[non_exhaustive]`, so properties, reason codes and AUTH can be added without breaking
//!   this API.
//!
//! # Owned or borrowed decoding
//!
//! Two decoders share one parser, and accept and refuse exactly the same bytes with the same
//! [`DecodeError`]s:
//!
//! - [`Codec::decode`] and [`Codec::decode_bytes`] return an owned [`Packet`]. Its strings and
//!   payload are [`bytes::Bytes`] slices of the frame: no copy, but reference counts to update,
//!   a `Vec` for the lists of SUBSCRIBE, UNSUBSCRIBE and SUBACK and a `Box` for CONNECT. Keep
//!   it as long as you like; this is what a client's session holds on to.
//! - [`Codec::decode_ref`] returns a [`PacketRef`] borrowing the input, with the bytes it used.
//!   Its strings are borrowed newtypes ([`TopicNameRef`], [`MqttStrRef`], ...) that carry what
//!   was checked and dereference to `str`; lists were checked when parsed and are read by
//!   iterators. Decoding one allocates nothing and touches no reference count, whatever the
//!   packet: choose it where a packet is handled before the buffer is reused (a broker routing
//!   a PUBLISH, a proxy, a logger). [`PacketRef::to_owned_in`] keeps one for later.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use haka_codec::{Codec, Delivery, Packet, PacketRef, Publish, TopicName};
//!
//! let codec = Codec::new();
//! let mut wire = BytesMut::new();
//! for payload in ["1", "2"] {
//!     let publish = Publish::new(TopicName::new("a/b")?, Delivery::AtMostOnce, payload);
//!     codec.encode_publish(&publish, &mut wire)?;
//! }
//! let wire: Bytes = wire.freeze();
//!
//! // Borrowed: look at each packet where it lies.
//! let mut rest = &wire[..];
//! let mut kept = Vec::new();
//! while let Some((packet, used)) = codec.decode_ref(rest)? {
//!     if let PacketRef::Publish(publish) = packet {
//!         assert_eq!(publish.topic, "a/b");
//!         if publish.payload == b"2" {
//!             // Keep this one: a slice of `wire`, not a copy.
//!             kept.push(packet.to_owned_in(&wire.slice_ref(&rest[..used])));
//!         }
//!     }
//!     rest = &rest[used..];
//! }
//!
//! // Owned: the same packets, the same checks.
//! let mut src = wire.clone();
//! let first = codec.decode_bytes(&mut src)?;
//! let second = codec.decode_bytes(&mut src)?;
//! assert!(matches!(first, Some(Packet::Publish(_))));
//! assert_eq!(second.as_ref(), kept.first());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `tokio-util`: implements `tokio_util::codec::{Decoder, Encoder}` for [`Codec`], for use
//!   with `FramedRead`/`FramedWrite`.
//! - `arbitrary`: implements `arbitrary::Arbitrary` for every packet, generating only valid
//!   packets, for structured fuzzing.

mod codec;
mod error;
mod frame;
mod packet;
mod packet_id;
mod primitive;
mod qos;
mod scan;
mod string;
mod topic;

#[cfg(feature = "tokio-util")]
pub use codec::CodecError;
pub use codec::{Codec, DEFAULT_MAX_INCOMING_PACKET_SIZE, MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError, ValueError};
pub use frame::{FixedHeader, PacketType, MAX_REMAINING_LENGTH};
pub use packet::{
    ConnAck, Connect, ConnectRef, ConnectReturnCode, Delivery, Disconnect, Filters, LastWill,
    LastWillRef, Login, LoginRef, Packet, PacketRef, PubAck, PubComp, PubRec, PubRel, Publish,
    PublishRef, ReturnCodes, SubAck, SubAckRef, Subscribe, SubscribeRef, SubscribeReturnCode,
    Subscription, SubscriptionRef, Subscriptions, UnsubAck, Unsubscribe, UnsubscribeRef,
};
pub use packet_id::PacketId;
pub use qos::QoS;
pub use string::{
    BinaryData, BinaryDataRef, MqttStrRef, MqttString, Password, PasswordRef, MAX_FIELD_LEN,
};
pub use topic::{TopicFilter, TopicFilterRef, TopicName, TopicNameRef};

#[cfg(feature = "arbitrary")]
pub use arbitrary;
