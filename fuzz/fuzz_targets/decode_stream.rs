//! Raw bytes from the network into the streaming decoder.
//!
//! The first byte of the input chooses how the rest is cut into reads. The decoder must never
//! panic, never buffer past its limit, and whatever it decodes must encode to bytes that decode
//! to an equal packet.

#![no_main]

use bytes::BytesMut;
use haka_codec::Codec;
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
    let mut buf = BytesMut::new();
    for read in rest.chunks(chunk) {
        buf.extend_from_slice(read);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(packet)) => {
                    let mut wire = BytesMut::new();
                    codec.encode(&packet, &mut wire).expect("a decoded packet encodes");
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
