//! [`Client`]: the handle applications publish and subscribe with.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use haka_codec::{QoS, SubscribeReturnCode, Subscription, TopicFilter};
use haka_session::{
    store::FileStoreOptions, DisconnectReason, EphemeralStore, FileStore, MessageId, Session, Store,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    driver::{Command, DriverState},
    error::ConnectError,
    inbox::Inbox,
    message::Messages,
    options::{Scheme, StoreOptions},
    topic::IntoTopicName,
    transport::{Connector, TcpConnector},
    ClientError, ClientOptions, PublishError,
};

/// What happens to the connection, from [`Client::events`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted a connection; `session_present` says whether it resumed the
    /// client's earlier session.
    Connected {
        /// Whether the broker had a session for this client.
        session_present: bool,
    },
    /// A connection ended; the client reconnects unless it is stopping.
    Disconnected {
        /// Why it ended.
        reason: Arc<DisconnectReason>,
    },
    /// Opening a connection failed (resolution, TCP, TLS).
    ConnectFailed {
        /// What failed.
        error: ConnectError,
    },
    /// The client waits `delay` before connection attempt `attempt`.
    Reconnecting {
        /// The attempt's number in this series of failures, from 1.
        attempt: u32,
        /// How long the client waits before it.
        delay: Duration,
    },
    /// The client gave up on a message the broker refused repeatedly; its handle completed
    /// with [`PublishError::Refused`].
    MessageRefused {
        /// The message.
        id: MessageId,
    },
    /// The client stopped: nothing more will happen.
    Stopped,
}

/// An MQTT client: publishes, subscribes, and keeps the connection up.
///
/// Cheap to clone; every clone drives the same connection. A task owned by the client (the
/// driver) holds the session and the transport and never waits for application code. When
/// the last clone is dropped without [`Client::disconnect`], the driver commits the store and
/// drops the connection: nothing the store holds is lost, and a client started later on the
/// same store sends it.
#[derive(Debug, Clone)]
pub struct Client {
    // Dropped before `_alive`: the last clone closes the channel before the driver is told.
    commands: mpsc::Sender<Command>,
    inbox: Arc<Inbox>,
    events: broadcast::Sender<Event>,
    _alive: Arc<Alive>,
}

/// Shared by every clone of a [`Client`]; dropped with the last one, and then tells the
/// driver, which reads its commands channel only when told, that the channel has closed.
#[derive(Debug)]
struct Alive(Arc<Inbox>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.commanded();
    }
}

/// The outcome of one published message: a future that completes on PUBACK (QoS 1), PUBCOMP
/// (QoS 2) or, for QoS 0, once the message is handed to the transport (QoS 0 has no
/// acknowledgement, and a connection lost right after may still lose it).
#[derive(Debug)]
pub struct PublishHandle {
    done: oneshot::Receiver<Result<(), PublishError>>,
}

impl PublishHandle {
    pub(crate) fn new(done: oneshot::Receiver<Result<(), PublishError>>) -> Self {
        Self { done }
    }
}

impl Future for PublishHandle {
    type Output = Result<(), PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().done)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(PublishError::Closed)))
    }
}

/// A message being published: queued already, resolving to its [`PublishHandle`] once it is
/// safe (committed, with a durable store). From [`Client::publish`].
///
/// Dropping it does not withdraw the message.
#[derive(Debug)]
#[must_use = "the message is queued; await this to learn whether it was stored and to get its handle"]
pub struct Publishing {
    /// `None` once resolved.
    state: Option<PublishingState>,
}

type PublishingState = Result<
    (
        PublishHandle,
        Option<oneshot::Receiver<Result<(), ClientError>>>,
    ),
    ClientError,
>;

impl Future for Publishing {
    type Output = Result<PublishHandle, ClientError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(Ok((_, Some(stored)))) = &mut this.state {
            let stored = match Pin::new(stored).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stored)) => stored,
                Poll::Ready(Err(_)) => Err(ClientError::Closed),
            };
            if let Err(error) = stored {
                this.state = None;
                return Poll::Ready(Err(error));
            }
        }
        match this.state.take() {
            Some(Ok((handle, _))) => Poll::Ready(Ok(handle)),
            Some(Err(error)) => Poll::Ready(Err(error)),
            None => panic!("`Publishing` polled after it resolved"),
        }
    }
}

/// The work of a client: connecting and reconnecting, reading and writing, keepalive, the
/// store's commits. A future that completes once the client stopped (after
/// [`Client::disconnect`], when every [`Client`] clone is gone, or when it gives up
/// reconnecting).
///
/// From [`Client::open`]; [`Client::start`] spawns it. Nothing happens while it is not
/// polled: a task that drives it and also does other work holds up the connection (pings,
/// acknowledgements, reconnects) for as long as that work lasts. Dropping it before it
/// completes ends the client as a killed process would: what the store holds stays there for
/// the next client on it, and everything else waiting on the client fails as closed
/// ([`ClientError::Closed`], [`PublishError::Closed`]).
#[must_use = "nothing connects until the driver is polled or spawned"]
pub struct Driver {
    run: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().run.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Client {
    /// Starts a client with `options`: opens the store, and starts the driver, which
    /// connects (and reconnects) in the background. Returns at once, before any connection:
    /// publishing works offline. Must be called within a tokio runtime.
    ///
    /// The driver is spawned as a task of its own; [`Client::open`] returns it instead, to
    /// run where the application chooses.
    pub async fn start(options: ClientOptions) -> Result<(Client, Messages), ClientError> {
        let (client, messages, driver) = Self::open(options).await?;
        tokio::spawn(driver);
        Ok((client, messages))
    }

    /// Like [`Client::start`], dialing through `connector` instead of the URL's transport.
    pub async fn start_with(
        options: ClientOptions,
        connector: impl Connector,
    ) -> Result<(Client, Messages), ClientError> {
        let (client, messages, driver) = Self::open_with(options, connector).await?;
        tokio::spawn(driver);
        Ok((client, messages))
    }

    /// Opens the store and builds a client with `options`, without starting it: nothing
    /// connects until the returned [`Driver`] is polled. [`Client::start`] spawns it; run it
    /// yourself to choose where the connection's work happens, for example on the task that
    /// takes the messages, polled before them, so that a message is taken in the poll that
    /// read it: no switch to another task, and no other task run in between. (QoS 1 through
    /// mosquitto at 1,000 msg/s, publisher and subscriber on one runtime: p50 67 to 68 µs
    /// against 72 µs with the subscriber's driver spawned, medians of two sets of twenty
    /// alternating runs.)
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use haka::{Client, ClientOptions, QoS};
    ///
    /// let options = ClientOptions::new("mqtt://127.0.0.1:1883", "listener")?;
    /// let (client, mut messages, mut driver) = Client::open(options).await?;
    /// let receiving = tokio::spawn(async move {
    ///     loop {
    ///         tokio::select! {
    ///             // The driver first: what it reads in this poll is taken in the same one.
    ///             biased;
    ///             () = &mut driver => break,
    ///             Some(message) = messages.recv() => println!("{}", message.topic),
    ///         }
    ///     }
    /// });
    /// client.subscribe("sensors/#", QoS::AtLeastOnce).await?;
    /// # receiving.await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(options: ClientOptions) -> Result<(Client, Messages, Driver), ClientError> {
        let tcp = TcpConnector::new(options.host.clone(), options.port, options.connect_timeout);
        match options.scheme {
            Scheme::Tcp => Self::open_with(options, tcp).await,
            #[cfg(feature = "tls")]
            Scheme::Tls => {
                let tls = options.tls.clone().unwrap_or_default().build()?;
                Self::open_with(options, crate::transport::TlsConnector::new(tcp, tls)).await
            }
            #[cfg(not(feature = "tls"))]
            Scheme::Tls => Err(ClientError::TlsDisabled),
        }
    }

    /// Like [`Client::open`], dialing through `connector` instead of the URL's transport.
    pub async fn open_with(
        options: ClientOptions,
        connector: impl Connector,
    ) -> Result<(Client, Messages, Driver), ClientError> {
        match options.store.clone() {
            // The session keeps its queue in memory across reconnects; nothing resumes from
            // the store, so it need not keep a copy.
            StoreOptions::Memory => Self::build(options, connector, EphemeralStore),
            StoreOptions::Directory { path, durability } => {
                let store = tokio::task::spawn_blocking(move || {
                    FileStore::open(path, FileStoreOptions::new().durability(durability))
                })
                .await
                .map_err(|_| ClientError::Closed)??;
                Self::build(options, connector, store)
            }
        }
    }

    fn build<S: Store + Send + 'static>(
        options: ClientOptions,
        connector: impl Connector,
        store: S,
    ) -> Result<(Client, Messages, Driver), ClientError> {
        // The session always waits for an acknowledgement from above: the `Messages` stream
        // gives it when the application takes a message (or, with manual acknowledgement,
        // the application does), so unacknowledged messages are bounded by the broker.
        let config = options.session.clone().manual_ack(true);
        let session = Session::new(config, store)?;
        let (max_messages, max_bytes) = options.session.queue_limit();
        let inbox = Arc::new(Inbox::new(
            max_messages,
            max_bytes,
            options.session.max_outgoing_packet_size(),
            matches!(options.store, StoreOptions::Directory { .. }),
        ));
        inbox.track(&session);
        let (commands, commands_rx) = mpsc::channel(options.command_capacity);
        let (events, _) = broadcast::channel(256);
        let (messages_tx, messages_rx) = mpsc::unbounded_channel();
        let driver = DriverState::new(
            session,
            Arc::new(connector),
            &options,
            commands_rx,
            Arc::clone(&inbox),
            messages_tx,
            events.clone(),
        );
        let messages = Messages {
            rx: messages_rx,
            manual_ack: options.manual_ack,
        };
        Ok((
            Client {
                commands,
                _alive: Arc::new(Alive(Arc::clone(&inbox))),
                inbox,
                events,
            },
            messages,
            Driver {
                run: Box::pin(driver.run()),
            },
        ))
    }

    async fn command<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| ClientError::Closed)?;
        // In the same poll as the send: nothing can cancel the command in between.
        self.inbox.commanded();
        answer.await.map_err(|_| ClientError::Closed)
    }

    /// Publishes `payload` to `topic`: the message is queued **when this is called**, and
    /// the future returned resolves once it is safe (at once with the memory store; once
    /// committed with a durable store) to a handle that completes when the broker has it.
    ///
    /// Because the message is queued before the future is first polled, publishes are
    /// pipelined simply by calling `publish` several times and awaiting the futures later,
    /// in order; with a durable store, the messages queued before the driver next runs share
    /// one commit. Dropping the future does not withdraw the message (the handle is lost,
    /// not the message).
    ///
    /// ```no_run
    /// # async fn run(client: haka::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use haka::QoS;
    ///
    /// // One at a time: returns once stored, then wait for the broker.
    /// client.publish("sensors/1", QoS::AtLeastOnce, false, "21.5").await?.await?;
    ///
    /// // Pipelined: 100 messages queued at once, stored by one commit with a durable store.
    /// let queued: Vec<_> = (0..100)
    ///     .map(|i| client.publish("sensors/1", QoS::AtLeastOnce, false, format!("{i}")))
    ///     .collect();
    /// let mut handles = Vec::new();
    /// for publishing in queued {
    ///     handles.push(publishing.await?);
    /// }
    /// for handle in handles {
    ///     handle.await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Refused, with nothing queued, when the queue is at its limits or the topic is invalid:
    /// the future then resolves to that error.
    ///
    /// `topic` is text, checked at each call, or a [`TopicName`](crate::TopicName) made once
    /// and shared by every message published to it ([`IntoTopicName`]).
    pub fn publish(
        &self,
        topic: impl IntoTopicName,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Publishing {
        let queued = topic
            .into_topic_name()
            .map_err(ClientError::from)
            .and_then(|topic| self.inbox.push(topic, qos, retain, payload.into()));
        Publishing {
            state: Some(queued),
        }
    }

    /// Subscribes to `filter` at `qos`; returns the broker's answer (the granted QoS, or
    /// [`SubscribeReturnCode::Failure`]) once its SUBACK came.
    pub async fn subscribe(
        &self,
        filter: &str,
        qos: QoS,
    ) -> Result<SubscribeReturnCode, ClientError> {
        let subscription = Subscription::new(TopicFilter::new(filter)?, qos);
        let codes = self.subscribe_many(vec![subscription]).await?;
        Ok(codes
            .into_iter()
            .next()
            .expect("the session checks one return code per filter"))
    }

    /// Subscribes to several filters in one SUBSCRIBE; one result per filter, in order.
    pub async fn subscribe_many(
        &self,
        subscriptions: Vec<Subscription>,
    ) -> Result<Vec<SubscribeReturnCode>, ClientError> {
        self.command(|reply| Command::Subscribe {
            subscriptions,
            reply,
        })
        .await?
    }

    /// Unsubscribes from `filters`; returns once the UNSUBACK came.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<(), ClientError> {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::new(*f))
            .collect::<Result<Vec<_>, _>>()?;
        self.command(|reply| Command::Unsubscribe { filters, reply })
            .await?
    }

    /// Stops the client gracefully: what is queued and fits the in-flight window is sent,
    /// then DISCONNECT; returns once the connection is closed and the store committed (an
    /// error if that last commit failed). Messages not completed stay in the store.
    /// Commands sent after it are refused with [`ClientError::Closed`]. Without a
    /// connection, stops at once; the wait for the broker is bounded by the idle timeout.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.command(|reply| Command::Disconnect { reply }).await?
    }

    /// What happens to the connection from now on. Events are dropped for a receiver that
    /// lags more than 256 behind.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is a failure report

    use std::collections::BTreeSet;

    use haka_session::MemoryStore;
    use haka_testkit::{FaultyStore, Mosquitto};

    use super::*;
    use crate::Backoff;

    const WAIT: Duration = Duration::from_secs(20);

    fn options(url: &str, client_id: &str) -> ClientOptions {
        ClientOptions::new(url, client_id)
            .unwrap()
            .keep_alive(Duration::from_secs(5))
            .reconnect(
                true,
                Backoff {
                    min: Duration::from_millis(20),
                    max: Duration::from_millis(200),
                },
            )
    }

    /// A commit that fails after the transmit's own commit let messages out must not withdraw
    /// them: a burst larger than one transmit's budget is committed and partly written by the
    /// first `poll_transmit`, and the next one's commit (and its retry) fail. Every `publish`
    /// of the burst was stored by the first commit, so each must resolve `Ok`, and every
    /// message must reach the subscriber once the store works again.
    #[tokio::test]
    async fn a_failed_commit_withdraws_nothing_that_was_committed() {
        const COUNT: usize = 300;
        let broker = Mosquitto::builder().start().unwrap();
        let (subscriber, mut messages) =
            Client::start(options(&broker.url(), "sub")).await.unwrap();
        subscriber
            .subscribe("burst", QoS::AtLeastOnce)
            .await
            .unwrap();

        let mut store = FaultyStore::new(MemoryStore::new());
        // Commit 0 stores the whole burst (the first transmit); 1 and 2 fail (the second
        // transmit's, and any retry before the driver waits).
        store.failing_commits = 1..3;
        let dir = tempfile::tempdir().unwrap();
        // The path is not used (the store is given); it makes `publish` wait for durability.
        // A window wider than the burst: the transmit's budget, not the window, splits it.
        let durable = options(&broker.url(), "pub")
            .max_inflight(std::num::NonZeroU16::new(1000).unwrap())
            .store(StoreOptions::Directory {
                path: dir.path().to_owned(),
                durability: haka_session::Durability::Flush,
            });
        let connector = TcpConnector::new("127.0.0.1", broker.addr().port(), WAIT);
        let (publisher, _, driver) = Client::build(durable, connector, store).unwrap();
        tokio::spawn(driver);
        // Connected once the broker answers a SUBSCRIBE, which the store has no part in.
        tokio::time::timeout(WAIT, publisher.subscribe("ready", QoS::AtMostOnce))
            .await
            .unwrap()
            .unwrap();

        // Queued at the call, all before the driver runs: one take, one first transmit.
        let publishing: Vec<Publishing> = (0..COUNT)
            .map(|n| {
                let mut payload = vec![0u8; 1024];
                payload[..8].copy_from_slice(&(n as u64).to_be_bytes());
                publisher.publish("burst", QoS::AtLeastOnce, false, payload)
            })
            .collect();
        let mut handles = Vec::new();
        for (n, stored) in publishing.into_iter().enumerate() {
            let stored = tokio::time::timeout(WAIT, stored).await.unwrap();
            handles.push(stored.unwrap_or_else(|e| panic!("message {n} withdrawn: {e}")));
        }
        for handle in handles {
            tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
        }
        let mut seen = BTreeSet::new();
        while seen.len() < COUNT {
            let message = tokio::time::timeout(WAIT, messages.recv())
                .await
                .unwrap()
                .unwrap();
            seen.insert(u64::from_be_bytes(message.payload[..8].try_into().unwrap()));
        }
        assert_eq!(seen.len(), COUNT);
        publisher.disconnect().await.unwrap();
        subscriber.disconnect().await.unwrap();
    }

    /// A driver that is never polled does nothing; dropped, it ends the client: what waited
    /// on it fails with `Closed` rather than hanging.
    #[tokio::test]
    async fn a_dropped_driver_closes_the_client() {
        let (client, mut messages, driver) = Client::open(options("mqtt://127.0.0.1:1", "never"))
            .await
            .unwrap();
        // Queued offline, as with a started client.
        let handle = client
            .publish("t", QoS::AtLeastOnce, false, "dropped with the driver")
            .await
            .unwrap();
        drop(driver);
        assert!(matches!(
            client.subscribe("t", QoS::AtMostOnce).await,
            Err(ClientError::Closed)
        ));
        assert!(matches!(
            tokio::time::timeout(WAIT, handle).await.unwrap(),
            Err(PublishError::Closed)
        ));
        assert!(tokio::time::timeout(WAIT, messages.recv())
            .await
            .unwrap()
            .is_none());
    }
}
