//! The command line: `haka pub`, `haka sub` and `haka bench`, with the options people know
//! from `mosquitto_pub` and `mosquitto_sub`.

use std::{num::NonZeroU16, path::PathBuf};

use clap::{ArgGroup, Args, Parser, Subcommand};
use haka::QoS;

/// Publish, subscribe and benchmark an MQTT 3.1.1 broker.
#[derive(Debug, Parser)]
#[command(name = "haka", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Publish a message (from an argument, a file, or stdin line by line) and wait until the
    /// broker has it.
    Pub(PubArgs),
    /// Subscribe to topic filters and print what arrives, as text or JSON lines.
    Sub(SubArgs),
    /// Measure throughput and latency against a broker: K publishers and one subscriber.
    Bench(BenchArgs),
}

/// Where the broker is and how to reach it.
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    // The help texts with `[...]` and `<...>` are attributes: as doc comments rustdoc would
    // read them as links and HTML.
    #[arg(
        short = 'u',
        long,
        default_value = "mqtt://127.0.0.1:1883",
        help = "The broker: mqtt://host[:port] or mqtts://host[:port] (TLS)"
    )]
    pub(crate) url: String,
    /// User name to connect with.
    #[arg(long)]
    pub(crate) username: Option<String>,
    /// Password to connect with (needs --username).
    #[arg(short = 'P', long, requires = "username")]
    pub(crate) password: Option<String>,
    /// Trust only this CA (PEM) for mqtts:// instead of the platform's roots.
    #[arg(long, value_name = "FILE")]
    pub(crate) cafile: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (needs --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Do not verify the broker's certificate (dangerous: anyone can impersonate it).
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Keep alive in seconds (0 turns it off).
    #[arg(short = 'k', long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) keepalive: u16,
    /// How long to wait for the TCP connection and, separately, the TLS handshake.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) connect_timeout: u64,
    /// How many QoS 1 and 2 messages may await their acknowledgement at once [default: 20].
    #[arg(long, value_name = "N")]
    pub(crate) max_inflight: Option<NonZeroU16>,
    /// Print the connection's and the subscriptions' progress on stderr.
    #[arg(short = 'd', long)]
    pub(crate) debug: bool,
}

/// The session with the broker: who the client is, what it leaves behind, where it keeps
/// its queue.
#[derive(Debug, Args)]
pub(crate) struct SessionArgs {
    #[arg(
        short = 'i',
        long,
        help = "Client identifier [default: haka-pub-<pid> or haka-sub-<pid>]"
    )]
    pub(crate) id: Option<String>,
    /// Ask for a persistent session (clean session off); needs --id.
    #[arg(short = 'c', long, requires = "id")]
    pub(crate) no_clean_session: bool,
    /// Topic of the will, published by the broker if the connection is lost.
    #[arg(long, value_name = "TOPIC")]
    pub(crate) will_topic: Option<String>,
    /// Payload of the will [default: empty].
    #[arg(long, value_name = "TEXT", requires = "will_topic")]
    pub(crate) will_payload: Option<String>,
    /// QoS of the will.
    #[arg(long, value_name = "QOS", value_parser = parse_qos, default_value = "0", requires = "will_topic")]
    pub(crate) will_qos: QoS,
    /// Retain the will.
    #[arg(long, requires = "will_topic")]
    pub(crate) will_retain: bool,
    /// Keep the QoS 1/2 queue in this directory (survives a crash) instead of in memory.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    /// With --store: wait for the disk (fsync) at each commit.
    #[arg(long, requires = "store")]
    pub(crate) fsync: bool,
}

/// `haka pub`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .args(["message", "file", "stdin_line", "stdin_file", "null_message"]),
))]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    #[command(flatten)]
    pub(crate) session: SessionArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub(crate) topic: String,
    /// QoS: 0, 1 or 2.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "0")]
    pub(crate) qos: QoS,
    /// Ask the broker to retain the message.
    #[arg(short = 'r', long)]
    pub(crate) retain: bool,
    /// The message.
    #[arg(short = 'm', long)]
    pub(crate) message: Option<String>,
    /// Send the contents of this file as the message.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Read stdin line by line and publish each line as a message as it arrives.
    #[arg(short = 'l', long = "stdin-line")]
    pub(crate) stdin_line: bool,
    /// Read stdin to its end and publish it as one message.
    #[arg(short = 's', long = "stdin-file")]
    pub(crate) stdin_file: bool,
    /// Publish an empty message.
    #[arg(short = 'n', long = "null-message")]
    pub(crate) null_message: bool,
    /// Publish the message this many times.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "stdin_line",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) repeat: u64,
}

/// `haka sub`.
#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    #[command(flatten)]
    pub(crate) session: SessionArgs,
    /// Topic filter to subscribe to; repeat for several.
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    pub(crate) topics: Vec<String>,
    /// QoS to subscribe at: 0, 1 or 2.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "0")]
    pub(crate) qos: QoS,
    /// Print the topic before each payload.
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    /// Print one JSON object per message: topic, payload (or payload_base64 when it is not
    /// UTF-8), qos, retain, dup.
    #[arg(long)]
    pub(crate) json: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
    /// Give up after this many seconds from the subscription (exit code 27).
    #[arg(short = 'W', long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: Option<u64>,
    /// No newline after each payload (text output).
    #[arg(short = 'N', long, conflicts_with = "json")]
    pub(crate) no_newline: bool,
    /// Skip retained messages (those the broker had stored before the subscription).
    #[arg(short = 'R', long)]
    pub(crate) no_retained: bool,
}

/// `haka bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    #[arg(
        short = 'i',
        long,
        help = "Prefix of the client identifiers: <ID>-pub-<n> and <ID>-sub [default: haka-bench-<pid>]"
    )]
    pub(crate) id: Option<String>,
    #[arg(
        short = 't',
        long,
        help = "Topic to publish to [default: haka/bench/<ID>]"
    )]
    pub(crate) topic: Option<String>,
    /// QoS: 0, 1 or 2.
    #[arg(short = 'q', long, value_parser = parse_qos, default_value = "1")]
    pub(crate) qos: QoS,
    /// How many messages to publish in all, shared among the connections.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: u64,
    /// Payload size in bytes (at least 16: a timestamp and a sequence number).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(16..=(256 << 20)))]
    pub(crate) size: u64,
    /// How many publishing connections.
    #[arg(short = 'c', long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) connections: u64,
    /// Where publishers keep their queue: `memory`, or a directory (one subdirectory per
    /// publisher, removed at the end).
    #[arg(long, value_name = "memory|DIR", default_value = "memory", value_parser = parse_bench_store)]
    pub(crate) store: BenchStore,
    /// With a directory store: wait for the disk (fsync) at each commit.
    #[arg(long)]
    pub(crate) fsync: bool,
    /// Publishes per connection that may await completion at once.
    #[arg(long, value_name = "N", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) window: u64,
    /// How long the subscriber waits for the last messages once every publish completed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) drain_timeout: u64,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where `haka bench` publishers keep their queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BenchStore {
    /// In memory.
    Memory,
    /// Under this directory.
    Directory(PathBuf),
}

fn parse_qos(text: &str) -> Result<QoS, String> {
    text.parse::<u8>()
        .ok()
        .and_then(|n| QoS::try_from(n).ok())
        .ok_or_else(|| "QoS must be 0, 1 or 2".to_owned())
}

fn parse_bench_store(text: &str) -> Result<BenchStore, String> {
    match text {
        "" => Err("give `memory` or a directory".to_owned()),
        "memory" => Ok(BenchStore::Memory),
        dir => Ok(BenchStore::Directory(PathBuf::from(dir))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn pub_needs_exactly_one_message_source() {
        assert!(Cli::try_parse_from(["haka", "pub", "-t", "a"]).is_err());
        assert!(Cli::try_parse_from(["haka", "pub", "-t", "a", "-m", "x", "-n"]).is_err());
        assert!(Cli::try_parse_from(["haka", "pub", "-t", "a", "-m", "x"]).is_ok());
    }

    #[test]
    fn qos_is_0_1_or_2() {
        assert!(Cli::try_parse_from(["haka", "sub", "-t", "a", "-q", "3"]).is_err());
        let cli = Cli::try_parse_from(["haka", "sub", "-t", "a", "-t", "b", "-q", "2"]);
        let Ok(Cli {
            command: Command::Sub(sub),
        }) = cli
        else {
            panic!("{cli:?}");
        };
        assert_eq!(sub.qos, QoS::ExactlyOnce);
        assert_eq!(sub.topics, ["a", "b"]);
    }

    #[test]
    fn persistent_session_needs_an_id() {
        assert!(Cli::try_parse_from(["haka", "sub", "-t", "a", "-c"]).is_err());
        assert!(Cli::try_parse_from(["haka", "sub", "-t", "a", "-c", "-i", "me"]).is_ok());
    }

    #[test]
    fn bench_store_is_memory_or_a_directory() {
        assert_eq!(parse_bench_store("memory"), Ok(BenchStore::Memory));
        assert_eq!(
            parse_bench_store("/tmp/x"),
            Ok(BenchStore::Directory("/tmp/x".into()))
        );
        assert!(Cli::try_parse_from(["haka", "bench", "--size", "8"]).is_err());
    }
}
