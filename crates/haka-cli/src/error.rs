//! [`CliError`]: everything that ends a command early, each shown as one line.

use std::{io, path::PathBuf, sync::Arc};

use haka::{ClientError, PublishError};
use haka_codec::ConnectReturnCode;
use haka_session::DisconnectReason;

/// The exit status of a `haka sub -W` that ran out of time, as `mosquitto_sub` has it.
pub(crate) const EXIT_TIMED_OUT: u8 = 27;

/// Why a command failed. `Display` is one line, printed after `haka: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Options that cannot work together, beyond what the argument parser checks.
    #[error("{0}")]
    Usage(String),
    /// A topic or filter that is not valid MQTT.
    #[error("invalid topic {topic:?}: {error}")]
    Topic {
        /// As given.
        topic: String,
        /// What is wrong with it.
        error: haka_codec::ValueError,
    },
    /// The client refused a call: a bad URL, topic or client identifier, a full queue, a
    /// store or TLS configuration that cannot be opened.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// No connection could be opened: resolution, TCP or TLS failed.
    #[error("{}", unreachable(endpoint, error))]
    Unreachable {
        /// `host:port`.
        endpoint: String,
        /// The dialer's error.
        error: Arc<io::Error>,
    },
    /// The broker answered CONNECT with a refusal.
    #[error("connection refused by the broker at {endpoint}: {}", refusal(*code))]
    Refused {
        /// `host:port`.
        endpoint: String,
        /// The CONNACK return code.
        code: ConnectReturnCode,
    },
    /// The connection ended before the broker accepted it, without a refusal.
    #[error("connection to {endpoint} ended before the broker accepted it: {reason}")]
    NotAccepted {
        /// `host:port`.
        endpoint: String,
        /// How it ended.
        reason: Arc<DisconnectReason>,
    },
    /// The client stopped by itself.
    #[error("the client stopped unexpectedly")]
    Stopped,
    /// A published message did not complete.
    #[error("publishing failed: {0}")]
    Publish(#[from] PublishError),
    /// The broker refused every subscription asked for.
    #[error("the broker refused the subscription to {}", filters.join(", "))]
    SubscriptionRefused {
        /// The filters.
        filters: Vec<String>,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Standard input could not be read.
    #[error("cannot read standard input: {0}")]
    Stdin(io::Error),
    /// Standard output could not be written.
    #[error("cannot write to standard output: {0}")]
    Stdout(io::Error),
    /// The bench's store directory could not be prepared or cleaned.
    #[error("bench store {}: {source}", path.display())]
    BenchStore {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `haka bench` finished, but not every message made it.
    #[error("{failed} of {count} publishes failed")]
    BenchFailures {
        /// How many failed.
        failed: u64,
        /// How many were published.
        count: u64,
    },
    /// `haka sub -W` ran out of time.
    #[error("timed out after {seconds} s ({received} message(s) received)")]
    TimedOut {
        /// The timeout.
        seconds: u64,
        /// How many messages arrived before it.
        received: u64,
    },
}

impl CliError {
    /// The process's exit status for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::TimedOut { .. } => EXIT_TIMED_OUT,
            _ => 1,
        }
    }
}

/// Why `endpoint` could not be reached, in one line that names it once.
fn unreachable(endpoint: &str, error: &io::Error) -> String {
    let inner = error.get_ref();
    if let Some(tcp) = inner.and_then(|e| e.downcast_ref::<haka_tcp::ConnectError>()) {
        return match tcp {
            haka_tcp::ConnectError::AllFailed { attempts, .. } if attempts.len() == 1 => {
                format!(
                    "cannot connect to {endpoint}: {}",
                    os_error(&attempts[0].error)
                )
            }
            // These name the host and every address tried.
            other => other.to_string(),
        };
    }
    if let Some(tls) = inner.and_then(|e| e.downcast_ref::<haka_tls::TlsError>()) {
        return match tls {
            haka_tls::TlsError::Handshake { source, .. } => {
                format!("TLS handshake with {endpoint} failed: {}", os_error(source))
            }
            // These name the server.
            other => other.to_string(),
        };
    }
    format!("cannot connect to {endpoint}: {}", os_error(error))
}

/// An operating system's error as words: `connection refused`, without `(os error 111)`;
/// any other error as it reads.
fn os_error(error: &io::Error) -> String {
    let text = error.to_string();
    let (Some(_), Some(at)) = (error.raw_os_error(), text.rfind(" (os error ")) else {
        return text;
    };
    let mut chars = text[..at].chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// What a CONNACK return code means, in words.
fn refusal(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::UnacceptableProtocolVersion => {
            "unacceptable protocol version (the broker does not speak MQTT 3.1.1)"
        }
        ConnectReturnCode::IdentifierRejected => "client identifier rejected",
        ConnectReturnCode::ServerUnavailable => "server unavailable",
        ConnectReturnCode::BadUserNameOrPassword => "bad user name or password",
        ConnectReturnCode::NotAuthorized => "not authorized",
        _ => "unknown return code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_one_line() {
        let error = CliError::Refused {
            endpoint: "127.0.0.1:1883".to_owned(),
            code: ConnectReturnCode::BadUserNameOrPassword,
        };
        assert_eq!(
            error.to_string(),
            "connection refused by the broker at 127.0.0.1:1883: bad user name or password"
        );
        assert_eq!(error.exit_code(), 1);
    }

    #[test]
    fn os_errors_read_as_words() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(os_error(&refused), "connection refused");
        let error = CliError::Unreachable {
            endpoint: "127.0.0.1:1".to_owned(),
            error: Arc::new(io::Error::other("TLS handshake timed out")),
        };
        assert_eq!(
            error.to_string(),
            "cannot connect to 127.0.0.1:1: TLS handshake timed out"
        );
    }

    #[test]
    fn a_timeout_exits_with_27() {
        let error = CliError::TimedOut {
            seconds: 3,
            received: 0,
        };
        assert_eq!(error.exit_code(), 27);
    }
}
