//! [`TestkitError`]: what can go wrong while setting up a real broker, a PKI or a proxy.

use std::{io, process::ExitStatus, time::Duration};

/// The command that installs every program the testkit runs.
pub const INSTALL_COMMAND: &str = "apt-get install -y mosquitto mosquitto-clients";

/// Why a broker, a certificate set or a proxy could not be set up or controlled.
///
/// Every variant that concerns a broker carries the broker's log, so that a failing test
/// prints what mosquitto said.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A program the testkit runs is not installed.
    #[error("{program} is not installed; install it with `{INSTALL_COMMAND}` (Debian packages)")]
    NotInstalled {
        /// The program looked for, such as `mosquitto` or `mosquitto_passwd`.
        program: &'static str,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error the system returned.
        #[source]
        source: io::Error,
    },
    /// A helper program (such as `mosquitto_passwd`) failed.
    #[error("{program} failed ({status}): {output}")]
    Tool {
        /// The program.
        program: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stdout and stderr.
        output: String,
    },
    /// The broker exited before it said it was running.
    #[error("mosquitto exited during startup ({status}); its log:\n{log}")]
    BrokerExited {
        /// How it exited.
        status: ExitStatus,
        /// Everything it wrote on stderr.
        log: String,
    },
    /// The broker could not listen: another socket holds one of its ports.
    #[error("mosquitto could not listen on port {port}: address in use; its log:\n{log}")]
    AddressInUse {
        /// The plain listener's port.
        port: u16,
        /// Everything it wrote on stderr.
        log: String,
    },
    /// Something the testkit waits for did not happen within its bound.
    #[error("{what} did not happen within {timeout:?}; broker log:\n{log}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        timeout: Duration,
        /// The broker's log so far (empty when no broker is involved).
        log: String,
    },
    /// [`Mosquitto::start_again`](crate::Mosquitto::start_again) on a broker that runs.
    #[error("mosquitto is already running")]
    AlreadyRunning,
    /// The test PKI could not be generated.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
}

impl TestkitError {
    /// An [`TestkitError::Io`] for `source` while doing `context`.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_installed_names_the_install_command() {
        let message = TestkitError::NotInstalled {
            program: "mosquitto",
        }
        .to_string();
        assert!(message.contains("apt-get install -y mosquitto mosquitto-clients"));
        assert!(message.starts_with("mosquitto is not installed"));
    }
}
