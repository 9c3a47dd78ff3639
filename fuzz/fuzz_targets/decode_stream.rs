//! Raw bytes from the network into the streaming decoder.
//!
//! The first byte of the input chooses how the rest is cut into reads. The decoder must never
//! panic, never buffer past its limit, and whatever it decodes must encode to bytes that decode
//! to an equal packet. The borrowed decoder, run on the same bytes, must agree with it packet
//! for packet: the same packet, the same number of bytes taken, the same error.

#![no_main]

use bytes::{Bytes, BytesMut};
use haka_codec::{Codec, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    // A small limit so that the size check is exercised, with the protocol maximum as well.
    let codec = Codec::new().with_max_incoming_packet_size(if chunk % 2 == 0 {
        4096
    } else {
        haka_codec::MAX_PACKET_SIZE
    });
    borrowed_agrees(&codec, rest);
    let mut buf = BytesMut::new();
    for read in rest.chunks(chunk) {
        buf.extend_from_slice(read);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(packet)) => {
                    let mut wire = BytesMut::new();
                    codec
                        .encode(&packet, &mut wire)
                        .expect("a decoded packet encodes");
                    let again = Codec::new()
                        .with_max_incoming_packet_size(haka_codec::MAX_PACKET_SIZE)
                        .decode(&mut wire)
                        .expect("an encoded packet decodes")
                        .expect("an encoded packet is whole");
                    assert_eq!(packet, again);
                    assert!(wire.is_empty());
                }
                Ok(None) => break,
                // The stream is out of sync: a connection would close here.
                Err(_) => return,
            }
        }
        assert!(buf.len() <= codec.max_incoming_packet_size() + chunk);
    }
});

/// Decodes all of `input` with the owned decoder and with the borrowed one, and checks that
/// they agree at every step.
fn borrowed_agrees(codec: &Codec, input: &[u8]) {
    let shared = Bytes::copy_from_slice(input);
    let mut owned = BytesMut::from(input);
    let mut rest = &shared[..];
    loop {
        let before = owned.len();
        let expected = codec
            .decode(&mut owned)
            .map(|p| p.map(|p| (p, before - owned.len())));
        let borrowed = codec.decode_ref(rest).map(|p| {
            p.map(|(packet, used)| {
                // Sharing the frame and copying give the same packet.
                let in_frame = packet.to_owned_in(&shared.slice_ref(&rest[..used]));
                assert_eq!(in_frame, Packet::from(packet));
                (in_frame, used)
            })
        });
        assert_eq!(borrowed, expected, "decode_ref and decode disagree");
        match borrowed {
            Ok(Some((_, used))) => rest = &rest[used..],
            Ok(None) | Err(_) => return,
        }
    }
}
