//! The publishing process killed with `SIGKILL` mid-stream, again and again, and restarted on
//! its durable store: nothing `publish` accepted is lost, no QoS 2 message is delivered
//! twice.
//!
//! The parent test runs this test binary again as a child that executes only
//! [`sigkill_child`]: a client on a directory store publishing a numbered stream, printing
//! `accepted <payload>` each time `publish` returns (the message is then committed to the
//! store). The parent kills it after a random number of lines; the next child opens the same
//! store, which resends what was in flight or queued, and goes on. Every other child cannot
//! reach the broker at all, so everything it accepts is only in the store when it dies. A last child publishes a few more,
//! waits for every handle and disconnects. A subscriber in the parent must have received every
//! accepted payload, QoS 2 ones exactly once.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use std::{
    collections::HashMap,
    env,
    io::{BufRead, BufReader, Write},
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::*;
use haka::{Client, QoS, StoreOptions};
use haka_session::Durability;
use haka_testkit::{FaultProxy, Mosquitto};

const CHILD_DIR: &str = "HAKA_SIGKILL_CHILD";
const CHILD_URL: &str = "HAKA_SIGKILL_URL";
const CHILD_ROUND: &str = "HAKA_SIGKILL_ROUND";
const CHILD_LAST: &str = "HAKA_SIGKILL_LAST";
const ROUNDS: u64 = 8;

#[test]
fn sigkill_of_the_publisher_loses_nothing_accepted() {
    if env::var_os(CHILD_DIR).is_some() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = Mosquitto::builder()
        .extra("max_queued_messages 0")
        .start()
        .unwrap();
    // Every other child runs with the broker out of reach: what it publishes waits in the
    // store, and is sent only by the next child, after the kill.
    let proxy = FaultProxy::start(broker.addr()).unwrap();
    let child_url = format!("mqtt://{}", proxy.addr());
    let dir = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("sigkill test seed {seed}");

    // The subscriber, in the parent, reading as messages come.
    let (subscriber, mut messages) = runtime.block_on(async {
        let (client, messages) =
            Client::start(options(&broker.url(), "killed-sub").clean_session(false))
                .await
                .unwrap();
        client.subscribe("k/1", QoS::AtLeastOnce).await.unwrap();
        client.subscribe("k/2", QoS::ExactlyOnce).await.unwrap();
        (client, messages)
    });

    let mut accepted: Vec<(String, QoS)> = Vec::new();
    for round in 0..=ROUNDS {
        let last = round == ROUNDS;
        proxy.refuse(round % 2 == 1);
        let mut child = Command::new(env::current_exe().unwrap())
            .args([
                "sigkill_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_URL, &child_url)
            .env(CHILD_ROUND, round.to_string())
            .env(CHILD_LAST, if last { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, reports) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 5 + seed % 150;
        let mut received = Vec::new();
        loop {
            match reports.recv_timeout(WAIT) {
                Ok(line) if line == "done" => break,
                Ok(line) => {
                    received.push(line);
                    if !last && received.len() as u64 >= kill_after {
                        break;
                    }
                }
                Err(error) => {
                    let _ = child.kill();
                    panic!("round {round}: the child went quiet: {error}");
                }
            }
        }
        if last {
            assert!(child.wait().unwrap().success());
        } else {
            child.kill().unwrap();
            assert_eq!(child.wait().unwrap().signal(), Some(9));
        }
        reader.join().unwrap();
        received.extend(reports.try_iter());
        for line in received {
            if let Some(rest) = line.strip_prefix("accepted ") {
                let (payload, qos) = rest.split_once(' ').unwrap();
                let qos = if qos == "2" {
                    QoS::ExactlyOnce
                } else {
                    QoS::AtLeastOnce
                };
                accepted.push((payload.to_owned(), qos));
            }
        }
    }

    // Every accepted message arrives; QoS 2 exactly once.
    runtime.block_on(async {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let missing = |counts: &HashMap<String, usize>| {
            accepted
                .iter()
                .filter(|(p, _)| !counts.contains_key(p))
                .count()
        };
        while missing(&counts) > 0 {
            let Ok(Some(message)) = tokio::time::timeout(WAIT, messages.recv()).await else {
                let lost: Vec<&String> = accepted
                    .iter()
                    .filter(|(p, _)| !counts.contains_key(p))
                    .map(|(p, _)| p)
                    .collect();
                panic!(
                    "{} of {} accepted messages lost: {lost:?}",
                    lost.len(),
                    accepted.len()
                );
            };
            *counts
                .entry(String::from_utf8(message.payload.to_vec()).unwrap())
                .or_default() += 1;
        }
        // A marker published after everything proves no late duplicate is on its way.
        subscriber
            .publish("k/2", QoS::ExactlyOnce, false, "marker")
            .await
            .unwrap()
            .await
            .unwrap();
        loop {
            let message = next(&mut messages).await;
            let payload = String::from_utf8(message.payload.to_vec()).unwrap();
            if payload == "marker" {
                break;
            }
            *counts.entry(payload).or_default() += 1;
        }
        for (payload, qos) in &accepted {
            if *qos == QoS::ExactlyOnce {
                assert_eq!(
                    counts[payload], 1,
                    "{payload} delivered {} times at QoS 2",
                    counts[payload]
                );
            }
        }
        eprintln!(
            "sigkill test: {ROUNDS} kills, {} messages accepted",
            accepted.len()
        );
        assert!(accepted.len() as u64 > ROUNDS);
    });
}

/// The child: publishes until killed (or, in the last round, a few and waits for them).
#[test]
fn sigkill_child() {
    let Some(dir) = env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let url = env::var(CHILD_URL).unwrap();
    let round: u64 = env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let last = env::var(CHILD_LAST).unwrap() == "1";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let options =
            options(&url, "killed-pub")
                .clean_session(false)
                .store(StoreOptions::Directory {
                    path: dir,
                    durability: Durability::Flush,
                });
        let (client, _) = Client::start(options).await.unwrap();
        let mut stdout = std::io::stdout().lock();
        let mut handles = Vec::new();
        let count = if last { 20 } else { 100_000 };
        for n in 0..count {
            let (topic, qos, digit) = if n % 2 == 0 {
                ("k/1", QoS::AtLeastOnce, 1)
            } else {
                ("k/2", QoS::ExactlyOnce, 2)
            };
            let payload = format!("{round}-{n}");
            let handle = client
                .publish(topic, qos, false, payload.clone())
                .await
                .unwrap();
            writeln!(stdout, "accepted {payload} {digit}").unwrap();
            stdout.flush().unwrap();
            if last {
                handles.push(handle);
            }
        }
        for handle in handles {
            tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
        }
        client.disconnect().await.unwrap();
        writeln!(stdout, "done").unwrap();
        stdout.flush().unwrap();
    });
    let _ = Duration::ZERO;
}
