//! The publish inbox: where [`Client::publish`](crate::Client::publish) leaves messages for
//! the driver, without waiting for it.
//!
//! A round trip to the driver per message (send a command, wait for the answer) costs two
//! task wake-ups, more than everything else a publish does. So the caller checks the queue
//! limits and the packet size itself, pushes the message here, and wakes the driver only when
//! the inbox was empty; the driver takes everything at once and hands it to the session,
//! which stores it with one commit. With a durable store the caller then waits for that
//! commit, which the whole batch shares.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Mutex,
    },
};

use bytes::Bytes;
use haka_codec::{Codec, Delivery, Packet, PacketId, Publish, QoS, TopicName};
use haka_session::{QueueLimit, SessionError};
use tokio::sync::{oneshot, Notify};

use crate::{client::PublishHandle, ClientError, PublishError};

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

/// Messages published and not yet taken by the driver, with the counts the queue limits need.
#[derive(Debug)]
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<Outgoing>>,
    wake: Notify,
    /// Messages and bytes in the inbox.
    messages: AtomicUsize,
    bytes: AtomicUsize,
    /// Messages and bytes in the session's queue, as the driver last saw them.
    session_messages: AtomicUsize,
    session_bytes: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
    codec: Codec,
    durable: bool,
    closed: AtomicBool,
}

impl Inbox {
    pub(crate) fn new(
        max_messages: usize,
        max_bytes: usize,
        max_packet: usize,
        durable: bool,
    ) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            messages: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
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
        self.reserve(size)?;

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
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push_back(outgoing);
            queue.len() == 1
        };
        if was_empty {
            // The driver takes everything at once: one wake-up per batch.
            self.wake.notify_one();
        }
        Ok((PublishHandle::new(handle), answer))
    }

    /// Counts a message of `size` bytes against the limits, or refuses it. Conservative:
    /// a message moving from the inbox to the session may be counted twice for a moment.
    fn reserve(&self, size: usize) -> Result<(), ClientError> {
        let full = |limit| Err(ClientError::Session(SessionError::QueueFull(limit)));
        let in_session = self.session_messages.load(Ordering::Acquire);
        if self
            .messages
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + in_session < self.max_messages).then_some(n + 1)
            })
            .is_err()
        {
            return full(QueueLimit::Messages(self.max_messages));
        }
        let in_session = self.session_bytes.load(Ordering::Acquire);
        if self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + in_session + size <= self.max_bytes).then_some(n + size)
            })
            .is_err()
        {
            self.messages.fetch_sub(1, Ordering::AcqRel);
            return full(QueueLimit::Bytes(self.max_bytes));
        }
        Ok(())
    }

    /// Everything queued, for the driver.
    pub(crate) fn take(&self) -> VecDeque<Outgoing> {
        let taken = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let bytes: usize = taken
            .iter()
            .map(|o| o.topic.as_str().len() + o.payload.len())
            .sum();
        self.messages.fetch_sub(taken.len(), Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        taken
    }

    /// The session's queue, as the driver sees it now.
    pub(crate) fn set_session_queue(&self, messages: usize, bytes: usize) {
        self.session_messages.store(messages, Ordering::Release);
        self.session_bytes.store(bytes, Ordering::Release);
    }

    /// Resolves when something was pushed since the driver last took the inbox.
    pub(crate) async fn notified(&self) {
        self.wake.notified().await;
    }

    /// No more messages are taken.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
