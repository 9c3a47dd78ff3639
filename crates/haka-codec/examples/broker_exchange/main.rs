//! Talks to a real MQTT broker with nothing but `haka-codec` and a blocking `TcpStream`:
//! CONNECT, SUBSCRIBE, PUBLISH at QoS 0, 1 and 2 (which the broker routes back to us), every
//! acknowledgement of both directions, PINGREQ, UNSUBSCRIBE and DISCONNECT, printing each
//! packet as it crosses the wire.
//!
//! ```text
//! cargo run -p haka-codec --example broker_exchange -- 127.0.0.1:1883
//! ```
//!
//! This is the packet level only: the session, with its persisted queue and retransmission,
//! is the job of `haka-session`.

mod exchange;

use std::process::ExitCode;

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1883".to_owned());
    match exchange::run(&addr, &mut std::io::stdout()) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
