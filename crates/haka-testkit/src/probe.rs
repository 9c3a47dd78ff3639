//! Test-only helpers: a blocking MQTT probe built on `haka-codec`, and a bounded runner for
//! the mosquitto command-line tools.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use haka_codec::{Codec, ConnAck, Connect, Login, MqttString, Packet, Password};

use crate::mosquitto::find_program;

/// How long any single probe or tool operation may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A raw MQTT connection over a std `TcpStream`, every read bounded.
pub(crate) struct Probe {
    stream: TcpStream,
    codec: Codec,
    input: BytesMut,
}

impl Probe {
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Self {
            stream,
            codec: Codec::new(),
            input: BytesMut::new(),
        }
    }

    /// Sends CONNECT (clean session) and returns the CONNACK.
    pub(crate) fn mqtt_connect(&mut self, client_id: &str, login: Option<(&str, &str)>) -> ConnAck {
        let mut connect = Connect::new(MqttString::new(client_id).expect("a valid client id"));
        connect.login = login.map(|(user, password)| {
            Login::new(
                MqttString::new(user).expect("a valid user name"),
                Some(Password::new(password.as_bytes().to_vec()).expect("a valid password")),
            )
        });
        self.send(connect.into());
        match self.receive() {
            Packet::ConnAck(ack) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub(crate) fn send(&mut self, packet: Packet) {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(&packet, &mut bytes)
            .expect("the test built an encodable packet");
        self.stream.write_all(&bytes).expect("the broker reads");
    }

    /// The next packet, within [`PROBE_TIMEOUT`].
    pub(crate) fn receive(&mut self) -> Packet {
        let deadline = Instant::now() + PROBE_TIMEOUT;
        loop {
            if let Some(packet) = self.codec.decode(&mut self.input).expect("a valid packet") {
                return packet;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no packet within {PROBE_TIMEOUT:?}");
            self.stream
                .set_read_timeout(Some(left))
                .expect("a read timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the connection closed"),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading: {e}"),
            }
        }
    }

    /// Whether the peer closes the connection (EOF or reset) within [`PROBE_TIMEOUT`];
    /// bytes before the end are skipped.
    pub(crate) fn is_closed(&mut self) -> bool {
        stream_closes(&mut self.stream)
    }
}

/// Whether `stream` ends (EOF or reset) within [`PROBE_TIMEOUT`]; bytes before the end are
/// skipped.
pub(crate) fn stream_closes(stream: &mut TcpStream) -> bool {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("a read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Runs a mosquitto client tool (`mosquitto_pub`, `mosquitto_sub`) with `args`, killing it
/// past [`PROBE_TIMEOUT`].
///
/// # Panics
///
/// When the tool is not installed, naming the install command.
pub(crate) fn run_tool<'a>(tool: &'static str, args: impl IntoIterator<Item = &'a str>) -> Output {
    let program = find_program(tool).unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {tool}: {e}"));
    let pid = rustix::process::Pid::from_child(&child);
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(output) => output,
        Err(_) => {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            panic!("{tool} did not finish within {PROBE_TIMEOUT:?}");
        }
    };
    let _ = waiter.join();
    output.unwrap_or_else(|e| panic!("waiting for {tool}: {e}"))
}
