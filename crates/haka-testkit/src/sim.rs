//! [`Sim`]: one session, a test playing the broker, and virtual time.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use haka_codec::{Codec, Packet};
use haka_session::{Event, Session, Store};

/// Time that moves only when the test says so.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    base: Instant,
    elapsed: Duration,
}

impl VirtualClock {
    /// A clock at its zero.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.base + self.elapsed
    }

    /// Time since the clock's zero.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.elapsed += by;
    }

    /// Moves the clock to `to`, if it is later than now.
    pub fn advance_to(&mut self, to: Instant) {
        if let Some(by) = to.checked_duration_since(self.now()) {
            self.elapsed += by;
        }
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// A session under test, with the test as its broker.
///
/// Packets the session sends are decoded (by the codec, so every byte the session writes is
/// checked) and returned by [`Sim::transmit`]; packets for the session are encoded and fed
/// to it as bytes by [`Sim::deliver`], optionally split at any point.
#[derive(Debug)]
pub struct Sim<S: Store> {
    /// The session under test.
    pub session: Session<S>,
    /// Virtual time.
    pub clock: VirtualClock,
    codec: Codec,
    out: BytesMut,
    input: BytesMut,
}

impl<S: Store> Sim<S> {
    /// Wraps `session`.
    pub fn new(session: Session<S>) -> Self {
        Self {
            session,
            clock: VirtualClock::new(),
            codec: Codec::new(),
            out: BytesMut::new(),
            input: BytesMut::new(),
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A transport came up.
    pub fn connect(&mut self) {
        self.input.clear();
        self.session.handle_connected(self.clock.now());
    }

    /// The transport went down.
    pub fn lose_connection(&mut self) {
        self.input.clear();
        self.session.handle_connection_lost(self.clock.now());
    }

    /// Everything the session sends now, decoded.
    ///
    /// # Panics
    ///
    /// If the session wrote bytes that are not valid packets: that is a bug under test.
    pub fn transmit(&mut self) -> Vec<Packet> {
        let now = self.clock.now();
        let mut packets = Vec::new();
        // Bounded: a session that never stops transmitting is a bug, reported as such.
        for _ in 0..100_000 {
            self.out.clear();
            if self.session.poll_transmit(now, &mut self.out) == 0 {
                return packets;
            }
            while let Some(packet) = self
                .codec
                .decode(&mut self.out)
                .expect("the session wrote an invalid packet")
            {
                packets.push(packet);
            }
            assert!(self.out.is_empty(), "the session wrote a partial packet");
        }
        panic!("the session kept transmitting");
    }

    /// Every event the session has now.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Sends `packet` to the session as bytes.
    pub fn deliver(&mut self, packet: impl Into<Packet>) {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(&packet.into(), &mut bytes)
            .expect("the test built an unencodable packet");
        self.deliver_bytes(&bytes);
    }

    /// Sends raw bytes to the session, as one read.
    pub fn deliver_bytes(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.session.handle_bytes(self.clock.now(), &mut self.input);
    }

    /// Moves time forward by `by` and lets the session's timers fire.
    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.session.handle_timeout(self.clock.now());
    }

    /// Jumps to the session's next timeout and handles it; returns how far time moved, or
    /// `None` when the session has no timer.
    pub fn advance_to_timeout(&mut self) -> Option<Duration> {
        let at = self.session.poll_timeout()?;
        let before = self.clock.elapsed();
        self.clock.advance_to(at);
        self.session.handle_timeout(self.clock.now());
        Some(self.clock.elapsed() - before)
    }
}
