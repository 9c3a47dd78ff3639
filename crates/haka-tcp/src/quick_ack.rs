//! A TCP stream that acknowledges what it reads at once.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A [`TcpStream`] that never leaves received data unacknowledged while it waits for more:
/// when a read finds nothing after data was received and nothing was written since, it asks
/// the kernel to send the acknowledgement now (`TCP_QUICKACK`, Linux and Android; elsewhere it
/// is the plain stream).
///
/// # Why
///
/// An MQTT client waiting for acknowledgements often has nothing to send back: its in-flight
/// window is full, or its application has not published the next message yet. Linux then
/// delays the TCP acknowledgement of what it received, hoping to carry it on outgoing data,
/// for up to 40 ms. A broker that keeps Nagle's algorithm on (mosquitto does unless
/// `set_tcp_nodelay true` is configured) holds its next small packets (PUBACK, PUBREC,
/// PUBCOMP) until that acknowledgement arrives, so both sides wait on each other and
/// throughput collapses to a burst every 40 ms. Measured with mosquitto 2.0 and 1 KiB QoS 1
/// messages on one tokio thread: 44 k msg/s without this, 110-125 k msg/s with it.
///
/// # Cost
///
/// One `setsockopt` when the stream goes idle with an acknowledgement owed, none while the
/// client writes: an acknowledgement carried by outgoing data needs no help. Asking after
/// every read instead would add a system call and an extra TCP segment to each message's
/// path, before the application sees it.
///
/// Even when idle, the stream first gives the task's runtime one turn: the first read that
/// finds nothing wakes the task again and asks nothing; only if the next read still finds
/// nothing, with nothing written, is the acknowledgement sent. So on a runtime shared with
/// the application (or another connection), the tasks already woken, such as the one about
/// to take a message just received, run before the system call, and a write in that turn
/// makes it unnecessary.
///
/// ```no_run
/// use std::time::Duration;
/// use haka_tcp::QuickAckStream;
///
/// # async fn run() -> Result<(), haka_tcp::ConnectError> {
/// let tcp = haka_tcp::connect("broker.example", 1883, Duration::from_secs(10)).await?;
/// let stream = QuickAckStream::new(tcp);
/// // `stream` is `AsyncRead + AsyncWrite`, for the client or a TLS layer.
/// assert!(stream.get_ref().nodelay().unwrap_or(false));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct QuickAckStream {
    inner: TcpStream,
    /// What is owed to the peer's data.
    ack: Ack,
}

/// The acknowledgement of what the stream has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// Nothing read since the last write (which carried the acknowledgement), or already
    /// asked for.
    Settled,
    /// Data was read and nothing written since: the kernel may be delaying its
    /// acknowledgement.
    Owed,
    /// Still owed after a read found nothing; the task was woken to give others a turn, and
    /// the next read that finds nothing asks for it.
    Due,
}

impl QuickAckStream {
    /// Wraps `stream`.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            inner: stream,
            ack: Ack::Settled,
        }
    }

    /// The TCP stream.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }

    /// The TCP stream, unwrapped.
    pub fn into_inner(self) -> TcpStream {
        self.inner
    }

    /// Sends an acknowledgement the kernel is delaying, now, and leaves delayed-acknowledgement
    /// mode. A failure is ignored: the option is an optimisation, and a socket that refuses
    /// it still carries the bytes.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn quick_ack(&self) {
        let _ = socket2::SockRef::from(&self.inner).set_tcp_quickack(true);
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn quick_ack(&self) {}
}

impl QuickAckStream {
    /// Outgoing data carries the acknowledgement of everything received so far.
    fn written(&mut self, poll: &Poll<io::Result<usize>>) {
        if matches!(poll, Poll::Ready(Ok(n)) if *n > 0) {
            self.ack = Ack::Settled;
        }
    }
}

impl From<TcpStream> for QuickAckStream {
    fn from(stream: TcpStream) -> Self {
        Self::new(stream)
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        match (&poll, self.ack) {
            (Poll::Ready(Ok(())), _) if buf.filled().len() > before => self.ack = Ack::Owed,
            (Poll::Pending, Ack::Owed) => {
                // Let the tasks already woken run first: one of them may write.
                self.ack = Ack::Due;
                cx.waker().wake_by_ref();
            }
            (Poll::Pending, Ack::Due) => {
                // About to wait with nothing written since the last data: do not let the
                // kernel sit on that data's acknowledgement.
                self.ack = Ack::Settled;
                self.quick_ack();
            }
            _ => {}
        }
        poll
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// Bytes pass both ways unchanged, and half-closing works through the wrapper.
    #[tokio::test]
    async fn carries_bytes_both_ways() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client = QuickAckStream::new(client.unwrap());
        let (mut server, _) = accepted.unwrap();

        client.write_all(b"ping").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");

        server.write_all(b"pong").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");

        client.shutdown().await.unwrap();
        assert_eq!(server.read(&mut got).await.unwrap(), 0);
        let inner = client.into_inner();
        assert_eq!(inner.peer_addr().unwrap(), addr);
    }

    /// After a request and its answer, Linux considers the connection interactive and
    /// delays acknowledgements (`TCP_QUICKACK` reads false). Reading data and then finding
    /// nothing more, with nothing written in between, turns immediate acknowledgements back
    /// on; data alone, or data followed by a write, does not.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn waiting_after_data_with_nothing_written_acknowledges_now() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client = client.unwrap();
        let (mut server, _) = accepted.unwrap();
        let mut got = [0; 4];
        // Request and answer rounds, as MQTT does, until the kernel delays acknowledgements
        // (bounded: it takes one or two rounds on Linux).
        let mut rounds = 0;
        while socket2::SockRef::from(&client).tcp_quickack().unwrap() {
            rounds += 1;
            assert!(rounds <= 50, "the connection never became interactive");
            client.write_all(b"ping").await.unwrap();
            server.read_exact(&mut got).await.unwrap();
            server.write_all(b"pong").await.unwrap();
            client.read_exact(&mut got).await.unwrap();
        }

        let quick_ack = |client: &QuickAckStream| {
            socket2::SockRef::from(client.get_ref())
                .tcp_quickack()
                .unwrap()
        };
        let mut client = QuickAckStream::new(client);

        // Data, then a write: the write carries the acknowledgement, nothing is asked.
        server.write_all(b"more").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(client.ack, Ack::Owed);
        client.write_all(b"back").await.unwrap();
        assert_eq!(client.ack, Ack::Settled);
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(poll_read_once(&mut client).await, None);
        assert_eq!(client.ack, Ack::Settled);

        // Data, a read that finds nothing, then a write in the turn given: nothing asked.
        server.write_all(b"next").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(poll_read_once(&mut client).await, None);
        assert_eq!(client.ack, Ack::Due);
        client.write_all(b"back").await.unwrap();
        assert_eq!(client.ack, Ack::Settled);
        server.read_exact(&mut got).await.unwrap();

        // Back to delayed acknowledgements, as after any exchange.
        socket2::SockRef::from(client.get_ref())
            .set_tcp_quickack(false)
            .unwrap();
        assert!(!quick_ack(&client));

        // Data, then nothing to read twice and nothing written: the acknowledgement goes.
        server.write_all(b"last").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"last");
        assert_eq!(client.ack, Ack::Owed);
        assert_eq!(poll_read_once(&mut client).await, None);
        assert_eq!(client.ack, Ack::Due);
        assert_eq!(poll_read_once(&mut client).await, None);
        assert_eq!(client.ack, Ack::Settled);
        assert!(quick_ack(&client));
    }

    /// Polls one read without waiting: `None` when it would wait.
    #[cfg(target_os = "linux")]
    async fn poll_read_once(client: &mut QuickAckStream) -> Option<usize> {
        let mut buf = [0; 16];
        std::future::poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut buf);
            Poll::Ready(match Pin::new(&mut *client).poll_read(cx, &mut read) {
                Poll::Ready(result) => {
                    result.unwrap();
                    Some(read.filled().len())
                }
                Poll::Pending => None,
            })
        })
        .await
    }
}
