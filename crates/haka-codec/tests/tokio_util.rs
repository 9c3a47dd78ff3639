//! The `tokio-util` feature: `Codec` as a `tokio_util::codec::{Decoder, Encoder}`.

// A test fails by panicking: unwrapping is how these helpers report it.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use haka_codec::{Codec, CodecError, DecodeError, Packet, PacketId, PubAck};
use tokio_util::codec::{Decoder, Encoder};

#[test]
fn decoder_and_encoder_follow_tokio_util_contract() {
    let mut codec = Codec::new();
    let packet = Packet::PubAck(PubAck::new(PacketId::new(9).unwrap()));
    let mut buf = BytesMut::new();
    Encoder::encode(&mut codec, &packet, &mut buf).unwrap();
    Encoder::encode(&mut codec, packet.clone(), &mut buf).unwrap();
    assert_eq!(buf.len(), 8);

    let mut partial = buf.split_to(3);
    assert!(Decoder::decode(&mut codec, &mut partial).unwrap().is_none());
    partial.unsplit(buf);
    assert_eq!(
        Decoder::decode(&mut codec, &mut partial).unwrap(),
        Some(packet.clone())
    );
    assert_eq!(
        Decoder::decode(&mut codec, &mut partial).unwrap(),
        Some(packet)
    );
    assert!(Decoder::decode_eof(&mut codec, &mut partial)
        .unwrap()
        .is_none());
}

#[test]
fn errors_keep_their_kind() {
    let mut codec = Codec::new();
    let mut bad = BytesMut::from(&[0x40, 0x02, 0x00, 0x00][..]);
    assert!(matches!(
        Decoder::decode(&mut codec, &mut bad),
        Err(CodecError::Decode(DecodeError::ZeroPacketId))
    ));
    // A stream ending inside a packet is reported by tokio-util as an I/O error.
    let mut truncated = BytesMut::from(&[0x40, 0x02, 0x00][..]);
    assert!(matches!(
        Decoder::decode_eof(&mut codec, &mut truncated),
        Err(CodecError::Io(_))
    ));
}
