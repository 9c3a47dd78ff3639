//! The exchange itself, shared by the example and by the test that runs it against a
//! mosquitto started for it.

use std::{
    fmt,
    io::{self, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use haka_codec::{
    Codec, Connect, Delivery, Disconnect, MqttString, Packet, PacketId, PubAck, PubComp, PubRec,
    PubRel, Publish, QoS, Subscribe, SubscribeReturnCode, Subscription, TopicFilter, TopicName,
    Unsubscribe,
};

/// How long the whole exchange may take before it is declared failed.
const DEADLINE: Duration = Duration::from_secs(10);

/// What the exchange saw.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Packets written.
    pub(crate) sent: usize,
    /// Packets read.
    pub(crate) received: usize,
    /// Messages the broker routed back to us, by QoS.
    pub(crate) delivered: [usize; 3],
    /// Our own publishes the broker completed: QoS 1 by PUBACK, QoS 2 by PUBCOMP.
    pub(crate) completed: [usize; 3],
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packets sent, {} received; delivered back QoS 0/1/2: {:?}; completed QoS 1/2: {}/{}",
            self.sent,
            self.received,
            self.delivered,
            self.completed[1],
            self.completed[2]
        )
    }
}

struct Wire<'a, W: Write> {
    stream: TcpStream,
    codec: Codec,
    buf: BytesMut,
    out: &'a mut W,
    summary: Summary,
    deadline: Instant,
}

impl<W: Write> Wire<'_, W> {
    fn send(&mut self, packet: Packet) -> io::Result<()> {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(&packet, &mut bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        writeln!(self.out, "-> {:>3} B  {packet:?}", bytes.len())?;
        self.stream.write_all(&bytes)?;
        self.summary.sent += 1;
        Ok(())
    }

    fn receive(&mut self) -> io::Result<Packet> {
        loop {
            let decoded = self
                .codec
                .decode(&mut self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let Some(packet) = decoded {
                writeln!(self.out, "<-        {packet:?}")?;
                self.summary.received += 1;
                return Ok(packet);
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "broker too slow"));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("a non-zero literal")
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

fn protocol_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Runs the exchange against the broker at `addr`, tracing packets to `out`.
pub(crate) fn run(addr: &str, out: &mut impl Write) -> io::Result<Summary> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut wire = Wire {
        stream,
        codec: Codec::new(),
        buf: BytesMut::with_capacity(8192),
        out,
        summary: Summary::default(),
        deadline: Instant::now() + DEADLINE,
    };

    let client_id = format!("haka-codec-demo-{}", std::process::id());
    let mut connect = Connect::new(MqttString::new(client_id).map_err(invalid)?);
    connect.keep_alive = 30;
    wire.send(connect.into())?;
    match wire.receive()? {
        Packet::ConnAck(ack) if ack.code() == haka_codec::ConnectReturnCode::Accepted => {}
        other => return Err(protocol_error(format!("expected CONNACK, got {other:?}"))),
    }

    let prefix = format!("haka/demo/{}", std::process::id());
    let filter = TopicFilter::new(format!("{prefix}/#")).map_err(invalid)?;
    let subscribe = Subscribe::new(
        id(1),
        vec![Subscription::new(filter.clone(), QoS::ExactlyOnce)],
    )
    .map_err(invalid)?;
    wire.send(subscribe.into())?;
    match wire.receive()? {
        Packet::SubAck(ack) if ack.packet_id == id(1) => {
            if ack.return_codes() != [SubscribeReturnCode::Success(QoS::ExactlyOnce)] {
                return Err(protocol_error(format!("subscription refused: {ack:?}")));
            }
        }
        other => return Err(protocol_error(format!("expected SUBACK, got {other:?}"))),
    }

    for (qos, delivery) in [
        (0, Delivery::AtMostOnce),
        (
            1,
            Delivery::AtLeastOnce {
                packet_id: id(11),
                dup: false,
            },
        ),
        (
            2,
            Delivery::ExactlyOnce {
                packet_id: id(12),
                dup: false,
            },
        ),
    ] {
        let topic = TopicName::new(format!("{prefix}/qos{qos}")).map_err(invalid)?;
        let payload = format!("hello at QoS {qos}");
        wire.send(Publish::new(topic, delivery, payload).into())?;
    }
    wire.send(Packet::PingReq)?;

    // Until our QoS 1 and 2 publishes complete, the three come back, and the ping is answered.
    let mut pong = false;
    while wire.summary.delivered.iter().sum::<usize>() < 3
        || wire.summary.completed[1] + wire.summary.completed[2] < 2
        || !pong
    {
        match wire.receive()? {
            Packet::PubAck(ack) if ack.packet_id == id(11) => wire.summary.completed[1] += 1,
            Packet::PubRec(rec) if rec.packet_id == id(12) => {
                wire.send(PubRel::new(rec.packet_id).into())?;
            }
            Packet::PubComp(comp) if comp.packet_id == id(12) => wire.summary.completed[2] += 1,
            Packet::Publish(publish) => {
                wire.summary.delivered[publish.qos() as usize] += 1;
                match publish.delivery {
                    Delivery::AtMostOnce => {}
                    Delivery::AtLeastOnce { packet_id, .. } => {
                        wire.send(PubAck::new(packet_id).into())?;
                    }
                    Delivery::ExactlyOnce { packet_id, .. } => {
                        wire.send(PubRec::new(packet_id).into())?;
                    }
                }
            }
            Packet::PubRel(rel) => wire.send(PubComp::new(rel.packet_id).into())?,
            Packet::PingResp => pong = true,
            other => return Err(protocol_error(format!("unexpected {other:?}"))),
        }
    }

    wire.send(
        Unsubscribe::new(id(2), vec![filter])
            .map_err(invalid)?
            .into(),
    )?;
    loop {
        match wire.receive()? {
            Packet::UnsubAck(ack) if ack.packet_id == id(2) => break,
            // A PUBREL for a delivery still in flight may come first.
            Packet::PubRel(rel) => wire.send(PubComp::new(rel.packet_id).into())?,
            other => return Err(protocol_error(format!("expected UNSUBACK, got {other:?}"))),
        }
    }
    wire.send(Disconnect::new().into())?;
    Ok(wire.summary)
}
