//! The driver: the one task that owns the session and the transport.
//!
//! It never awaits application code: commands arrive on a channel and are answered through
//! one-shot channels, received messages leave on an unbounded channel (bounded in practice by
//! the broker's in-flight window, since they are acknowledged only when the application takes
//! them), and connection events on a broadcast channel that drops for laggards.

use std::{collections::HashMap, future::Future, sync::Arc};

use bytes::{Bytes, BytesMut};
use haka_codec::{QoS, SubscribeReturnCode, Subscription, TopicFilter, TopicName};
use haka_session::{
    ConnectionState, DisconnectReason, Event as SessionEvent, Incoming, MessageId, ProtocolError,
    RequestId, Session, Store,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{broadcast, mpsc, oneshot},
    time::Instant,
};
use tracing::{debug, info, warn};

use crate::{
    backoff::Attempts,
    client::{Event, PublishHandle},
    message::{AckOp, Acker, Message},
    transport::{BoxTransport, Connector},
    ClientError, ClientOptions, PublishError, Refusal,
};

/// How many bytes the driver gathers from the session for one write.
const WRITE_BATCH: usize = 256 * 1024;
/// How many queued commands the driver takes in one go, sharing one store commit.
const COMMAND_BATCH: usize = 256;

/// A request from a [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        reply: oneshot::Sender<Result<PublishHandle, ClientError>>,
    },
    Subscribe {
        subscriptions: Vec<Subscription>,
        reply: oneshot::Sender<Result<Vec<SubscribeReturnCode>, ClientError>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
}

/// A publish accepted in the current batch of commands: answered once the store committed.
type Accepted = (
    MessageId,
    oneshot::Sender<Result<PublishHandle, ClientError>>,
    PublishHandle,
);

/// Connections that ended the same way on the same message.
#[derive(Debug, Default)]
struct Failures {
    last: Option<(MessageId, Refusal)>,
    count: u32,
}

impl Failures {
    fn record(&mut self, message: MessageId, cause: Refusal) -> u32 {
        match &self.last {
            Some((m, c)) if *m == message && *c == cause => self.count += 1,
            _ => {
                self.last = Some((message, cause));
                self.count = 1;
            }
        }
        self.count
    }

    fn reset(&mut self) {
        self.last = None;
        self.count = 0;
    }
}

pub(crate) struct Driver<S: Store> {
    session: Session<S>,
    connector: Arc<dyn Connector>,
    commands: mpsc::Receiver<Command>,
    commands_closed: bool,
    acks: mpsc::UnboundedReceiver<AckOp>,
    acks_tx: mpsc::UnboundedSender<AckOp>,
    messages: mpsc::UnboundedSender<Message>,
    events: broadcast::Sender<Event>,

    /// Publishes accepted in this batch of commands, answered after the commit.
    accepted: Vec<Accepted>,
    completions: HashMap<MessageId, oneshot::Sender<Result<(), PublishError>>>,
    subscribes: HashMap<RequestId, oneshot::Sender<Result<Vec<SubscribeReturnCode>, ClientError>>>,
    unsubscribes: HashMap<RequestId, oneshot::Sender<Result<(), ClientError>>>,
    /// `disconnect` was called: these wait for the end.
    stopping: Vec<oneshot::Sender<()>>,

    reconnect: bool,
    attempts: Attempts,
    failures: Failures,
    max_identical_failures: u32,
    /// The current connection got CONNACK.
    connacked: bool,
    /// The current connection completed or received something.
    progress: bool,
    /// The broker closed the current connection in order (end of stream), rather than the
    /// network breaking it (reset, error).
    closed_by_peer: bool,
}

impl<S: Store> Driver<S> {
    pub(crate) fn new(
        session: Session<S>,
        connector: Arc<dyn Connector>,
        options: &ClientOptions,
        commands: mpsc::Receiver<Command>,
        messages: mpsc::UnboundedSender<Message>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        let (acks_tx, acks) = mpsc::unbounded_channel();
        Self {
            session,
            connector,
            commands,
            commands_closed: false,
            acks,
            acks_tx,
            messages,
            events,
            accepted: Vec::new(),
            completions: HashMap::new(),
            subscribes: HashMap::new(),
            unsubscribes: HashMap::new(),
            stopping: Vec::new(),
            reconnect: options.reconnect,
            attempts: Attempts::new(options.backoff),
            failures: Failures::default(),
            max_identical_failures: options.max_identical_failures,
            connacked: false,
            progress: false,
            closed_by_peer: false,
        }
    }

    fn stop_requested(&self) -> bool {
        self.commands_closed || !self.stopping.is_empty()
    }

    fn emit(&self, event: Event) {
        // No receiver is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    pub(crate) async fn run(mut self) {
        loop {
            if self.stop_requested() {
                break;
            }
            let attempt = self.attempts.attempt();
            let delay = self.attempts.next_delay();
            if !delay.is_zero() {
                self.emit(Event::Reconnecting { attempt, delay });
                if self.serve(tokio::time::sleep(delay)).await.is_none() {
                    break;
                }
            }
            // The dial holds its own handle on the connector, so commands can be served while
            // it runs.
            let connector = Arc::clone(&self.connector);
            let Some(dialed) = self.serve(connector.connect()).await else {
                break;
            };
            match dialed {
                Ok(transport) => {
                    self.connection(transport).await;
                    if self.stop_requested() || !self.reconnect {
                        break;
                    }
                }
                Err(error) => {
                    warn!(%error, "connecting to the broker failed");
                    self.emit(Event::ConnectFailed {
                        error: Arc::new(error),
                    });
                    if !self.reconnect {
                        break;
                    }
                }
            }
        }
        self.finish();
    }

    /// Serves commands until `future` completes; `None` when the client must stop first.
    async fn serve<F: Future>(&mut self, future: F) -> Option<F::Output> {
        serve_commands(
            future,
            &mut self.session,
            &mut self.commands,
            &mut self.commands_closed,
            &mut self.acks,
            &mut Batch {
                accepted: &mut self.accepted,
                completions: &mut self.completions,
                subscribes: &mut self.subscribes,
                unsubscribes: &mut self.unsubscribes,
                stopping: &mut self.stopping,
            },
        )
        .await
    }

    /// One connection, from CONNECT to its end.
    async fn connection(&mut self, transport: BoxTransport) {
        let (mut reader, mut writer) = tokio::io::split(transport);
        self.session.handle_connected(now());
        self.connacked = false;
        self.progress = false;
        self.closed_by_peer = false;
        if !self.stopping.is_empty() {
            self.session.disconnect();
        }
        let mut input = BytesMut::with_capacity(64 * 1024);
        let mut out = BytesMut::with_capacity(64 * 1024);
        let mut write_closed = false;
        loop {
            if let Some(reason) = self.pump_events() {
                self.connection_ended(reason);
                return;
            }
            if out.is_empty() {
                let now = now();
                while out.len() < WRITE_BATCH && self.session.poll_transmit(now, &mut out) > 0 {}
                if !out.is_empty() {
                    // Events of the transmit (a QoS 0 message written) come next round.
                    continue;
                }
                if self.session.state() == ConnectionState::Closing && !write_closed {
                    // DISCONNECT is written: close our half, read until the broker closes.
                    write_closed = true;
                    if writer.shutdown().await.is_err() {
                        self.session.handle_connection_lost(now);
                        continue;
                    }
                }
            }
            if input.capacity() - input.len() < 4096 {
                input.reserve(64 * 1024);
            }
            let deadline = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                written = writer.write_buf(&mut out), if !out.is_empty() => {
                    if let Err(error) = written {
                        debug!(%error, "write failed");
                        self.session.handle_connection_lost(now());
                    }
                }
                read = reader.read_buf(&mut input) => match read {
                    Ok(0) => {
                        self.closed_by_peer = true;
                        self.session.handle_connection_lost(now());
                    }
                    Ok(_) => self.session.handle_bytes(now(), &mut input),
                    Err(error) => {
                        debug!(%error, "read failed");
                        self.session.handle_connection_lost(now());
                    }
                },
                command = self.commands.recv(), if !self.commands_closed => match command {
                    Some(command) => {
                        let stopping = self.stopping.len();
                        self.on_commands(command);
                        if self.stopping.len() > stopping {
                            self.session.disconnect();
                        }
                    }
                    None => {
                        // Every client handle is gone: stop now, nothing stored is lost.
                        self.commands_closed = true;
                        self.session.handle_connection_lost(now());
                    }
                },
                Some(op) = self.acks.recv() => {
                    apply(&mut self.session, op);
                    while let Ok(op) = self.acks.try_recv() {
                        apply(&mut self.session, op);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.session.handle_timeout(now());
                }
            }
        }
    }

    /// Handles `first` and every command queued behind it, with one store commit.
    fn on_commands(&mut self, first: Command) {
        let Self {
            session,
            commands,
            accepted,
            completions,
            subscribes,
            unsubscribes,
            stopping,
            ..
        } = self;
        let mut batch = Batch {
            accepted,
            completions,
            subscribes,
            unsubscribes,
            stopping,
        };
        batch.handle(session, first);
        drain(commands, session, &mut batch);
        batch.answer(session);
    }

    /// Hands the session's events to whoever waits for them; the reason, when the
    /// connection ended.
    fn pump_events(&mut self) -> Option<DisconnectReason> {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Connected { session_present } => {
                    info!(session_present, "connected");
                    self.connacked = true;
                    self.emit(Event::Connected { session_present });
                }
                SessionEvent::Message(incoming) => {
                    self.made_progress();
                    self.deliver(incoming);
                }
                SessionEvent::PublishReceived { .. } => self.made_progress(),
                SessionEvent::PublishCompleted { id, .. } => {
                    self.made_progress();
                    if let Some(done) = self.completions.remove(&id) {
                        let _ = done.send(Ok(()));
                    }
                }
                SessionEvent::Subscribed { request, results } => {
                    if let Some(reply) = self.subscribes.remove(&request) {
                        let _ = reply.send(Ok(results));
                    }
                }
                SessionEvent::Unsubscribed { request } => {
                    if let Some(reply) = self.unsubscribes.remove(&request) {
                        let _ = reply.send(Ok(()));
                    }
                }
                SessionEvent::Disconnected { reason } => return Some(reason),
                SessionEvent::StoreFailed(error) => warn!(%error, "the store failed"),
                _ => {}
            }
        }
        None
    }

    fn made_progress(&mut self) {
        if !self.progress {
            self.progress = true;
            self.attempts.reset();
            self.failures.reset();
        }
    }

    fn deliver(&mut self, incoming: Incoming) {
        let Incoming { publish, ack } = incoming;
        let message = Message {
            qos: publish.qos(),
            dup: publish.dup(),
            retain: publish.retain,
            topic: publish.topic,
            payload: publish.payload,
            ack: ack.map(|token| Acker {
                token,
                acks: self.acks_tx.clone(),
                done: false,
            }),
        };
        if let Err(mpsc::error::SendError(mut message)) = self.messages.send(message) {
            // Nobody takes messages any more: acknowledge them here.
            if let Some(mut acker) = message.ack.take() {
                acker.done = true;
                let _ = self.session.ack(acker.token);
            }
        }
    }

    /// The connection ended: report it, and give up on a message the broker refused the
    /// same way too many times in a row.
    fn connection_ended(&mut self, reason: DisconnectReason) {
        info!(%reason, "disconnected");
        let failure = match &reason {
            DisconnectReason::Protocol(error @ ProtocolError::WrongAck { message, .. }) => {
                Some((*message, Refusal::Protocol(error.clone())))
            }
            // Only an orderly close by the broker counts: a network that resets connections
            // before anything completes is not the message's fault.
            DisconnectReason::ConnectionLost
                if self.connacked && self.closed_by_peer && !self.progress =>
            {
                self.session
                    .oldest_inflight()
                    .map(|message| (message, Refusal::ConnectionClosed))
            }
            _ => None,
        };
        self.emit(Event::Disconnected {
            reason: Arc::new(reason),
        });
        let Some((message, cause)) = failure else {
            if self.progress {
                self.failures.reset();
            }
            return;
        };
        let failures = self.failures.record(message, cause.clone());
        if failures < self.max_identical_failures {
            return;
        }
        self.failures.reset();
        warn!(%message, %cause, failures, "giving up on a message the broker refuses");
        match self.session.abandon(message) {
            Ok(_) => {
                if let Some(done) = self.completions.remove(&message) {
                    let _ = done.send(Err(PublishError::Refused { cause, failures }));
                }
                self.emit(Event::MessageRefused { id: message });
            }
            Err(error) => warn!(%error, "could not abandon the message"),
        }
    }

    /// The client stops: the store is committed, waiting calls are answered.
    fn finish(mut self) {
        if let Err(error) = self.session.commit() {
            warn!(%error, "the final commit failed");
        }
        let Self {
            session,
            accepted,
            completions,
            subscribes,
            unsubscribes,
            stopping,
            ..
        } = &mut self;
        Batch {
            accepted,
            completions,
            subscribes,
            unsubscribes,
            stopping,
        }
        .answer(session);
        for (_, done) in self.completions.drain() {
            let _ = done.send(Err(PublishError::Closed));
        }
        for (_, reply) in self.subscribes.drain() {
            let _ = reply.send(Err(ClientError::Closed));
        }
        for (_, reply) in self.unsubscribes.drain() {
            let _ = reply.send(Err(ClientError::Closed));
        }
        for reply in self.stopping.drain(..) {
            let _ = reply.send(());
        }
        self.emit(Event::Stopped);
        info!("stopped");
    }
}

/// The driver's books for answering commands, borrowed apart from the session.
struct Batch<'a> {
    accepted: &'a mut Vec<Accepted>,
    completions: &'a mut HashMap<MessageId, oneshot::Sender<Result<(), PublishError>>>,
    subscribes:
        &'a mut HashMap<RequestId, oneshot::Sender<Result<Vec<SubscribeReturnCode>, ClientError>>>,
    unsubscribes: &'a mut HashMap<RequestId, oneshot::Sender<Result<(), ClientError>>>,
    stopping: &'a mut Vec<oneshot::Sender<()>>,
}

impl Batch<'_> {
    fn handle<S: Store>(&mut self, session: &mut Session<S>, command: Command) {
        match command {
            Command::Publish {
                topic,
                qos,
                retain,
                payload,
                reply,
            } => match session.publish(topic, qos, retain, payload) {
                Ok(id) => {
                    let (done, handle) = oneshot::channel();
                    self.completions.insert(id, done);
                    self.accepted
                        .push((id, reply, PublishHandle::new(id, handle)));
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Subscribe {
                subscriptions,
                reply,
            } => match session.subscribe(subscriptions) {
                Ok(request) => {
                    self.subscribes.insert(request, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Unsubscribe { filters, reply } => match session.unsubscribe(filters) {
                Ok(request) => {
                    self.unsubscribes.insert(request, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Disconnect { reply } => self.stopping.push(reply),
        }
    }

    /// Commits what the batch accepted, then answers the publishers: accepted means
    /// durable. If the commit fails, the batch's messages are withdrawn and refused.
    fn answer<S: Store>(&mut self, session: &mut Session<S>) {
        if self.accepted.is_empty() {
            return;
        }
        match session.commit() {
            Ok(()) => {
                for (_, reply, handle) in self.accepted.drain(..) {
                    let _ = reply.send(Ok(handle));
                }
            }
            Err(error) => {
                warn!(%error, "the store could not commit; refusing the batch");
                let message = error.to_string();
                for (id, reply, _) in self.accepted.drain(..) {
                    let _ = session.abandon(id);
                    self.completions.remove(&id);
                    let error =
                        haka_session::StoreError::Io(std::io::Error::other(message.clone()));
                    let _ = reply.send(Err(ClientError::Store(error)));
                }
            }
        }
    }
}

/// Takes every command already queued, up to a batch.
fn drain<S: Store>(
    commands: &mut mpsc::Receiver<Command>,
    session: &mut Session<S>,
    batch: &mut Batch<'_>,
) {
    for _ in 0..COMMAND_BATCH {
        match commands.try_recv() {
            Ok(command) => batch.handle(session, command),
            Err(_) => break,
        }
    }
}

/// Serves commands (offline: they are queued in the session) until `future` completes;
/// `None` when the client must stop first.
async fn serve_commands<S: Store, F: Future>(
    future: F,
    session: &mut Session<S>,
    commands: &mut mpsc::Receiver<Command>,
    commands_closed: &mut bool,
    acks: &mut mpsc::UnboundedReceiver<AckOp>,
    batch: &mut Batch<'_>,
) -> Option<F::Output> {
    tokio::pin!(future);
    loop {
        if *commands_closed || !batch.stopping.is_empty() {
            return None;
        }
        tokio::select! {
            output = &mut future => return Some(output),
            command = commands.recv() => match command {
                Some(command) => {
                    batch.handle(session, command);
                    drain(commands, session, batch);
                    batch.answer(session);
                    // Offline: nothing to send, but the store commits what was published.
                    let mut scratch = BytesMut::new();
                    session.poll_transmit(now(), &mut scratch);
                }
                None => *commands_closed = true,
            },
            Some(op) = acks.recv() => apply(session, op),
        }
    }
}

/// What the application did with a message, told to the session. A token of an earlier
/// connection is refused by the session, which is right: the broker delivers again.
fn apply<S: Store>(session: &mut Session<S>, op: AckOp) {
    let _ = match op {
        AckOp::Ack(token) => session.ack(token),
        AckOp::Nack(token) => session.nack(token),
    };
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
