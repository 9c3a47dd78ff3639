//! `haka`: publish, subscribe and benchmark an MQTT 3.1.1 broker from the command line, with
//! the [Haka](https://github.com/haka-mqtt/haka) client.
//!
//! ```text
//! haka sub -t 'sensors/#' -v                      # print every message, after its topic
//! haka sub -t 'sensors/#' --json -C 10            # ten messages as JSON lines, then exit
//! haka pub -t sensors/door -m open -q 1 -r        # publish, wait for the PUBACK
//! tail -f events.log | haka pub -t events -l -q 1 # each line as a message, as it comes
//! haka bench --qos 1 --count 100000 --connections 4 --size 256
//! ```
//!
//! The options are those of `mosquitto_pub` and `mosquitto_sub` where they exist (`-t`, `-m`,
//! `-f`, `-l`, `-n`, `-q`, `-r`, `-i`, `-c`, `-k`, `-P`, `-C`, `-W`, `-N`, `-R`, `-v`, and
//! `--cafile`, `--cert`, `--key`, `--insecure`, `--will-*`), except `-u/--url`, which takes
//! the broker's URL (`mqtt://host:port` or `mqtts://host:port`); the user name is
//! `--username`. `haka <command> --help` lists them all.
//!
//! # Errors and exit status
//!
//! Every error is one line on stderr, `haka: ...`. The library reconnects forever; the
//! command instead fails when its first connection does (unreachable broker, TLS failure,
//! refused credentials), and reconnects after that, reporting each loss on stderr.
//!
//! - 0: done.
//! - 1: an error: the broker could not be reached or refused the connection, a message or
//!   a subscription was refused, a file could not be read.
//! - 2: bad arguments.
//! - 27: `haka sub -W` timed out, as `mosquitto_sub` does.

mod args;
mod bench;
mod connect;
mod error;
mod output;
mod publish;
mod subscribe;

use std::{process::ExitCode, time::Duration};

use clap::Parser;

use crate::{
    args::{Cli, Command},
    error::CliError,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("haka: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Pub(args) => publish::run(args).await,
            Command::Sub(args) => subscribe::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    // A client still reconnecting after a failure, or a read of stdin that will never end,
    // must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("haka: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
