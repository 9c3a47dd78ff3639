//! Helpers shared by the client's tests against a real mosquitto.
#![allow(dead_code)] // each test file uses its own subset
#![allow(unreachable_pub)] // shared through `mod common`, not a public API
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::time::Duration;

use haka::{Backoff, ClientOptions, Event, Message, Messages};

/// The bound on any wait for an event in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Logs to the test's output when `RUST_LOG` is set (`RUST_LOG=haka=debug`).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Options with a short keep alive and fast reconnection, for tests.
pub fn options(url: &str, client_id: &str) -> ClientOptions {
    logs();
    ClientOptions::new(url, client_id)
        .unwrap()
        .keep_alive(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .reconnect(
            true,
            Backoff {
                min: Duration::from_millis(20),
                max: Duration::from_millis(500),
            },
        )
}

/// The next message, within [`WAIT`].
pub async fn next(messages: &mut Messages) -> Message {
    tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("a message in time")
        .expect("the client is running")
}

/// Waits (bounded) for an event matching `pred`.
pub async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("events ended: {error}"),
            }
        }
    })
    .await
    .expect("the event in time")
}
