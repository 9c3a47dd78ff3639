//! [`FaultProxy`]: a TCP proxy between a client under test and its broker that breaks
//! connections when the test says so.
//!
//! # Design
//!
//! The proxy runs on its own single-threaded tokio runtime in a background thread. Its
//! controls are plain methods that touch atomics and channels, so a synchronous test and a
//! `#[tokio::test]` drive it alike, and the proxy keeps forwarding while the test's own
//! thread blocks. Dropping the proxy tells the thread to stop, joins it, and so closes the
//! listener and every connection: nothing outlives the proxy.
//!
//! A connection is cut abruptly: both of its sockets are closed with `SO_LINGER` 0, so the
//! client and the broker each see a reset (or an end of stream), as when a peer crashes.
//! Bytes forwarded before the cut have reached the peer's socket first.

use std::{
    collections::HashSet,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::TestkitError;

/// How long the proxy waits for the upstream to accept a connection, and
/// [`FaultProxy::cut_all`] for the cuts to complete.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// After this many accept errors in a row (descriptors exhausted, say), the proxy stops
/// accepting rather than spin.
const MAX_ACCEPT_ERRORS: u32 = 100;

/// A TCP proxy on a free `127.0.0.1` port that forwards every connection to one upstream
/// address, and cuts connections on demand or at random points of their streams.
///
/// ```
/// use std::{io::{Read, Write}, net::{TcpListener, TcpStream}};
///
/// // An upstream that says hello to one client.
/// let upstream = TcpListener::bind("127.0.0.1:0")?;
/// let addr = upstream.local_addr()?;
/// let server = std::thread::spawn(move || -> std::io::Result<()> {
///     upstream.accept()?.0.write_all(b"hello")
/// });
///
/// let proxy = haka_testkit::FaultProxy::start(addr)?;
/// let mut client = TcpStream::connect(proxy.addr())?;
/// let mut greeting = [0; 5];
/// client.read_exact(&mut greeting)?;
/// assert_eq!(&greeting, b"hello");
/// assert_eq!(proxy.connections(), 1);
/// # server.join().expect("the server thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Binds a free `127.0.0.1` port and starts forwarding its connections to `upstream`.
    ///
    /// The port is held from the start, so there is no race for it. Safe to call from a
    /// tokio runtime: the proxy's runtime lives on its own thread.
    pub fn start(upstream: SocketAddr) -> Result<Self, TestkitError> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| TestkitError::io("binding the proxy's port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io("reading the proxy's port", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| TestkitError::io("making the proxy's listener non-blocking", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| TestkitError::io("building the proxy's runtime", e))?;
        let shared = Arc::new(Shared::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    runtime.block_on(accept_loop(listener, upstream, shared, shutdown_rx));
                    // Dropping the runtime drops every connection task and its sockets.
                }
            })
            .map_err(|e| TestkitError::io("starting the proxy's thread", e))?;
        Ok(Self {
            addr,
            upstream,
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address clients connect to (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections are forwarded.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Cuts every connection the proxy has accepted and not yet closed (both sides see a
    /// reset) and returns once they are closed, at most [`PROXY_TIMEOUT`]; returns how many
    /// were cut. Connections accepted afterwards are forwarded as usual.
    pub fn cut_all(&self) -> usize {
        let targets: HashSet<u64> = self.shared.lock_active().clone();
        self.shared
            .cut_all
            .send_modify(|generation| *generation += 1);
        let deadline = Instant::now() + PROXY_TIMEOUT;
        let mut active = self.shared.lock_active();
        while active.iter().any(|id| targets.contains(id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            active = self
                .shared
                .closed
                .wait_timeout(active, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        targets.len()
    }

    /// With `Some((min_bytes, max_bytes))`, each new connection is cut after a number of
    /// forwarded bytes (both directions together) drawn uniformly from
    /// `min_bytes..=max_bytes`: a cut at a random instant of the stream, possibly inside a
    /// packet. The draws come from the seed set by [`set_seed`](Self::set_seed) (0 unless
    /// set), one per accepted connection in order, so a run is repeatable. `None` stops
    /// random cuts for new connections. Connections already open keep their budget.
    pub fn set_random_cuts(&self, range: Option<(u64, u64)>) {
        self.shared.lock_random().range = range.map(|(a, b)| (a.min(b), a.max(b)));
    }

    /// Restarts the random-cut draws from `seed`.
    pub fn set_seed(&self, seed: u64) {
        self.shared.lock_random().rng = SplitMix64(seed);
    }

    /// While `true`, new connections are accepted and reset at once, so the broker looks
    /// unreachable: the client's TCP connect may still succeed (the kernel completes it
    /// before the proxy sees it), but its first read or write fails with a reset or an end
    /// of stream. Open connections are not touched.
    pub fn refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Connections accepted and forwarded so far (refused ones not included).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections refused by [`refuse`](Self::refuse) so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections the proxy cut so far, by [`cut_all`](Self::cut_all) or at random.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.shared.lock_active().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// State shared by the controls and the proxy's thread.
#[derive(Debug)]
struct Shared {
    refuse: AtomicBool,
    connections: AtomicUsize,
    refused: AtomicUsize,
    cuts: AtomicUsize,
    random: Mutex<RandomCuts>,
    /// Bumped by `cut_all`; each connection watches it from its start.
    cut_all: watch::Sender<u64>,
    /// Identifiers of the open connections, and a condition signalled when one closes.
    active: Mutex<HashSet<u64>>,
    closed: Condvar,
}

#[derive(Debug)]
struct RandomCuts {
    range: Option<(u64, u64)>,
    rng: SplitMix64,
}

impl Shared {
    fn new() -> Self {
        Self {
            refuse: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            cuts: AtomicUsize::new(0),
            random: Mutex::new(RandomCuts {
                range: None,
                rng: SplitMix64(0),
            }),
            cut_all: watch::channel(0).0,
            active: Mutex::new(HashSet::new()),
            closed: Condvar::new(),
        }
    }

    // The guarded values stay consistent whatever panicked: poisoning is ignored.
    fn lock_active(&self) -> MutexGuard<'_, HashSet<u64>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_random(&self) -> MutexGuard<'_, RandomCuts> {
        self.random.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The byte budget of a new connection, if random cuts are on.
    fn draw_budget(&self) -> Option<u64> {
        let mut random = self.lock_random();
        let (min, max) = random.range?;
        Some(random.rng.in_range(min, max))
    }
}

/// Removes a connection from the active set when its task ends, however it ends.
struct ActiveGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.shared.lock_active().remove(&self.id);
        self.shared.closed.notify_all();
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let mut next_id = 0u64;
    let mut errors = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => {
                errors = 0;
                client
            }
            Err(_) => {
                errors += 1;
                if errors >= MAX_ACCEPT_ERRORS {
                    return;
                }
                continue;
            }
        };
        if shared.refuse.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            abort(client);
            continue;
        }
        // Subscribed before the connection counts as open, so a `cut_all` that sees it
        // open is seen by it.
        let cut = shared.cut_all.subscribe();
        next_id += 1;
        shared.lock_active().insert(next_id);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard {
            shared: Arc::clone(&shared),
            id: next_id,
        };
        let budget = shared.draw_budget();
        tokio::spawn(connection(
            client,
            upstream,
            budget,
            cut,
            shutdown.clone(),
            guard,
        ));
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Both directions reached their end of stream.
    Finished,
    /// A side failed (reset): the other is reset too.
    Failed,
    /// The proxy cut it.
    Cut,
}

async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    budget: Option<u64>,
    mut cut: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
    guard: ActiveGuard,
) {
    let connect = tokio::time::timeout(PROXY_TIMEOUT, TcpStream::connect(upstream));
    let mut server = tokio::select! {
        connected = connect => match connected {
            Ok(Ok(server)) => server,
            _ => {
                abort(client);
                return;
            }
        },
        _ = cut.changed() => {
            guard.shared.cuts.fetch_add(1, Ordering::SeqCst);
            abort(client);
            return;
        }
        _ = shutdown.changed() => return,
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = {
        let remaining = AtomicU64::new(budget.unwrap_or(u64::MAX));
        let remaining = budget.map(|_| &remaining);
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let up = pump(&mut client_read, &mut server_write, remaining);
        let down = pump(&mut server_read, &mut client_write, remaining);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut up, if !up_done => { up_done = true; end }
                end = &mut down, if !down_done => { down_done = true; end }
                _ = cut.changed() => End::Cut,
                _ = shutdown.changed() => End::Cut,
            };
            if end != End::Finished {
                break end;
            }
            if up_done && down_done {
                break End::Finished;
            }
        }
    };
    if end == End::Cut {
        guard.shared.cuts.fetch_add(1, Ordering::SeqCst);
    }
    if end != End::Finished {
        abort(client);
        abort(server);
    }
    drop(guard);
}

/// Copies `from` to `to` until the end of `from` (then shuts `to` down: a half close),
/// a failure, or the end of the byte budget `remaining`, shared by both directions.
async fn pump<R, W>(from: &mut R, to: &mut W, remaining: Option<&AtomicU64>) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return End::Finished;
            }
            Ok(n) => n,
            Err(_) => return End::Failed,
        };
        let allowed = match remaining {
            None => n,
            Some(remaining) => take_budget(remaining, n),
        };
        if allowed > 0 && to.write_all(&buf[..allowed]).await.is_err() {
            return End::Failed;
        }
        if remaining.is_some_and(|r| r.load(Ordering::SeqCst) == 0) {
            return End::Cut;
        }
    }
}

/// Takes up to `wanted` bytes from `remaining`; returns how many were taken.
fn take_budget(remaining: &AtomicU64, wanted: usize) -> usize {
    let wanted = u64::try_from(wanted).unwrap_or(u64::MAX);
    let before = remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            Some(left - left.min(wanted))
        })
        .unwrap_or_else(|left| left);
    usize::try_from(before.min(wanted)).unwrap_or(usize::MAX)
}

/// Closes `stream` with a reset.
fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// A small, seedable generator (SplitMix64): the same seed gives the same cuts on every
/// machine, without a dependency.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `min..=max` (`min <= max`); the modulo bias is irrelevant for tests.
    fn in_range(&mut self, min: u64, max: u64) -> u64 {
        match (max - min).checked_add(1) {
            Some(span) => min + self.next() % span,
            None => self.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::TcpStream as StdTcpStream,
        sync::mpsc,
    };

    use haka_codec::ConnectReturnCode;

    use super::*;
    use crate::{
        probe::{stream_closes, Probe, PROBE_TIMEOUT},
        Mosquitto,
    };

    /// An echo server for `count` connections; reports each connection's end on the
    /// returned channel. Each echo thread ends with its connection.
    fn echo_server(count: usize) -> (SocketAddr, mpsc::Receiver<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let (closed_tx, closed) = mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..count {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let closed_tx = closed_tx.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = closed_tx.send(());
                });
            }
        });
        (addr, closed)
    }

    fn connect(proxy: &FaultProxy) -> StdTcpStream {
        let stream = StdTcpStream::connect(proxy.addr()).expect("the proxy accepts");
        stream
            .set_read_timeout(Some(PROBE_TIMEOUT))
            .expect("a read timeout");
        stream
    }

    fn echo(stream: &mut StdTcpStream, message: &[u8]) {
        stream.write_all(message).expect("the proxy reads");
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).expect("the echo comes back");
        assert_eq!(back, message);
    }

    #[test]
    fn forwards_both_ways_and_counts_connections() {
        let (upstream, _closed) = echo_server(2);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        assert_eq!(proxy.upstream(), upstream);
        assert_eq!(proxy.addr().port(), proxy.port());
        let mut a = connect(&proxy);
        let mut b = connect(&proxy);
        echo(&mut a, b"hello");
        echo(&mut b, &[7u8; 100_000]);
        assert_eq!(proxy.connections(), 2);
        assert_eq!(proxy.active(), 2);
        assert_eq!(proxy.cuts(), 0);
    }

    #[test]
    fn a_half_close_is_forwarded() {
        let (upstream, closed) = echo_server(1);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        let mut client = connect(&proxy);
        echo(&mut client, b"bye");
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("a half close");
        closed
            .recv_timeout(PROBE_TIMEOUT)
            .expect("the upstream sees the end of stream");
        assert!(stream_closes(&mut client));
        assert_eq!(proxy.cuts(), 0);
    }

    #[test]
    fn cut_all_closes_both_sides_of_every_connection() {
        let (upstream, closed) = echo_server(3);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        let mut a = connect(&proxy);
        let mut b = connect(&proxy);
        echo(&mut a, b"a");
        echo(&mut b, b"b");
        assert_eq!(proxy.cut_all(), 2);
        assert_eq!(proxy.cuts(), 2);
        assert_eq!(proxy.active(), 0);
        assert!(stream_closes(&mut a));
        assert!(stream_closes(&mut b));
        for _ in 0..2 {
            closed
                .recv_timeout(PROBE_TIMEOUT)
                .expect("the upstream side closes too");
        }
        // Later connections are forwarded as usual.
        let mut c = connect(&proxy);
        echo(&mut c, b"c");
        assert_eq!(proxy.connections(), 3);
        assert_eq!(proxy.cut_all(), 1);
    }

    #[test]
    fn random_cut_stops_after_the_drawn_number_of_bytes() {
        let (upstream, _closed) = echo_server(1);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        // 100 bytes up, then 50 of the 100 echoed bytes down, then the cut.
        proxy.set_random_cuts(Some((150, 150)));
        let mut client = connect(&proxy);
        client.write_all(&[1u8; 100]).expect("the proxy reads");
        let mut received = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            match client.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
        assert_eq!(received, [1u8; 50]);
        assert_eq!(proxy.cuts(), 1);
    }

    #[test]
    fn random_cuts_repeat_for_a_seed_and_stay_in_range() {
        let draws = |seed| {
            let shared = Shared::new();
            shared.lock_random().rng = SplitMix64(seed);
            shared.lock_random().range = Some((10, 20));
            (0..100)
                .map(|_| shared.draw_budget().expect("random cuts are on"))
                .collect::<Vec<_>>()
        };
        let first = draws(42);
        assert_eq!(first, draws(42));
        assert_ne!(first, draws(43));
        assert!(first.iter().all(|n| (10..=20).contains(n)));
        assert!(first.contains(&10) && first.contains(&20));
        assert_eq!(SplitMix64(1).in_range(0, u64::MAX), SplitMix64(1).next());
        assert_eq!(SplitMix64(1).in_range(5, 5), 5);
    }

    #[test]
    fn budget_is_shared_and_never_overdrawn() {
        let remaining = AtomicU64::new(10);
        assert_eq!(take_budget(&remaining, 4), 4);
        assert_eq!(take_budget(&remaining, 10), 6);
        assert_eq!(take_budget(&remaining, 1), 0);
        assert_eq!(remaining.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn refuse_resets_new_connections_only() {
        let (upstream, _closed) = echo_server(2);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        let mut open = connect(&proxy);
        echo(&mut open, b"before");
        proxy.refuse(true);
        let mut refused = connect(&proxy);
        assert!(stream_closes(&mut refused));
        assert_eq!(proxy.refused(), 1);
        echo(&mut open, b"still open");
        proxy.refuse(false);
        let mut later = connect(&proxy);
        echo(&mut later, b"after");
        assert_eq!(proxy.connections(), 2);
    }

    #[test]
    fn an_unreachable_upstream_resets_the_client() {
        // A port that was free a moment ago: nothing listens there.
        let upstream = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        let mut client = connect(&proxy);
        assert!(stream_closes(&mut client));
        assert_eq!(proxy.connections(), 1);
    }

    #[test]
    fn dropping_the_proxy_closes_everything() {
        let (upstream, closed) = echo_server(1);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        let addr = proxy.addr();
        let mut client = connect(&proxy);
        echo(&mut client, b"x");
        drop(proxy);
        assert!(stream_closes(&mut client));
        closed
            .recv_timeout(PROBE_TIMEOUT)
            .expect("the upstream side closes too");
        assert!(StdTcpStream::connect(addr).is_err(), "nothing listens");
    }

    #[test]
    fn carries_mqtt_to_mosquitto_and_cuts_it() {
        let broker = Mosquitto::builder().start().expect("mosquitto starts");
        let proxy = FaultProxy::start(broker.addr()).expect("the proxy starts");
        let mut probe = Probe::connect(proxy.addr());
        let ack = probe.mqtt_connect("through-the-proxy", None);
        assert_eq!(ack.code(), ConnectReturnCode::Accepted);
        assert_eq!(proxy.cut_all(), 1);
        assert!(probe.is_closed());
        broker
            .wait_for_log("through-the-proxy", PROBE_TIMEOUT)
            .expect("the broker saw the client");
    }

    #[tokio::test]
    async fn works_inside_a_tokio_test() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (upstream, _closed) = echo_server(1);
        let proxy = FaultProxy::start(upstream).expect("the proxy starts");
        let mut client = TcpStream::connect(proxy.addr())
            .await
            .expect("the proxy accepts");
        client.write_all(b"async").await.expect("the proxy reads");
        let mut back = [0u8; 5];
        tokio::time::timeout(PROBE_TIMEOUT, client.read_exact(&mut back))
            .await
            .expect("in time")
            .expect("the echo comes back");
        assert_eq!(&back, b"async");
        // The cut blocks this thread briefly; the proxy runs on its own.
        assert_eq!(proxy.cut_all(), 1);
        let mut rest = [0u8; 1];
        let end = tokio::time::timeout(PROBE_TIMEOUT, client.read(&mut rest))
            .await
            .expect("in time");
        assert!(matches!(end, Ok(0) | Err(_)));
    }
}
