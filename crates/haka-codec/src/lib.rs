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
//! - **Frame first, then parse.** [`Codec::decode`] parses only the fixed header
//!   incrementally. It returns `Ok(None)` (never an error) until the whole packet is
//!   buffered, then parses the body, with [`nom`], from exactly `remaining_length` bytes;
//!   bytes left over inside a packet are an error.
//! - **Bounded.** The incoming size limit is checked against the fixed header before the body
//!   is waited for: a forged remaining length (up to 268,435,455) is refused without
//!   reserving or allocating anything.
//! - **Zero-copy.** Strings, topics and payloads are [`bytes::Bytes`] slices of the received
//!   frame. Decoding a PUBLISH allocates nothing.
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
mod string;
mod topic;

#[cfg(feature = "tokio-util")]
pub use codec::CodecError;
pub use codec::{Codec, DEFAULT_MAX_INCOMING_PACKET_SIZE, MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError, ValueError};
pub use frame::{FixedHeader, PacketType, MAX_REMAINING_LENGTH};
pub use packet::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Disconnect, LastWill, Login, Packet, PubAck,
    PubComp, PubRec, PubRel, Publish, SubAck, Subscribe, SubscribeReturnCode, Subscription,
    UnsubAck, Unsubscribe,
};
pub use packet_id::PacketId;
pub use qos::QoS;
pub use string::{BinaryData, MqttString, Password, MAX_FIELD_LEN};
pub use topic::{TopicFilter, TopicName};

#[cfg(feature = "arbitrary")]
pub use arbitrary;
