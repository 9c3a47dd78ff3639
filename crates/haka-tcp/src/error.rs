//! Why a connection could not be opened: the name did not resolve, it resolved to nothing,
//! time ran out, or every address was tried and failed.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why [`connect`](crate::connect) or [`TcpConnector::connect`](crate::TcpConnector::connect)
/// returned no stream.
///
/// Every variant carries the host and port that were asked for, and its `Display` is one line
/// naming them, suitable for a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name could not be resolved (`getaddrinfo` failed).
    #[error("could not resolve {}: {source}", Endpoint(host, *port))]
    Resolve {
        /// The host as given.
        host: String,
        /// The port as given.
        port: u16,
        /// The resolver's error.
        source: io::Error,
    },
    /// The host name resolved, but to no address at all.
    #[error("{} resolved to no address", Endpoint(host, *port))]
    NoAddresses {
        /// The host as given.
        host: String,
        /// The port as given.
        port: u16,
    },
    /// The timeout elapsed before a connection was established: while resolving the name
    /// (`attempts` is then empty) or while dialling.
    ///
    /// `attempts` lists the addresses that were dialled, in order, each with why it failed;
    /// its length is the number of addresses tried. The last one, cut off by the deadline,
    /// fails with [`io::ErrorKind::TimedOut`].
    #[error(
        "connecting to {} timed out after {timeout:?} ({})",
        Endpoint(host, *port),
        Tried(attempts)
    )]
    Timeout {
        /// The host as given.
        host: String,
        /// The port as given.
        port: u16,
        /// The timeout of the whole call.
        timeout: Duration,
        /// Each address dialled before time ran out, with its error.
        attempts: Vec<ConnectAttempt>,
    },
    /// Every resolved address was dialled, and each one failed (refused, unreachable, or no
    /// answer within its share of the timeout).
    #[error("could not connect to {}: {}", Endpoint(host, *port), Failures(attempts))]
    AllFailed {
        /// The host as given.
        host: String,
        /// The port as given.
        port: u16,
        /// Each address dialled, in order, with its error. Never empty.
        attempts: Vec<ConnectAttempt>,
    },
}

impl ConnectError {
    /// The addresses dialled, in order, each with why it failed; empty when no address was
    /// dialled.
    pub fn attempts(&self) -> &[ConnectAttempt] {
        match self {
            Self::Timeout { attempts, .. } | Self::AllFailed { attempts, .. } => attempts,
            Self::Resolve { .. } | Self::NoAddresses { .. } => &[],
        }
    }
}

/// One address that was dialled and failed.
#[derive(Debug)]
pub struct ConnectAttempt {
    /// The address dialled.
    pub addr: SocketAddr,
    /// Why it failed: `ConnectionRefused`, `TimedOut` when it did not answer within its
    /// share of the timeout, and so on.
    pub error: io::Error,
}

impl fmt::Display for ConnectAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.addr, self.error)
    }
}

/// `host:port`, with an IPv6 literal in brackets.
struct Endpoint<'a>(&'a str, u16);

impl fmt::Display for Endpoint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(host, port) = *self;
        if host.contains(':') && !host.starts_with('[') {
            write!(f, "[{host}]:{port}")
        } else {
            write!(f, "{host}:{port}")
        }
    }
}

/// How far dialling got before the deadline.
struct Tried<'a>(&'a [ConnectAttempt]);

impl fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            0 => f.write_str("before any address was dialled"),
            1 => f.write_str("1 address tried"),
            n => write!(f, "{n} addresses tried"),
        }
    }
}

/// Every attempt on one line, separated by `; `.
struct Failures<'a>(&'a [ConnectAttempt]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(addr: &str) -> ConnectAttempt {
        ConnectAttempt {
            addr: addr.parse().unwrap(),
            error: io::Error::from(io::ErrorKind::ConnectionRefused),
        }
    }

    #[test]
    fn every_message_is_one_line_naming_the_endpoint() {
        let errors = [
            ConnectError::Resolve {
                host: "broker.example".into(),
                port: 1883,
                source: io::Error::other("name or service not known"),
            },
            ConnectError::NoAddresses {
                host: "broker.example".into(),
                port: 1883,
            },
            ConnectError::Timeout {
                host: "broker.example".into(),
                port: 1883,
                timeout: Duration::from_secs(5),
                attempts: vec![],
            },
            ConnectError::AllFailed {
                host: "broker.example".into(),
                port: 1883,
                attempts: vec![refused("[::1]:1883"), refused("127.0.0.1:1883")],
            },
        ];
        for error in &errors {
            let message = error.to_string();
            assert!(!message.contains('\n'), "{message:?}");
            assert!(message.contains("broker.example:1883"), "{message:?}");
        }
        assert_eq!(
            errors[3].to_string(),
            "could not connect to broker.example:1883: [::1]:1883: connection refused; \
             127.0.0.1:1883: connection refused"
        );
        assert_eq!(
            errors[2].to_string(),
            "connecting to broker.example:1883 timed out after 5s (before any address was dialled)"
        );
        assert_eq!(errors[3].attempts().len(), 2);
        assert!(errors[0].attempts().is_empty());
    }

    #[test]
    fn ipv6_literals_are_bracketed() {
        assert_eq!(Endpoint("::1", 8883).to_string(), "[::1]:8883");
        assert_eq!(Endpoint("[::1]", 8883).to_string(), "[::1]:8883");
        assert_eq!(Endpoint("127.0.0.1", 8883).to_string(), "127.0.0.1:8883");
        let timeout = ConnectError::Timeout {
            host: "::1".into(),
            port: 1,
            timeout: Duration::from_millis(10),
            attempts: vec![refused("[::1]:1"), refused("[::1]:1")],
        };
        assert_eq!(
            timeout.to_string(),
            "connecting to [::1]:1 timed out after 10ms (2 addresses tried)"
        );
    }
}
