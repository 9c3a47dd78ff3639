//! Hand-written MQTT 3.1.1 framing and encoding, the least a benchmark peer needs.
//!
//! The [ack-only server](crate::ack_server), the hand-written reference client and the
//! counting subscriber of the client benchmark (`--bin clients`) speak MQTT with these few
//! functions rather than a codec, so that they cost as little as a loop over bytes can: the
//! figures they produce are the floor the real clients are compared with. Nothing here
//! validates more than it must to find packet boundaries and packet identifiers.
//!
//! ```
//! use haka_benches::wire;
//!
//! let mut out = Vec::new();
//! wire::publish(&mut out, "t", 1, 7, b"hi");
//! assert_eq!(out, [0x32, 7, 0, 1, b't', 0, 7, b'h', b'i']);
//! let (header, body) = wire::frame(&out).expect("well formed").expect("whole");
//! assert_eq!((header, body.len()), (2, 7));
//! ```

use std::io;

/// Packet types (the high nibble of the first byte).
pub mod kind {
    /// CONNECT.
    pub const CONNECT: u8 = 1;
    /// CONNACK.
    pub const CONNACK: u8 = 2;
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
    /// PUBREC.
    pub const PUBREC: u8 = 5;
    /// PUBREL.
    pub const PUBREL: u8 = 6;
    /// PUBCOMP.
    pub const PUBCOMP: u8 = 7;
    /// SUBSCRIBE.
    pub const SUBSCRIBE: u8 = 8;
    /// SUBACK.
    pub const SUBACK: u8 = 9;
    /// UNSUBSCRIBE.
    pub const UNSUBSCRIBE: u8 = 10;
    /// UNSUBACK.
    pub const UNSUBACK: u8 = 11;
    /// PINGREQ.
    pub const PINGREQ: u8 = 12;
    /// PINGRESP.
    pub const PINGRESP: u8 = 13;
    /// DISCONNECT.
    pub const DISCONNECT: u8 = 14;
}

/// The next whole packet at the start of `bytes`: the length of its fixed header and its
/// body; `None` until all of it has arrived.
pub fn frame(bytes: &[u8]) -> io::Result<Option<(usize, &[u8])>> {
    let mut length = 0usize;
    for i in 0..4 {
        let Some(&byte) = bytes.get(1 + i) else {
            return Ok(None);
        };
        length |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let header = 2 + i;
            return Ok(bytes
                .get(header..header + length)
                .map(|body| (header, body)));
        }
    }
    // [MQTT-2.2.3] the Remaining Length is at most four bytes.
    Err(malformed("remaining length of more than four bytes"))
}

/// The big-endian `u16` at `at` in `body`: a packet identifier or a string length.
pub fn u16_at(body: &[u8], at: usize) -> io::Result<u16> {
    match body.get(at..at + 2) {
        Some(&[high, low]) => Ok(u16::from_be_bytes([high, low])),
        _ => Err(malformed("packet shorter than its fields")),
    }
}

/// An error for bytes that are not the MQTT they should be.
pub fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed MQTT: {what}"),
    )
}

/// Appends a fixed header: first byte, then the remaining length.
fn header(out: &mut Vec<u8>, first: u8, mut length: usize) {
    out.push(first);
    loop {
        let mut byte = (length & 0x7f) as u8;
        length >>= 7;
        if length > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if length == 0 {
            break;
        }
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).expect("benchmark strings are short");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

/// Appends a CONNECT for `client_id`: MQTT 3.1.1, clean session, keep alive 60 s.
pub fn connect(out: &mut Vec<u8>, client_id: &str) {
    header(out, kind::CONNECT << 4, 10 + 2 + client_id.len());
    string(out, b"MQTT");
    // Level 4 (3.1.1), clean session, keep alive 60 s.
    out.extend_from_slice(&[4, 0x02, 0, 60]);
    string(out, client_id.as_bytes());
}

/// Appends a PUBLISH of `payload` to `topic` at `qos` (0, 1 or 2) with packet identifier
/// `id` (ignored at QoS 0); returns where the identifier is in `out`, to patch it in a
/// copy.
pub fn publish(out: &mut Vec<u8>, topic: &str, qos: u8, id: u16, payload: &[u8]) -> usize {
    let id_len = if qos > 0 { 2 } else { 0 };
    header(
        out,
        (kind::PUBLISH << 4) | (qos << 1),
        2 + topic.len() + id_len + payload.len(),
    );
    string(out, topic.as_bytes());
    let at = out.len();
    if qos > 0 {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(payload);
    at
}

/// Appends a SUBSCRIBE of one `filter` at `qos` with packet identifier `id`.
pub fn subscribe(out: &mut Vec<u8>, id: u16, filter: &str, qos: u8) {
    header(out, (kind::SUBSCRIBE << 4) | 0x02, 2 + 2 + filter.len() + 1);
    out.extend_from_slice(&id.to_be_bytes());
    string(out, filter.as_bytes());
    out.push(qos);
}

/// Appends a two-byte acknowledgement of type `kind` (PUBACK, PUBREC, PUBREL, PUBCOMP,
/// UNSUBACK) for packet identifier `id`.
pub fn ack(out: &mut Vec<u8>, kind: u8, id: u16) {
    // [MQTT-3.6.1-1] PUBREL has the flags 0010.
    let flags = if kind == self::kind::PUBREL { 0x02 } else { 0 };
    let id = id.to_be_bytes();
    out.extend_from_slice(&[(kind << 4) | flags, 2, id[0], id[1]]);
}

/// Appends a DISCONNECT.
pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[kind::DISCONNECT << 4, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use haka_codec::{Codec, Delivery, Packet};

    fn decode(bytes: &[u8]) -> Packet {
        let mut buffer = bytes::BytesMut::from(bytes);
        let packet = Codec::new()
            .decode(&mut buffer)
            .expect("valid MQTT")
            .expect("a whole packet");
        assert!(buffer.is_empty(), "one packet, nothing after it");
        packet
    }

    #[test]
    fn frames_wait_for_whole_packets() {
        assert_eq!(frame(&[0x30]).expect("valid"), None);
        assert_eq!(frame(&[0x30, 3, 0, 1]).expect("valid"), None);
        let packet = [0x30, 3, 0, 1, b't', 0xff];
        assert_eq!(frame(&packet).expect("valid"), Some((2, &[0, 1, b't'][..])));
        let mut long = Vec::new();
        publish(&mut long, "t", 0, 0, &[0; 200]);
        assert_eq!(
            frame(&long).expect("valid").map(|(h, b)| (h, b.len())),
            Some((3, 203))
        );
        assert!(frame(&[0x30, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
    }

    #[test]
    fn encodes_what_haka_codec_decodes() {
        let mut out = Vec::new();
        connect(&mut out, "bench-1");
        let Packet::Connect(c) = decode(&out) else {
            panic!("not a CONNECT")
        };
        assert_eq!(c.client_id.as_str(), "bench-1");
        assert!(c.clean_session);

        for (qos, id) in [(0, 0), (1, 7), (2, 300)] {
            out.clear();
            let at = publish(&mut out, "a/b", qos, id, &[1; 1024]);
            let Packet::Publish(p) = decode(&out) else {
                panic!("not a PUBLISH")
            };
            assert_eq!(p.topic.as_str(), "a/b");
            assert_eq!(p.payload.len(), 1024);
            match p.delivery {
                Delivery::AtMostOnce => assert_eq!(qos, 0),
                Delivery::AtLeastOnce { packet_id, .. }
                | Delivery::ExactlyOnce { packet_id, .. } => {
                    assert_eq!(packet_id.get(), id);
                    assert_eq!(u16_at(&out, at).expect("in range"), id);
                }
            }
        }

        out.clear();
        subscribe(&mut out, 3, "a/#", 1);
        assert!(matches!(decode(&out), Packet::Subscribe(_)));
        out.clear();
        ack(&mut out, kind::PUBREL, 9);
        assert!(matches!(decode(&out), Packet::PubRel(_)));
        out.clear();
        disconnect(&mut out);
        assert!(matches!(decode(&out), Packet::Disconnect(_)));
    }
}
