//! Received messages: [`Message`] and the [`Messages`] stream.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use haka_codec::{QoS, TopicName};
use haka_session::AckToken;
use tokio::sync::mpsc;

use crate::inbox::Inbox;

/// A message from the broker.
#[derive(Debug)]
#[non_exhaustive]
pub struct Message {
    /// Its topic.
    pub topic: TopicName,
    /// Its payload.
    pub payload: Bytes,
    /// The QoS it was delivered at.
    pub qos: QoS,
    /// Whether the broker sent it as a retained message.
    pub retain: bool,
    /// Whether the broker marked it as a possible redelivery (QoS 1 may repeat; QoS 2 never
    /// reaches the application twice).
    pub dup: bool,
    pub(crate) ack: Option<Acker>,
}

impl Message {
    /// Acknowledges the message, with [manual acknowledgement](crate::ClientOptions::manual_ack):
    /// its PUBACK or PUBREC goes out once every message received before it is acknowledged
    /// too. Does nothing for QoS 0, or when the client acknowledges by itself.
    ///
    /// A QoS 1 or 2 message dropped without `ack` is not acknowledged: it stops holding up
    /// the acknowledgements behind it, and the broker delivers it again on the next
    /// connection (MQTT 3.1.1 has no negative acknowledgement that would ask for it sooner).
    ///
    /// A dropped message keeps its place in the broker's in-flight window (20 messages by
    /// mosquitto's default) until then: an application that drops many without `ack` on one
    /// long connection stalls the broker's deliveries to it.
    pub fn ack(&mut self) {
        if let Some(acker) = self.ack.take() {
            acker.ack();
        }
    }
}

/// What the application did with a received message.
#[derive(Debug)]
pub(crate) enum AckOp {
    /// Processed: acknowledge it.
    Ack(AckToken),
    /// Dropped unprocessed: do not acknowledge it, and do not wait for it.
    Nack(AckToken),
}

/// Sends one acknowledgement to the driver, through its inbox: `Ack` when asked, `Nack`
/// when dropped first.
#[derive(Debug)]
pub(crate) struct Acker {
    pub(crate) token: AckToken,
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) done: bool,
}

impl Acker {
    /// Whether the driver got it: if it has stopped, the message was never acknowledged
    /// and the broker delivers it again to the next client on the session.
    fn ack(mut self) -> bool {
        self.done = true;
        self.inbox.push_ack(AckOp::Ack(self.token))
    }
}

impl Drop for Acker {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.inbox.push_ack(AckOp::Nack(self.token));
        }
    }
}

/// The messages the broker delivers, in order, as a [`Stream`](futures_core::Stream) or
/// with [`Messages::recv`].
///
/// The stream ends when the client has stopped. It is never a bottleneck for the client's
/// own work: the driver does not wait for the application to take messages. QoS 1 and 2
/// messages are acknowledged only when taken (or acked), so the broker's in-flight window
/// bounds how many of them wait here on one connection (each reconnection may redeliver
/// them). QoS 0 messages are not bounded: an application that stops reading while the
/// broker keeps sending them grows this queue.
#[derive(Debug)]
pub struct Messages {
    pub(crate) rx: mpsc::UnboundedReceiver<Message>,
    pub(crate) manual_ack: bool,
}

impl Messages {
    /// The next message; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            let Some(mut message) = std::task::ready!(self.rx.poll_recv(cx)) else {
                return Poll::Ready(None);
            };
            if self.manual_ack {
                return Poll::Ready(Some(message));
            }
            // Taken means acknowledged; a message the stopped client can no longer record is
            // left to the broker's redelivery rather than handed over twice.
            if let Some(acker) = message.ack.take() {
                if !acker.ack() {
                    continue;
                }
            }
            return Poll::Ready(Some(message));
        }
    }
}

impl futures_core::Stream for Messages {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().poll_message(cx)
    }
}
