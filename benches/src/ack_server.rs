//! [`AckServer`]: a minimal MQTT 3.1.1 server that acknowledges everything and routes nothing.
//!
//! A real broker does work for every message (matching subscriptions, queueing, persistence)
//! and is, on one machine, usually slower than the clients it serves: against mosquitto every
//! client tops out at the broker's pace. This server does the least a client needs to make
//! progress, so that the client is the limit and clients can be told apart:
//!
//! - CONNECT is answered with CONNACK (accepted, no session present);
//! - PUBLISH at QoS 1 with PUBACK, at QoS 2 with PUBREC; PUBREL with PUBCOMP;
//! - SUBSCRIBE with SUBACK granting what was asked, UNSUBSCRIBE with UNSUBACK, PINGREQ with
//!   PINGRESP; DISCONNECT closes the connection.
//!
//! Each connection has its own thread that reads into a large buffer, parses only fixed
//! headers, packet identifiers and the CONNECT's client identifier, and writes every answer to
//! one read in one write: replies are batched the way a real broker's are under load. After
//! each batch it polls its socket for a moment (200 µs) before blocking, so that what limits
//! a client is the client and not this server's wake-ups. Nothing is routed and nothing is
//! stored.
//!
//! ```
//! use std::{io::{Read, Write}, net::TcpStream};
//! use haka_benches::ack_server::AckServer;
//!
//! let server = AckServer::bind("127.0.0.1:0")?;
//! let addr = server.local_addr()?;
//! std::thread::spawn(move || server.run(|_report| {}));
//! let mut stream = TcpStream::connect(addr)?;
//! // CONNECT, client "c", then a QoS 1 PUBLISH to "t" with packet identifier 7.
//! stream.write_all(&[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'c'])?;
//! stream.write_all(&[0x32, 5, 0, 1, b't', 0, 7])?;
//! let mut answers = [0; 8];
//! stream.read_exact(&mut answers)?;
//! assert_eq!(answers, [0x20, 2, 0, 0, 0x40, 2, 0, 7]);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::wire::{self, frame, kind, malformed, u16_at};

/// How many bytes one read may take: enough for hundreds of small PUBLISH packets, so one
/// write answers them all.
const READ_BUFFER: usize = 256 * 1024;

/// How long a connection keeps polling its socket without blocking, once it finds nothing
/// to read, before it blocks in `read`.
///
/// A thread blocked in `read` is woken by the kernel when data arrives, and on a virtual
/// machine that wake-up (an interrupt between virtual processors, then the scheduler) takes
/// tens of microseconds: a client that keeps 100 messages in flight and needs two round trips
/// per message at QoS 2 would wait on this server's wake-ups rather than on its own work.
/// Polling for a moment after each batch, the way busy-polling network servers do, answers the
/// next batch as soon as it lands; an idle connection still blocks, after this long.
const SPIN: Duration = Duration::from_micros(200);

/// What one connection did, reported when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// The client identifier of its CONNECT (empty if none came).
    pub client_id: String,
    /// PUBLISH packets received, by QoS (0, 1, 2).
    pub publishes: [u64; 3],
    /// PUBREL packets received.
    pub pubrels: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Why the connection ended, when it was not a DISCONNECT or the client closing it.
    pub error: Option<String>,
}

/// The ack-only server: bound to a port, serving each connection on a thread of its own.
#[derive(Debug)]
pub struct AckServer {
    listener: TcpListener,
}

impl AckServer {
    /// Binds the listening socket (`127.0.0.1:0` for any free port).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr)?,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until accepting fails, serving each on its own thread; `report`
    /// is called (from that thread) when a connection ends.
    pub fn run(self, report: impl Fn(ConnectionReport) + Send + Sync + 'static) -> io::Result<()> {
        let report = Arc::new(report);
        loop {
            let (stream, _) = self.listener.accept()?;
            let report = Arc::clone(&report);
            std::thread::spawn(move || report(serve(stream)));
        }
    }
}

/// Serves one connection to its end.
fn serve(mut stream: TcpStream) -> ConnectionReport {
    let mut connection = Connection::default();
    if let Err(error) = connection.serve(&mut stream) {
        connection.report.error = Some(error.to_string());
    }
    connection.report
}

#[derive(Debug, Default)]
struct Connection {
    report: ConnectionReport,
    closed: bool,
}

impl Connection {
    fn serve(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let mut input = vec![0u8; READ_BUFFER];
        let mut out = Vec::with_capacity(READ_BUFFER / 8);
        // Bytes of `input[..filled]` are read and not yet parsed from `start`.
        let (mut start, mut filled) = (0, 0);
        while !self.closed {
            if filled == input.len() {
                // Keep the unparsed tail; grow when a single packet needs more room.
                input.copy_within(start..filled, 0);
                filled -= start;
                start = 0;
                if filled == input.len() {
                    input.resize(input.len() * 2, 0);
                }
            }
            let n = spin_read(stream, &mut input[filled..])?;
            if n == 0 {
                return Ok(());
            }
            self.report.bytes += n as u64;
            filled += n;
            while let Some((header, body)) = frame(&input[start..filled])? {
                let len = header + body.len();
                self.handle(input[start], body, &mut out)?;
                start += len;
                if self.closed {
                    break;
                }
            }
            if start == filled {
                (start, filled) = (0, 0);
            }
            if !out.is_empty() {
                stream.write_all(&out)?;
                out.clear();
            }
        }
        Ok(())
    }

    /// Answers one packet of first byte `first` and body `body` into `out`.
    fn handle(&mut self, first: u8, body: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        match first >> 4 {
            kind::CONNECT => {
                // Protocol name, level, flags, keep alive, then the client identifier.
                let name = usize::from(u16_at(body, 0)?);
                let id_at = 2 + name + 4;
                let id_len = usize::from(u16_at(body, id_at)?);
                let id = body
                    .get(id_at + 2..id_at + 2 + id_len)
                    .ok_or_else(|| malformed("CONNECT shorter than its client identifier"))?;
                self.report.client_id = String::from_utf8_lossy(id).into_owned();
                // Accepted, no session present.
                out.extend_from_slice(&[kind::CONNACK << 4, 2, 0, 0]);
            }
            kind::PUBLISH => {
                // The topic, then the packet identifier at QoS 1 and 2.
                let qos = (first >> 1) & 3;
                let topic = usize::from(u16_at(body, 0)?);
                match qos {
                    0 => self.report.publishes[0] += 1,
                    1 => {
                        self.report.publishes[1] += 1;
                        wire::ack(out, kind::PUBACK, u16_at(body, 2 + topic)?);
                    }
                    2 => {
                        self.report.publishes[2] += 1;
                        wire::ack(out, kind::PUBREC, u16_at(body, 2 + topic)?);
                    }
                    _ => return Err(malformed("PUBLISH with QoS 3")),
                }
            }
            // Answers to messages this server never sends.
            kind::PUBACK | kind::PUBREC | kind::PUBCOMP => {}
            kind::PUBREL => {
                self.report.pubrels += 1;
                wire::ack(out, kind::PUBCOMP, u16_at(body, 0)?);
            }
            kind::SUBSCRIBE => {
                // Grants every filter the QoS it asks for.
                let id = u16_at(body, 0)?.to_be_bytes();
                let mut granted = Vec::new();
                let mut at = 2;
                while at < body.len() {
                    let len = usize::from(u16_at(body, at)?);
                    let qos = body
                        .get(at + 2 + len)
                        .ok_or_else(|| malformed("SUBSCRIBE without a requested QoS"))?;
                    granted.push(qos & 3);
                    at += 2 + len + 1;
                }
                let len = u8::try_from(2 + granted.len())
                    .map_err(|_| malformed("SUBSCRIBE with too many filters"))?;
                out.extend_from_slice(&[kind::SUBACK << 4, len, id[0], id[1]]);
                out.extend_from_slice(&granted);
            }
            kind::UNSUBSCRIBE => wire::ack(out, kind::UNSUBACK, u16_at(body, 0)?),
            kind::PINGREQ => out.extend_from_slice(&[kind::PINGRESP << 4, 0]),
            kind::DISCONNECT => self.closed = true,
            other => return Err(malformed(&format!("packet type {other} from a client"))),
        }
        Ok(())
    }
}

/// Reads into `buf` like [`Read::read`], polling without blocking for up to [`SPIN`] before
/// blocking. `stream` is left blocking.
fn spin_read(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    stream.set_nonblocking(true)?;
    let deadline = Instant::now() + SPIN;
    let result = loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    stream.set_nonblocking(false)?;
                    break stream.read(buf);
                }
                std::hint::spin_loop();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => break other,
        }
    };
    stream.set_nonblocking(false)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_every_acknowledged_packet_in_one_batch() {
        let mut connection = Connection::default();
        let mut out = Vec::new();
        let qos2 = [0, 1, b't', 0x01, 0x02];
        connection.handle(0x34, &qos2, &mut out).expect("valid");
        connection
            .handle(0x62, &[0x01, 0x02], &mut out)
            .expect("valid");
        connection
            .handle(0x30, &[0, 1, b't', b'x'], &mut out)
            .expect("valid");
        connection
            .handle(0x82, &[0, 9, 0, 1, b'a', 1, 0, 1, b'b', 2], &mut out)
            .expect("valid");
        connection.handle(0xC0, &[], &mut out).expect("valid");
        assert_eq!(
            out,
            [0x50, 2, 1, 2, 0x70, 2, 1, 2, 0x90, 4, 0, 9, 1, 2, 0xD0, 0]
        );
        assert_eq!(connection.report.publishes, [1, 0, 1]);
        assert_eq!(connection.report.pubrels, 1);
        connection.handle(0xE0, &[], &mut out).expect("valid");
        assert!(connection.closed);
    }
}
