//! Connecting: [`ClientOptions`] from the command line, and a first connection that either
//! succeeds or fails with one line.
//!
//! The client reconnects forever by design, so a broker that is unreachable or refuses the
//! connection would leave a command waiting. A command instead watches the client's events
//! until the first `Connected`: a failure before it ends the command. The dial is held back
//! until the events are watched (a gate in front of the transport), so that no event of the
//! first attempt can be missed. After the first connection the client reconnects as usual,
//! and each loss is reported on stderr.

use std::{io, path::PathBuf, time::Duration};

use haka::{
    BoxTransport, Client, ClientOptions, ConnectFuture, Connector, Event, Messages, Scheme,
    StoreOptions, TcpConnector, TlsOptions,
};
use haka_session::{DisconnectReason, Durability};
use tokio::sync::{broadcast::error::RecvError, watch};

use crate::{
    args::{BrokerArgs, SessionArgs},
    CliError,
};

/// How to reach the broker: everything every connection of a command shares.
pub(crate) struct Broker {
    url: String,
    credentials: Option<(String, String)>,
    keep_alive: Duration,
    connect_timeout: Duration,
    max_inflight: Option<std::num::NonZeroU16>,
    /// `-d`: progress on stderr.
    debug: bool,
    /// Built once: the files are read before any connection.
    tls: Option<haka_tls::TlsConnector>,
}

impl Broker {
    /// Checks the URL and reads the TLS files.
    pub(crate) fn new(args: &BrokerArgs) -> Result<Self, CliError> {
        // The URL is checked here, before anything else happens.
        let scheme = ClientOptions::new(&args.url, "haka")?.scheme();
        let tls_asked =
            args.cafile.is_some() || args.cert.is_some() || args.key.is_some() || args.insecure;
        let tls = match scheme {
            Scheme::Tls => {
                let mut tls = TlsOptions::new();
                if let Some(ca) = &args.cafile {
                    tls = tls.with_ca_file(ca);
                }
                if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
                    tls = tls.with_client_cert_files(cert, key);
                }
                if args.insecure {
                    eprintln!(
                        "haka: warning: --insecure: the broker's certificate is not verified"
                    );
                    tls = tls.dangerous_accept_any_server_certificate();
                }
                Some(tls.build().map_err(haka::ClientError::from)?)
            }
            _ if tls_asked => {
                return Err(CliError::Usage(format!(
                    "--cafile, --cert, --key and --insecure need an mqtts:// URL, not {}",
                    args.url
                )))
            }
            _ => None,
        };
        Ok(Self {
            url: args.url.clone(),
            credentials: args
                .username
                .clone()
                .map(|user| (user, args.password.clone().unwrap_or_default())),
            keep_alive: Duration::from_secs(args.keepalive.into()),
            connect_timeout: Duration::from_secs(args.connect_timeout),
            max_inflight: args.max_inflight,
            debug: args.debug,
            tls,
        })
    }

    /// Options for client `client_id` of this broker, with a memory store and a clean
    /// session.
    pub(crate) fn options(&self, client_id: &str) -> Result<ClientOptions, CliError> {
        let mut options = ClientOptions::new(&self.url, client_id)?
            .keep_alive(self.keep_alive)
            .connect_timeout(self.connect_timeout);
        if let Some((user, password)) = &self.credentials {
            // MQTT 3.1.1 has no password without a user name; a user name alone goes with
            // an empty password.
            options = options.credentials(user, password)?;
        }
        if let Some(window) = self.max_inflight {
            options = options.max_inflight(window);
        }
        Ok(options)
    }

    /// Starts a client with `options` and waits for its first connection: the broker's
    /// CONNACK, or the failure that came first.
    pub(crate) async fn connect(
        &self,
        options: ClientOptions,
    ) -> Result<(Client, Messages), CliError> {
        let endpoint = endpoint(options.host(), options.port());
        let client_id = options.session_config().client_id().to_string();
        let tcp = TcpConnector::new(options.host(), options.port(), self.connect_timeout);
        let dialer: Box<dyn Connector> = match (options.scheme(), &self.tls) {
            (Scheme::Tls, Some(tls)) => Box::new(haka::TlsConnector::new(tcp, tls.clone())),
            (Scheme::Tcp, _) => Box::new(tcp),
            _ => return Err(CliError::Usage(format!("unsupported URL {}", self.url))),
        };
        let (open, gate) = watch::channel(false);
        let (client, messages) = Client::start_with(options, Gated { dialer, gate }).await?;
        let mut events = client.events();
        // Nobody may be left to hear it if the client already stopped: the events say so.
        let _ = open.send(true);
        loop {
            match events.recv().await {
                Ok(Event::Connected { session_present }) => {
                    self.note(format_args!(
                        "{client_id} connected to {endpoint} (session present: {session_present})"
                    ));
                    break;
                }
                Ok(Event::ConnectFailed { error }) => {
                    return Err(CliError::Unreachable { endpoint, error })
                }
                Ok(Event::Disconnected { reason }) => {
                    return Err(match *reason {
                        DisconnectReason::Refused(code) => CliError::Refused { endpoint, code },
                        _ => CliError::NotAccepted { endpoint, reason },
                    })
                }
                Ok(Event::Stopped) | Err(RecvError::Closed) => return Err(CliError::Stopped),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
            }
        }
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Disconnected { reason }) => {
                        if !matches!(*reason, DisconnectReason::Requested) {
                            eprintln!(
                                "haka: connection to {endpoint} lost: {reason}; reconnecting"
                            );
                        }
                    }
                    Ok(Event::ConnectFailed { error }) => eprintln!("haka: {error}; retrying"),
                    Ok(Event::Connected { .. }) => eprintln!("haka: reconnected to {endpoint}"),
                    Ok(Event::Stopped) | Err(RecvError::Closed) => break,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                }
            }
        });
        Ok((client, messages))
    }
}

impl Broker {
    /// With `-d`, prints `what` on stderr.
    pub(crate) fn note(&self, what: std::fmt::Arguments<'_>) {
        if self.debug {
            eprintln!("haka: {what}");
        }
    }
}

/// A transport that dials only once its gate opened.
struct Gated {
    dialer: Box<dyn Connector>,
    gate: watch::Receiver<bool>,
}

impl Connector for Gated {
    fn connect(&self) -> ConnectFuture<'_> {
        Box::pin(async move {
            let mut gate = self.gate.clone();
            gate.wait_for(|open| *open)
                .await
                .map_err(|_| io::Error::other("the command ended before connecting"))?;
            let transport: BoxTransport = self.dialer.connect().await?;
            Ok(transport)
        })
    }
}

/// Applies the session options of `pub` and `sub`: clean session, will, store.
pub(crate) fn with_session(
    options: ClientOptions,
    args: &SessionArgs,
) -> Result<ClientOptions, CliError> {
    let mut options = options.clean_session(!args.no_clean_session);
    if let Some(topic) = &args.will_topic {
        let payload = args.will_payload.clone().unwrap_or_default();
        options = options.will(topic, payload, args.will_qos, args.will_retain)?;
    }
    if let Some(path) = &args.store {
        options = options.store(directory_store(path.clone(), args.fsync));
    }
    Ok(options)
}

/// A store in directory `path`.
pub(crate) fn directory_store(path: PathBuf, fsync: bool) -> StoreOptions {
    StoreOptions::Directory {
        path,
        durability: if fsync {
            Durability::Fsync
        } else {
            Durability::Flush
        },
    }
}

/// The client identifier: the one given, or `haka-<role>-<pid>`.
pub(crate) fn client_id(given: Option<&str>, role: &str) -> String {
    match given {
        Some(id) => id.to_owned(),
        None => format!("haka-{role}-{}", std::process::id()),
    }
}

/// `host:port`, with an IPv6 literal in brackets.
fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_bracket_ipv6() {
        assert_eq!(endpoint("127.0.0.1", 1883), "127.0.0.1:1883");
        assert_eq!(endpoint("::1", 8883), "[::1]:8883");
    }

    #[test]
    fn client_ids_default_to_role_and_pid() {
        assert_eq!(client_id(Some("me"), "pub"), "me");
        assert!(client_id(None, "sub").starts_with("haka-sub-"));
    }
}
