//! The publish inbox: where [`Client::publish`](crate::Client::publish) leaves messages for
//! the driver, without waiting for it.
//!
//! A round trip to the driver per message (send a command, wait for the answer) costs two
//! task wake-ups, more than everything else a publish does. So the caller checks the queue
//! limits and the packet size itself, pushes the message here, and wakes the driver only when
//! the inbox was empty; the driver takes everything at once and hands it to the session,
//! which stores it with one commit. With a durable store the caller then waits for that
//! commit, which the whole batch shares.
//!
//! What the application did with received messages (acknowledged, or dropped unprocessed)
//! comes to the driver the same way, and both wake it through one flag each and one waker:
//! the driver has no channel to poll on every pass through its `select!` for either. The
//! other commands (subscribe, unsubscribe, disconnect) go on a channel of their own, but
//! the driver hears of them here too, through a third flag: a command sent, or the last
//! `Client` gone and the channel closed with it.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Mutex, MutexGuard,
    },
    task::Poll,
};

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use haka_codec::{Codec, Delivery, Packet, PacketId, Publish, QoS, TopicName};
use haka_session::{store::Store, QueueLimit, Session, SessionError};
use tokio::sync::oneshot;

use crate::{client::PublishHandle, message::AckOp, ClientError, PublishError};

/// A message on its way from a caller to the session.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) topic: TopicName,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) payload: Bytes,
    /// Completes the caller's [`PublishHandle`].
    pub(crate) done: oneshot::Sender<Result<(), PublishError>>,
    /// With a durable store: answered once the message is committed.
    pub(crate) stored: Option<oneshot::Sender<Result<(), ClientError>>>,
}

/// Messages published and not yet taken by the driver, with the counts the queue limits need,
/// and the acknowledgements of received messages on their way to it.
#[derive(Debug)]
pub(crate) struct Inbox {
    queue: Mutex<Queued>,
    /// Set by a push that found the inbox empty, cleared by the driver as it wakes for it.
    pushed: AtomicBool,
    /// Whether `queue` holds messages, written under its lock: the driver looks on every
    /// pass and most find nothing, which this tells without the lock (a take and a recycle,
    /// two locks, cost about 280 instructions).
    holds_messages: AtomicBool,
    /// Acknowledgements of received messages, oldest first, not yet taken by the driver.
    acks: Mutex<Vec<AckOp>>,
    /// Set by an acknowledgement that found `acks` empty, cleared as the driver wakes for it.
    acked: AtomicBool,
    /// Whether `acks` holds any, written under its lock, as `holds_messages`.
    holds_acks: AtomicBool,
    /// Set when a command was put on the driver's channel or the channel closed, cleared by
    /// the driver's [`Inbox::take_commanded`] before it reads the channel.
    commanded: AtomicBool,
    /// The driver's task, while it waits in [`Inbox::notified`]. One waiter and one flag:
    /// `tokio::sync::Notify` keeps a list of waiters under a lock, and the driver put itself
    /// on it and took itself off on every pass through its `select!` (about a thousand
    /// instructions per message on the latency path, counted with callgrind).
    driver: AtomicWaker,
    /// Messages and bytes in the session's queue, as the driver last saw them.
    session_messages: AtomicUsize,
    session_bytes: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
    codec: Codec,
    durable: bool,
    closed: AtomicBool,
}

/// What the inbox's lock guards: the messages, their counts, and an empty queue that keeps
/// its room for the next batch (a queue grown anew for every batch cost a tenth of a
/// publish).
#[derive(Debug, Default)]
struct Queued {
    messages: VecDeque<Outgoing>,
    /// Bytes of topic and payload in `messages`.
    bytes: usize,
    spare: VecDeque<Outgoing>,
}

impl Inbox {
    pub(crate) fn new(
        max_messages: usize,
        max_bytes: usize,
        max_packet: usize,
        durable: bool,
    ) -> Self {
        Self {
            queue: Mutex::new(Queued::default()),
            pushed: AtomicBool::new(false),
            holds_messages: AtomicBool::new(false),
            acks: Mutex::new(Vec::new()),
            acked: AtomicBool::new(false),
            holds_acks: AtomicBool::new(false),
            commanded: AtomicBool::new(false),
            driver: AtomicWaker::new(),
            session_messages: AtomicUsize::new(0),
            session_bytes: AtomicUsize::new(0),
            max_messages,
            max_bytes,
            codec: Codec::new().with_max_outgoing_packet_size(max_packet),
            durable,
            closed: AtomicBool::new(false),
        }
    }

    /// Queues a message: refused at once, with nothing queued, past the limits or the
    /// packet size. The receiver, with a durable store, answers once it is committed.
    #[allow(clippy::type_complexity)] // a handle and an optional commit answer
    pub(crate) fn push(
        &self,
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
    ) -> Result<
        (
            PublishHandle,
            Option<oneshot::Receiver<Result<(), ClientError>>>,
        ),
        ClientError,
    > {
        if self.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        // The packet identifier is a placeholder: the size is the same with any.
        let delivery = match qos {
            QoS::AtMostOnce => Delivery::AtMostOnce,
            QoS::AtLeastOnce => Delivery::AtLeastOnce {
                packet_id: PacketId::MIN,
                dup: false,
            },
            QoS::ExactlyOnce => Delivery::ExactlyOnce {
                packet_id: PacketId::MIN,
                dup: false,
            },
        };
        let packet = Packet::Publish(Publish::new(topic, delivery, payload));
        self.codec
            .encoded_len(&packet)
            .map_err(|e| ClientError::Session(SessionError::Encode(e)))?;
        let Packet::Publish(publish) = packet else {
            unreachable!("built as a PUBLISH just above")
        };
        let size = publish.topic.as_str().len() + publish.payload.len();

        let (done, handle) = oneshot::channel();
        let (stored, answer) = if self.durable {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let outgoing = Outgoing {
            topic: publish.topic,
            qos,
            retain,
            payload: publish.payload,
            done,
            stored,
        };
        let was_empty = {
            let mut queue = self.lock();
            // Again under the lock, which `close` passes through before the driver's last
            // take: a message pushed after that take would wait there for ever.
            if self.closed.load(Ordering::Acquire) {
                return Err(ClientError::Closed);
            }
            self.check_limits(&queue, size)?;
            queue.messages.push_back(outgoing);
            queue.bytes += size;
            self.holds_messages.store(true, Ordering::Release);
            queue.messages.len() == 1
        };
        if was_empty {
            // The driver takes everything at once: one wake-up per batch.
            self.pushed.store(true, Ordering::Release);
            self.driver.wake();
        }
        Ok((PublishHandle::new(handle), answer))
    }

    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether one more message of `size` bytes fits the limits, counting what `queue` holds
    /// and what the session held when the driver last said. Conservative: a message moving
    /// from the inbox to the session may be counted twice for a moment.
    fn check_limits(&self, queue: &Queued, size: usize) -> Result<(), ClientError> {
        let full = |limit| Err(ClientError::Session(SessionError::QueueFull(limit)));
        let in_session = self.session_messages.load(Ordering::Acquire);
        if queue.messages.len() + in_session >= self.max_messages {
            return full(QueueLimit::Messages(self.max_messages));
        }
        let in_session = self.session_bytes.load(Ordering::Acquire);
        if queue.bytes + in_session + size > self.max_bytes {
            return full(QueueLimit::Bytes(self.max_bytes));
        }
        Ok(())
    }

    /// Whether no message waits, as far as the driver can tell without the lock: a push it
    /// does not see yet found the inbox empty and wakes it.
    pub(crate) fn holds_no_messages(&self) -> bool {
        !self.holds_messages.load(Ordering::Acquire)
    }

    /// Whether no acknowledgement waits, as [`Inbox::holds_no_messages`].
    pub(crate) fn holds_no_acks(&self) -> bool {
        !self.holds_acks.load(Ordering::Acquire)
    }

    /// Everything queued, for the driver, which hands the emptied queue back with
    /// [`Inbox::recycle`].
    pub(crate) fn take(&self) -> VecDeque<Outgoing> {
        // Cleared before the take: what this take gets needs no wake-up, and a push after it
        // finds the inbox empty and sets the flag again.
        self.pushed.store(false, Ordering::Release);
        let mut queue = self.lock();
        // What leaves the inbox counts as in the session from here, under the lock `push`
        // checks the limits under: the count never dips while the driver hands the messages
        // over, so a client on several threads cannot queue past the limits meanwhile. The
        // driver stores the session's own count once they are in.
        self.session_messages
            .fetch_add(queue.messages.len(), Ordering::AcqRel);
        self.session_bytes.fetch_add(queue.bytes, Ordering::AcqRel);
        let spare = std::mem::take(&mut queue.spare);
        queue.bytes = 0;
        self.holds_messages.store(false, Ordering::Release);
        std::mem::replace(&mut queue.messages, spare)
    }

    /// Keeps `emptied`, a queue [`Inbox::take`] returned, for the next batch.
    pub(crate) fn recycle(&self, mut emptied: VecDeque<Outgoing>) {
        emptied.clear();
        let mut queue = self.lock();
        if queue.spare.capacity() < emptied.capacity() {
            queue.spare = emptied;
        }
    }

    /// Takes the size of `session`'s queue as what the limits count beside the inbox.
    pub(crate) fn track<S: Store>(&self, session: &Session<S>) {
        self.set_session_queue(session.queued_messages(), session.queued_bytes());
    }

    /// The session's queue, as the driver sees it now.
    pub(crate) fn set_session_queue(&self, messages: usize, bytes: usize) {
        self.session_messages.store(messages, Ordering::Release);
        self.session_bytes.store(bytes, Ordering::Release);
    }

    /// Hands `op` to the driver; `false` once it has stopped taking them (the message then
    /// stays unacknowledged, and the broker delivers it again on the session's next
    /// connection).
    pub(crate) fn push_ack(&self, op: AckOp) -> bool {
        let was_empty = {
            let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
            // Under the lock, as for messages in `push`.
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            acks.push(op);
            self.holds_acks.store(true, Ordering::Release);
            acks.len() == 1
        };
        if was_empty {
            self.acked.store(true, Ordering::Release);
            self.driver.wake();
        }
        true
    }

    /// Moves the acknowledgements waiting into `into`, which must be empty (the driver
    /// keeps one such buffer, and its room, across takes).
    pub(crate) fn take_acks(&self, into: &mut Vec<AckOp>) {
        debug_assert!(into.is_empty());
        // Cleared before the take, as in `take`.
        self.acked.store(false, Ordering::Release);
        let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *acks, into);
        self.holds_acks.store(false, Ordering::Release);
    }

    /// Tells the driver to read its commands channel: a command was sent on it, or the
    /// channel closed.
    pub(crate) fn commanded(&self) {
        self.commanded.store(true, Ordering::Release);
        self.driver.wake();
    }

    /// Whether the driver was told to read its commands channel since it last asked,
    /// clearing it: cleared before the read, as in `take`, so that a command sent after the
    /// read sets it again.
    pub(crate) fn take_commanded(&self) -> bool {
        self.commanded.swap(false, Ordering::AcqRel)
    }

    /// Resolves when messages were pushed, acknowledgements given or commands sent since the
    /// driver last took them or woke for them (a push racing with a take may cost one empty
    /// take, never a lost message, acknowledgement or command). For the driver alone: one
    /// task waits. The commands' flag stays set for [`Inbox::take_commanded`].
    pub(crate) async fn notified(&self) {
        std::future::poll_fn(|cx| {
            if self.woken() {
                return Poll::Ready(());
            }
            self.driver.register(cx.waker());
            // Registered before looking again: a push in between is seen here, and a push
            // after this wakes the waker just registered.
            if self.woken() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Whether any flag was set, clearing those of messages and acknowledgements.
    fn woken(&self) -> bool {
        let pushed = self.pushed.swap(false, Ordering::AcqRel);
        let acked = self.acked.swap(false, Ordering::AcqRel);
        pushed || acked || self.commanded.load(Ordering::Acquire)
    }

    /// No more messages or acknowledgements are taken (what is queued can still be taken).
    ///
    /// Returns once every push that was accepted is in: a push checks `closed` and queues
    /// under one lock, so passing through both locks here waits for one under way. The
    /// driver's last takes then see everything accepted, lock or no lock
    /// ([`Inbox::holds_no_messages`] is read without one).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        drop(self.lock());
        drop(self.acks.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> TopicName {
        TopicName::new("t").expect("valid topic")
    }

    fn refused_by(result: Result<impl Sized, ClientError>) -> Option<QueueLimit> {
        match result {
            Err(ClientError::Session(SessionError::QueueFull(limit))) => Some(limit),
            _ => None,
        }
    }

    #[test]
    fn the_limits_count_the_inbox_and_the_session() {
        let inbox = Inbox::new(3, 100, 1 << 20, false);
        let push = |len: usize| inbox.push(topic(), QoS::AtLeastOnce, false, vec![0; len].into());
        assert!(push(10).is_ok());
        assert!(push(10).is_ok());
        // 2 messages of 11 bytes held: a third of 80 bytes would pass 100.
        assert_eq!(refused_by(push(80)), Some(QueueLimit::Bytes(100)));
        assert!(push(10).is_ok());
        assert_eq!(refused_by(push(1)), Some(QueueLimit::Messages(3)));

        // Taken by the driver, the messages still count, as on their way into the session...
        assert_eq!(inbox.take().len(), 3);
        assert_eq!(refused_by(push(1)), Some(QueueLimit::Messages(3)));
        // ...and then as far as the session says.
        inbox.set_session_queue(2, 22);
        assert!(push(10).is_ok());
        assert_eq!(refused_by(push(1)), Some(QueueLimit::Messages(3)));
        inbox.set_session_queue(0, 0);
        assert!(push(70).is_ok());
        assert_eq!(refused_by(push(20)), Some(QueueLimit::Bytes(100)));
    }

    /// `count` tokens of QoS 1 messages, as a session acknowledging by hand hands them out:
    /// it connects and reads a CONNACK and `count` PUBLISH packets.
    fn ack_tokens(count: u16) -> Vec<haka_session::AckToken> {
        use haka_codec::MqttString;
        use haka_session::{Config, Event, Incoming, MemoryStore, Session};

        let config =
            Config::new(MqttString::new("inbox-test").expect("valid client id")).manual_ack(true);
        let mut session = Session::new(config, MemoryStore::new()).expect("a session");
        let now = std::time::Instant::now();
        session.handle_connected(now);
        let mut connect = bytes::BytesMut::new();
        while session.poll_transmit(now, &mut connect) > 0 {}
        let mut input = bytes::BytesMut::from(&[0x20, 0x02, 0x00, 0x00][..]);
        for id in 1..=count {
            let [high, low] = id.to_be_bytes();
            input.extend_from_slice(&[0x32, 0x06, 0x00, 0x01, b't', high, low, b'x']);
        }
        session.handle_bytes(now, &mut input);
        std::iter::from_fn(|| session.poll_event())
            .filter_map(|event| match event {
                Event::Message(Incoming { ack, .. }) => ack,
                _ => None,
            })
            .collect()
    }

    /// A waker that counts its wake-ups.
    struct Counting(AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Counting {
        /// A waker that counts its wake-ups, and the count.
        fn waker() -> (std::sync::Arc<Self>, std::task::Waker) {
            let counter = std::sync::Arc::new(Counting(AtomicUsize::new(0)));
            let waker = std::task::Waker::from(std::sync::Arc::clone(&counter));
            (counter, waker)
        }
    }

    #[test]
    fn the_driver_hears_of_every_push_into_an_empty_inbox() {
        use std::{future::Future, pin::pin, task::Context};

        let inbox = Inbox::new(1000, 1 << 20, 1 << 20, false);
        let push = || {
            inbox
                .push(topic(), QoS::AtLeastOnce, false, Bytes::from_static(b"x"))
                .expect("queued")
        };
        let (counter, waker) = Counting::waker();
        let mut cx = Context::from_waker(&waker);

        // Nothing pushed: it waits, and has nothing to take.
        assert!(pin!(inbox.notified()).poll(&mut cx).is_pending());
        assert!(inbox.holds_no_messages());
        // A push wakes the waker the last wait left, and is remembered for the next wait...
        let _first = push();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "the registered waker is woken"
        );
        assert!(pin!(inbox.notified()).poll(&mut cx).is_ready());
        // ...once: the next wait waits again.
        let mut waiting = pin!(inbox.notified());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        // A push behind a message not yet taken wakes nobody: the driver takes both at once.
        let _second = push();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(!inbox.holds_no_messages());
        assert_eq!(inbox.take().len(), 2);
        assert!(inbox.holds_no_messages());
        // The first push into the emptied inbox wakes the waiting driver, whose wait ends.
        let _third = push();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_command_wakes_the_driver_until_it_reads_the_channel() {
        use std::{future::Future, pin::pin, task::Context};

        let inbox = Inbox::new(1000, 1 << 20, 1 << 20, false);
        let (counter, waker) = Counting::waker();
        let mut cx = Context::from_waker(&waker);

        let mut waiting = pin!(inbox.notified());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        inbox.commanded();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "the waiting driver is woken"
        );
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        // The wait does not clear it: the driver may have woken for a message, and reads
        // the channel only once it asks.
        assert!(pin!(inbox.notified()).poll(&mut cx).is_ready());
        assert!(inbox.take_commanded());
        assert!(!inbox.take_commanded());
        assert!(pin!(inbox.notified()).poll(&mut cx).is_pending());
        // A command sent after the driver asked sets it again.
        inbox.commanded();
        assert!(inbox.take_commanded());
    }

    #[test]
    fn acknowledgements_wake_the_driver_and_stop_at_close() {
        use std::{future::Future, pin::pin, task::Context};

        let inbox = Inbox::new(1000, 1 << 20, 1 << 20, false);
        let (counter, waker) = Counting::waker();
        let mut cx = Context::from_waker(&waker);
        let mut tokens = ack_tokens(3).into_iter();
        let mut token = || tokens.next().expect("three tokens");

        let mut waiting = pin!(inbox.notified());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(inbox.push_ack(AckOp::Ack(token())));
        assert!(inbox.push_ack(AckOp::Nack(token())));
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "one wake-up for the batch"
        );
        assert!(waiting.as_mut().poll(&mut cx).is_ready());

        let mut taken = Vec::new();
        assert!(!inbox.holds_no_acks());
        inbox.take_acks(&mut taken);
        assert_eq!(taken.len(), 2);
        assert!(inbox.holds_no_acks());
        // Taken before the driver waited again: no wake-up is left over for them.
        taken.clear();
        assert!(pin!(inbox.notified()).poll(&mut cx).is_pending());

        inbox.close();
        assert!(!inbox.push_ack(AckOp::Ack(token())));
        inbox.take_acks(&mut taken);
        assert!(taken.is_empty());
    }

    #[test]
    fn a_recycled_queue_keeps_its_room() {
        let inbox = Inbox::new(1000, 1 << 20, 1 << 20, false);
        for _ in 0..100 {
            inbox
                .push(topic(), QoS::AtMostOnce, false, Bytes::from_static(b"x"))
                .expect("queued");
        }
        let taken = inbox.take();
        let room = taken.capacity();
        assert!(room >= 100);
        inbox.recycle(taken);
        inbox
            .push(topic(), QoS::AtMostOnce, false, Bytes::from_static(b"x"))
            .expect("queued");
        // The queue the next message went to, then the recycled one, which is next.
        assert_eq!(inbox.take().len(), 1);
        assert!(inbox.take().capacity() >= room);
    }
}
