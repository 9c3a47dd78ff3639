//! Our client against an independent one: Eclipse Paho's Python client (paho-mqtt 2.x from
//! PyPI), run as a peer process by `tests/python/peer.py`, both on a mosquitto started per
//! test. The peer takes commands on stdin and reports what happens as JSON lines on stdout,
//! which the test reads with a bound on every wait.
//!
//! The interpreter is `$HAKA_PYTHON` (set by `scripts/test`, whose `ensure_paho` installs
//! paho-mqtt), else the virtual environment `ensure_paho` makes in `target/python-peer`, else
//! `python3`. Without paho-mqtt 2.x the tests fail, naming the install command.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Mutex},
};

use common::*;
use haka::{Client, QoS, SubscribeReturnCode};
use haka_testkit::{FaultProxy, Mosquitto};
use tokio::sync::mpsc;

/// The interpreter to run the peer with.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("HAKA_PYTHON").filter(|p| !p.is_empty()) {
        return python.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/python-peer/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// Fails the test, loudly, when `python` lacks paho-mqtt 2.x.
fn require_paho(python: &Path) {
    let output = Command::new(python)
        .args(["-c", "import paho.mqtt; print(paho.mqtt.__version__)"])
        .output();
    let version = match &output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => String::new(),
    };
    assert!(
        version.starts_with("2."),
        "these tests need Python's paho-mqtt 2.x in {} (found {version:?}: {output:?}).\n\
         Install it with scripts/test (its ensure_paho puts it in target/python-peer), or:\n    \
         python3 -m pip install --user 'paho-mqtt>=2,<3'\n\
         and point HAKA_PYTHON at the interpreter that has it.",
        python.display()
    );
}

/// A value of the peer's JSON lines: just what `peer.py` prints.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(i64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut parser = JsonParser {
            chars: text.chars().collect(),
            at: 0,
        };
        let value = parser.value()?;
        parser.skip_space();
        if parser.at != parser.chars.len() {
            return Err(format!("trailing characters in {text:?}"));
        }
        Ok(value)
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Json::String(s) => s,
            other => panic!("{key:?} is not a string: {other:?}"),
        }
    }

    fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Json::Number(n) => *n,
            other => panic!("{key:?} is not a number: {other:?}"),
        }
    }

    fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            Json::Bool(b) => *b,
            other => panic!("{key:?} is not a boolean: {other:?}"),
        }
    }
}

struct JsonParser {
    chars: Vec<char>,
    at: usize,
}

impl JsonParser {
    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, expected: char) -> Result<(), String> {
        self.skip_space();
        match self.chars.get(self.at) {
            Some(c) if *c == expected => {
                self.at += 1;
                Ok(())
            }
            other => Err(format!(
                "expected {expected:?} at {}, found {other:?}",
                self.at
            )),
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.skip_space();
        match self.chars.get(self.at).copied() {
            Some('{') => {
                self.at += 1;
                let mut fields = Vec::new();
                self.skip_space();
                if self.chars.get(self.at) == Some(&'}') {
                    self.at += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.eat(':')?;
                    fields.push((key, self.value()?));
                    self.skip_space();
                    match self.chars.get(self.at) {
                        Some(',') => self.at += 1,
                        Some('}') => {
                            self.at += 1;
                            return Ok(Json::Object(fields));
                        }
                        other => return Err(format!("bad object at {}: {other:?}", self.at)),
                    }
                }
            }
            Some('[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.chars.get(self.at) == Some(&']') {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.skip_space();
                    match self.chars.get(self.at) {
                        Some(',') => self.at += 1,
                        Some(']') => {
                            self.at += 1;
                            return Ok(Json::Array(items));
                        }
                        other => return Err(format!("bad array at {}: {other:?}", self.at)),
                    }
                }
            }
            Some('"') => Ok(Json::String(self.string()?)),
            Some('t') => self.word("true", Json::Bool(true)),
            Some('f') => self.word("false", Json::Bool(false)),
            Some('n') => self.word("null", Json::Null),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.at;
                self.at += 1;
                while self.chars.get(self.at).is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let digits: String = self.chars[start..self.at].iter().collect();
                digits
                    .parse()
                    .map(Json::Number)
                    .map_err(|e| format!("bad number {digits:?}: {e}"))
            }
            other => Err(format!("unexpected {other:?} at {}", self.at)),
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Result<Json, String> {
        let end = self.at + word.len();
        if end <= self.chars.len() && self.chars[self.at..end].iter().copied().eq(word.chars()) {
            self.at = end;
            Ok(value)
        } else {
            Err(format!("expected {word} at {}", self.at))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat('"')?;
        let mut out = String::new();
        loop {
            let c = *self.chars.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let escaped = *self.chars.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'u' => {
                            let mut code = self.hex4()?;
                            // A surrogate pair: json.dumps escapes characters outside the BMP.
                            if (0xd800..0xdc00).contains(&code) {
                                self.word("\\u", Json::Null)?;
                                let low = self.hex4()?;
                                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                            }
                            char::from_u32(code).ok_or("bad \\u escape")?
                        }
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let end = self.at + 4;
        let digits: String = self
            .chars
            .get(self.at..end)
            .ok_or("short \\u escape")?
            .iter()
            .collect();
        self.at = end;
        u32::from_str_radix(&digits, 16).map_err(|e| format!("bad \\u escape {digits:?}: {e}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The paho-mqtt peer process; killed and reaped when dropped.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Every line read, for failure reports.
    seen: Vec<String>,
}

impl Peer {
    /// Starts the peer as `client_id` on `port` of 127.0.0.1 and waits for its CONNACK.
    async fn start(port: u16, client_id: &str, persistent: bool) -> Peer {
        let python = python();
        require_paho(&python);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/peer.py");
        let mut command = Command::new(&python);
        command
            .arg("-u")
            .arg(&script)
            .args(["127.0.0.1", &port.to_string(), client_id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if persistent {
            command.arg("--persistent");
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let stdin = child.stdin.take();
        let mut peer = Peer {
            child,
            stdin,
            lines,
            stderr,
            seen: Vec::new(),
        };
        let connected = peer.expect("connected").await;
        assert_eq!(connected.int("rc"), 0, "{connected:?}");
        peer
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next report, within [`WAIT`].
    async fn next(&mut self) -> Json {
        let line = tokio::time::timeout(WAIT, self.lines.recv()).await;
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => self.fail("the peer's stdout ended"),
            Err(_) => self.fail("no report from the peer in time"),
        };
        self.seen.push(line.clone());
        let report = Json::parse(&line).unwrap_or_else(|e| self.fail(&e));
        if report.str("event") == "error" {
            self.fail("the peer reported an error");
        }
        report
    }

    /// The next report, which must be `event`.
    async fn expect(&mut self, event: &str) -> Json {
        let report = self.next().await;
        if report.str("event") != event {
            self.fail(&format!("expected {event:?}, got {report:?}"));
        }
        report
    }

    /// Subscribes the peer; returns the granted QoS (128: refused).
    async fn subscribe(&mut self, filter: &str, qos: u8) -> i64 {
        self.send(&format!("sub {filter} {qos}"));
        let report = self.expect("subscribed").await;
        match report.get("granted") {
            Json::Array(codes) if codes.len() == 1 => match codes[0] {
                Json::Number(code) => code,
                _ => self.fail("a granted QoS that is not a number"),
            },
            _ => self.fail("not one granted QoS"),
        }
    }

    /// Publishes and waits until the broker has it (PUBACK, PUBCOMP, or sent for QoS 0).
    async fn publish(&mut self, topic: &str, qos: u8, retain: bool, payload: &[u8]) {
        self.send(&format!(
            "pub {topic} {qos} {} {}",
            u8::from(retain),
            hex(payload)
        ));
        // "queued" (the identifier) and "published" may come in either order.
        let (mut queued, mut published) = (None, Vec::new());
        while queued.is_none_or(|mid| !published.contains(&mid)) {
            let report = self.next().await;
            match report.str("event") {
                "queued" => queued = Some(report.int("mid")),
                "published" => published.push(report.int("mid")),
                _ => self.fail(&format!("unexpected report while publishing: {report:?}")),
            }
        }
    }

    /// Stops the peer cleanly: DISCONNECT, then the process ends.
    async fn quit(mut self) {
        self.send("quit");
        self.expect("disconnected").await;
        drop(self.stdin.take());
        // The end of its stdout is the process ending.
        match tokio::time::timeout(WAIT, self.lines.recv()).await {
            Ok(None) => {}
            Ok(Some(line)) => self.fail(&format!("a report after the disconnection: {line}")),
            Err(_) => self.fail("the peer did not exit"),
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {}", self.stderr());
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- the peer's reports:\n{}\n--- its stderr:\n{}",
            self.seen.join("\n"),
            self.stderr()
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as the peer reports it: (topic, QoS, retain, dup, payload).
fn message(report: &Json) -> (String, i64, bool, bool, Vec<u8>) {
    assert_eq!(report.str("event"), "message", "{report:?}");
    (
        report.str("topic").to_owned(),
        report.int("qos"),
        report.bool("retain"),
        report.bool("dup"),
        unhex(report.str("payload")),
    )
}

/// Both directions between our client and paho-mqtt: paho receives what we publish at QoS
/// 0, 1 and 2 (binary and empty payloads too), we receive what paho publishes at QoS 1 and
/// 2, and a message paho retains reaches our later subscription with the retain flag.
#[tokio::test]
async fn exchanges_messages_with_paho_both_ways() {
    let broker = Mosquitto::builder().start().unwrap();
    let (client, mut messages) = Client::start(options(&broker.url(), "haka")).await.unwrap();
    assert_eq!(
        client
            .subscribe("paho/to-haka/#", QoS::ExactlyOnce)
            .await
            .unwrap(),
        SubscribeReturnCode::Success(QoS::ExactlyOnce)
    );
    let mut peer = Peer::start(broker.port(), "paho", false).await;
    assert_eq!(peer.subscribe("haka/to-paho/#", 2).await, 2);

    // (a) Ours publishes, paho receives.
    let sent: [(&str, QoS, &[u8]); 4] = [
        ("haka/to-paho/0", QoS::AtMostOnce, b"qos 0"),
        (
            "haka/to-paho/1",
            QoS::AtLeastOnce,
            &[0, 0xff, 0x80, b'\n', 0x7f],
        ),
        (
            "haka/to-paho/2",
            QoS::ExactlyOnce,
            "qos 2 \u{e9}t\u{e9} \u{1f680}".as_bytes(),
        ),
        ("haka/to-paho/empty", QoS::ExactlyOnce, b""),
    ];
    for (topic, qos, payload) in sent {
        let handle = client
            .publish(topic, qos, false, payload.to_vec())
            .await
            .unwrap();
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }
    for (topic, qos, payload) in sent {
        let report = peer.next().await;
        assert_eq!(
            message(&report),
            (topic.to_owned(), qos as i64, false, false, payload.to_vec()),
            "{report:?}"
        );
    }

    // (b) Paho publishes, ours receives.
    let from_paho: [(&str, u8, &[u8]); 2] = [
        ("paho/to-haka/1", 1, b"from paho at qos 1"),
        ("paho/to-haka/2", 2, &[0xde, 0xad, 0xbe, 0xef, 0]),
    ];
    for (topic, qos, payload) in from_paho {
        peer.publish(topic, qos, false, payload).await;
    }
    for (topic, qos, payload) in from_paho {
        let message = next(&mut messages).await;
        assert_eq!(message.topic.as_str(), topic);
        assert_eq!(message.qos as u8, qos);
        assert_eq!(&message.payload[..], payload);
        assert!(!message.retain && !message.dup);
    }

    // A retained message from paho reaches a later subscription of ours, marked retained.
    peer.publish("paho/retained", 1, true, b"kept").await;
    client
        .subscribe("paho/retained", QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = next(&mut messages).await;
    assert_eq!(
        (
            retained.topic.as_str(),
            retained.qos,
            retained.retain,
            &retained.payload[..]
        ),
        ("paho/retained", QoS::AtLeastOnce, true, &b"kept"[..])
    );

    peer.quit().await;
    client.disconnect().await.unwrap();
}

/// Exactly once, as an independent subscriber sees it: our client publishes QoS 2 messages
/// through a proxy that cuts the connection at random points (seeded), resending after each
/// cut; paho receives every message once, in order.
#[tokio::test]
async fn qos2_reaches_paho_exactly_once_across_cuts() {
    let broker = Mosquitto::builder().start().unwrap();
    let mut peer = Peer::start(broker.port(), "paho", false).await;
    assert_eq!(peer.subscribe("exactly/once", 2).await, 2);

    let proxy = FaultProxy::start(broker.addr()).unwrap();
    proxy.set_seed(7);
    proxy.set_random_cuts(Some((150, 1_500)));
    let url = format!("mqtt://{}", proxy.addr());
    // A persistent session: the broker remembers the QoS 2 identifiers it has received, so
    // a PUBLISH resent after a cut is not delivered again. The client must never give up
    // on a message because connections keep ending around it. (Its default in-flight
    // window must stay within mosquitto's `max_inflight_messages`, beyond which mosquitto
    // 2.0 drops incoming QoS 2 messages while acknowledging them: see known_issues.rs.)
    let publisher = options(&url, "haka-publisher")
        .clean_session(false)
        .max_identical_failures(u32::MAX);
    let (client, _) = Client::start(publisher).await.unwrap();
    const COUNT: u32 = 60;
    let mut handles = Vec::new();
    for n in 0..COUNT {
        handles.push(
            client
                .publish("exactly/once", QoS::ExactlyOnce, false, n.to_string())
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    }
    assert!(
        proxy.cuts() > 0,
        "the proxy never cut: the test proves nothing"
    );
    // Every message is complete (PUBCOMP), so the broker has delivered or queued each one
    // for paho already; a marker published now comes after all of them.
    proxy.set_random_cuts(None);
    proxy.cut_all();
    let handle = client
        .publish("exactly/once", QoS::ExactlyOnce, false, "end")
        .await
        .unwrap();
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
    let mut received = Vec::new();
    loop {
        let (topic, qos, _, _, payload) = message(&peer.next().await);
        assert_eq!((topic.as_str(), qos), ("exactly/once", 2));
        let payload = String::from_utf8(payload).unwrap();
        if payload == "end" {
            break;
        }
        received.push(payload);
    }
    let expected: Vec<String> = (0..COUNT).map(|n| n.to_string()).collect();
    assert_eq!(received, expected, "cuts: {}", proxy.cuts());
    peer.quit().await;
    client.disconnect().await.unwrap();
}

#[test]
fn json_parser_reads_what_peer_py_prints() {
    let report = Json::parse(
        r#"{"event": "message", "topic": "a/\u00e9\ud83d\ude80\"b", "qos": 2, "retain": false, "dup": true, "payload": "00ff", "granted": [0, 128], "x": null}"#,
    )
    .unwrap();
    assert_eq!(report.str("topic"), "a/\u{e9}\u{1f680}\"b");
    assert_eq!(report.int("qos"), 2);
    assert!(report.bool("dup") && !report.bool("retain"));
    assert_eq!(unhex(report.str("payload")), [0, 0xff]);
    assert_eq!(
        report.get("granted"),
        &Json::Array(vec![Json::Number(0), Json::Number(128)])
    );
    assert!(Json::parse("{\"a\": 1} x").is_err());
    assert_eq!(hex(b""), "-");
    assert_eq!(hex(&[1, 0xab]), "01ab");
}
