//! The hand-written loop: one thread, a blocking socket, the encoder of
//! `haka_benches::wire`.
//!
//! It fills the in-flight window with copies of one encoded PUBLISH (only the packet
//! identifier changes), writes them in one `write`, reads what came back, answers PUBREC with
//! PUBREL, and counts PUBACK and PUBCOMP. No store, no timers, no reconnection, no checks
//! beyond what framing needs: the cost of the protocol itself on this machine, the floor
//! that the clients are measured against.

use std::{
    io::{self, BufRead, Read, Write},
    net::TcpStream,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use haka_benches::wire::{self, frame, kind, u16_at};

use super::{stamp, LatencyJob, Received, ThroughputJob, DRAIN};
use crate::{
    cpu::{Measured, Meter},
    Error,
};

/// A connected socket and its read buffer.
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    input: Vec<u8>,
    /// Bytes of `input[start..filled]` are read and not yet parsed.
    start: usize,
    filled: usize,
}

impl Connection {
    /// Connects and waits for CONNACK.
    pub(crate) fn open(port: u16, client_id: &str) -> Result<Self, Error> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        let mut connection = Self {
            stream,
            input: vec![0; 256 * 1024],
            start: 0,
            filled: 0,
        };
        let mut out = Vec::new();
        wire::connect(&mut out, client_id);
        connection.stream.write_all(&out)?;
        let mut connack = None;
        while connack.is_none() {
            connection.read(|first, body| {
                if first >> 4 == kind::CONNACK {
                    connack = body.get(1).copied();
                }
                Ok(())
            })?;
        }
        if connack != Some(0) {
            return Err(format!("CONNACK refused: {connack:?}").into());
        }
        Ok(connection)
    }

    /// Reads once (blocking) and hands every whole packet to `packet(first byte, body)`.
    pub(crate) fn read(
        &mut self,
        mut packet: impl FnMut(u8, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.filled == self.input.len() {
            self.input.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
            if self.filled == self.input.len() {
                self.input.resize(self.input.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.input[self.filled..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.filled += n;
        while let Some((header, body)) = frame(&self.input[self.start..self.filled])? {
            packet(self.input[self.start], body)?;
            self.start += header + body.len();
        }
        if self.start == self.filled {
            (self.start, self.filled) = (0, 0);
        }
        Ok(())
    }
}

/// Packet identifiers 1, 2, ... 65535, 1, ...
fn next_id(id: &mut u16) -> u16 {
    *id = id.checked_add(1).unwrap_or(1);
    *id
}

pub(super) fn throughput(job: &ThroughputJob) -> Result<Measured, Error> {
    let mut connection = Connection::open(job.port, &job.client_id)?;
    let payload = vec![0x5a; job.size];
    let mut template = Vec::new();
    let id_at = wire::publish(&mut template, &job.topic, job.qos, 0, &payload);
    let window = u64::from(job.window);
    let mut out = Vec::with_capacity(template.len() * usize::from(job.window) + 4096);
    let (mut sent, mut completed, mut id) = (0u64, 0u64, 0u16);

    let meter = Meter::start();
    while completed < job.count {
        while sent < job.count && sent - completed < window {
            let at = out.len();
            out.extend_from_slice(&template);
            if job.qos > 0 {
                out[at + id_at..at + id_at + 2].copy_from_slice(&next_id(&mut id).to_be_bytes());
            }
            sent += 1;
        }
        if !out.is_empty() {
            connection.stream.write_all(&out)?;
            out.clear();
        }
        if job.qos == 0 {
            // Written is done: nothing comes back.
            completed = sent;
            continue;
        }
        connection.read(|first, body| {
            match first >> 4 {
                kind::PUBACK | kind::PUBCOMP => completed += 1,
                kind::PUBREC => wire::ack(&mut out, kind::PUBREL, u16_at(body, 0)?),
                _ => {}
            }
            Ok(())
        })?;
    }
    if job.until_stdin {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
    }
    let measured = meter.stop(completed);

    wire::disconnect(&mut out);
    connection.stream.write_all(&out)?;
    Ok(measured)
}

pub(super) fn latency(job: &LatencyJob) -> Result<Received, Error> {
    let origin = Instant::now();
    let mut subscriber = Connection::open(job.port, &format!("{}-sub", job.client_id))?;
    let mut out = Vec::new();
    wire::subscribe(&mut out, 1, &job.topic, 1);
    subscriber.stream.write_all(&out)?;
    let mut subscribed = false;
    while !subscribed {
        subscriber.read(|first, _| {
            subscribed |= first >> 4 == kind::SUBACK;
            Ok(())
        })?;
    }
    let mut publisher = Connection::open(job.port, &format!("{}-pub", job.client_id))?;

    // The subscriber reads on a thread of its own, acknowledging each message as it comes.
    let received = Arc::new(Mutex::new(Received::new(job, origin)));
    subscriber.stream.set_read_timeout(Some(DRAIN))?;
    let receiving = std::thread::spawn({
        let received = Arc::clone(&received);
        move || -> io::Result<()> {
            let mut acks = Vec::new();
            let mut all = false;
            while !all {
                subscriber.read(|first, body| {
                    if first >> 4 == kind::PUBLISH {
                        let topic = usize::from(u16_at(body, 0)?);
                        let id = u16_at(body, 2 + topic)?;
                        let payload = body.get(4 + topic..).unwrap_or_default();
                        let mut received = received.lock().unwrap_or_else(PoisonError::into_inner);
                        all = received.record(payload);
                        wire::ack(&mut acks, kind::PUBACK, id);
                    }
                    Ok(())
                })?;
                subscriber.stream.write_all(&acks)?;
                acks.clear();
            }
            Ok(())
        }
    });

    // The publisher waits for each PUBACK before the next tick: one message in flight at
    // 1,000 msg/s is plenty.
    let (mut id, mut next) = (0u16, Instant::now());
    for seq in 0..job.total() {
        next += job.period();
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        out.clear();
        let payload = stamp(seq, origin, job.size);
        wire::publish(&mut out, &job.topic, 1, next_id(&mut id), &payload);
        publisher.stream.write_all(&out)?;
        let mut acked = false;
        while !acked {
            publisher.read(|first, _| {
                acked |= first >> 4 == kind::PUBACK;
                Ok(())
            })?;
        }
    }
    // Ends with every message or with the read timeout.
    let _ = receiving.join();
    let received = std::mem::replace(
        &mut *received.lock().unwrap_or_else(PoisonError::into_inner),
        Received::new(job, origin),
    );
    Ok(received)
}
