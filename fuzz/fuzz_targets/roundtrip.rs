//! Structured round trip: any valid packet, encoded, decodes to itself, whether it arrives
//! whole or split in two reads, and its vectored encoding is the same bytes.

#![no_main]

use bytes::BytesMut;
use haka_codec::{Codec, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<Packet>, u16)| {
    let (packets, split) = input;
    let codec = Codec::new().with_max_incoming_packet_size(haka_codec::MAX_PACKET_SIZE);
    let mut wire = BytesMut::new();
    for packet in &packets {
        let before = wire.len();
        codec
            .encode(packet, &mut wire)
            .expect("a valid packet encodes");
        assert_eq!(
            wire.len() - before,
            codec.encoded_len(packet).expect("a length")
        );
        if let Packet::Publish(publish) = packet {
            let mut head = BytesMut::new();
            codec
                .encode_publish_head(publish, &mut head)
                .expect("a head");
            head.extend_from_slice(&publish.payload);
            assert_eq!(head[..], wire[before..]);
        }
    }
    let split = usize::from(split) % (wire.len() + 1);
    let mut buf = BytesMut::from(&wire[..split]);
    let mut decoded = Vec::with_capacity(packets.len());
    while let Some(packet) = codec.decode(&mut buf).expect("valid bytes") {
        decoded.push(packet);
    }
    buf.extend_from_slice(&wire[split..]);
    while let Some(packet) = codec.decode(&mut buf).expect("valid bytes") {
        decoded.push(packet);
    }
    assert!(buf.is_empty());
    assert_eq!(decoded, packets);
});
