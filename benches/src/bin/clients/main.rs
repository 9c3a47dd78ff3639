//! The client benchmark: haka against rumqttc, paho-mqtt and a hand-written loop, whole
//! clients over real TCP connections.
//!
//! ```sh
//! cargo run --release -p haka-benches --bin clients                  # haka, rumqttc, a hand-written loop
//! cargo run --release -p haka-benches --features paho --bin clients  # and paho-mqtt
//! cargo run --release -p haka-benches --bin clients -- --quick --reps 1
//! ```
//!
//! Run without a subcommand, the program is the orchestrator: it starts the ack-only server
//! (this program's `server` subcommand, a child process) and a mosquitto, then runs every
//! workload, each client in a child process of its own (the `run` and `latency`
//! subcommands), alternating the clients within each repetition, and prints the tables that
//! `docs/benchmarks.md` shows. A client measures itself: wall time and CPU time (user and
//! system, `getrusage`) from its first publish to its last completion, so every figure is
//! that one process's alone. See [`suite`] for the workloads.

mod client;
mod cpu;
mod report;
mod subscriber;
mod suite;

use std::{io::Write, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::client::{LatencyJob, ThroughputJob};

#[derive(Debug, Parser)]
#[command(about = "Whole-client MQTT benchmark: haka, rumqttc, paho-mqtt, a hand-written loop")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    suite: suite::SuiteOptions,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the ack-only MQTT server; prints `listening PORT`, then one JSON line per
    /// connection that ends.
    Server {
        /// The port on 127.0.0.1; 0 for any free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Publishes messages with one client; prints one JSON line of measurements.
    Run(ThroughputJob),
    /// Measures end-to-end latency through a broker with one client library; prints one
    /// JSON line of percentiles.
    Latency(LatencyJob),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => suite::run(&cli.suite),
        Some(Command::Server { port }) => serve(port),
        Some(Command::Run(job)) => client::throughput(&job).and_then(|m| print_json(&m)),
        Some(Command::Latency(job)) => client::latency(&job).and_then(|m| print_json(&m)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clients: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A failure of the benchmark, said in words: every one ends the program (or the child).
type Error = Box<dyn std::error::Error + Send + Sync>;

fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

fn serve(port: u16) -> Result<(), Error> {
    let server = haka_benches::ack_server::AckServer::bind(("127.0.0.1", port))?;
    println!("listening {}", server.local_addr()?.port());
    std::io::stdout().flush()?;
    server.run(|report| {
        // The orchestrator reads these lines to check what each client delivered.
        if let Ok(line) = serde_json::to_string(&report) {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    })?;
    Ok(())
}
