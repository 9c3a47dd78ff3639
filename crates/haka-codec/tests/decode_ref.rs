//! The borrowed decode agrees with the owned one: for any bytes, [`Codec::decode_ref`] gives
//! the same packet, takes the same number of bytes, or fails with the same error as
//! [`Codec::decode`] and [`Codec::decode_bytes`]; and [`PacketRef::to_owned_in`] gives the same
//! packet whether it shares the frame or copies.

// A test fails by panicking: unwrapping is how these helpers report it.
#![allow(clippy::unwrap_used)]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use haka_codec::{Codec, DecodeError, Packet, PacketRef};
use proptest::prelude::*;

/// What one decode step did: a packet and the bytes it took, "need more", or an error.
#[derive(Debug, PartialEq)]
enum Step {
    Packet(Packet, usize),
    Incomplete,
    Error(DecodeError),
}

/// Decodes `input` to its end (or its first error) with the owned, streaming decoder.
fn owned_steps(codec: &Codec, input: &[u8]) -> Vec<Step> {
    let mut buf = BytesMut::from(input);
    let mut steps = Vec::new();
    loop {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(packet)) => steps.push(Step::Packet(packet, before - buf.len())),
            Ok(None) => return steps_end(steps, Step::Incomplete),
            Err(e) => return steps_end(steps, Step::Error(e)),
        }
    }
}

/// The same with the owned decoder of immutable buffers.
fn bytes_steps(codec: &Codec, input: &[u8]) -> Vec<Step> {
    let mut src = Bytes::copy_from_slice(input);
    let mut steps = Vec::new();
    loop {
        let before = src.len();
        match codec.decode_bytes(&mut src) {
            Ok(Some(packet)) => steps.push(Step::Packet(packet, before - src.len())),
            Ok(None) => return steps_end(steps, Step::Incomplete),
            Err(e) => return steps_end(steps, Step::Error(e)),
        }
    }
}

/// The same with the borrowed decoder, each packet turned into an owned one both ways.
fn ref_steps(codec: &Codec, input: &[u8]) -> Vec<Step> {
    let shared = Bytes::copy_from_slice(input);
    let mut rest = &shared[..];
    let mut steps = Vec::new();
    loop {
        match codec.decode_ref(rest) {
            Ok(Some((packet, used))) => {
                assert!(used > 0 && used <= rest.len());
                let frame = shared.slice_ref(&rest[..used]);
                let in_frame = packet.to_owned_in(&frame);
                let copied = Packet::from(packet);
                assert_eq!(in_frame, copied, "sharing and copying give the same packet");
                steps.push(Step::Packet(in_frame, used));
                rest = &rest[used..];
            }
            Ok(None) => return steps_end(steps, Step::Incomplete),
            Err(e) => return steps_end(steps, Step::Error(e)),
        }
    }
}

fn steps_end(mut steps: Vec<Step>, last: Step) -> Vec<Step> {
    steps.push(last);
    steps
}

fn codecs() -> [Codec; 2] {
    [Codec::new(), Codec::new().with_max_incoming_packet_size(64)]
}

/// Valid packets, built by the crate's own `Arbitrary` implementation from random bytes.
fn packet() -> impl Strategy<Value = Packet> {
    prop::collection::vec(any::<u8>(), 0..600).prop_filter_map("not enough entropy", |raw| {
        Packet::arbitrary_take_rest(Unstructured::new(&raw)).ok()
    })
}

fn encode_all(packets: &[Packet]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for p in packets {
        Codec::new().encode(p, &mut buf).unwrap();
    }
    buf.to_vec()
}

fn assert_agree(input: &[u8]) -> Result<(), TestCaseError> {
    for codec in codecs() {
        let owned = owned_steps(&codec, input);
        prop_assert_eq!(&bytes_steps(&codec, input), &owned);
        prop_assert_eq!(&ref_steps(&codec, input), &owned, "input {:02x?}", input);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn any_bytes_decode_the_same_borrowed_and_owned(
        input in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        assert_agree(&input)?;
    }

    #[test]
    fn any_bytes_after_a_plausible_header_decode_the_same(
        first in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        // Random bytes rarely make a whole packet: give them a fixed header of the right
        // length, so that the body parsers see them.
        let mut input = vec![first, body.len() as u8];
        input.extend_from_slice(&body);
        assert_agree(&input)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn mutated_valid_packets_decode_the_same(
        packets in prop::collection::vec(packet(), 1..4),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        // Near-valid input: valid packets with a few bytes changed, where most rules are
        // broken one at a time.
        let mut input = encode_all(&packets);
        for (index, byte) in mutations {
            let i = index.index(input.len());
            input[i] = byte;
        }
        assert_agree(&input)?;
    }

    #[test]
    fn valid_packets_decode_the_same_at_every_split(
        packets in prop::collection::vec(packet(), 1..4),
    ) {
        let wire = encode_all(&packets);
        let whole = ref_steps(&Codec::new(), &wire);
        let expected: Vec<Step> = packets
            .iter()
            .map(|p| {
                let len = Codec::new().encoded_len(p).unwrap();
                Step::Packet(p.clone(), len)
            })
            .chain([Step::Incomplete])
            .collect();
        prop_assert_eq!(&whole, &expected);
        for split in 0..=wire.len() {
            let prefix = &wire[..split];
            prop_assert_eq!(ref_steps(&Codec::new(), prefix), owned_steps(&Codec::new(), prefix));
        }
    }
}

#[test]
fn borrowed_lists_read_back_what_was_sent() {
    use haka_codec::{
        PacketId, QoS, SubAck, Subscribe, SubscribeReturnCode, Subscription, TopicFilter,
        Unsubscribe,
    };
    let id = PacketId::new(9).unwrap();
    let filters = ["a/+", "caf\u{e9}/#", "+", "x//y"];
    let subscribe = Subscribe::new(
        id,
        filters
            .iter()
            .zip([
                QoS::AtMostOnce,
                QoS::AtLeastOnce,
                QoS::ExactlyOnce,
                QoS::AtLeastOnce,
            ])
            .map(|(f, q)| Subscription::new(TopicFilter::new(*f).unwrap(), q))
            .collect(),
    )
    .unwrap();
    let unsubscribe = Unsubscribe::new(
        id,
        filters
            .iter()
            .map(|f| TopicFilter::new(*f).unwrap())
            .collect(),
    )
    .unwrap();
    let codes = vec![
        SubscribeReturnCode::Success(QoS::ExactlyOnce),
        SubscribeReturnCode::Failure,
    ];
    let suback = SubAck::new(id, codes.clone()).unwrap();
    let wire = encode_all(&[subscribe.clone().into(), unsubscribe.into(), suback.into()]);
    let codec = Codec::new();

    let (PacketRef::Subscribe(s), used) = codec.decode_ref(&wire).unwrap().unwrap() else {
        panic!("a SUBSCRIBE")
    };
    assert_eq!(s.len(), 4);
    assert_eq!(s.subscriptions().len(), 4);
    let read: Vec<_> = s
        .subscriptions()
        .map(|s| (s.filter.as_str(), s.qos))
        .collect();
    let sent: Vec<_> = subscribe
        .subscriptions()
        .iter()
        .map(|s| (s.filter.as_str(), s.qos))
        .collect();
    assert_eq!(read, sent);
    let rest = &wire[used..];

    let (PacketRef::Unsubscribe(u), used) = codec.decode_ref(rest).unwrap().unwrap() else {
        panic!("an UNSUBSCRIBE")
    };
    assert_eq!(u.filters().map(|f| f.as_str()).collect::<Vec<_>>(), filters);
    let rest = &rest[used..];

    let (PacketRef::SubAck(a), _) = codec.decode_ref(rest).unwrap().unwrap() else {
        panic!("a SUBACK")
    };
    assert_eq!(a.return_codes().collect::<Vec<_>>(), codes);
    // Debug output lists the entries.
    assert!(format!("{s:?}").contains("caf\u{e9}/#"));
}
