//! Dialling a host: resolve it, then try every address in turn, all within one deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::{ConnectAttempt, ConnectError};

/// Opens a TCP connection to `host:port`, trying every address the host resolves to, and
/// gives up after `timeout` in all.
///
/// `host` is a name (`broker.example`, `localhost`), an IPv4 literal (`127.0.0.1`) or an
/// IPv6 literal, with or without brackets (`::1`, `[::1]`). A literal is used as it is; a
/// name is resolved with [`tokio::net::lookup_host`] (the system resolver).
///
/// # Which addresses, in which order
///
/// The resolved addresses are deduplicated and reordered to alternate address families,
/// starting with the family of the first one, as RFC 8305 (Happy Eyeballs v2) asks:
///
/// > First, the client SHOULD modify the ordered list to interleave address families.
/// > Whichever address family is first in the list should be followed by an address of the
/// > other address family (RFC 8305, section 4)
///
/// They are then dialled one at a time, and the first connection established is returned.
///
/// # How the timeout is spent
///
/// `timeout` bounds the whole call, resolution included. Each address gets a fair share of
/// the time still left: the `i`-th of `n` addresses is given `remaining / (n - i)`. An
/// address that does not answer (a dropped SYN, a black-holed route) so uses at most its
/// share and the following addresses are still tried; an address that refuses at once
/// leaves its share to the others; the last address gets everything that is left. A
/// `Duration::ZERO` timeout fails with [`ConnectError::Timeout`] without dialling anything.
///
/// The stream returned has `TCP_NODELAY` set: MQTT packets are small and latency matters
/// more than coalescing them.
///
/// # Errors
///
/// [`ConnectError::Resolve`] or [`ConnectError::NoAddresses`] when the name gives nothing to
/// dial, [`ConnectError::Timeout`] when the deadline passes, and
/// [`ConnectError::AllFailed`], listing each address with its error, when every address
/// failed before it.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), haka_tcp::ConnectError> {
/// let stream = haka_tcp::connect("broker.example", 1883, Duration::from_secs(10)).await?;
/// assert!(stream.nodelay().unwrap_or(false));
/// # Ok(())
/// # }
/// ```
pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let deadline = deadline_after(timeout);
    let addrs = resolve(host, port, timeout, deadline).await?;
    dial(host, port, &addrs, timeout, deadline).await
}

/// Where and how long to dial, kept to dial again: the facade holds one and reconnects with
/// it.
///
/// ```no_run
/// use std::time::Duration;
/// use haka_tcp::TcpConnector;
///
/// # async fn run() -> Result<(), haka_tcp::ConnectError> {
/// let connector = TcpConnector::new("broker.example", 1883, Duration::from_secs(10));
/// let first = connector.connect().await?;
/// drop(first);
/// let again = connector.connect().await?; // resolves the name anew
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpConnector {
    host: String,
    port: u16,
    timeout: Duration,
}

impl TcpConnector {
    /// A connector for `host:port`, each [`connect`](Self::connect) bounded by `timeout`.
    ///
    /// `host` is taken as [`connect`](crate::connect) takes it: a name, an IPv4 literal or an
    /// IPv6 literal with or without brackets. It is not checked here; a host that does not
    /// resolve fails each `connect` with [`ConnectError::Resolve`].
    pub fn new(host: impl Into<String>, port: u16, timeout: Duration) -> Self {
        Self {
            host: host.into(),
            port,
            timeout,
        }
    }

    /// The host, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound on each [`connect`](Self::connect), resolution included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Resolves the host anew and dials it, as [`connect`](crate::connect) does.
    ///
    /// # Errors
    ///
    /// As [`connect`](crate::connect).
    pub async fn connect(&self) -> Result<TcpStream, ConnectError> {
        connect(&self.host, self.port, self.timeout).await
    }
}

/// `now + timeout`, or a deadline far enough away not to matter when that overflows
/// (`Duration::MAX` means "no timeout").
fn deadline_after(timeout: Duration) -> Instant {
    /// About thirty years.
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + FAR)
}

/// The host without the brackets of a bracketed IPv6 literal (`[::1]` -> `::1`).
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The addresses to dial, in the order to dial them.
async fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let name = unbracket(host);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let timed_out = || ConnectError::Timeout {
        host: host.to_owned(),
        port,
        timeout,
        attempts: Vec::new(),
    };
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let resolved = match timeout_at(deadline, tokio::net::lookup_host((name, port))).await {
        Err(_elapsed) => return Err(timed_out()),
        Ok(Err(source)) => {
            return Err(ConnectError::Resolve {
                host: host.to_owned(),
                port,
                source,
            });
        }
        Ok(Ok(addrs)) => addrs,
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(ConnectError::NoAddresses {
            host: host.to_owned(),
            port,
        });
    }
    Ok(interleave_families(addrs))
}

/// Reorders `addrs` to alternate IPv6 and IPv4, starting with the family of the first,
/// keeping the resolver's order within each family (RFC 8305, section 4).
fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_is_v6 = first.is_ipv6();
    let mut ordered = Vec::with_capacity(addrs.len());
    let (leading, trailing): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .into_iter()
        .partition(|addr| addr.is_ipv6() == first_is_v6);
    let mut leading = leading.into_iter();
    let mut trailing = trailing.into_iter();
    // Each turn takes at least one address, so this runs at most `addrs.len()` times.
    loop {
        match (leading.next(), trailing.next()) {
            (None, None) => break,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
    ordered
}

/// Dials `addrs` in turn until one connects, giving each a fair share of the time left
/// before `deadline`.
async fn dial(
    host: &str,
    port: u16,
    addrs: &[SocketAddr],
    timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let mut attempts = Vec::with_capacity(addrs.len());
    let mut cut_off_by_deadline = false;
    for (i, &addr) in addrs.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            cut_off_by_deadline = true;
            break;
        }
        let left = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let share = (deadline - now) / left;
        let attempt_deadline = if left == 1 { deadline } else { now + share };
        let error = match timeout_at(attempt_deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => match stream.set_nodelay(true) {
                Ok(()) => return Ok(stream),
                Err(error) => error,
            },
            Ok(Err(error)) => error,
            Err(_elapsed) => {
                cut_off_by_deadline = attempt_deadline >= deadline;
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {share:?}"),
                )
            }
        };
        attempts.push(ConnectAttempt { addr, error });
    }
    let host = host.to_owned();
    if cut_off_by_deadline || attempts.is_empty() {
        Err(ConnectError::Timeout {
            host,
            port,
            timeout,
            attempts,
        })
    } else {
        Err(ConnectError::AllFailed {
            host,
            port,
            attempts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use tokio::net::{TcpListener, TcpSocket};

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    /// The bound on anything a test waits for that should be immediate.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A listener on `[::1]:0`, or `None`, said on the test's output, when this machine has
    /// no IPv6 loopback (binding `[::1]:0` fails).
    fn ipv6_loopback(test: &str) -> Option<TcpListener> {
        let socket = TcpSocket::new_v6().and_then(|s| {
            s.bind(SocketAddr::new(V6, 0))?;
            s.listen(16)
        });
        match socket {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!("{test}: IPv6 part SKIPPED: this machine has no IPv6 loopback ({error})");
                None
            }
        }
    }

    /// A socket bound to `addr` but not listening: connecting to it is refused, and nothing
    /// else can listen there while it lives.
    fn refusing(addr: SocketAddr) -> io::Result<TcpSocket> {
        let socket = if addr.is_ipv6() {
            TcpSocket::new_v6()?
        } else {
            TcpSocket::new_v4()?
        };
        socket.bind(addr)?;
        Ok(socket)
    }

    /// A listener whose accept queue is full, so that a new connection to it hangs in
    /// SYN-SENT: the kernel drops SYNs to a listener with a full queue. Returns the listener
    /// and the connections filling its queue, which must be kept alive.
    async fn unanswering(ip: IpAddr) -> (TcpListener, Vec<TcpStream>) {
        let socket = if ip.is_ipv6() {
            TcpSocket::new_v6()
        } else {
            TcpSocket::new_v4()
        }
        .unwrap();
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        // Fill the queue (a backlog of 0 holds one connection on Linux) until a connection
        // gets no answer.
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(stream) => fillers.push(stream.unwrap()),
                Err(_elapsed) => return (listener, fillers),
            }
        }
        panic!("the accept queue of {addr} never filled");
    }

    async fn accepted_from(listener: &TcpListener, client: &TcpStream) {
        let (server_side, peer) = tokio::time::timeout(PATIENCE, listener.accept())
            .await
            .expect("accept timed out")
            .unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(
            server_side.peer_addr().unwrap(),
            client.local_addr().unwrap()
        );
    }

    #[tokio::test]
    async fn connects_over_ipv4_loopback_with_nodelay() {
        let listener = TcpListener::bind((V4, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = connect("127.0.0.1", port, PATIENCE).await.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), SocketAddr::new(V4, port));
        accepted_from(&listener, &stream).await;
    }

    #[tokio::test]
    async fn connects_over_ipv6_loopback_with_and_without_brackets() {
        let Some(listener) = ipv6_loopback("connects_over_ipv6_loopback") else {
            return;
        };
        let port = listener.local_addr().unwrap().port();
        for host in ["::1", "[::1]"] {
            let stream = connect(host, port, PATIENCE).await.unwrap();
            assert!(stream.nodelay().unwrap());
            assert_eq!(
                stream.peer_addr().unwrap(),
                SocketAddr::new(V6, port),
                "{host}"
            );
            accepted_from(&listener, &stream).await;
        }
    }

    #[tokio::test]
    async fn localhost_falls_back_to_its_next_address() {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", 0))
            .await
            .unwrap()
            .collect();
        let ordered = interleave_families(resolved.clone());
        let (last, earlier) = ordered.split_last().expect("localhost resolves");
        // Listen on the last address only; every earlier address refuses, on the same port.
        let mut held = Vec::new();
        let mut found = None;
        for _ in 0..16 {
            let listener = TcpListener::bind(SocketAddr::new(last.ip(), 0))
                .await
                .unwrap();
            let port = listener.local_addr().unwrap().port();
            let refusers: io::Result<Vec<TcpSocket>> = earlier
                .iter()
                .filter(|addr| addr.ip() != last.ip())
                .map(|addr| refusing(SocketAddr::new(addr.ip(), port)))
                .collect();
            match refusers {
                Ok(refusers) => {
                    found = Some((listener, port, refusers));
                    break;
                }
                // The port is taken on another address: try another one.
                Err(_) => held.push(listener),
            }
        }
        let (listener, port, _refusers) = found.expect("a port free on every address");

        let stream = connect("localhost", port, PATIENCE).await.unwrap();
        assert_eq!(
            stream.peer_addr().unwrap(),
            SocketAddr::new(last.ip(), port)
        );
        accepted_from(&listener, &stream).await;
        if earlier.is_empty() {
            eprintln!(
                "localhost_falls_back_to_its_next_address: localhost resolves only to \
                 {resolved:?} here, so no fallback happened through the resolver; \
                 `falls_back_across_families` covers it with explicit addresses"
            );
        } else {
            eprintln!("localhost_falls_back_to_its_next_address: fell back along {ordered:?}");
        }
    }

    #[tokio::test]
    async fn falls_back_across_families() {
        let Some(v6_listener) = ipv6_loopback("falls_back_across_families") else {
            return;
        };
        let v4_listener = TcpListener::bind((V4, 0)).await.unwrap();
        let v6 = v6_listener.local_addr().unwrap();
        let v4 = v4_listener.local_addr().unwrap();
        // IPv6 first and refused, then IPv4; and the other way round.
        for (listener, up, refused_ip) in [(&v4_listener, v4, V6), (&v6_listener, v6, V4)] {
            let refused_addr = SocketAddr::new(refused_ip, 0);
            let refuser = refusing(refused_addr).unwrap();
            let refused_addr = refuser.local_addr().unwrap();
            let addrs = [refused_addr, up];
            let stream = dial("localhost", 0, &addrs, PATIENCE, deadline_after(PATIENCE))
                .await
                .unwrap();
            assert_eq!(stream.peer_addr().unwrap(), up);
            accepted_from(listener, &stream).await;
        }
    }

    #[tokio::test]
    async fn a_refused_port_lists_the_attempt() {
        let refuser = refusing(SocketAddr::new(V4, 0)).unwrap();
        let addr = refuser.local_addr().unwrap();
        let error = connect("127.0.0.1", addr.port(), PATIENCE)
            .await
            .unwrap_err();
        let ConnectError::AllFailed {
            host,
            port,
            attempts,
        } = &error
        else {
            panic!("expected AllFailed, got {error:?}");
        };
        assert_eq!((host.as_str(), *port), ("127.0.0.1", addr.port()));
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].addr, addr);
        assert_eq!(attempts[0].error.kind(), io::ErrorKind::ConnectionRefused);
        let message = error.to_string();
        assert!(message.starts_with(&format!("could not connect to {addr}: {addr}: ")));
        assert!(!message.contains('\n'));
    }

    #[tokio::test]
    async fn a_zero_timeout_times_out_without_dialling() {
        let listener = TcpListener::bind((V4, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for host in ["127.0.0.1", "localhost"] {
            let error = connect(host, port, Duration::ZERO).await.unwrap_err();
            assert!(
                matches!(&error, ConnectError::Timeout { attempts, .. } if attempts.is_empty()),
                "{error:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unanswered_dial_times_out() {
        let (listener, _fillers) = unanswering(V4).await;
        let addr = listener.local_addr().unwrap();
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = connect("127.0.0.1", addr.port(), timeout)
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        let ConnectError::Timeout {
            timeout: reported,
            attempts,
            ..
        } = &error
        else {
            panic!("expected Timeout, got {error:?}");
        };
        assert_eq!(*reported, timeout);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].addr, addr);
        assert_eq!(attempts[0].error.kind(), io::ErrorKind::TimedOut);
        assert!(elapsed >= timeout, "{elapsed:?}");
        assert!(elapsed < timeout + PATIENCE, "{elapsed:?}");
        assert!(error
            .to_string()
            .ends_with("timed out after 300ms (1 address tried)"));
    }

    #[tokio::test]
    async fn the_timeout_is_shared_between_addresses() {
        let (first, _first_fillers) = unanswering(V4).await;
        let (second, _second_fillers) = unanswering(V4).await;
        let addrs = [first.local_addr().unwrap(), second.local_addr().unwrap()];
        let timeout = Duration::from_millis(400);
        let started = Instant::now();
        let error = dial("127.0.0.1", 0, &addrs, timeout, deadline_after(timeout))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        let ConnectError::Timeout { attempts, .. } = &error else {
            panic!("expected Timeout, got {error:?}");
        };
        // Both were tried: the first got half of the time, the second the rest.
        assert_eq!(attempts.iter().map(|a| a.addr).collect::<Vec<_>>(), addrs);
        assert!(attempts
            .iter()
            .all(|a| a.error.kind() == io::ErrorKind::TimedOut));
        assert!(
            elapsed >= timeout && elapsed < timeout + PATIENCE,
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn an_unanswering_address_leaves_time_for_the_next() {
        let (silent, _fillers) = unanswering(V4).await;
        let listener = TcpListener::bind((V4, 0)).await.unwrap();
        let addrs = [silent.local_addr().unwrap(), listener.local_addr().unwrap()];
        let timeout = Duration::from_millis(600);
        let stream = dial("127.0.0.1", 0, &addrs, timeout, deadline_after(timeout))
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
        assert!(stream.nodelay().unwrap());
        accepted_from(&listener, &stream).await;
    }

    #[tokio::test]
    async fn the_connector_dials_again() {
        let listener = TcpListener::bind((V4, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connector = TcpConnector::new("127.0.0.1", port, PATIENCE);
        assert_eq!((connector.host(), connector.port()), ("127.0.0.1", port));
        assert_eq!(connector.timeout(), PATIENCE);
        for _ in 0..2 {
            let stream = connector.clone().connect().await.unwrap();
            accepted_from(&listener, &stream).await;
        }
    }

    #[test]
    fn families_are_interleaved_keeping_their_order() {
        let a: SocketAddr = "[::1]:1".parse().unwrap();
        let b: SocketAddr = "[::2]:1".parse().unwrap();
        let c: SocketAddr = "[::3]:1".parse().unwrap();
        let x: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let y: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert_eq!(interleave_families(vec![a, b, c, x, y]), [a, x, b, y, c]);
        assert_eq!(interleave_families(vec![x, a, b, y]), [x, a, y, b]);
        assert_eq!(interleave_families(vec![x, y]), [x, y]);
        assert_eq!(interleave_families(vec![]), []);
    }

    #[test]
    fn brackets_are_stripped_from_ipv6_literals_only_when_paired() {
        assert_eq!(unbracket("[::1]"), "::1");
        assert_eq!(unbracket("::1"), "::1");
        assert_eq!(unbracket("[::1"), "[::1");
        assert_eq!(unbracket("localhost"), "localhost");
    }

    #[test]
    fn an_endless_timeout_does_not_overflow() {
        assert!(deadline_after(Duration::MAX) > Instant::now());
    }
}
