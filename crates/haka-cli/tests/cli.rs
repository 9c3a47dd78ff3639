//! The `haka` binary against a real mosquitto: publish and subscribe round trips, JSON
//! output, stdin line mode, TLS, one-line errors, and the benchmark's JSON summary.
//!
//! Every wait is bounded: a command that does not end within [`WAIT`] is killed and the test
//! fails. A subscriber is known to be subscribed when it says so on stderr (`-d`), never
//! after a sleep.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::Path,
    process::{Child, ChildStderr, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use haka_testkit::{Mosquitto, TestPki};

/// The bound on any command.
const WAIT: Duration = Duration::from_secs(30);

fn haka() -> Command {
    Command::new(env!("CARGO_BIN_EXE_haka"))
}

/// What a finished command left.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Reads `pipe` to its end on a thread; the text comes on the returned channel.
fn read_all(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// Waits (bounded) for `child` to end, with its output; kills it when time runs out.
fn finish(mut child: Child, stderr: mpsc::Receiver<String>) -> Output {
    let stdout = read_all(child.stdout.take().unwrap());
    let deadline = Instant::now() + WAIT;
    let outputs = stdout.recv_timeout(WAIT).and_then(|out| {
        Ok((
            out,
            stderr.recv_timeout(deadline.saturating_duration_since(Instant::now()))?,
        ))
    });
    match outputs {
        Ok((stdout, stderr)) => Output {
            // Both pipes closed: the process has ended, or is ending.
            status: child.wait().unwrap(),
            stdout,
            stderr,
        },
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("haka did not finish within {WAIT:?}");
        }
    }
}

/// Runs `haka args...` with `stdin` as its input, to its end.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = haka()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from a thread: a large input must not block us while haka waits.
    thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let stderr = read_all(child.stderr.take().unwrap());
    finish(child, stderr)
}

/// A running `haka sub -d ...`, returned once it said it is subscribed.
struct Subscriber {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Subscriber {
    fn start(args: &[&str]) -> Self {
        let mut child = haka()
            .arg("sub")
            .arg("-d")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (subscribed, rest) = Self::watch(stderr);
        match subscribed.recv_timeout(WAIT) {
            Ok(()) => Self {
                child,
                stderr: rest,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the subscriber did not subscribe within {WAIT:?}: {}",
                    rest.recv_timeout(WAIT).unwrap_or_default()
                );
            }
        }
    }

    /// Reads stderr line by line: signals the first `subscribed` line, and sends the whole
    /// text at the end.
    fn watch(stderr: ChildStderr) -> (mpsc::Receiver<()>, mpsc::Receiver<String>) {
        let (subscribed_tx, subscribed) = mpsc::channel();
        let (text_tx, text) = mpsc::channel();
        thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("subscribed to") {
                    let _ = subscribed_tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            let _ = text_tx.send(all);
        });
        (subscribed, text)
    }

    fn finish(self) -> Output {
        finish(self.child, self.stderr)
    }
}

fn succeeded(output: &Output) {
    assert!(output.status.success(), "{output:?}");
}

/// Asserts a failure with exit status `code` and exactly one line on stderr, which
/// contains every one of `needles`.
fn failed_with_one_line(output: &Output, code: i32, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    let lines: Vec<&str> = output.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].starts_with("haka: "), "{output:?}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} in {output:?}");
    }
}

#[test]
fn publish_and_subscribe_round_trip_with_topics() {
    let broker = Mosquitto::builder().start().unwrap();
    let url = broker.url();
    let subscriber =
        Subscriber::start(&["-u", &url, "-t", "greetings/#", "-q", "1", "-v", "-C", "1"]);
    let publisher = run(
        &[
            "pub",
            "-u",
            &url,
            "-t",
            "greetings/en",
            "-q",
            "1",
            "-m",
            "hello world",
        ],
        b"",
    );
    succeeded(&publisher);
    let output = subscriber.finish();
    succeeded(&output);
    assert_eq!(output.stdout, "greetings/en hello world\n");
}

#[test]
fn json_lines_parse_and_tell_text_from_binary() {
    let broker = Mosquitto::builder().start().unwrap();
    let url = broker.url();
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary");
    std::fs::write(&binary, [0xff, 0x00, 0xfe]).unwrap();
    let subscriber = Subscriber::start(&["-u", &url, "-t", "j/+", "-q", "2", "--json", "-C", "2"]);
    succeeded(&run(
        &[
            "pub",
            "-u",
            &url,
            "-t",
            "j/text",
            "-q",
            "2",
            "-m",
            "say \"hi\"\n",
        ],
        b"",
    ));
    succeeded(&run(
        &[
            "pub",
            "-u",
            &url,
            "-t",
            "j/bin",
            "-q",
            "2",
            "-f",
            path(&binary),
        ],
        b"",
    ));
    let output = subscriber.finish();
    succeeded(&output);
    let lines: Vec<serde_json::Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{output:?}");
    assert_eq!(lines[0]["topic"], "j/text");
    assert_eq!(lines[0]["payload"], "say \"hi\"\n");
    assert_eq!(lines[0]["qos"], 2);
    assert_eq!(lines[0]["retain"], false);
    assert_eq!(lines[0]["dup"], false);
    assert_eq!(lines[1]["topic"], "j/bin");
    assert_eq!(lines[1]["payload_base64"], "/wD+");
    assert!(lines[1].get("payload").is_none());
}

#[test]
fn stdin_lines_become_messages() {
    let broker = Mosquitto::builder().start().unwrap();
    let url = broker.url();
    let subscriber = Subscriber::start(&["-u", &url, "-t", "lines", "-q", "1", "-C", "3"]);
    let publisher = run(
        &["pub", "-u", &url, "-t", "lines", "-q", "1", "-l", "-d"],
        b"first\nsecond\r\nthird",
    );
    succeeded(&publisher);
    assert!(
        publisher.stderr.contains("3 message(s) published"),
        "{publisher:?}"
    );
    let output = subscriber.finish();
    succeeded(&output);
    assert_eq!(output.stdout, "first\nsecond\nthird\n");
}

#[test]
fn retained_messages_and_repeat() {
    let broker = Mosquitto::builder().start().unwrap();
    let url = broker.url();
    succeeded(&run(
        &[
            "pub", "-u", &url, "-t", "door", "-r", "-q", "1", "-m", "open", "--repeat", "3",
        ],
        b"",
    ));
    // A later subscriber gets the retained message at once.
    let output = run(&["sub", "-u", &url, "-t", "door", "-C", "1", "-v"], b"");
    succeeded(&output);
    assert_eq!(output.stdout, "door open\n");
    // Skipping retained messages leaves nothing: the timeout ends it, with status 27.
    let output = run(&["sub", "-u", &url, "-t", "door", "-R", "-W", "1"], b"");
    failed_with_one_line(&output, 27, &["timed out after 1 s"]);
    assert_eq!(output.stdout, "");
}

#[test]
fn a_refused_password_is_one_line_and_a_failure() {
    let broker = Mosquitto::builder()
        .allow_anonymous(false)
        .password("alice", "right")
        .start()
        .unwrap();
    let url = broker.url();
    let output = run(
        &[
            "pub",
            "-u",
            &url,
            "--username",
            "alice",
            "-P",
            "wrong",
            "-t",
            "t",
            "-m",
            "x",
        ],
        b"",
    );
    failed_with_one_line(
        &output,
        1,
        &[
            "connection refused by the broker",
            &broker.addr().to_string(),
        ],
    );
    assert!(
        output.stderr.contains("bad user name or password")
            || output.stderr.contains("not authorized"),
        "{output:?}"
    );
    let output = run(
        &[
            "sub",
            "-u",
            &url,
            "--username",
            "alice",
            "-P",
            "right",
            "-t",
            "t",
            "-W",
            "1",
        ],
        b"",
    );
    // Accepted: it subscribed and then timed out waiting.
    failed_with_one_line(&output, 27, &["timed out"]);
}

#[test]
fn an_unreachable_broker_is_one_line_and_quick() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("mqtt://127.0.0.1:{port}");
    let started = Instant::now();
    for command in [
        &["pub", "-u", &url, "-t", "t", "-m", "x", "-q", "1"][..],
        &["sub", "-u", &url, "-t", "t"][..],
        &["bench", "-u", &url, "--count", "10"][..],
    ] {
        let output = run(command, b"");
        failed_with_one_line(
            &output,
            1,
            &[&format!(
                "cannot connect to 127.0.0.1:{port}: connection refused"
            )],
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_arguments_are_refused_before_connecting() {
    // No message source.
    let output = run(&["pub", "-t", "t"], b"");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    // QoS 3.
    let output = run(&["sub", "-t", "t", "-q", "3"], b"");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    // Checked by haka, not the parser: one line each.
    failed_with_one_line(
        &run(&["pub", "-t", "a/#", "-m", "x"], b""),
        1,
        &["invalid topic \"a/#\""],
    );
    failed_with_one_line(&run(&["sub", "-t", "a/#/b"], b""), 1, &["invalid topic"]);
    failed_with_one_line(
        &run(
            &["pub", "-u", "http://127.0.0.1", "-t", "t", "-m", "x"],
            b"",
        ),
        1,
        &["invalid broker URL"],
    );
    failed_with_one_line(
        &run(&["pub", "--cafile", "ca.pem", "-t", "t", "-m", "x"], b""),
        1,
        &["need an mqtts:// URL"],
    );
    failed_with_one_line(
        &run(&["pub", "-t", "t", "-f", "/nonexistent/haka-cli-test"], b""),
        1,
        &["cannot read /nonexistent/haka-cli-test"],
    );
}

#[test]
fn tls_with_a_ca_file_and_an_untrusted_broker() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate().unwrap().write_to(dir.path()).unwrap();
    let broker = Mosquitto::builder()
        .tls(pki.server(), false)
        .start()
        .unwrap();
    let url = broker.tls_url().unwrap();
    let ca = path(&pki.ca);
    let subscriber = Subscriber::start(&["-u", &url, "--cafile", ca, "-t", "secure", "-C", "1"]);
    succeeded(&run(
        &[
            "pub", "-u", &url, "--cafile", ca, "-t", "secure", "-q", "1", "-m", "sealed",
        ],
        b"",
    ));
    let output = subscriber.finish();
    succeeded(&output);
    assert_eq!(output.stdout, "sealed\n");

    // A CA that did not sign the broker's certificate: the certificate is rejected, in one line.
    let output = run(
        &[
            "pub",
            "-u",
            &url,
            "--cafile",
            path(&pki.other_ca),
            "-t",
            "t",
            "-m",
            "x",
        ],
        b"",
    );
    failed_with_one_line(
        &output,
        1,
        &["TLS certificate of 127.0.0.1 rejected", "not trusted"],
    );
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate().unwrap().write_to(dir.path()).unwrap();
    let broker = Mosquitto::builder()
        .tls(pki.server(), true)
        .start()
        .unwrap();
    let url = broker.tls_url().unwrap();
    let (ca, cert, key) = (path(&pki.ca), path(&pki.client_cert), path(&pki.client_key));
    succeeded(&run(
        &[
            "pub", "-u", &url, "--cafile", ca, "--cert", cert, "--key", key, "-t", "m", "-q", "1",
            "-m", "x",
        ],
        b"",
    ));
    // Without a certificate the broker closes the connection (after the handshake, in TLS
    // 1.3) before any CONNACK.
    let output = run(
        &["pub", "-u", &url, "--cafile", ca, "-t", "m", "-m", "x"],
        b"",
    );
    failed_with_one_line(&output, 1, &["ended before the broker accepted it"]);
}

#[test]
fn bench_reports_json_with_throughput_and_percentiles() {
    let broker = Mosquitto::builder().start().unwrap();
    let output = run(
        &[
            "bench",
            "-u",
            &broker.url(),
            "--count",
            "2000",
            "--qos",
            "1",
            "--json",
        ],
        b"",
    );
    succeeded(&output);
    let summary: serde_json::Value = serde_json::from_str(output.stdout.trim()).unwrap();
    assert_eq!(summary["qos"], 1);
    assert_eq!(summary["count"], 2000);
    assert_eq!(summary["size"], 64);
    assert_eq!(summary["connections"], 1);
    assert_eq!(summary["store"], "memory");
    let publish = &summary["publish"];
    assert_eq!(publish["completed"], 2000);
    assert_eq!(publish["failed"], 0);
    assert!(
        publish["messages_per_second"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    let receive = &summary["receive"];
    assert_eq!(receive["received"], 2000);
    assert_eq!(receive["missing"], 0);
    assert!(
        receive["messages_per_second"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    for side in [publish, receive] {
        let latency = &side["latency_ms"];
        let p50 = latency["p50"].as_f64().unwrap();
        let p99 = latency["p99"].as_f64().unwrap();
        let max = latency["max"].as_f64().unwrap();
        assert!(p50 <= p99 && p99 <= max, "{summary}");
    }
}

#[test]
fn bench_with_a_durable_store_and_several_connections_prints_a_table() {
    let broker = Mosquitto::builder().start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &[
            "bench",
            "-u",
            &broker.url(),
            "--count",
            "300",
            "--qos",
            "2",
            "--connections",
            "3",
            "--store",
            path(dir.path()),
            "--size",
            "100",
        ],
        b"",
    );
    succeeded(&output);
    assert!(
        output
            .stdout
            .starts_with("300 messages of 100 bytes at QoS 2, 3 connections, directory store"),
        "{output:?}"
    );
    assert!(output.stdout.contains("missing: 0"), "{output:?}");
    // Each publisher's store is removed at the end.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}
