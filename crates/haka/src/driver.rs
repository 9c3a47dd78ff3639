//! The driver: the one task that owns the session and the transport.
//!
//! It never awaits application code: published messages, and the application's
//! acknowledgements of received ones, arrive through the inbox, other commands on a channel
//! that the driver reads when the inbox tells it to (so that its `select!` has one branch for
//! all three), all answered through one-shot channels; received messages leave on
//! an unbounded channel (QoS 1 and 2 bounded in practice by the broker's in-flight window,
//! since they are acknowledged only when the application takes them), and connection events
//! on a broadcast channel that drops for laggards.

use std::{
    collections::HashMap,
    future::Future,
    hash::{BuildHasherDefault, Hasher},
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::{Buf, BytesMut};
use haka_codec::{QoS, SubscribeReturnCode, Subscription, TopicFilter};
use haka_session::store::Stage;
use haka_session::{
    ConnectionState, DisconnectReason, Event as SessionEvent, Incoming, MessageId, ProtocolError,
    RequestId, Session, Store,
};
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{
        broadcast,
        mpsc::{self, error::TryRecvError},
        oneshot,
    },
    time::Instant,
};
use tracing::{debug, info, warn};

use crate::{
    backoff::Attempts,
    client::Event,
    inbox::{Inbox, Outgoing},
    message::{AckOp, Acker, Message},
    transport::{BoxTransport, Connector},
    ClientError, ClientOptions, PublishError, Refusal,
};

/// How many bytes the driver gathers from the session for one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Room past [`WRITE_BATCH`] for the session's last call, which may go over it by one packet
/// budget.
const TRANSMIT_SLACK: usize = 128 * 1024;
/// How many queued commands the driver takes in one go, sharing one store commit.
const COMMAND_BATCH: usize = 256;

/// A request from a [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        subscriptions: Vec<Subscription>,
        reply: oneshot::Sender<Result<Vec<SubscribeReturnCode>, ClientError>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Disconnect {
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// A hasher for message identities, which are sequential numbers: one multiplication
/// spreads them over the word (SipHash's resistance to chosen keys buys nothing here).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Handles of the messages in flight, by identity.
type Completions =
    HashMap<MessageId, oneshot::Sender<Result<(), PublishError>>, BuildHasherDefault<IdHasher>>;

/// Connections that ended the same way on the same message.
#[derive(Debug, Default)]
struct Failures {
    last: Option<(MessageId, Refusal)>,
    count: u32,
}

impl Failures {
    /// Message `id` completed or left: whatever was counted against it is void.
    fn completed(&mut self, id: MessageId) {
        if self.last.as_ref().is_some_and(|(m, _)| *m == id) {
            self.reset();
        }
    }

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

pub(crate) struct DriverState<S: Store> {
    session: Session<S>,
    connector: Arc<dyn Connector>,
    commands: mpsc::Receiver<Command>,
    commands_closed: bool,
    /// Acknowledgements taken from the inbox and being applied: kept for its room.
    acks: Vec<AckOp>,
    messages: mpsc::UnboundedSender<Message>,
    events: broadcast::Sender<Event>,

    /// Where `publish` leaves messages.
    inbox: Arc<Inbox>,
    completions: Completions,
    /// Messages taken from the inbox whose callers wait to hear they are stored: answered
    /// after the next commit, which the transmit usually makes (see [`confirm_stored`]).
    unconfirmed: Unconfirmed,
    subscribes: HashMap<RequestId, oneshot::Sender<Result<Vec<SubscribeReturnCode>, ClientError>>>,
    unsubscribes: HashMap<RequestId, oneshot::Sender<Result<(), ClientError>>>,
    /// `disconnect` was called: these wait for the end.
    stopping: Vec<oneshot::Sender<Result<(), ClientError>>>,
    /// Subscriptions the broker granted, by filter, to renew when it starts a new session.
    subscriptions: HashMap<TopicFilter, QoS>,
    /// Filters of subscription requests waiting for their SUBACK or UNSUBACK.
    requested: HashMap<RequestId, Requested>,

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
    /// A flush completed on the current connection: what was queued first (the resends,
    /// pipelined behind CONNECT) reached the network.
    flushed: bool,
    /// Messages handed to the application so far (wrapping), to notice a round that
    /// delivered some.
    delivered: u64,
    /// Publishes completed so far (wrapping), to notice a round that completed some.
    completed: u64,
}

/// A driver dropped before it finished (its future dropped unpolled or half-way, the runtime
/// shut down): nothing more is taken, and the messages still in the inbox are dropped with
/// their callers' channels, so their handles complete with [`PublishError::Closed`] instead
/// of waiting for as long as a `Client` lives. What the store committed stays there.
impl<S: Store> Drop for DriverState<S> {
    fn drop(&mut self) {
        self.inbox.close();
        drop(self.inbox.take());
    }
}

/// What a subscription request asked, kept to remember what was granted.
#[derive(Debug)]
enum Requested {
    Subscribe(Vec<Subscription>),
    Unsubscribe(Vec<TopicFilter>),
    /// A renewal after the broker lost the session: no caller waits for it.
    Renewal(Vec<Subscription>),
}

impl<S: Store> DriverState<S> {
    pub(crate) fn new(
        session: Session<S>,
        connector: Arc<dyn Connector>,
        options: &ClientOptions,
        commands: mpsc::Receiver<Command>,
        inbox: Arc<Inbox>,
        messages: mpsc::UnboundedSender<Message>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        Self {
            session,
            connector,
            commands,
            commands_closed: false,
            acks: Vec::new(),
            messages,
            events,
            inbox,
            completions: Completions::default(),
            unconfirmed: Vec::new(),
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
            flushed: false,
            delivered: 0,
            completed: 0,
            subscriptions: HashMap::new(),
            requested: HashMap::new(),
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
            &self.inbox,
            &mut self.session,
            &mut self.commands,
            &mut self.commands_closed,
            &mut self.acks,
            &mut self.unconfirmed,
            &mut Batch {
                completions: &mut self.completions,
                subscribes: &mut self.subscribes,
                unsubscribes: &mut self.unsubscribes,
                stopping: &mut self.stopping,
                requested: &mut self.requested,
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
        self.flushed = false;
        if !self.stopping.is_empty() {
            self.session.disconnect();
        }
        let mut input = BytesMut::with_capacity(64 * 1024);
        let mut out = BytesMut::with_capacity(WRITE_BATCH + TRANSMIT_SLACK);
        let mut write_closed = false;
        // Bytes were written and may sit in the transport's buffers (TLS records) until it is
        // flushed.
        let mut needs_flush = false;
        // One timer for the connection, moved rather than rebuilt (registering a new timer
        // takes the runtime's timer lock), and moved only when a deadline comes earlier
        // (below).
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            let delivered = self.delivered;
            let completed = self.completed;
            if let Some(reason) = self.pump_events() {
                self.connection_ended(reason);
                return;
            }
            // Before the yield below, where the application runs, the queue count is current.
            self.inbox.track(&self.session);
            if self.delivered != delivered
                || (self.completed != completed && self.session.queued_messages() == 0)
            {
                // Let the application take what was just delivered before the driver writes
                // or reads more: a message's latency should not include our next system
                // calls. Likewise after the last outstanding publish completed: the driver
                // has nothing urgent left (its next system call re-arms the read, often
                // with a TCP_QUICKACK), while the application, or another connection's
                // driver woken by the same readiness, may have a message to hand on.
                // (QoS 1 through mosquitto at 1,000 msg/s, publisher and subscriber on one
                // runtime: p50 87.5 against 91.5 us, twelve alternating runs each.)
                yield_once().await;
            }
            if out.is_empty() {
                // What the application acknowledged meanwhile (it ran during the yield
                // above) is answered in this transmit, before the driver reads again: the
                // PUBACK then carries the TCP acknowledgement of the PUBLISH it answers.
                apply_acks(&self.inbox, &mut self.session, &mut self.acks);
                // What the application published meanwhile goes into this transmit too,
                // and into its one commit.
                take_inbox(
                    &self.inbox,
                    &mut self.session,
                    &mut self.completions,
                    &mut self.unconfirmed,
                );
                let now = now();
                while out.len() < WRITE_BATCH {
                    let written = self.session.poll_transmit(now, &mut out);
                    // Answered at the first commit that covers them: the one this call made
                    // before writing anything (then this commit is empty), or, when that one
                    // failed and nothing was written, a retry. A later commit's failure must
                    // never withdraw a message that a successful commit let out.
                    confirm_stored(
                        &self.inbox,
                        &mut self.session,
                        &mut self.completions,
                        &mut self.unconfirmed,
                    );
                    if written == 0 {
                        break;
                    }
                }
                if !out.is_empty() || self.session.state() == ConnectionState::Disconnected {
                    // Events of the transmit (a QoS 0 message written; the session closed
                    // because the store failed) come next round: nothing would wake the
                    // select below for a session that closed itself.
                    continue;
                }
                if self.session.state() == ConnectionState::Closing && !write_closed {
                    // DISCONNECT is written: close our half (bounded: a broker that stopped
                    // reading must not hold us), then read until the broker closes.
                    write_closed = true;
                    needs_flush = false;
                    let bound = self.session.config().connack_wait();
                    match tokio::time::timeout(bound, writer.shutdown()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => {
                            self.session.handle_connection_lost(now);
                            continue;
                        }
                    }
                }
            }
            if input.capacity() - input.len() < 4096 {
                input.reserve(64 * 1024);
            }
            // The timer may fire early, never late. Every packet written or read pushes the
            // keep-alive or idle deadline later, and moving a tokio timer costs more than the
            // rest of this round's bookkeeping, so a later deadline leaves the timer where it
            // is: when it fires, the session finds nothing due (`handle_timeout` acts only on
            // what is) and the next round arms it for the deadline of that moment.
            match (self.session.poll_timeout().map(Instant::from_std), armed) {
                (Some(deadline), Some(at)) if deadline >= at => {}
                (Some(deadline), _) => {
                    timer.as_mut().reset(deadline);
                    armed = Some(deadline);
                }
                (None, _) => armed = None,
            }
            if !out.is_empty() {
                // Write at once, before reading more: outgoing data then carries the
                // acknowledgement of what was read, and a message goes out without a round
                // through the select below. What the transport does not take now waits
                // there.
                match write_now(&mut writer, &mut out) {
                    Some(Ok(0)) => {
                        self.session.handle_connection_lost(now());
                        continue;
                    }
                    Some(Ok(_)) => {
                        // Flushed here when it can be (a TCP stream has nothing to flush),
                        // rather than by another round through the select.
                        needs_flush = !(out.is_empty() && flush_now(&mut writer));
                        self.flushed |= !needs_flush;
                        continue;
                    }
                    Some(Err(error)) => {
                        debug!(%error, "write failed");
                        self.session.handle_connection_lost(now());
                        continue;
                    }
                    None => {}
                }
            }
            // Nobody waits on a commit across the select: what was taken since the last
            // transmit (by the inbox branch, or before a command) is committed now. None of
            // it has been written, so a failure here withdraws nothing that left.
            confirm_stored(
                &self.inbox,
                &mut self.session,
                &mut self.completions,
                &mut self.unconfirmed,
            );
            tokio::select! {
                // Write what is queued, then flush it out of the transport's buffers (TLS
                // records wait there otherwise). Both are safe to drop half-way: nothing is
                // written twice or lost.
                written = async {
                    if out.is_empty() {
                        writer.flush().await.map(|()| None)
                    } else {
                        writer.write_buf(&mut out).await.map(Some)
                    }
                }, if !out.is_empty() || needs_flush => match written {
                    // A transport that accepts nothing is as good as closed.
                    Ok(Some(0)) => self.session.handle_connection_lost(now()),
                    Ok(Some(_)) => needs_flush = true,
                    Ok(None) => {
                        needs_flush = false;
                        self.flushed = true;
                    }
                    Err(error) => {
                        debug!(%error, "write failed");
                        self.session.handle_connection_lost(now());
                    }
                },
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
                () = self.inbox.notified() => {
                    // Stored now, committed by the transmit on the next round together with
                    // the packet identifiers it assigns and the acknowledgements just read:
                    // one write to the store per round rather than one per kind of change.
                    // What was published before a command goes first (a disconnect flushes
                    // it).
                    take_inbox(
                        &self.inbox,
                        &mut self.session,
                        &mut self.completions,
                        &mut self.unconfirmed,
                    );
                    apply_acks(&self.inbox, &mut self.session, &mut self.acks);
                    if self.inbox.take_commanded() {
                        self.on_commands();
                    }
                }
                () = &mut timer, if armed.is_some() => {
                    // Fired: armed again on the next round, whatever the deadline.
                    armed = None;
                    self.session.handle_timeout(now());
                }
            }
        }
    }

    /// Handles the commands queued, sharing one store commit (the next transmit's), on a
    /// connection.
    fn on_commands(&mut self) {
        let Self {
            session,
            commands,
            completions,
            subscribes,
            unsubscribes,
            stopping,
            requested,
            inbox,
            ..
        } = self;
        let stops = stopping.len();
        let mut batch = Batch {
            completions,
            subscribes,
            unsubscribes,
            stopping,
            requested,
        };
        let closed = drain(inbox, commands, session, &mut batch);
        if self.stopping.len() > stops {
            self.session.disconnect();
        } else if closed && !self.commands_closed {
            // Every client handle is gone: stop now, nothing stored is lost. (A disconnect
            // in the same batch goes on gracefully instead.)
            self.session.handle_connection_lost(now());
        }
        self.commands_closed |= closed;
    }

    /// Hands the session's events to whoever waits for them; the reason, when the
    /// connection ended.
    fn pump_events(&mut self) -> Option<DisconnectReason> {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Connected { session_present } => {
                    info!(session_present, "connected");
                    self.connacked = true;
                    if !session_present {
                        self.renew_subscriptions();
                    }
                    self.emit(Event::Connected { session_present });
                }
                SessionEvent::Message(incoming) => {
                    self.made_progress();
                    self.delivered = self.delivered.wrapping_add(1);
                    self.deliver(incoming);
                }
                SessionEvent::PublishReceived { .. } => self.made_progress(),
                SessionEvent::PublishCompleted { id, .. } => {
                    self.made_progress();
                    self.failures.completed(id);
                    self.completed = self.completed.wrapping_add(1);
                    if let Some(done) = self.completions.remove(&id) {
                        // The queue count `publish` checks goes down before the caller can
                        // hear of the completion, on whatever thread it runs: otherwise it
                        // publishes the next message against a count that still has this
                        // one, and a queue limit just above its window refuses it.
                        self.inbox.track(&self.session);
                        let _ = done.send(Ok(()));
                    }
                }
                SessionEvent::Subscribed { request, results } => {
                    if let Some(
                        Requested::Subscribe(subscriptions) | Requested::Renewal(subscriptions),
                    ) = self.requested.remove(&request)
                    {
                        for (subscription, result) in subscriptions.into_iter().zip(&results) {
                            match result {
                                SubscribeReturnCode::Success(qos) => {
                                    self.subscriptions.insert(subscription.filter, *qos);
                                }
                                _ => {
                                    self.subscriptions.remove(&subscription.filter);
                                }
                            }
                        }
                    }
                    if let Some(reply) = self.subscribes.remove(&request) {
                        let _ = reply.send(Ok(results));
                    }
                }
                SessionEvent::Unsubscribed { request } => {
                    if let Some(Requested::Unsubscribe(filters)) = self.requested.remove(&request) {
                        for filter in filters {
                            self.subscriptions.remove(&filter);
                        }
                    }
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
        // Before CONNACK nothing counts: QoS 0 messages pipelined behind CONNECT "complete"
        // when written, even to a transport the broker resets at once.
        if self.connacked && !self.progress {
            self.progress = true;
            self.attempts.reset();
        }
    }

    /// The broker started a new session (clean session, or it lost the old one): it no
    /// longer has the subscriptions it granted, so they are asked for again.
    fn renew_subscriptions(&mut self) {
        if self.subscriptions.is_empty() {
            return;
        }
        let subscriptions: Vec<Subscription> = self
            .subscriptions
            .iter()
            .map(|(filter, qos)| Subscription::new(filter.clone(), *qos))
            .collect();
        info!(
            count = subscriptions.len(),
            "renewing subscriptions in the broker's new session"
        );
        match self.session.subscribe(subscriptions.clone()) {
            Ok(request) => {
                self.requested
                    .insert(request, Requested::Renewal(subscriptions));
            }
            Err(error) => warn!(%error, "could not renew the subscriptions"),
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
                inbox: Arc::clone(&self.inbox),
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
            // The broker named the message it refuses.
            DisconnectReason::Protocol(error @ ProtocolError::WrongAck { message, .. }) => {
                Some((*message, Refusal::Protocol(error.clone())))
            }
            // The broker closed the connection, in order, after CONNACK and after the resends
            // (queued first, behind CONNECT) were flushed, and before anything completed: the
            // oldest message awaiting its first acknowledgement is the suspect. Never one already released
            // (the broker has it), and never on a network reset, which is nobody's fault.
            DisconnectReason::ConnectionLost
                if self.connacked && self.closed_by_peer && self.flushed && !self.progress =>
            {
                self.session
                    .oldest_inflight()
                    .filter(|id| matches!(self.session.stage(*id), Some(Stage::Published(_))))
                    .map(|message| (message, Refusal::ConnectionClosed))
            }
            _ => None,
        };
        self.emit(Event::Disconnected {
            reason: Arc::new(reason),
        });
        let Some((message, cause)) = failure else {
            return;
        };
        if self.max_identical_failures == 0 {
            return;
        }
        let failures = self.failures.record(message, cause.clone());
        if failures < self.max_identical_failures {
            return;
        }
        self.failures.reset();
        warn!(%message, %cause, failures, "giving up on a message the broker refuses");
        let abandoned = self
            .session
            .abandon(message)
            .and_then(|_| self.session.commit());
        match abandoned {
            Ok(()) => {
                if let Some(done) = self.completions.remove(&message) {
                    self.inbox.track(&self.session);
                    let _ = done.send(Err(PublishError::Refused { cause, failures }));
                }
                self.emit(Event::MessageRefused { id: message });
            }
            Err(error) => warn!(%error, "could not abandon the message"),
        }
    }

    /// The client stops: acknowledgements already given are applied, the store is
    /// committed, and every waiting call is answered.
    fn finish(mut self) {
        // Nothing more comes in. A message the application took counts as taken: applied
        // and committed now, so a QoS 2 message is not handed over again after a restart.
        // `close` returns once every push it let in is in, so the takes below see them.
        self.inbox.close();
        apply_acks(&self.inbox, &mut self.session, &mut self.acks);
        // Published before the end: stored (and committed below), then answered as closed.
        take_inbox(
            &self.inbox,
            &mut self.session,
            &mut self.completions,
            &mut self.unconfirmed,
        );
        confirm_stored(
            &self.inbox,
            &mut self.session,
            &mut self.completions,
            &mut self.unconfirmed,
        );
        self.commands.close();
        let mut late = Vec::new();
        while let Ok(command) = self.commands.try_recv() {
            late.push(command);
        }
        let committed = self.session.commit().map_err(|error| {
            warn!(%error, "the final commit failed");
            error.to_string()
        });
        for command in late {
            match command {
                Command::Disconnect { reply } => self.stopping.push(reply),
                Command::Subscribe { reply, .. } => {
                    let _ = reply.send(Err(ClientError::Closed));
                }
                Command::Unsubscribe { reply, .. } => {
                    let _ = reply.send(Err(ClientError::Closed));
                }
            }
        }
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
            let _ = reply.send(committed.clone().map_err(store_error));
        }
        self.emit(Event::Stopped);
        info!("stopped");
    }
}

/// A store error, again, for one more caller (the store's error is not `Clone`).
fn store_error(message: String) -> ClientError {
    ClientError::Store(haka_session::StoreError::Io(std::io::Error::other(message)))
}

/// The driver's books for answering commands, borrowed apart from the session.
struct Batch<'a> {
    completions: &'a mut Completions,
    subscribes:
        &'a mut HashMap<RequestId, oneshot::Sender<Result<Vec<SubscribeReturnCode>, ClientError>>>,
    unsubscribes: &'a mut HashMap<RequestId, oneshot::Sender<Result<(), ClientError>>>,
    stopping: &'a mut Vec<oneshot::Sender<Result<(), ClientError>>>,
    requested: &'a mut HashMap<RequestId, Requested>,
}

impl Batch<'_> {
    fn handle<S: Store>(&mut self, session: &mut Session<S>, command: Command) {
        // After `disconnect`, nothing new is taken: what was queued before is what goes out.
        if !self.stopping.is_empty() {
            match command {
                Command::Subscribe { reply, .. } => {
                    let _ = reply.send(Err(ClientError::Closed));
                }
                Command::Unsubscribe { reply, .. } => {
                    let _ = reply.send(Err(ClientError::Closed));
                }
                Command::Disconnect { reply } => self.stopping.push(reply),
            }
            return;
        }
        match command {
            Command::Subscribe {
                subscriptions,
                reply,
            } => match session.subscribe(subscriptions.clone()) {
                Ok(request) => {
                    self.requested
                        .insert(request, Requested::Subscribe(subscriptions));
                    self.subscribes.insert(request, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Unsubscribe { filters, reply } => match session.unsubscribe(filters.clone()) {
                Ok(request) => {
                    self.requested
                        .insert(request, Requested::Unsubscribe(filters));
                    self.unsubscribes.insert(request, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Disconnect { reply } => self.stopping.push(reply),
        }
    }
}

/// Callers of `publish` waiting to hear that their message is stored, by message.
type Unconfirmed = Vec<(MessageId, oneshot::Sender<Result<(), ClientError>>)>;

/// Hands every message in the inbox to the session, in order. With a durable store, their
/// callers join `unconfirmed`, to be answered by [`confirm_stored`] once they are committed.
fn take_inbox<S: Store>(
    inbox: &Inbox,
    session: &mut Session<S>,
    completions: &mut Completions,
    unconfirmed: &mut Unconfirmed,
) {
    if inbox.holds_no_messages() {
        return;
    }
    let mut taken = inbox.take();
    if taken.is_empty() {
        inbox.recycle(taken);
        return;
    }
    for outgoing in taken.drain(..) {
        let Outgoing {
            topic,
            qos,
            retain,
            payload,
            done,
            stored: waiting,
        } = outgoing;
        match session.publish(topic, qos, retain, payload) {
            Ok(id) => {
                completions.insert(id, done);
                if let Some(waiting) = waiting {
                    unconfirmed.push((id, waiting));
                }
            }
            Err(error) => {
                let _ = done.send(Err(PublishError::NotQueued(error.to_string())));
                if let Some(waiting) = waiting {
                    let _ = waiting.send(Err(error.into()));
                }
            }
        }
    }
    inbox.recycle(taken);
    inbox.track(session);
}

/// Commits the store (nothing to write if the transmit already did) and tells the callers in
/// `unconfirmed` that their messages are stored; if the commit fails, the messages are
/// withdrawn and their callers told so.
///
/// Called after every `poll_transmit` and before the driver waits, so that no message in
/// `unconfirmed` has been written: `poll_transmit` commits before it writes anything and
/// writes nothing when that commit fails, so when a commit here fails, the messages it
/// withdraws never left.
fn confirm_stored<S: Store>(
    inbox: &Inbox,
    session: &mut Session<S>,
    completions: &mut Completions,
    unconfirmed: &mut Unconfirmed,
) {
    if unconfirmed.is_empty() {
        return;
    }
    match session.commit() {
        Ok(()) => {
            for (_, waiting) in unconfirmed.drain(..) {
                let _ = waiting.send(Ok(()));
            }
        }
        Err(error) => {
            warn!(%error, "the store could not commit; refusing the batch");
            let message = error.to_string();
            for (id, waiting) in unconfirmed.drain(..) {
                let _ = session.abandon(id);
                completions.remove(&id);
                let _ = waiting.send(Err(store_error(message.clone())));
            }
        }
    }
    inbox.track(session);
}

/// Takes the commands queued, up to a batch; whether the channel has closed (every
/// [`Client`](crate::Client) gone). The driver reads the channel only when the inbox says
/// to, so past a batch it tells itself to come back for the rest.
fn drain<S: Store>(
    inbox: &Inbox,
    commands: &mut mpsc::Receiver<Command>,
    session: &mut Session<S>,
    batch: &mut Batch<'_>,
) -> bool {
    for _ in 0..COMMAND_BATCH {
        match commands.try_recv() {
            Ok(command) => batch.handle(session, command),
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => return true,
        }
    }
    inbox.commanded();
    false
}

/// Serves commands (offline: they are queued in the session) until `future` completes;
/// `None` when the client must stop first.
#[allow(clippy::too_many_arguments)] // the driver's parts, borrowed apart
async fn serve_commands<S: Store, F: Future>(
    future: F,
    inbox: &Inbox,
    session: &mut Session<S>,
    commands: &mut mpsc::Receiver<Command>,
    commands_closed: &mut bool,
    acks: &mut Vec<AckOp>,
    unconfirmed: &mut Unconfirmed,
    batch: &mut Batch<'_>,
) -> Option<F::Output> {
    tokio::pin!(future);
    // Taken on the connection that just ended and not yet answered.
    confirm_stored(inbox, session, batch.completions, unconfirmed);
    loop {
        if *commands_closed || !batch.stopping.is_empty() {
            return None;
        }
        tokio::select! {
            output = &mut future => return Some(output),
            () = inbox.notified() => {
                // Offline publishing: stored now, sent on the next connection. Offline too,
                // a QoS 2 message taken is recorded durably at once. What was published
                // before a command goes first.
                take_inbox(inbox, session, batch.completions, unconfirmed);
                confirm_stored(inbox, session, batch.completions, unconfirmed);
                apply_acks(inbox, session, acks);
                if inbox.take_commanded() {
                    *commands_closed |= drain(inbox, commands, session, batch);
                }
                let _ = session.commit();
            }
        }
    }
}

/// What the application did with messages since the last call, told to the session, with
/// `buffer` (empty, kept for its room) to take them into. A token of an earlier connection
/// is refused by the session, which is right: the broker delivers again.
fn apply_acks<S: Store>(inbox: &Inbox, session: &mut Session<S>, buffer: &mut Vec<AckOp>) {
    if inbox.holds_no_acks() {
        return;
    }
    inbox.take_acks(buffer);
    for op in buffer.drain(..) {
        let _ = match op {
            AckOp::Ack(token) => session.ack(token),
            AckOp::Nack(token) => session.nack(token),
        };
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Lets every task already waiting to run go first, once: the driver wakes itself and
/// waits. Unlike `tokio::task::yield_now`, which defers the wake-up until the runtime has
/// polled for I/O (a system call, and a spare poll of the driver when something else wakes
/// it first), the driver goes straight to the back of the queue.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Flushes `writer` if it can without waiting: whether it did.
fn flush_now<W: AsyncWrite + Unpin>(writer: &mut W) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(writer).poll_flush(&mut cx), Poll::Ready(Ok(())))
}

/// Writes what `writer` takes of `out` without waiting; `None` when it would wait (a later
/// poll with a real waker, in the driver's select, waits for it).
fn write_now<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut BytesMut,
) -> Option<io::Result<usize>> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(writer).poll_write(&mut cx, out) {
        Poll::Ready(Ok(n)) => {
            out.advance(n);
            Some(Ok(n))
        }
        Poll::Ready(Err(error)) => Some(Err(error)),
        Poll::Pending => None,
    }
}
