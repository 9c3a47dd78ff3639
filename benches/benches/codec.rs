//! `haka-codec` against other MQTT 3.1.1 codecs: rumqttc (`mqttbytes::v4`), mqttrs and
//! mqtt-protocol, with a plain copy of the same bytes (`memcpy`) as the floor.
//!
//! Every group holds one packet (or one stream) and one figure per codec, so each figure has
//! its peers beside it. Before a group is measured, every peer is checked to encode the same
//! bytes as haka, or to decode the same input to the same packet, so the figures compare like
//! with like.
//!
//! Timing model, the same for every peer of a group:
//!
//! - decode of one packet: the input buffer is prepared outside the timed region (a fresh
//!   `BytesMut` for the streaming decoders, which consume it), and the decoded packet is
//!   dropped outside it too, in batches of at most 256 packets and about 1 MiB of input;
//! - encode: into a buffer that is reused, cleared before each packet and large enough from
//!   the start, so no figure includes a growth of the buffer; every encoder's buffer starts
//!   half a page after a page boundary, and the payload every PUBLISH encoder copies at one
//!   (see [`placed_vec`]);
//! - the mixed stream: the whole stream is decoded packet after packet, each packet dropped
//!   right after it is decoded, as a client would.
//!
//! haka is measured three ways when decoding: `haka` (`Codec::decode` from a `BytesMut`),
//! `haka_bytes` (`Codec::decode_bytes` from a shared `Bytes`) and `haka_ref` (`Codec::decode_ref`,
//! a packet borrowing the input, like mqttrs's).
//!
//! Run with `cargo bench -p haka-benches --bench codec`; `cargo test -p haka-benches --benches`
//! runs every routine once, with the checks, as a smoke test.

use std::{
    hint::black_box,
    io::{Cursor, IoSlice},
};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use criterion::{
    criterion_group, criterion_main, measurement::WallTime, BatchSize, BenchmarkGroup, Criterion,
    Throughput,
};
use haka_benches::{self as input, PayloadSize};
use haka_codec::{Codec, Packet, PacketRef, TopicName, DEFAULT_MAX_INCOMING_PACKET_SIZE};
use mqtt::{Decodable as _, Encodable as _};
use rumqttc::mqttbytes::{v4 as rumqtt, QoS as RumqttQoS};

/// rumqttc's incoming limit, the same as haka's default.
const RUMQTT_MAX: usize = DEFAULT_MAX_INCOMING_PACKET_SIZE;

/// How many inputs are prepared (and outputs kept) per timed batch: at most 256, and at most
/// about 1 MiB of input.
///
/// Enough iterations to spread the timer's cost (at least 15 for the largest packet), few
/// enough that a batch stays within the caches, the way a packet just read from a socket is.
/// Larger batches measure the memory system instead of the codec: criterion keeps every output
/// of a batch in a `Vec`, and with tens of thousands of outputs that `Vec` is fresh memory whose
/// page faults land in the timed region, in proportion to the size of each peer's packet type.
fn batch(input_len: usize) -> BatchSize {
    let n = ((1usize << 20) / input_len.max(1)).clamp(1, 256);
    BatchSize::NumIterations(n as u64)
}

// ---------------------------------------------------------------------------------------------
// Placement: where the copied bytes lie.
//
// How fast a copy of a KiB runs depends on where its source and its destination fall: with
// buffers wherever the allocator put them, the same `memcpy` of 1,056 bytes measured 11 to
// 30 ns from one run to the next on one machine, and each encoder's figure moved with it.
// Within a cache line, the offset decides how many loads and stores straddle two lines; within
// a page, the distance from source to destination decides whether loads wait on earlier
// stores to the same offset of another page (4 KiB aliasing): with sources and destinations
// only on line boundaries, the 1 KiB encodes of haka and of mqtt-protocol measured either
// about 15 or about 22 ns from one run of the same binary to the next, on another machine.
// So every source (each encoder's payload, the `memcpy`'s input) starts at the beginning of
// a page, and every destination (each encoder's buffer, the `memcpy`'s output) half a page
// further on: every encoder copies its payload to the same offset within a line (after the
// same 31 bytes of head) and the same distance from its source within a page, and neither
// where the allocator put a buffer nor the run decides the figure.
//
// The `memcpy` of an encode group moves the packet's bytes between those same places: it
// copies into the encoders' destination from a source whose payload part starts where their
// payload does (the start of a page), the head's bytes just before it. A payload that starts
// a line and lands 32 bytes into one moves at another cost than one that starts and lands on
// line boundaries: with 64-byte vectors (glibc's AVX-512 copy), every load or every store of
// it straddles two lines, and on one Intel guest a `memcpy` of 1,024 bytes took 12.7 ns that
// way against 9.9 ns for 1,056 bytes from the start of a page to the start of another.
// Copying the packet from the start of a page measured the floor under conditions no encoder
// is given.
//
// The input of a single-packet decode is placed the same way, at the start of a page. A
// decode reads its input against the stores the timing loop makes (the outputs it keeps),
// and where the one falls against the other moves the figure too: `decode_ref` of the
// 42-byte CONNECT measured about 17 ns with the packet at some offsets within a line and about
// 30 ns at others, mqttrs's decode 40 to 45 ns (docs/benchmarks.md has the sweep). The mixed
// stream, whose packets lie at every offset, shows the average.

/// A page, the unit within which source and destination are placed.
const PAGE: usize = 4096;

/// Where sources start within a page.
const SOURCE: usize = 0;

/// Where destinations start within a page: half a page from any source, as far as a page
/// allows from the offsets where a load would wait on a store.
const DESTINATION: usize = PAGE / 2;

/// Where the topics the encoders read start within a page: away from the sources and from
/// the destinations of every packet up to 1 KiB. Left where the allocator put it, a topic
/// lies at another offset in each run (seen: 256, 1344, 2608, 3664), sometimes within the
/// destination's range, where its loads may wait on the stores of the packet before.
const TOPIC_SOURCE: usize = PAGE - PAGE / 8;

/// Whether `ptr` lies at offset `at` within its page.
fn placed_at(ptr: *const u8, at: usize) -> bool {
    ptr as usize % PAGE == at
}

/// How many bytes from `ptr` to the next address at offset `at` within a page.
fn skip_to(ptr: *const u8, at: usize) -> usize {
    (PAGE + at - ptr as usize % PAGE) % PAGE
}

/// `bytes` copied to memory that starts where sources start.
fn placed_bytes(bytes: &[u8]) -> Bytes {
    placed_bytes_at(bytes, SOURCE)
}

/// `bytes` copied to memory that starts at offset `at` within a page.
fn placed_bytes_at(bytes: &[u8], at: usize) -> Bytes {
    let mut vec = Vec::<u8>::with_capacity(bytes.len() + PAGE);
    let skip = skip_to(vec.as_ptr(), at);
    vec.resize(skip, 0);
    vec.extend_from_slice(bytes);
    let placed = Bytes::from(vec).slice(skip..);
    assert!(placed_at(placed.as_ptr(), at));
    placed
}

/// An empty buffer with room for `capacity` bytes, starting where destinations start.
fn placed_bytes_mut(capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity + PAGE);
    let skip = skip_to(buf.as_ptr(), DESTINATION);
    buf.put_bytes(0, skip);
    buf.advance(skip);
    assert!(buf.capacity() >= capacity && placed_at(buf.as_ptr(), DESTINATION));
    buf
}

/// An empty `Vec` with room for `capacity` bytes whose allocation starts at offset `at`
/// within a page. A `Vec` cannot start inside its allocation, so allocations are made (and
/// kept, so that the allocator moves on) until one falls there; their sizes step by 16 bytes
/// (the allocator's granule), so that successive ones fall at different offsets.
fn placed_vec(capacity: usize, at: usize) -> Vec<u8> {
    heap_only();
    let mut misplaced = Vec::new();
    for attempt in 0..16 * PAGE {
        let vec = Vec::<u8>::with_capacity(capacity.max(1) + 16 * (attempt % (PAGE / 16)));
        if placed_at(vec.as_ptr(), at) {
            return vec;
        }
        misplaced.push(vec);
    }
    panic!("no allocation of {capacity} bytes started at offset {at} of a page");
}

/// Makes glibc serve every allocation from its heap, where successive sizes land at different
/// offsets within a page.
///
/// Above its mmap threshold (128 KiB at first, raised when such a block is freed) glibc maps
/// each block afresh, 16 bytes into a page whatever its size, so [`placed_vec`] could place a
/// block that large only after some earlier free had happened to raise the threshold: the
/// 150,700-byte buffer of the stream's `memcpy` was placed in every optimized run and never
/// in the test-mode run of the `--all-features` debug build.
fn heap_only() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: `mallopt` sets a tuning parameter of the allocator and touches no
            // block; the benchmarks' threads have not started.
            #[allow(unsafe_code)]
            let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20) };
            assert_eq!(set, 1, "mallopt(M_MMAP_THRESHOLD) refused");
        });
    }
}

/// `text` in a `String` whose bytes start where topics start.
fn placed_string(text: &str) -> String {
    let mut vec = placed_vec(text.len(), TOPIC_SOURCE);
    vec.extend_from_slice(text.as_bytes());
    String::from_utf8(vec).expect("the text was a str")
}

/// A zeroed slice of `len` bytes starting where destinations start, inside `region`.
fn placed_slice(region: &mut Vec<u8>, len: usize) -> &mut [u8] {
    region.clear();
    region.resize(len + PAGE, 0);
    let skip = skip_to(region.as_ptr(), DESTINATION);
    &mut region[skip..skip + len]
}

// ---------------------------------------------------------------------------------------------
// What a decoded packet boils down to, to compare the peers' results with each other.

/// The fields the benchmarks check on a decoded PUBLISH.
#[derive(Debug, PartialEq, Eq)]
struct PublishView {
    topic: String,
    qos: u8,
    packet_id: Option<u16>,
    payload: Vec<u8>,
}

fn haka_publish_view(packet: &Packet) -> PublishView {
    let Packet::Publish(p) = packet else {
        panic!("haka decoded {packet:?}, not a PUBLISH")
    };
    PublishView {
        topic: p.topic.to_string(),
        qos: p.qos() as u8,
        packet_id: p.packet_id().map(|id| id.get()),
        payload: p.payload.to_vec(),
    }
}

fn haka_ref_publish_view(packet: &PacketRef<'_>) -> PublishView {
    let PacketRef::Publish(p) = packet else {
        panic!("haka decoded {packet:?}, not a PUBLISH")
    };
    PublishView {
        topic: p.topic.to_string(),
        qos: p.qos() as u8,
        packet_id: p.packet_id().map(|id| id.get()),
        payload: p.payload.to_vec(),
    }
}

fn rumqttc_publish_view(packet: &rumqtt::Packet) -> PublishView {
    let rumqtt::Packet::Publish(p) = packet else {
        panic!("rumqttc decoded {packet:?}, not a PUBLISH")
    };
    PublishView {
        topic: p.topic.clone(),
        qos: p.qos as u8,
        packet_id: (p.qos != RumqttQoS::AtMostOnce).then_some(p.pkid),
        payload: p.payload.to_vec(),
    }
}

fn mqttrs_publish_view(packet: &mqttrs::Packet<'_>) -> PublishView {
    let mqttrs::Packet::Publish(p) = packet else {
        panic!("mqttrs decoded {packet:?}, not a PUBLISH")
    };
    PublishView {
        topic: p.topic_name.to_owned(),
        qos: p.qospid.qos() as u8,
        packet_id: p.qospid.pid().map(mqttrs::Pid::get),
        payload: p.payload.to_vec(),
    }
}

fn mqtt_protocol_publish_view(packet: &mqtt::packet::VariablePacket) -> PublishView {
    let mqtt::packet::VariablePacket::PublishPacket(p) = packet else {
        panic!("mqtt-protocol decoded {packet:?}, not a PUBLISH")
    };
    let (qos, packet_id) = p.qos().split();
    PublishView {
        topic: p.topic_name().to_owned(),
        qos: qos as u8,
        packet_id,
        payload: p.payload().to_vec(),
    }
}

/// What the benchmarks check of a decoded stream: enough to tell a lost, repeated or
/// misparsed packet.
#[derive(Debug, Default, PartialEq, Eq)]
struct StreamView {
    packets: usize,
    publishes: usize,
    payload_bytes: usize,
    /// Sum of every packet identifier in the stream.
    packet_ids: u64,
    /// Sum of the packet types (1 to 14), so that swapped kinds show.
    types: u64,
}

impl StreamView {
    fn add(&mut self, ty: u8, packet_id: Option<u16>, payload: Option<usize>) {
        self.packets += 1;
        self.types += u64::from(ty);
        self.packet_ids += packet_id.map_or(0, u64::from);
        if let Some(len) = payload {
            self.publishes += 1;
            self.payload_bytes += len;
        }
    }

    fn haka(&mut self, packet: &Packet) {
        let ty = packet.packet_type() as u8;
        match packet {
            Packet::Publish(p) => {
                self.add(ty, p.packet_id().map(|id| id.get()), Some(p.payload.len()))
            }
            Packet::PubAck(p) => self.add(ty, Some(p.packet_id.get()), None),
            Packet::PubRec(p) => self.add(ty, Some(p.packet_id.get()), None),
            Packet::PubRel(p) => self.add(ty, Some(p.packet_id.get()), None),
            Packet::PubComp(p) => self.add(ty, Some(p.packet_id.get()), None),
            Packet::SubAck(p) => self.add(ty, Some(p.packet_id.get()), None),
            Packet::PingResp => self.add(ty, None, None),
            other => panic!("not in the mixed stream: {other:?}"),
        }
    }

    fn haka_ref(&mut self, packet: &PacketRef<'_>) {
        let ty = packet.packet_type() as u8;
        match packet {
            PacketRef::Publish(p) => {
                self.add(ty, p.packet_id().map(|id| id.get()), Some(p.payload.len()))
            }
            PacketRef::PubAck(p) => self.add(ty, Some(p.packet_id.get()), None),
            PacketRef::PubRec(p) => self.add(ty, Some(p.packet_id.get()), None),
            PacketRef::PubRel(p) => self.add(ty, Some(p.packet_id.get()), None),
            PacketRef::PubComp(p) => self.add(ty, Some(p.packet_id.get()), None),
            PacketRef::SubAck(p) => self.add(ty, Some(p.packet_id.get()), None),
            PacketRef::PingResp => self.add(ty, None, None),
            other => panic!("not in the mixed stream: {other:?}"),
        }
    }

    fn rumqttc(&mut self, packet: &rumqtt::Packet) {
        use rumqtt::Packet as P;
        match packet {
            P::Publish(p) => {
                let id = (p.qos != RumqttQoS::AtMostOnce).then_some(p.pkid);
                self.add(3, id, Some(p.payload.len()));
            }
            P::PubAck(p) => self.add(4, Some(p.pkid), None),
            P::PubRec(p) => self.add(5, Some(p.pkid), None),
            P::PubRel(p) => self.add(6, Some(p.pkid), None),
            P::PubComp(p) => self.add(7, Some(p.pkid), None),
            P::SubAck(p) => self.add(9, Some(p.pkid), None),
            P::PingResp => self.add(13, None, None),
            other => panic!("not in the mixed stream: {other:?}"),
        }
    }

    fn mqttrs(&mut self, packet: &mqttrs::Packet<'_>) {
        use mqttrs::Packet as P;
        match packet {
            P::Publish(p) => self.add(
                3,
                p.qospid.pid().map(mqttrs::Pid::get),
                Some(p.payload.len()),
            ),
            P::Puback(id) => self.add(4, Some(id.get()), None),
            P::Pubrec(id) => self.add(5, Some(id.get()), None),
            P::Pubrel(id) => self.add(6, Some(id.get()), None),
            P::Pubcomp(id) => self.add(7, Some(id.get()), None),
            P::Suback(p) => self.add(9, Some(p.pid.get()), None),
            P::Pingresp => self.add(13, None, None),
            other => panic!("not in the mixed stream: {other:?}"),
        }
    }

    fn mqtt_protocol(&mut self, packet: &mqtt::packet::VariablePacket) {
        use mqtt::packet::VariablePacket as P;
        match packet {
            P::PublishPacket(p) => {
                self.add(3, p.qos().split().1, Some(p.payload().len()));
            }
            P::PubackPacket(p) => self.add(4, Some(p.packet_identifier()), None),
            P::PubrecPacket(p) => self.add(5, Some(p.packet_identifier()), None),
            P::PubrelPacket(p) => self.add(6, Some(p.packet_identifier()), None),
            P::PubcompPacket(p) => self.add(7, Some(p.packet_identifier()), None),
            P::SubackPacket(p) => self.add(9, Some(p.packet_identifier()), None),
            P::PingrespPacket(_) => self.add(13, None, None),
            other => panic!("not in the mixed stream: {other:?}"),
        }
    }
}

/// Size of the packet at the start of `buf`, from its fixed header: mqttrs's `decode_slice`
/// does not say how many bytes it used, so its stream loop frames the packets with this.
#[inline]
fn frame_len(buf: &[u8]) -> usize {
    let mut len = 0;
    for (i, &byte) in buf[1..].iter().take(4).enumerate() {
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return 2 + i + len;
        }
    }
    panic!("malformed remaining length")
}

// ---------------------------------------------------------------------------------------------
// The peers' own values of the benchmark packets, built from the same constants.

fn rumqttc_publish(payload_len: usize) -> rumqtt::Publish {
    let mut p = rumqtt::Publish::from_bytes(
        input::TOPIC,
        RumqttQoS::AtLeastOnce,
        input::payload(payload_len),
    );
    p.pkid = input::PUBLISH_PACKET_ID;
    p
}

fn mqttrs_pid(id: u16) -> mqttrs::Pid {
    mqttrs::Pid::try_from(id).expect("not 0")
}

fn rumqttc_connect() -> rumqtt::Connect {
    let mut c = rumqtt::Connect::new(input::CONNECT_CLIENT_ID);
    c.keep_alive = input::CONNECT_KEEP_ALIVE;
    c.clean_session = true;
    c.set_login(input::CONNECT_USERNAME, input::CONNECT_PASSWORD);
    c
}

fn mqttrs_connect() -> mqttrs::Connect<'static> {
    mqttrs::Connect {
        protocol: mqttrs::Protocol::MQTT311,
        keep_alive: input::CONNECT_KEEP_ALIVE,
        client_id: input::CONNECT_CLIENT_ID,
        clean_session: true,
        last_will: None,
        username: Some(input::CONNECT_USERNAME),
        password: Some(input::CONNECT_PASSWORD.as_bytes()),
    }
}

fn mqtt_protocol_connect() -> mqtt::packet::ConnectPacket {
    let mut c = mqtt::packet::ConnectPacket::new(input::CONNECT_CLIENT_ID);
    c.set_keep_alive(input::CONNECT_KEEP_ALIVE);
    c.set_clean_session(true);
    c.set_user_name(Some(input::CONNECT_USERNAME.to_owned()));
    c.set_password(Some(input::CONNECT_PASSWORD.to_owned()));
    c
}

fn rumqttc_subscribe() -> rumqtt::Subscribe {
    let mut s =
        rumqtt::Subscribe::new_many((0..input::SUBSCRIBE_FILTERS).map(|i| {
            rumqtt::SubscribeFilter::new(input::subscribe_filter(i), RumqttQoS::AtLeastOnce)
        }));
    s.pkid = input::SUBSCRIBE_PACKET_ID;
    s
}

fn mqttrs_subscribe() -> mqttrs::Subscribe {
    mqttrs::Subscribe::new(
        mqttrs_pid(input::SUBSCRIBE_PACKET_ID),
        (0..input::SUBSCRIBE_FILTERS)
            .map(|i| mqttrs::SubscribeTopic {
                topic_path: input::subscribe_filter(i),
                qos: mqttrs::QoS::AtLeastOnce,
            })
            .collect(),
    )
}

fn mqtt_protocol_subscribe() -> mqtt::packet::SubscribePacket {
    mqtt::packet::SubscribePacket::new(
        input::SUBSCRIBE_PACKET_ID,
        (0..input::SUBSCRIBE_FILTERS)
            .map(|i| {
                let filter = mqtt::TopicFilter::new(input::subscribe_filter(i)).expect("valid");
                (filter, mqtt::QualityOfService::Level1)
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Decoders: each decodes one packet from `wire` in the peer's natural way.

fn decode_haka(codec: &Codec, wire: &Bytes) -> Packet {
    let mut buf = BytesMut::from(&wire[..]);
    let packet = codec.decode(&mut buf).expect("valid").expect("whole");
    assert!(buf.is_empty());
    packet
}

fn decode_haka_bytes(codec: &Codec, wire: &Bytes) -> Packet {
    let mut src = wire.clone();
    let packet = codec.decode_bytes(&mut src).expect("valid").expect("whole");
    assert!(src.is_empty());
    packet
}

fn decode_haka_ref<'a>(codec: &Codec, wire: &'a [u8]) -> PacketRef<'a> {
    let (packet, used) = codec.decode_ref(wire).expect("valid").expect("whole");
    assert_eq!(used, wire.len());
    packet
}

fn decode_rumqttc(wire: &Bytes) -> rumqtt::Packet {
    let mut buf = BytesMut::from(&wire[..]);
    let packet = rumqtt::Packet::read(&mut buf, RUMQTT_MAX).expect("valid");
    assert!(buf.is_empty());
    packet
}

fn decode_mqttrs(wire: &[u8]) -> mqttrs::Packet<'_> {
    mqttrs::decode_slice(wire).expect("valid").expect("whole")
}

fn decode_mqtt_protocol(wire: &[u8]) -> mqtt::packet::VariablePacket {
    let mut cursor = Cursor::new(wire);
    let packet = mqtt::packet::VariablePacket::decode(&mut cursor).expect("valid");
    assert_eq!(cursor.position() as usize, wire.len());
    packet
}

/// Adds the decoders of every peer on the single packet `wire` to `group`.
fn bench_decode_one(group: &mut BenchmarkGroup<'_, WallTime>, wire: &Bytes) {
    // The decoders that read the input where it lies (the borrowing ones, and `haka_bytes`)
    // read it from the start of a page, like the encoders' sources: where a packet lies
    // moves a decode's time (see the placement notes above).
    let wire = &placed_bytes(wire);
    let codec = Codec::new();
    let size = batch(wire.len());
    group.bench_function("haka", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| codec.decode(black_box(buf)),
            size,
        );
    });
    group.bench_function("haka_bytes", |b| {
        // The input handle is made in the untimed setup, as the other decoders' buffers are:
        // a read loop hands the decoder the bytes it has, it does not clone them per packet.
        b.iter_batched(
            || black_box(wire).clone(),
            |mut src| {
                let packet = codec.decode_bytes(&mut src);
                (src, packet)
            },
            size,
        );
    });
    group.bench_function("haka_ref", |b| {
        // Like mqttrs below: the packet borrows the input, which needs no setup.
        b.iter_batched(|| (), |()| codec.decode_ref(black_box(&wire[..])), size);
    });
    group.bench_function("rumqttc", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| rumqtt::Packet::read(black_box(buf), RUMQTT_MAX),
            size,
        );
    });
    group.bench_function("mqttrs", |b| {
        b.iter_batched(|| (), |()| mqttrs::decode_slice(black_box(&wire[..])), size);
    });
    group.bench_function("mqtt-protocol", |b| {
        b.iter_batched(
            || (),
            |()| mqtt::packet::VariablePacket::decode(&mut Cursor::new(black_box(&wire[..]))),
            size,
        );
    });
    bench_memcpy(group, wire, SOURCE);
}

/// The floor: copying the same bytes into a reused buffer placed like the encoders', from a
/// source that starts at offset `source` within a page.
fn bench_memcpy(group: &mut BenchmarkGroup<'_, WallTime>, bytes: &[u8], source: usize) {
    let bytes = placed_bytes_at(bytes, source);
    let mut buf = placed_vec(bytes.len(), DESTINATION);
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&bytes));
            black_box(buf.as_ptr());
        });
    });
}

// ---------------------------------------------------------------------------------------------
// The groups.

fn decode_publish(c: &mut Criterion) {
    let codec = Codec::new();
    for size in PayloadSize::ALL {
        let wire = input::encode(&input::publish(size.bytes()).into());
        assert_eq!(wire.len(), size.packet_len());

        // Same input, same result, for everyone.
        let expected = PublishView {
            topic: input::TOPIC.to_owned(),
            qos: 1,
            packet_id: Some(input::PUBLISH_PACKET_ID),
            payload: input::payload(size.bytes()).to_vec(),
        };
        assert_eq!(haka_publish_view(&decode_haka(&codec, &wire)), expected);
        assert_eq!(
            haka_publish_view(&decode_haka_bytes(&codec, &wire)),
            expected
        );
        assert_eq!(
            haka_ref_publish_view(&decode_haka_ref(&codec, &wire)),
            expected
        );
        assert_eq!(rumqttc_publish_view(&decode_rumqttc(&wire)), expected);
        assert_eq!(mqttrs_publish_view(&decode_mqttrs(&wire)), expected);
        assert_eq!(
            mqtt_protocol_publish_view(&decode_mqtt_protocol(&wire)),
            expected
        );

        let mut group = c.benchmark_group(format!("decode/publish_{}", size.label()));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        bench_decode_one(&mut group, &wire);
        group.finish();
    }
}

fn decode_puback(c: &mut Criterion) {
    let codec = Codec::new();
    let wire = input::encode(&input::puback().into());
    let id = input::PUBACK_PACKET_ID;
    for packet in [decode_haka(&codec, &wire), decode_haka_bytes(&codec, &wire)] {
        assert!(matches!(packet, Packet::PubAck(p) if p.packet_id.get() == id));
    }
    assert!(matches!(
        decode_haka_ref(&codec, &wire),
        PacketRef::PubAck(p) if p.packet_id.get() == id
    ));
    assert!(matches!(decode_rumqttc(&wire), rumqtt::Packet::PubAck(p) if p.pkid == id));
    assert!(matches!(decode_mqttrs(&wire), mqttrs::Packet::Puback(p) if p.get() == id));
    assert!(matches!(
        decode_mqtt_protocol(&wire),
        mqtt::packet::VariablePacket::PubackPacket(p) if p.packet_identifier() == id
    ));

    let mut group = c.benchmark_group("decode/puback");
    bench_decode_one(&mut group, &wire);
    group.finish();
}

/// The fields the benchmarks check on a decoded CONNECT.
type ConnectView = (String, bool, u16, Option<String>, Option<Vec<u8>>);

fn decode_connect(c: &mut Criterion) {
    let codec = Codec::new();
    let wire = input::encode(&input::connect().into());
    assert_eq!(wire.len(), input::CONNECT_LEN);

    let expected: ConnectView = (
        input::CONNECT_CLIENT_ID.to_owned(),
        true,
        input::CONNECT_KEEP_ALIVE,
        Some(input::CONNECT_USERNAME.to_owned()),
        Some(input::CONNECT_PASSWORD.as_bytes().to_vec()),
    );
    for packet in [decode_haka(&codec, &wire), decode_haka_bytes(&codec, &wire)] {
        let Packet::Connect(p) = packet else {
            panic!("not a CONNECT")
        };
        assert!(p.will.is_none());
        let login = p.login.as_ref();
        let view: ConnectView = (
            p.client_id.to_string(),
            p.clean_session,
            p.keep_alive,
            login.map(|l| l.username.to_string()),
            login
                .and_then(|l| l.password.as_ref())
                .map(|pw| pw.expose().to_vec()),
        );
        assert_eq!(view, expected);
    }
    let PacketRef::Connect(p) = decode_haka_ref(&codec, &wire) else {
        panic!("not a CONNECT")
    };
    assert!(p.will().is_none());
    let login = p.login();
    let view: ConnectView = (
        p.client_id().to_string(),
        p.clean_session(),
        p.keep_alive(),
        login.map(|l| l.username.to_string()),
        login
            .and_then(|l| l.password)
            .map(|pw| pw.expose().to_vec()),
    );
    assert_eq!(view, expected);
    let rumqtt::Packet::Connect(p) = decode_rumqttc(&wire) else {
        panic!("not a CONNECT")
    };
    assert!(p.last_will.is_none());
    let view: ConnectView = (
        p.client_id.clone(),
        p.clean_session,
        p.keep_alive,
        p.login.as_ref().map(|l| l.username.clone()),
        p.login.as_ref().map(|l| l.password.as_bytes().to_vec()),
    );
    assert_eq!(view, expected);
    let mqttrs::Packet::Connect(p) = decode_mqttrs(&wire) else {
        panic!("not a CONNECT")
    };
    assert!(p.last_will.is_none());
    let view: ConnectView = (
        p.client_id.to_owned(),
        p.clean_session,
        p.keep_alive,
        p.username.map(str::to_owned),
        p.password.map(<[u8]>::to_vec),
    );
    assert_eq!(view, expected);
    let mqtt::packet::VariablePacket::ConnectPacket(p) = decode_mqtt_protocol(&wire) else {
        panic!("not a CONNECT")
    };
    assert!(p.will().is_none());
    let view: ConnectView = (
        p.client_identifier().to_owned(),
        p.clean_session(),
        p.keep_alive(),
        p.user_name().map(str::to_owned),
        p.password().map(|pw| pw.as_bytes().to_vec()),
    );
    assert_eq!(view, expected);

    let mut group = c.benchmark_group("decode/connect_42B");
    bench_decode_one(&mut group, &wire);
    group.finish();
}

/// The fields the benchmarks check on a decoded SUBSCRIBE: packet identifier, and each filter
/// with its QoS.
type SubscribeView = (u16, Vec<(String, u8)>);

fn decode_subscribe(c: &mut Criterion) {
    let codec = Codec::new();
    let wire = input::encode(&input::subscribe().into());

    let expected: SubscribeView = (
        input::SUBSCRIBE_PACKET_ID,
        (0..input::SUBSCRIBE_FILTERS)
            .map(|i| (input::subscribe_filter(i), 1))
            .collect(),
    );
    for packet in [decode_haka(&codec, &wire), decode_haka_bytes(&codec, &wire)] {
        let Packet::Subscribe(p) = packet else {
            panic!("not a SUBSCRIBE")
        };
        let filters = p.subscriptions().iter();
        let filters = filters
            .map(|s| (s.filter.to_string(), s.qos as u8))
            .collect();
        assert_eq!((p.packet_id.get(), filters), expected);
    }
    let PacketRef::Subscribe(p) = decode_haka_ref(&codec, &wire) else {
        panic!("not a SUBSCRIBE")
    };
    let filters = p
        .subscriptions()
        .map(|s| (s.filter.to_string(), s.qos as u8))
        .collect();
    assert_eq!((p.packet_id.get(), filters), expected);
    let rumqtt::Packet::Subscribe(p) = decode_rumqttc(&wire) else {
        panic!("not a SUBSCRIBE")
    };
    let filters = p
        .filters
        .iter()
        .map(|f| (f.path.clone(), f.qos as u8))
        .collect();
    assert_eq!((p.pkid, filters), expected);
    let mqttrs::Packet::Subscribe(p) = decode_mqttrs(&wire) else {
        panic!("not a SUBSCRIBE")
    };
    let filters = p.topics.iter();
    let filters = filters
        .map(|t| (t.topic_path.clone(), t.qos as u8))
        .collect();
    assert_eq!((p.pid.get(), filters), expected);
    let mqtt::packet::VariablePacket::SubscribePacket(p) = decode_mqtt_protocol(&wire) else {
        panic!("not a SUBSCRIBE")
    };
    let filters = p.subscribes().iter();
    let filters = filters.map(|(f, q)| (f.to_string(), *q as u8)).collect();
    assert_eq!((p.packet_identifier(), filters), expected);

    let mut group = c.benchmark_group("decode/subscribe_10");
    bench_decode_one(&mut group, &wire);
    group.finish();
}

fn decode_stream(c: &mut Criterion) {
    let codec = Codec::new();
    let packets = input::mixed_stream(input::STREAM_PACKETS);
    let wire = input::encode_all(&packets);
    let mut expected = StreamView::default();
    packets.iter().for_each(|p| expected.haka(p));
    assert_eq!(expected.packets, input::STREAM_PACKETS);

    // Each peer's loop over the whole stream, run once here to check it and then measured.
    let haka = |buf: &mut BytesMut, mut on: Option<&mut StreamView>| {
        while let Some(packet) = codec.decode(buf).expect("valid") {
            if let Some(view) = on.as_deref_mut() {
                view.haka(&packet);
            }
            black_box(packet);
        }
    };
    let haka_bytes = |mut src: Bytes, mut on: Option<&mut StreamView>| {
        while let Some(packet) = codec.decode_bytes(&mut src).expect("valid") {
            if let Some(view) = on.as_deref_mut() {
                view.haka(&packet);
            }
            black_box(packet);
        }
    };
    let haka_ref = |mut rest: &[u8], mut on: Option<&mut StreamView>| {
        while let Some((packet, used)) = codec.decode_ref(rest).expect("valid") {
            if let Some(view) = on.as_deref_mut() {
                view.haka_ref(&packet);
            }
            black_box(packet);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
    };
    let rumqttc = |buf: &mut BytesMut, mut on: Option<&mut StreamView>| {
        while !buf.is_empty() {
            let packet = rumqtt::Packet::read(buf, RUMQTT_MAX).expect("valid");
            if let Some(view) = on.as_deref_mut() {
                view.rumqttc(&packet);
            }
            black_box(packet);
        }
    };
    let mqttrs = |mut rest: &[u8], mut on: Option<&mut StreamView>| {
        while !rest.is_empty() {
            let packet = mqttrs::decode_slice(rest).expect("valid").expect("whole");
            if let Some(view) = on.as_deref_mut() {
                view.mqttrs(&packet);
            }
            black_box(packet);
            rest = &rest[frame_len(rest)..];
        }
    };
    let mqtt_protocol = |all: &[u8], mut on: Option<&mut StreamView>| {
        let mut cursor = Cursor::new(all);
        while (cursor.position() as usize) < all.len() {
            let packet = mqtt::packet::VariablePacket::decode(&mut cursor).expect("valid");
            if let Some(view) = on.as_deref_mut() {
                view.mqtt_protocol(&packet);
            }
            black_box(packet);
        }
    };

    let check = |name: &str, run: &dyn Fn(&mut StreamView)| {
        let mut view = StreamView::default();
        run(&mut view);
        assert_eq!(view, expected, "{name} decodes the stream differently");
    };
    check("haka", &|v| {
        let mut buf = BytesMut::from(&wire[..]);
        haka(&mut buf, Some(v));
        assert!(buf.is_empty());
    });
    check("haka_bytes", &|v| haka_bytes(wire.clone(), Some(v)));
    check("haka_ref", &|v| haka_ref(&wire, Some(v)));
    check("rumqttc", &|v| {
        let mut buf = BytesMut::from(&wire[..]);
        rumqttc(&mut buf, Some(v));
    });
    check("mqttrs", &|v| mqttrs(&wire, Some(v)));
    check("mqtt-protocol", &|v| mqtt_protocol(&wire, Some(v)));

    let mut group = c.benchmark_group("decode/stream_1000_mixed");
    group.throughput(Throughput::Elements(input::STREAM_PACKETS as u64));
    let size = batch(wire.len());
    group.bench_function("haka", |b| {
        b.iter_batched_ref(|| BytesMut::from(&wire[..]), |buf| haka(buf, None), size);
    });
    group.bench_function("haka_bytes", |b| {
        b.iter(|| haka_bytes(black_box(&wire).clone(), None));
    });
    group.bench_function("haka_ref", |b| b.iter(|| haka_ref(black_box(&wire), None)));
    group.bench_function("rumqttc", |b| {
        b.iter_batched_ref(|| BytesMut::from(&wire[..]), |buf| rumqttc(buf, None), size);
    });
    group.bench_function("mqttrs", |b| b.iter(|| mqttrs(black_box(&wire), None)));
    group.bench_function("mqtt-protocol", |b| {
        b.iter(|| mqtt_protocol(black_box(&wire), None));
    });
    bench_memcpy(&mut group, &wire, SOURCE);
    group.finish();
}

/// Adds the encoders of every peer to `group`, after checking that each writes `wire`.
///
/// Each closure appends the packet to the buffer it is given; the buffers are reused, cleared
/// before each packet and allocated once, with room for the whole packet.
/// Generic over the peers' closures, not `dyn`, so that no peer pays an indirect call.
fn bench_encode_one(
    group: &mut BenchmarkGroup<'_, WallTime>,
    wire: &Bytes,
    haka: &Packet,
    rumqttc: impl Fn(&mut BytesMut),
    mqttrs: &mqttrs::Packet<'_>,
    mqtt_protocol: impl Fn(&mut Vec<u8>),
) {
    let codec = Codec::new();
    let len = wire.len();

    // Every peer writes the very same bytes, into the buffer it is timed with, which stays
    // where it was placed.
    let placed = |ptr: *const u8| placed_at(ptr, DESTINATION);
    let mut haka_buf = placed_bytes_mut(len);
    codec.encode(haka, &mut haka_buf).expect("encodable");
    assert!(haka_buf == wire[..] && placed(haka_buf.as_ptr()), "haka");
    let mut rumqttc_buf = placed_bytes_mut(len);
    rumqttc(&mut rumqttc_buf);
    assert!(
        rumqttc_buf == wire[..] && placed(rumqttc_buf.as_ptr()),
        "rumqttc"
    );
    let mut region = Vec::new();
    let slice = placed_slice(&mut region, len);
    let n = mqttrs::encode_slice(mqttrs, slice).expect("encodable");
    assert!(slice[..n] == wire[..] && placed(slice.as_ptr()), "mqttrs");
    let mut vec = placed_vec(len, DESTINATION);
    mqtt_protocol(&mut vec);
    assert!(vec == wire[..] && placed(vec.as_ptr()), "mqtt-protocol");

    let mut buf = haka_buf;
    group.bench_function("haka", |b| {
        b.iter(|| {
            buf.clear();
            codec.encode(black_box(haka), &mut buf).expect("encodable");
            black_box(buf.as_ptr());
        });
    });
    if let Packet::Publish(publish) = haka {
        // What `write_vectored` would be given: the head, encoded into a reused buffer, then
        // the payload as it is, not copied.
        let mut head = BytesMut::with_capacity(16 + publish.topic.len());
        let mut whole = BytesMut::new();
        codec
            .encode_publish_head(publish, &mut whole)
            .expect("encodable");
        whole.extend_from_slice(&publish.payload);
        assert_eq!(whole, wire[..], "haka_vectored");
        group.bench_function("haka_vectored", |b| {
            b.iter(|| {
                head.clear();
                let publish = black_box(publish);
                codec
                    .encode_publish_head(publish, &mut head)
                    .expect("encodable");
                black_box([IoSlice::new(&head), IoSlice::new(&publish.payload)]);
            });
        });
    }
    let mut buf = rumqttc_buf;
    group.bench_function("rumqttc", |b| {
        b.iter(|| {
            buf.clear();
            rumqttc(black_box(&mut buf));
            black_box(buf.as_ptr());
        });
    });
    group.bench_function("mqttrs", |b| {
        b.iter(|| mqttrs::encode_slice(black_box(mqttrs), &mut *slice).expect("encodable"));
    });
    group.bench_function("mqtt-protocol", |b| {
        b.iter(|| {
            vec.clear();
            mqtt_protocol(black_box(&mut vec));
            black_box(vec.as_ptr());
        });
    });
    // The floor copies the packet from where the encoders' bytes come from: its payload part
    // from the very place of their payload, the start of a page, with the head just before
    // it. Copied from the start of a page instead, the payload's bytes would move between
    // other offsets of their cache lines than any encoder's can.
    let source = match haka {
        Packet::Publish(publish) => (SOURCE + PAGE - (len - publish.payload.len()) % PAGE) % PAGE,
        _ => SOURCE,
    };
    bench_memcpy(group, wire, source);
}

fn encode_publish(c: &mut Criterion) {
    for size in PayloadSize::ALL {
        // One placed payload, shared by the encoders that take a shared or borrowed one; the
        // one that owns its payload gets a placed copy.
        let payload = placed_bytes(&input::payload(size.bytes()));
        // Each encoder's topic is placed too, at the same offset for all of them.
        let topic = placed_string(input::TOPIC);
        let mut haka = input::publish(size.bytes());
        haka.payload = payload.clone();
        haka.topic =
            TopicName::from_bytes(Bytes::from(placed_string(input::TOPIC))).expect("valid topic");
        let wire = input::encode(&haka.clone().into());
        let mut rumqttc = rumqttc_publish(size.bytes());
        rumqttc.payload = payload.clone();
        rumqttc.topic = placed_string(input::TOPIC);
        let mqttrs = mqttrs::Publish {
            dup: false,
            qospid: mqttrs::QosPid::AtLeastOnce(mqttrs_pid(input::PUBLISH_PACKET_ID)),
            retain: false,
            topic_name: &topic,
            payload: &payload,
        };
        let mut owned = placed_vec(payload.len(), SOURCE);
        owned.extend_from_slice(&payload);
        let mqtt_protocol = mqtt::packet::PublishPacket::new(
            mqtt::TopicName::new(placed_string(input::TOPIC)).expect("valid topic"),
            mqtt::packet::QoSWithPacketIdentifier::Level1(input::PUBLISH_PACKET_ID),
            owned,
        );
        assert!(placed_at(mqtt_protocol.payload().as_ptr(), SOURCE));
        for topic in [
            haka.topic.as_str(),
            &rumqttc.topic,
            mqttrs.topic_name,
            mqtt_protocol.topic_name(),
        ] {
            assert!(placed_at(topic.as_ptr(), TOPIC_SOURCE));
        }

        let mut group = c.benchmark_group(format!("encode/publish_{}", size.label()));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        bench_encode_one(
            &mut group,
            &wire,
            &haka.into(),
            |buf| {
                rumqttc.write(buf).expect("encodable");
            },
            &mqttrs.into(),
            |buf| mqtt_protocol.encode(buf).expect("encodable"),
        );
        group.finish();
    }
}

fn encode_puback(c: &mut Criterion) {
    let wire = input::encode(&input::puback().into());
    let rumqttc = rumqtt::PubAck::new(input::PUBACK_PACKET_ID);
    let mqtt_protocol = mqtt::packet::PubackPacket::new(input::PUBACK_PACKET_ID);

    let mut group = c.benchmark_group("encode/puback");
    bench_encode_one(
        &mut group,
        &wire,
        &input::puback().into(),
        |buf| {
            rumqttc.write(buf).expect("encodable");
        },
        &mqttrs::Packet::Puback(mqttrs_pid(input::PUBACK_PACKET_ID)),
        |buf| mqtt_protocol.encode(buf).expect("encodable"),
    );
    group.finish();
}

fn encode_connect(c: &mut Criterion) {
    let wire = input::encode(&input::connect().into());
    assert_eq!(wire.len(), input::CONNECT_LEN);
    let rumqttc = rumqttc_connect();
    let mqtt_protocol = mqtt_protocol_connect();

    let mut group = c.benchmark_group("encode/connect_42B");
    bench_encode_one(
        &mut group,
        &wire,
        &input::connect().into(),
        |buf| {
            rumqttc.write(buf).expect("encodable");
        },
        &mqttrs_connect().into(),
        |buf| mqtt_protocol.encode(buf).expect("encodable"),
    );
    group.finish();
}

fn encode_subscribe(c: &mut Criterion) {
    let wire = input::encode(&input::subscribe().into());
    let rumqttc = rumqttc_subscribe();
    let mqtt_protocol = mqtt_protocol_subscribe();

    let mut group = c.benchmark_group("encode/subscribe_10");
    bench_encode_one(
        &mut group,
        &wire,
        &input::subscribe().into(),
        |buf| {
            rumqttc.write(buf).expect("encodable");
        },
        &mqttrs_subscribe().into(),
        |buf| mqtt_protocol.encode(buf).expect("encodable"),
    );
    group.finish();
}

criterion_group!(
    benches,
    decode_publish,
    encode_publish,
    decode_puback,
    encode_puback,
    decode_connect,
    encode_connect,
    decode_subscribe,
    encode_subscribe,
    decode_stream,
);
criterion_main!(benches);
