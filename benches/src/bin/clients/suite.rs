//! The orchestrator: the servers, the workloads, the alternation of clients, the report.
//!
//! Workloads, each repeated `--reps` times (5 by default), every client once per repetition,
//! the order of the clients rotating from one repetition to the next:
//!
//! - against the **ack-only server** (`haka_benches::ack_server`, a child process): QoS 0, 1
//!   and 2, payloads of 64 B and 1 KiB, 100,000 messages; at QoS 1 and 2 haka also runs with
//!   its durable store (`haka-flush`: a directory, `Durability::Flush`);
//! - against **mosquitto** (started by `haka_testkit::Mosquitto`, `max_inflight_messages 100`,
//!   no queue limit, no per-message logging, otherwise its defaults): the same, with 20,000 messages at QoS 2; at
//!   QoS 0 a hand-written subscriber in this process counts the messages and the client's
//!   timed region ends when the last one has arrived;
//! - **latency**: QoS 1 through mosquitto at 1,000 msg/s, 200 messages of warm-up then 5,000
//!   measured, publisher and subscriber in the same process, 64 B payloads carrying their
//!   send time.
//!
//! Every client has an in-flight window of 100. `--quick` divides the message counts by ten
//! and measures 1,000 latency samples.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant, SystemTime},
};

use clap::Args;
use haka_benches::ack_server::ConnectionReport;
use haka_testkit::Mosquitto;
use serde::Serialize;

use crate::{
    client::{ClientKind, Latency, StoreKind},
    cpu::Measured,
    report::{self, LatencyRun, ThroughputRun},
    subscriber::CountingSubscriber,
    Error,
};

/// The in-flight window of every client.
const WINDOW: u16 = 100;

/// How long one client run may take before it is killed and counted as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the ack-only server may take to report a finished connection.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The orchestrator's options (the program's options when run without a subcommand).
#[derive(Debug, Clone, Args)]
pub(crate) struct SuiteOptions {
    /// Repetitions of every workload.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// A tenth of the messages, 1,000 latency samples: for trying the program out.
    #[arg(long)]
    quick: bool,
    /// The clients, comma-separated, among haka, haka-flush, rumqttc, paho, raw; all that
    /// this build has by default.
    #[arg(long, value_delimiter = ',')]
    clients: Vec<String>,
    /// Only the workloads whose name contains this (e.g. `ack-only`, `qos1`, `latency`).
    #[arg(long)]
    only: Option<String>,
    /// tokio worker threads of the Rust clients; 0 for the current-thread runtime.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Starts mosquitto with `set_tcp_nodelay true` (its default is false: Nagle's algorithm
    /// holds back its small acknowledgements while earlier ones are unacknowledged).
    #[arg(long)]
    mosquitto_nodelay: bool,
    /// Where to write every measurement as JSON.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/clients-bench.json"))]
    json: PathBuf,
}

/// A client as the report names it: a library, and for haka its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Variant {
    name: &'static str,
    client: ClientKind,
    store: StoreKind,
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "haka",
        client: ClientKind::Haka,
        store: StoreKind::Memory,
    },
    Variant {
        name: "haka-flush",
        client: ClientKind::Haka,
        store: StoreKind::Flush,
    },
    Variant {
        name: "rumqttc",
        client: ClientKind::Rumqttc,
        store: StoreKind::Memory,
    },
    Variant {
        name: "paho",
        client: ClientKind::Paho,
        store: StoreKind::Memory,
    },
    Variant {
        name: "raw",
        client: ClientKind::Raw,
        store: StoreKind::Memory,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Server {
    AckOnly,
    Mosquitto,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Self::AckOnly => "ack-only",
            Self::Mosquitto => "mosquitto",
        }
    }
}

/// One throughput workload.
#[derive(Debug, Clone)]
struct Workload {
    server: Server,
    qos: u8,
    size: usize,
    count: u64,
    variants: Vec<Variant>,
}

impl Workload {
    fn name(&self) -> String {
        let size = if self.size >= 1024 {
            format!("{}KiB", self.size / 1024)
        } else {
            format!("{}B", self.size)
        };
        format!("{} qos{} {size}", self.server.name(), self.qos)
    }
}

/// What the report and the JSON file hold of one workload.
#[derive(Debug, Serialize)]
struct ThroughputResult {
    name: String,
    server: Server,
    qos: u8,
    size: usize,
    count: u64,
    runs: Vec<ThroughputRun>,
    summary: Vec<report::ThroughputSummary>,
}

#[derive(Debug, Serialize)]
struct LatencyResult {
    name: String,
    rate: u32,
    count: u64,
    warmup: u64,
    size: usize,
    runs: Vec<LatencyRun>,
    summary: Vec<report::LatencySummary>,
}

#[derive(Debug, Serialize)]
struct Results {
    /// Seconds since the Unix epoch at the start.
    started: u64,
    finished: u64,
    reps: usize,
    quick: bool,
    threads: usize,
    mosquitto_nodelay: bool,
    window: u16,
    throughput: Vec<ThroughputResult>,
    latency: Vec<LatencyResult>,
    verdicts: Vec<Verdict>,
}

/// A bar of the client issue and whether this run met it.
#[derive(Debug, Serialize)]
struct Verdict {
    bar: String,
    measured: Option<f64>,
    met: Option<bool>,
}

/// The servers of a run.
struct Servers {
    ack_only: AckOnlyServer,
    mosquitto: Mosquitto,
}

/// The ack-only server, a child process of this program, and its connection reports.
struct AckOnlyServer {
    child: Child,
    port: u16,
    reports: mpsc::Receiver<ConnectionReport>,
}

impl AckOnlyServer {
    fn start() -> Result<Self, Error> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().ok_or("the server said nothing")??;
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("the server said {first:?}"))?;
        let (tx, reports) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(report) = serde_json::from_str(&line) {
                    if tx.send(report).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Self {
            child,
            port,
            reports,
        })
    }

    /// The report of the connection of `client_id`, once it has ended.
    fn report(&self, client_id: &str) -> Result<ConnectionReport, Error> {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let report = self
                .reports
                .recv_timeout(left)
                .map_err(|_| format!("the ack-only server never reported {client_id}"))?;
            if report.client_id == client_id {
                return Ok(report);
            }
        }
    }
}

impl Drop for AckOnlyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn run(options: &SuiteOptions) -> Result<(), Error> {
    let started = unix_now();
    let variants = choose_variants(&options.clients)?;
    let (throughput, latency) = workloads(options, &variants);
    let mut mosquitto = Mosquitto::builder()
        .max_inflight(WINDOW)
        // No limit on what mosquitto queues for the QoS 0 subscriber (it would drop).
        .extra("max_queued_messages 0")
        // The testkit logs every packet; a benchmark cannot afford it. `none` clears the
        // types given before; the broker's "running" line, which the testkit waits for, is
        // information.
        .extra("log_type none")
        .extra("log_type error")
        .extra("log_type warning")
        .extra("log_type notice")
        .extra("log_type information");
    if options.mosquitto_nodelay {
        mosquitto = mosquitto.extra("set_tcp_nodelay true");
    }
    let servers = Servers {
        ack_only: AckOnlyServer::start()?,
        mosquitto: mosquitto.start()?,
    };
    eprintln!(
        "ack-only server on port {}, mosquitto on port {}",
        servers.ack_only.port,
        servers.mosquitto.port()
    );

    let mut sequence = 0usize;
    let mut results = Results {
        started,
        finished: 0,
        reps: options.reps,
        quick: options.quick,
        threads: options.threads,
        mosquitto_nodelay: options.mosquitto_nodelay,
        window: WINDOW,
        throughput: Vec::new(),
        latency: Vec::new(),
        verdicts: Vec::new(),
    };
    let mut tables = String::new();
    for workload in &throughput {
        let name = workload.name();
        let mut runs = Vec::new();
        for rep in 0..options.reps {
            for i in 0..workload.variants.len() {
                let variant = workload.variants[(i + rep) % workload.variants.len()];
                sequence += 1;
                let result = run_throughput(&servers, workload, variant, sequence, options.threads)
                    .map_err(|e| e.to_string());
                match &result {
                    Ok(m) => eprintln!(
                        "[{name}] rep {}/{} {:<10} {:>9.0} msg/s {:>6.2} µs/msg",
                        rep + 1,
                        options.reps,
                        variant.name,
                        m.rate(),
                        m.cpu_us_per_message()
                    ),
                    Err(e) => eprintln!("[{name}] rep {} {}: FAILED: {e}", rep + 1, variant.name),
                }
                runs.push(ThroughputRun {
                    rep,
                    client: variant.name.to_owned(),
                    result,
                });
            }
        }
        let names: Vec<String> = workload
            .variants
            .iter()
            .map(|v| v.name.to_owned())
            .collect();
        let summary = report::summarize_throughput(&names, &runs);
        let table = report::throughput_table(&name, &summary);
        eprintln!("\n{table}");
        tables.push_str(&table);
        tables.push('\n');
        results.throughput.push(ThroughputResult {
            name,
            server: workload.server,
            qos: workload.qos,
            size: workload.size,
            count: workload.count,
            runs,
            summary,
        });
    }
    if let Some(job) = latency {
        let mut runs = Vec::new();
        for rep in 0..options.reps {
            for i in 0..job.variants.len() {
                let variant = job.variants[(i + rep) % job.variants.len()];
                sequence += 1;
                let result = run_latency(&servers, &job, variant, sequence, options.threads)
                    .map_err(|e| e.to_string());
                match &result {
                    Ok(l) => eprintln!(
                        "[{}] rep {}/{} {:<10} p50 {:>5} µs p90 {:>5} µs p99 {:>6} µs lost {}",
                        job.name,
                        rep + 1,
                        options.reps,
                        variant.name,
                        l.p50_ns / 1000,
                        l.p90_ns / 1000,
                        l.p99_ns / 1000,
                        l.lost
                    ),
                    Err(e) => eprintln!(
                        "[{}] rep {} {}: FAILED: {e}",
                        job.name,
                        rep + 1,
                        variant.name
                    ),
                }
                runs.push(LatencyRun {
                    rep,
                    client: variant.name.to_owned(),
                    result,
                });
            }
        }
        let names: Vec<String> = job.variants.iter().map(|v| v.name.to_owned()).collect();
        let summary = report::summarize_latency(&names, &runs);
        let table = report::latency_table(&job.name, &summary);
        eprintln!("\n{table}");
        tables.push_str(&table);
        tables.push('\n');
        results.latency.push(LatencyResult {
            name: job.name.clone(),
            rate: job.rate,
            count: job.count,
            warmup: job.warmup,
            size: job.size,
            runs,
            summary,
        });
    }
    results.verdicts = verdicts(&results);
    results.finished = unix_now();

    println!("{tables}");
    println!("#### Against the bar\n\n| bar | measured | met |\n|---|---:|---|");
    for verdict in &results.verdicts {
        let measured = verdict
            .measured
            .map_or("–".to_owned(), |m| format!("{m:.2}"));
        let met = match verdict.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not measured",
        };
        println!("| {} | {measured} | {met} |", verdict.bar);
    }
    if let Some(dir) = options.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.json, serde_json::to_string_pretty(&results)?)?;
    eprintln!("\nevery measurement: {}", options.json.display());
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn choose_variants(names: &[String]) -> Result<Vec<Variant>, Error> {
    if names.is_empty() {
        return Ok(VARIANTS
            .iter()
            .copied()
            .filter(|v| v.client.available())
            .collect());
    }
    names
        .iter()
        .map(|name| {
            let variant = VARIANTS
                .iter()
                .find(|v| v.name == name)
                .ok_or_else(|| format!("unknown client {name:?}"))?;
            if !variant.client.available() {
                return Err(format!("{name} is not built: add --features paho").into());
            }
            Ok(*variant)
        })
        .collect()
}

/// The latency workload.
#[derive(Debug, Clone)]
struct LatencyWorkload {
    name: String,
    rate: u32,
    count: u64,
    warmup: u64,
    size: usize,
    variants: Vec<Variant>,
}

fn workloads(
    options: &SuiteOptions,
    variants: &[Variant],
) -> (Vec<Workload>, Option<LatencyWorkload>) {
    let scale = if options.quick { 10 } else { 1 };
    let wanted = |name: &str| {
        options
            .only
            .as_deref()
            .is_none_or(|only| name.contains(only))
    };
    let mut throughput = Vec::new();
    for server in [Server::AckOnly, Server::Mosquitto] {
        for qos in 0..=2 {
            for size in [64, 1024] {
                let count = if server == Server::Mosquitto && qos == 2 {
                    20_000
                } else {
                    100_000
                } / scale;
                // The durable store matters where there is something to store, and the
                // ack-only server is where its cost shows.
                let durable = server == Server::AckOnly && qos > 0;
                let workload = Workload {
                    server,
                    qos,
                    size,
                    count,
                    variants: variants
                        .iter()
                        .copied()
                        .filter(|v| v.store == StoreKind::Memory || durable)
                        .collect(),
                };
                if wanted(&workload.name()) && !workload.variants.is_empty() {
                    throughput.push(workload);
                }
            }
        }
    }
    let latency = LatencyWorkload {
        name: "latency qos1 64B 1000/s mosquitto".to_owned(),
        rate: 1000,
        count: if options.quick { 1000 } else { 5000 },
        warmup: 200,
        size: 64,
        variants: variants
            .iter()
            .copied()
            .filter(|v| v.store == StoreKind::Memory)
            .collect(),
    };
    let latency = (wanted(&latency.name) && !latency.variants.is_empty()).then_some(latency);
    (throughput, latency)
}

/// Writes back the page cache's dirty pages, so that a client does not run while the kernel
/// writes out what the one before it stored: the durable client leaves about 100 MB behind,
/// whose writeback slowed the next client's run by up to 60 % (a memory-store run at 1 KiB
/// right after a durable one: 1.0 µs of CPU per message against 0.6).
fn settle() -> Result<(), Error> {
    let status = Command::new("sync").status()?;
    if !status.success() {
        return Err(format!("`sync` failed: {status}").into());
    }
    Ok(())
}

/// Runs one client process on one workload.
fn run_throughput(
    servers: &Servers,
    workload: &Workload,
    variant: Variant,
    sequence: usize,
    threads: usize,
) -> Result<Measured, Error> {
    settle()?;
    let client_id = format!("{}-{sequence:05}", variant.name);
    let topic = format!("bench/{sequence:05}/temperature");
    let port = match workload.server {
        Server::AckOnly => servers.ack_only.port,
        Server::Mosquitto => servers.mosquitto.port(),
    };
    // At QoS 0 through mosquitto, a subscriber says when everything arrived.
    let subscriber = (workload.server == Server::Mosquitto && workload.qos == 0)
        .then(|| {
            CountingSubscriber::start(
                port,
                &format!("count-{sequence:05}"),
                &topic,
                workload.count,
            )
        })
        .transpose()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args([
        "run",
        "--client",
        variant.client.name(),
        "--port",
        &port.to_string(),
        "--topic",
        &topic,
        "--client-id",
        &client_id,
        "--qos",
        &workload.qos.to_string(),
        "--size",
        &workload.size.to_string(),
        "--count",
        &workload.count.to_string(),
        "--window",
        &WINDOW.to_string(),
        "--threads",
        &threads.to_string(),
        "--store",
        match variant.store {
            StoreKind::Memory => "memory",
            StoreKind::Flush => "flush",
        },
    ]);
    if subscriber.is_some() {
        command.arg("--until-stdin");
    }
    let mut child = ClientProcess(
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    if let Some(subscriber) = subscriber {
        let received = subscriber.finish();
        // Whatever happened, the client stops waiting.
        if let Some(mut stdin) = child.0.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        let received = received?;
        if received != workload.count {
            let _ = child.finish();
            return Err(format!(
                "the subscriber received {received} messages of {}",
                workload.count
            )
            .into());
        }
    }
    let stdout = child.finish()?;
    let measured: Measured = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("the client printed {stdout:?}: {e}"))?;
    if workload.server == Server::AckOnly {
        let report = servers.ack_only.report(&client_id)?;
        let qos = usize::from(workload.qos);
        let pubrels = if workload.qos == 2 { workload.count } else { 0 };
        if report.publishes[qos] != workload.count || report.pubrels != pubrels {
            return Err(format!(
                "the ack-only server received {:?} PUBLISH (by QoS) and {} PUBREL for {} messages",
                report.publishes, report.pubrels, workload.count
            )
            .into());
        }
    }
    Ok(measured)
}

fn run_latency(
    servers: &Servers,
    job: &LatencyWorkload,
    variant: Variant,
    sequence: usize,
    threads: usize,
) -> Result<Latency, Error> {
    settle()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args([
        "latency",
        "--client",
        variant.client.name(),
        "--port",
        &servers.mosquitto.port().to_string(),
        "--topic",
        &format!("latency/{sequence:05}"),
        "--client-id",
        &format!("{}-{sequence:05}", variant.name),
        "--rate",
        &job.rate.to_string(),
        "--count",
        &job.count.to_string(),
        "--warmup",
        &job.warmup.to_string(),
        "--size",
        &job.size.to_string(),
        "--threads",
        &threads.to_string(),
    ]);
    let child = ClientProcess(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = child.finish()?;
    let latency: Latency = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("the client printed {stdout:?}: {e}"))?;
    if latency.lost > 0 {
        return Err(format!("{} of {} messages never arrived", latency.lost, job.count).into());
    }
    Ok(latency)
}

/// A client process, killed if it outlives [`RUN_TIMEOUT`].
struct ClientProcess(Child);

impl ClientProcess {
    /// Waits for the process; its standard output if it succeeded.
    fn finish(mut self) -> Result<String, Error> {
        let mut stdout = self.0.stdout.take().ok_or("the client's stdout")?;
        let mut stderr = self.0.stderr.take().ok_or("the client's stderr")?;
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = self.0.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return Err(format!("killed after {RUN_TIMEOUT:?}").into());
            }
            // The client measures itself; this only bounds how long it may take.
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            return Err(format!("{status}: {}", stderr.trim()).into());
        }
        Ok(stdout)
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        // Only reached with the process still running when `finish` was not called.
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The bars of the client issue, checked against this run.
fn verdicts(results: &Results) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for workload in &results.throughput {
        let haka_vs_rumqttc = report::rate_ratio(&workload.runs, "haka", report::REFERENCE);
        let (bar, at_least) = match (workload.server, workload.qos) {
            (Server::AckOnly, 0) => ("2x", 2.0),
            (Server::AckOnly, _) => ("3x", 3.0),
            (Server::Mosquitto, _) => ("1x", 1.0),
        };
        verdicts.push(Verdict {
            bar: format!("{}: haka at least {bar} rumqttc's msg/s", workload.name),
            measured: haka_vs_rumqttc,
            met: haka_vs_rumqttc.map(|r| r >= at_least),
        });
        if workload.server == Server::AckOnly && workload.qos == 1 {
            let durable = report::rate_ratio(&workload.runs, "haka-flush", "haka");
            verdicts.push(Verdict {
                bar: format!("{}: haka-flush at least 0.5x haka's msg/s", workload.name),
                measured: durable,
                met: durable.map(|r| r >= 0.5),
            });
        }
    }
    for latency in &results.latency {
        let p50 = latency
            .summary
            .iter()
            .find(|s| s.client == "haka")
            .and_then(|s| s.p50_vs_reference);
        verdicts.push(Verdict {
            bar: format!("{}: haka's p50 at most 0.8x rumqttc's", latency.name),
            measured: p50,
            met: p50.map(|r| r <= 0.8),
        });
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_and_counts() {
        let options = SuiteOptions {
            reps: 1,
            quick: false,
            clients: Vec::new(),
            only: None,
            threads: 0,
            mosquitto_nodelay: false,
            json: PathBuf::new(),
        };
        let variants = choose_variants(&[]).expect("the default clients");
        let (throughput, latency) = workloads(&options, &variants);
        assert_eq!(throughput.len(), 12);
        let names: Vec<String> = throughput.iter().map(Workload::name).collect();
        assert!(names.contains(&"ack-only qos1 64B".to_owned()));
        assert!(names.contains(&"mosquitto qos2 1KiB".to_owned()));
        let count = |name: &str| {
            throughput
                .iter()
                .find(|w| w.name() == name)
                .map(|w| w.count)
        };
        assert_eq!(count("mosquitto qos2 64B"), Some(20_000));
        assert_eq!(count("mosquitto qos1 64B"), Some(100_000));
        let durable = |name: &str| {
            throughput
                .iter()
                .find(|w| w.name() == name)
                .is_some_and(|w| w.variants.iter().any(|v| v.store == StoreKind::Flush))
        };
        assert!(durable("ack-only qos1 1KiB"));
        assert!(!durable("ack-only qos0 64B") && !durable("mosquitto qos1 64B"));
        assert_eq!(latency.map(|l| (l.count, l.rate)), Some((5000, 1000)));
    }
}
