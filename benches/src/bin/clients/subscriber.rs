//! [`CountingSubscriber`]: counts the QoS 0 messages a broker delivers, for the QoS 0
//! workloads against mosquitto, where no acknowledgement says when a message has arrived.
//!
//! It is the hand-written loop of the `raw` client on a thread of the orchestrator, so the
//! client under test pays nothing for it, and it costs every client the same.

use std::{
    io::{self, Write},
    thread::JoinHandle,
    time::Duration,
};

use haka_benches::wire::{self, kind};

use crate::{client::raw::Connection, Error};

/// How long the subscriber waits for the next message before it gives up.
const IDLE: Duration = Duration::from_secs(10);

/// A subscription on its own connection and thread.
#[derive(Debug)]
pub(crate) struct CountingSubscriber {
    reader: JoinHandle<io::Result<u64>>,
}

impl CountingSubscriber {
    /// Connects to the broker on `port`, subscribes to `topic` at QoS 0 and waits for the
    /// SUBACK, then counts messages on a thread until `expected` have come, or none came
    /// for [`IDLE`].
    pub(crate) fn start(
        port: u16,
        client_id: &str,
        topic: &str,
        expected: u64,
    ) -> Result<Self, Error> {
        let mut connection = Connection::open(port, client_id)?;
        let mut out = Vec::new();
        wire::subscribe(&mut out, 1, topic, 0);
        connection.stream.write_all(&out)?;
        let mut subscribed = false;
        while !subscribed {
            connection.read(|first, _| {
                subscribed |= first >> 4 == kind::SUBACK;
                Ok(())
            })?;
        }
        connection.stream.set_read_timeout(Some(IDLE))?;
        let reader = std::thread::spawn(move || {
            let mut count = 0;
            while count < expected {
                let read = connection.read(|first, _| {
                    if first >> 4 == kind::PUBLISH {
                        count += 1;
                    }
                    Ok(())
                });
                match read {
                    Ok(()) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut out = Vec::new();
            wire::disconnect(&mut out);
            let _ = connection.stream.write_all(&out);
            Ok(count)
        });
        Ok(Self { reader })
    }

    /// Waits for the end: how many messages came.
    pub(crate) fn finish(self) -> Result<u64, Error> {
        Ok(self
            .reader
            .join()
            .map_err(|_| "the counting subscriber panicked")??)
    }
}
