//! [`Mosquitto`]: a real broker, started for one test and stopped when the test ends.
//!
//! Each broker is Debian's `/usr/sbin/mosquitto` with a configuration written for it alone
//! into a temporary directory it owns (password file, ACL file, persistence database), a
//! plain listener on a free `127.0.0.1` port and, when asked, a TLS listener on a second
//! one. It never touches a system broker that may listen on 1883.
//!
//! The broker logs to its stderr, which a thread reads line by line; readiness is the
//! broker's own "running" line (then one TCP connect confirms the port), and every wait is
//! bounded, so a broker that does not come up fails the test with its log instead of
//! hanging it.

use std::{
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::TestkitError;

/// How long a broker may take to say it is running, and to exit after SIGTERM.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a start is tried when a port turns out to be taken (see
/// [`MosquittoBuilder::start`]).
const START_ATTEMPTS: u32 = 5;

/// The files of a TLS listener, in PEM.
///
/// [`TlsPaths::server`](crate::TlsPaths::server) gives them for a generated
/// [`TestPki`](crate::TestPki).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate that client certificates must chain to (mosquitto's `cafile`).
    pub ca: PathBuf,
    /// The server's certificate (`certfile`).
    pub cert: PathBuf,
    /// The server's private key (`keyfile`).
    pub key: PathBuf,
}

/// How a [`Mosquitto`] is configured; made by [`Mosquitto::builder`], consumed by
/// [`MosquittoBuilder::start`].
///
/// The defaults: anonymous clients allowed, no password file, no ACL, no persistence, no
/// TLS listener, mosquitto's default in-flight window.
#[derive(Debug, Clone)]
pub struct MosquittoBuilder {
    allow_anonymous: bool,
    passwords: Vec<(String, String)>,
    acl: Option<String>,
    persistence: bool,
    tls: Option<(TlsFiles, bool)>,
    identity_as_username: bool,
    max_inflight: Option<u16>,
    extra: Vec<String>,
}

impl Default for MosquittoBuilder {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            passwords: Vec::new(),
            acl: None,
            persistence: false,
            tls: None,
            identity_as_username: false,
            max_inflight: None,
            extra: Vec::new(),
        }
    }
}

impl MosquittoBuilder {
    /// Whether clients without a user name may connect (default `true`). With `false` and
    /// no [`password`](Self::password), nobody can connect.
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// Adds a user to the broker's password file, written with `mosquitto_passwd -b`.
    /// Call it once per user.
    pub fn password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.passwords.push((user.into(), password.into()));
        self
    }

    /// The broker's ACL file, verbatim (mosquitto.conf(5), `acl_file`). Without one, every
    /// client may publish and subscribe anywhere.
    pub fn acl(mut self, text: impl Into<String>) -> Self {
        self.acl = Some(text.into());
        self
    }

    /// Keeps sessions (subscriptions, queued and in-flight QoS 1 and 2 messages) and
    /// retained messages in a database in the broker's directory, so that they survive
    /// [`Mosquitto::restart`].
    ///
    /// The database is written on SIGTERM, which [`Mosquitto::stop`] and
    /// [`Mosquitto::restart`] send and wait out, so a clean restart keeps everything. It is
    /// also written after every change (`autosave_on_changes true`, `autosave_interval 1`),
    /// but after [`Mosquitto::kill`] the broker comes back with its last completed save,
    /// which may miss the latest changes (or, killed during a save, all of them): a crash.
    pub fn persistence(mut self, enabled: bool) -> Self {
        self.persistence = enabled;
        self
    }

    /// Adds a TLS listener on a second free port, presenting `files.cert`; with
    /// `require_client_cert`, clients must present a certificate signed by `files.ca`.
    pub fn tls(mut self, files: TlsFiles, require_client_cert: bool) -> Self {
        self.tls = Some((files, require_client_cert));
        self
    }

    /// On the TLS listener, takes the client certificate's common name as the user name
    /// (`use_identity_as_username`), for password-less ACLs. Ignored without
    /// [`tls`](Self::tls).
    pub fn use_identity_as_username(mut self, enabled: bool) -> Self {
        self.identity_as_username = enabled;
        self
    }

    /// The most QoS 1 and 2 messages in flight to each client (`max_inflight_messages`).
    pub fn max_inflight(mut self, messages: u16) -> Self {
        self.max_inflight = Some(messages);
        self
    }

    /// Any other configuration line. Extra lines are written after the plain listener and
    /// before the TLS listener, so a listener option given here applies to the plain one.
    pub fn extra(mut self, line: impl Into<String>) -> Self {
        self.extra.push(line.into());
        self
    }

    /// Writes the configuration and starts the broker; returns once it listens.
    ///
    /// The ports are found by binding `127.0.0.1:0` and closing the socket again, so
    /// another process may take one before mosquitto binds it: then mosquitto exits with
    /// "Address already in use" and the start is tried again on new ports, up to 5 times.
    ///
    /// Fails with [`TestkitError::NotInstalled`] (which names the install command) when
    /// mosquitto or, with passwords, `mosquitto_passwd` is missing.
    pub fn start(self) -> Result<Mosquitto, TestkitError> {
        let binary = find_program("mosquitto")?;
        let dir = tempfile::Builder::new()
            .prefix("haka-mosquitto-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating the broker's directory", e))?;
        if !self.passwords.is_empty() {
            write_password_file(&dir.path().join(PASSWORD_FILE), &self.passwords)?;
        }
        if let Some(acl) = &self.acl {
            write_file(&dir.path().join(ACL_FILE), acl)?;
        }
        let config = dir.path().join("mosquitto.conf");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(if self.tls.is_some() { 2 } else { 1 })?;
            let (port, tls_port) = (ports[0], ports.get(1).copied());
            write_file(&config, &self.config(dir.path(), port, tls_port))?;
            match Process::start(&binary, &config, port) {
                Ok(process) => {
                    return Ok(Mosquitto {
                        binary,
                        config,
                        port,
                        tls_port,
                        process: Some(process),
                        earlier_log: Vec::new(),
                        dir,
                    })
                }
                Err(TestkitError::AddressInUse { .. }) if attempt < START_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The configuration file's text for a broker in `dir` on these ports.
    fn config(&self, dir: &Path, port: u16, tls_port: Option<u16>) -> String {
        let mut lines = vec![
            "# Written by haka-testkit for one test.".to_owned(),
            // Started by root, mosquitto would switch to the `mosquitto` user, which cannot
            // read this private directory; for any other user this line has no effect.
            "user root".to_owned(),
            "log_dest stderr".to_owned(),
            "log_type all".to_owned(),
            "log_timestamp true".to_owned(),
            "connection_messages true".to_owned(),
            format!("allow_anonymous {}", self.allow_anonymous),
        ];
        if !self.passwords.is_empty() {
            lines.push(format!(
                "password_file {}",
                dir.join(PASSWORD_FILE).display()
            ));
        }
        if self.acl.is_some() {
            lines.push(format!("acl_file {}", dir.join(ACL_FILE).display()));
        }
        if self.persistence {
            lines.push("persistence true".to_owned());
            // The location is a directory and must end with a slash.
            lines.push(format!("persistence_location {}/", dir.display()));
            lines.push("autosave_on_changes true".to_owned());
            lines.push("autosave_interval 1".to_owned());
        } else {
            lines.push("persistence false".to_owned());
        }
        if let Some(n) = self.max_inflight {
            lines.push(format!("max_inflight_messages {n}"));
        }
        lines.push(format!("listener {port} 127.0.0.1"));
        lines.extend(self.extra.iter().cloned());
        if let (Some((files, require_client_cert)), Some(tls_port)) = (&self.tls, tls_port) {
            lines.push(format!("listener {tls_port} 127.0.0.1"));
            lines.push(format!("cafile {}", files.ca.display()));
            lines.push(format!("certfile {}", files.cert.display()));
            lines.push(format!("keyfile {}", files.key.display()));
            lines.push(format!("require_certificate {require_client_cert}"));
            if self.identity_as_username {
                lines.push("use_identity_as_username true".to_owned());
            }
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

const PASSWORD_FILE: &str = "passwords";
const ACL_FILE: &str = "acl";

/// A mosquitto started for one test; killed and reaped when dropped.
///
/// ```
/// use std::net::TcpStream;
///
/// let broker = haka_testkit::Mosquitto::builder().start()?;
/// assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
/// let _client = TcpStream::connect(broker.addr())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`stop`](Self::stop), [`kill`](Self::kill), [`start_again`](Self::start_again) and
/// [`restart`](Self::restart) control the process for broker-restart tests; the ports,
/// the configuration and the persistence database stay the same across them.
#[derive(Debug)]
pub struct Mosquitto {
    binary: PathBuf,
    config: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    /// `None` while stopped.
    process: Option<Process>,
    /// The log lines of earlier runs.
    earlier_log: Vec<String>,
    /// Holds the configuration and the database; removed on drop, after the process ends.
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// A builder with the defaults (see [`MosquittoBuilder`]).
    pub fn builder() -> MosquittoBuilder {
        MosquittoBuilder::default()
    }

    /// The plain listener's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS listener's port on `127.0.0.1`, if there is one.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The plain listener's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The TLS listener's address, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port
            .map(|port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// `mqtts://127.0.0.1:PORT` for the TLS listener, if there is one. The generated
    /// server certificate names `127.0.0.1` as well as `localhost`.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("mqtts://127.0.0.1:{port}"))
    }

    /// The broker's private directory: its configuration, password and ACL files and its
    /// persistence database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process runs (it was not stopped or killed, and has not exited).
    pub fn is_running(&self) -> bool {
        self.process.as_ref().is_some_and(|p| !p.log.lock().closed)
    }

    /// Everything the broker wrote on stderr, across restarts, one line per line.
    pub fn log(&self) -> String {
        let mut lines = self.earlier_log.clone();
        if let Some(process) = &self.process {
            lines.extend(process.log.lock().lines.iter().cloned());
        }
        lines.join("\n")
    }

    /// Waits until a line of the current run's log contains `needle`, at most `timeout`.
    /// Lines are seen as soon as the broker writes them, so this waits on the event (a
    /// client connected, a socket error, a save) rather than for a fixed time. Fails at
    /// once when the broker is stopped or has exited without writing such a line.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<(), TestkitError> {
        let found = self.process.as_ref().is_some_and(|process| {
            process.log.wait_until(timeout, |state| {
                state.closed || state.lines.iter().any(|line| line.contains(needle))
            }) && process.log.lock().lines.iter().any(|l| l.contains(needle))
        });
        if found {
            Ok(())
        } else {
            Err(TestkitError::Timeout {
                what: format!("a broker log line containing {needle:?}"),
                timeout,
                log: self.log(),
            })
        }
    }

    /// Stops the broker with SIGTERM and waits (at most [`BROKER_TIMEOUT`]) for it to exit,
    /// so that it saves its persistence database and closes every connection. Does nothing
    /// when it is stopped already. Past the bound it is killed and the error says so.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(process) = self.process.take() else {
            return Ok(());
        };
        let (lines, result) = process.terminate();
        self.earlier_log.extend(lines);
        self.earlier_log
            .push("[haka-testkit] broker stopped with SIGTERM".to_owned());
        result.map_err(|what| TestkitError::Timeout {
            what,
            timeout: BROKER_TIMEOUT,
            log: self.log(),
        })
    }

    /// Kills the broker with SIGKILL (a crash: nothing is saved, connections are reset) and
    /// reaps it. Does nothing when it is stopped already.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            self.earlier_log.extend(process.kill());
            self.earlier_log
                .push("[haka-testkit] broker killed with SIGKILL".to_owned());
        }
    }

    /// Starts the stopped or killed broker again, on the same ports with the same
    /// configuration and database; returns once it listens.
    ///
    /// If a port was taken meanwhile (a connection's local port, say), the start is
    /// retried up to 5 times, 100 ms more apart each time, since no event says when the
    /// port is freed; then [`TestkitError::AddressInUse`] is returned.
    pub fn start_again(&mut self) -> Result<(), TestkitError> {
        if self.process.is_some() {
            return Err(TestkitError::AlreadyRunning);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Process::start(&self.binary, &self.config, self.port) {
                Ok(process) => {
                    self.process = Some(process);
                    return Ok(());
                }
                Err(TestkitError::AddressInUse { .. }) if attempt < START_ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(100) * attempt);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`stop`](Self::stop) then [`start_again`](Self::start_again): a clean broker restart
    /// on the same ports, keeping persisted sessions and retained messages.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.start_again()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }
}

/// One run of the broker process and the thread reading its stderr.
#[derive(Debug)]
struct Process {
    child: Child,
    log: Arc<Log>,
    reader: JoinHandle<()>,
}

impl Process {
    /// Starts mosquitto on `config` and waits until it runs, `port` accepts a connection and
    /// its main loop has taken that connection.
    fn start(binary: &Path, config: &Path, port: u16) -> Result<Self, TestkitError> {
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TestkitError::io(format!("starting {}", binary.display()), e))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Log::default());
        let reader = std::thread::Builder::new()
            .name(format!("mosquitto-{port}-log"))
            .spawn({
                let log = Arc::clone(&log);
                move || log.read_from(BufReader::new(stderr))
            });
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::io("starting the broker's log reader", e));
            }
        };
        let process = Self { child, log, reader };
        process.ready(port)
    }

    fn ready(mut self, port: u16) -> Result<Self, TestkitError> {
        let is_running_line =
            |line: &String| line.contains("mosquitto version") && line.ends_with(" running");
        self.log.wait_until(BROKER_TIMEOUT, |state| {
            state.closed || state.lines.iter().any(is_running_line)
        });
        let (running, closed) = {
            let state = self.log.lock();
            (state.lines.iter().any(is_running_line), state.closed)
        };
        if running {
            let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
            let probe = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .and_then(|probe| probe.local_addr());
            let from = match probe {
                Ok(from) => from,
                Err(e) => {
                    let log = self.kill().join("\n");
                    return Err(TestkitError::io(
                        format!("mosquitto said it runs, but {addr} refused; its log:\n{log}"),
                        e,
                    ));
                }
            };
            // The "running" line comes just before mosquitto sets the flag that its SIGTERM
            // handler clears (`run = 1` in its `main`): a SIGTERM sent in between is lost and
            // the broker runs on. The kernel completes our connection before mosquitto looks
            // at it; mosquitto logs it from its main loop, so once the line is there the flag
            // is set and a stop will be heard.
            let accepted = format!("New connection from {from} on port {port}");
            if self.log.wait_until(BROKER_TIMEOUT, |state| {
                state.closed || state.lines.iter().any(|line| line.contains(&accepted))
            }) && !self.log.lock().closed
            {
                return Ok(self);
            }
            let log = self.kill().join("\n");
            return Err(TestkitError::Timeout {
                what: format!("mosquitto's main loop to accept {from}"),
                timeout: BROKER_TIMEOUT,
                log,
            });
        }
        if closed {
            let status = self
                .child
                .wait()
                .map_err(|e| TestkitError::io("reaping mosquitto", e))?;
            let log = self.finish().join("\n");
            if log.contains("Address already in use") {
                return Err(TestkitError::AddressInUse { port, log });
            }
            return Err(TestkitError::BrokerExited { status, log });
        }
        let log = self.kill().join("\n");
        Err(TestkitError::Timeout {
            what: "mosquitto's \"running\" log line".to_owned(),
            timeout: BROKER_TIMEOUT,
            log,
        })
    }

    /// SIGTERM, then waits for the exit (seen as the end of stderr) within the bound, or
    /// kills. Returns the log and, on a timeout, what did not happen.
    fn terminate(mut self) -> (Vec<String>, Result<(), String>) {
        let pid = rustix::process::Pid::from_child(&self.child);
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
            // It has exited already: reaping it below is all there is to do.
        }
        let exited = self.log.wait_until(BROKER_TIMEOUT, |state| state.closed);
        if exited {
            let _ = self.child.wait();
            (self.finish(), Ok(()))
        } else {
            (
                self.kill(),
                Err("mosquitto's exit after SIGTERM".to_owned()),
            )
        }
    }

    /// SIGKILL and reap; returns the log.
    fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish()
    }

    /// For a reaped process: joins the log reader (its pipe is closed) and returns the log.
    fn finish(self) -> Vec<String> {
        let _ = self.reader.join();
        std::mem::take(&mut self.log.lock().lines)
    }
}

/// A broker's stderr, line by line, with a condition variable to wait on.
#[derive(Debug, Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LogState {
    lines: Vec<String>,
    /// stderr reached its end: the process exited.
    closed: bool,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A reader that panicked left whole lines behind: the state is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `stderr` to its end. Lines that are not UTF-8 are kept, lossily: the pipe is
    /// always drained, so the broker never blocks on a full pipe.
    fn read_from(&self, mut stderr: impl BufRead) {
        let mut line = Vec::new();
        loop {
            line.clear();
            match stderr.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    self.lock().lines.push(text.trim_end().to_owned());
                    self.changed.notify_all();
                }
            }
        }
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Waits until `done` holds, at most `timeout`; returns whether it holds.
    fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&LogState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// `name` from `PATH`, or from the directories Debian installs it in.
pub(crate) fn find_program(name: &'static str) -> Result<PathBuf, TestkitError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(TestkitError::NotInstalled { program: name })
}

/// `count` distinct free ports on 127.0.0.1: all are bound at once, then released.
fn free_ports(count: usize) -> Result<Vec<u16>, TestkitError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TestkitError::io("binding 127.0.0.1:0 for a free port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| TestkitError::io("reading a free port", e))
}

fn write_file(path: &Path, contents: &str) -> Result<(), TestkitError> {
    std::fs::write(path, contents)
        .map_err(|e| TestkitError::io(format!("writing {}", path.display()), e))
}

fn write_password_file(path: &Path, users: &[(String, String)]) -> Result<(), TestkitError> {
    let tool = find_program("mosquitto_passwd")?;
    write_file(path, "")?;
    for (user, password) in users {
        let output = Command::new(&tool)
            .arg("-b")
            .arg(path)
            .arg(user)
            .arg(password)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::io("running mosquitto_passwd", e))?;
        if !output.status.success() {
            return Err(TestkitError::Tool {
                program: "mosquitto_passwd",
                status: output.status,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use haka_codec::{
        ConnectReturnCode, Delivery, Packet, PacketId, Publish, QoS, Subscribe, Subscription,
        TopicFilter, TopicName,
    };

    use super::*;
    use crate::{
        probe::{run_tool, Probe},
        TestPki,
    };

    #[test]
    fn starts_on_its_own_port_and_answers_connect() {
        let broker = Mosquitto::builder().start().expect("mosquitto starts");
        assert_ne!(broker.port(), 1883, "never the system broker's port");
        assert_eq!(broker.tls_port(), None);
        assert_eq!(broker.tls_url(), None);
        assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
        assert!(broker.is_running());
        let mut probe = Probe::connect(broker.addr());
        let ack = probe.mqtt_connect("haka-testkit-start", None);
        assert_eq!(ack.code(), ConnectReturnCode::Accepted);
        assert!(!ack.session_present());
        broker
            .wait_for_log("haka-testkit-start", BROKER_TIMEOUT)
            .expect("the broker logs the client");
    }

    #[test]
    fn two_brokers_run_side_by_side() {
        let a = Mosquitto::builder().start().expect("mosquitto starts");
        let b = Mosquitto::builder().start().expect("mosquitto starts");
        assert_ne!(a.port(), b.port());
        assert_ne!(a.dir(), b.dir());
    }

    #[test]
    fn passwords_are_checked() {
        let broker = Mosquitto::builder()
            .allow_anonymous(false)
            .password("alice", "secret")
            .password("bob", "hunter2")
            .start()
            .expect("mosquitto starts");
        let code = |client: &str, login: Option<(&str, &str)>| {
            Probe::connect(broker.addr())
                .mqtt_connect(client, login)
                .code()
        };
        assert_eq!(
            code("a", Some(("alice", "secret"))),
            ConnectReturnCode::Accepted
        );
        assert_eq!(
            code("b", Some(("bob", "hunter2"))),
            ConnectReturnCode::Accepted
        );
        let refused = [
            ConnectReturnCode::BadUserNameOrPassword,
            ConnectReturnCode::NotAuthorized,
        ];
        assert!(refused.contains(&code("c", Some(("alice", "wrong")))));
        assert!(refused.contains(&code("d", Some(("mallory", "secret")))));
        assert!(refused.contains(&code("e", None)));
    }

    #[test]
    fn acl_restricts_what_a_user_reads() {
        let broker = Mosquitto::builder()
            .allow_anonymous(false)
            .password("alice", "secret")
            .password("bob", "hunter2")
            .acl("user alice\ntopic read public/#\n\nuser bob\ntopic write #\n")
            .start()
            .expect("mosquitto starts");
        let mut alice = Probe::connect(broker.addr());
        let ack = alice.mqtt_connect("alice", Some(("alice", "secret")));
        assert_eq!(ack.code(), ConnectReturnCode::Accepted);
        let filters = ["public/#", "secret/#"].map(|f| {
            Subscription::new(
                TopicFilter::new(f).expect("a valid filter"),
                QoS::AtMostOnce,
            )
        });
        let id = PacketId::new(1).expect("non-zero");
        alice.send(
            Subscribe::new(id, filters.to_vec())
                .expect("not empty")
                .into(),
        );
        assert!(matches!(alice.receive(), Packet::SubAck(_)));

        let mut bob = Probe::connect(broker.addr());
        let ack = bob.mqtt_connect("bob", Some(("bob", "hunter2")));
        assert_eq!(ack.code(), ConnectReturnCode::Accepted);
        // In this order: one publisher's messages reach a subscriber in order, so if the
        // first to arrive is the public one, the secret one was withheld.
        for topic in ["secret/plans", "public/news"] {
            let topic = TopicName::new(topic).expect("a valid topic");
            bob.send(Publish::new(topic, Delivery::AtMostOnce, "x").into());
        }
        match alice.receive() {
            Packet::Publish(publish) => assert_eq!(publish.topic, "public/news"),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    #[test]
    fn restart_keeps_the_port_and_persisted_messages() {
        let mut broker = Mosquitto::builder()
            .persistence(true)
            .start()
            .expect("mosquitto starts");
        let port = broker.port();
        // A connected client when the broker stops leaves the port in TIME_WAIT: the
        // restart must still bind it.
        let mut probe = Probe::connect(broker.addr());
        probe.mqtt_connect("connected-across-restart", None);
        let host = ["-h", "127.0.0.1", "-p", &port.to_string()].map(String::from);
        let publish = run_tool(
            "mosquitto_pub",
            host.iter().map(String::as_str).chain([
                "-t",
                "haka/retained",
                "-m",
                "kept",
                "-r",
                "-q",
                "1",
            ]),
        );
        assert!(publish.status.success(), "{publish:?}");

        broker.restart().expect("the broker restarts");
        assert_eq!(broker.port(), port);
        assert!(probe.is_closed(), "the stop closed the client's connection");
        assert!(broker.log().contains("Saving in-memory database"));
        let read = run_tool(
            "mosquitto_sub",
            host.iter()
                .map(String::as_str)
                .chain(["-t", "haka/retained", "-C", "1", "-W", "5"]),
        );
        assert!(read.status.success(), "{read:?}\n{}", broker.log());
        assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "kept");
    }

    #[test]
    fn kill_then_start_again() {
        let mut broker = Mosquitto::builder().start().expect("mosquitto starts");
        let mut probe = Probe::connect(broker.addr());
        probe.mqtt_connect("crash", None);
        broker.kill();
        assert!(!broker.is_running());
        assert!(probe.is_closed());
        assert!(
            TcpStream::connect(broker.addr()).is_err(),
            "nothing listens"
        );
        broker.kill(); // A second kill does nothing.
        broker
            .stop()
            .expect("stopping a stopped broker does nothing");

        broker.start_again().expect("the broker starts again");
        assert!(matches!(
            broker.start_again(),
            Err(TestkitError::AlreadyRunning)
        ));
        let ack = Probe::connect(broker.addr()).mqtt_connect("after-crash", None);
        assert_eq!(ack.code(), ConnectReturnCode::Accepted);
        assert!(broker.log().contains("killed with SIGKILL"));
    }

    #[test]
    fn start_again_reports_a_port_taken_meanwhile() {
        let mut broker = Mosquitto::builder().start().expect("mosquitto starts");
        broker.stop().expect("the broker stops");
        let _squatter = TcpListener::bind(broker.addr()).expect("the port is free again");
        match broker.start_again() {
            Err(TestkitError::AddressInUse { port, log }) => {
                assert_eq!(port, broker.port());
                assert!(log.contains("Address already in use"), "{log}");
            }
            other => panic!("expected AddressInUse, got {other:?}"),
        }
        assert!(!broker.is_running());
    }

    #[test]
    fn tls_listener_with_the_generated_pki() {
        let pki = TestPki::generate().expect("the PKI generates");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths = pki.write_to(dir.path()).expect("the PKI is written");
        let broker = Mosquitto::builder()
            .tls(paths.server(), true)
            .start()
            .expect("mosquitto starts");
        let tls_port = broker.tls_port().expect("a TLS listener").to_string();
        assert_ne!(tls_port, broker.port().to_string());
        assert_eq!(
            broker.tls_url(),
            Some(format!("mqtts://127.0.0.1:{tls_port}"))
        );
        let path = |p: &PathBuf| p.display().to_string();
        let publish = |host: &str, ca: &PathBuf, client: Option<(&PathBuf, &PathBuf)>| {
            let mut args: Vec<String> = ["-h", host, "-p", &tls_port, "-t", "t", "-m", "m"]
                .map(String::from)
                .to_vec();
            args.extend(["--cafile".to_owned(), path(ca)]);
            if let Some((cert, key)) = client {
                args.extend([
                    "--cert".to_owned(),
                    path(cert),
                    "--key".to_owned(),
                    path(key),
                ]);
            }
            run_tool("mosquitto_pub", args.iter().map(String::as_str))
                .status
                .success()
        };
        let client = Some((&paths.client_cert, &paths.client_key));
        assert!(publish("localhost", &paths.ca, client), "{}", broker.log());
        assert!(publish("127.0.0.1", &paths.ca, client), "{}", broker.log());
        // The client does not trust the server's CA.
        assert!(!publish("localhost", &paths.other_ca, client));
        // The broker requires a client certificate, from its own CA.
        assert!(!publish("localhost", &paths.ca, None));
        let other = Some((&paths.other_client_cert, &paths.other_client_key));
        assert!(!publish("localhost", &paths.ca, other));
    }

    #[test]
    fn tls_with_the_wrong_server_name_is_rejected_by_the_client() {
        let pki = TestPki::generate().expect("the PKI generates");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths = pki.write_to(dir.path()).expect("the PKI is written");
        let broker = Mosquitto::builder()
            .tls(paths.wrong_name_server(), false)
            .use_identity_as_username(false)
            .start()
            .expect("mosquitto starts");
        let port = broker.tls_port().expect("a TLS listener").to_string();
        let ca = paths.ca.display().to_string();
        let publish = |extra: &[&str]| {
            let args = [
                "-h",
                "localhost",
                "-p",
                &port,
                "-t",
                "t",
                "-m",
                "m",
                "--cafile",
                &ca,
            ];
            run_tool("mosquitto_pub", args.iter().chain(extra).copied())
                .status
                .success()
        };
        assert!(!publish(&[]), "the name does not match");
        assert!(publish(&["--insecure"]), "{}", broker.log());
    }

    #[test]
    fn config_lists_every_option() {
        let files = TlsFiles {
            ca: "/pki/ca.pem".into(),
            cert: "/pki/server.pem".into(),
            key: "/pki/server.key".into(),
        };
        let config = Mosquitto::builder()
            .allow_anonymous(false)
            .password("u", "p")
            .acl("topic read #")
            .persistence(true)
            .tls(files, true)
            .use_identity_as_username(true)
            .max_inflight(3)
            .extra("max_keepalive 30")
            .config(Path::new("/broker"), 1000, Some(1001));
        let expected = [
            "allow_anonymous false",
            "password_file /broker/passwords",
            "acl_file /broker/acl",
            "persistence true",
            "persistence_location /broker/",
            "autosave_on_changes true",
            "max_inflight_messages 3",
            "listener 1000 127.0.0.1",
            "max_keepalive 30",
            "listener 1001 127.0.0.1",
            "cafile /pki/ca.pem",
            "certfile /pki/server.pem",
            "keyfile /pki/server.key",
            "require_certificate true",
            "use_identity_as_username true",
        ];
        let lines: Vec<&str> = config.lines().collect();
        let mut at = 0;
        for line in expected {
            let found = lines[at..]
                .iter()
                .position(|l| *l == line)
                .unwrap_or_else(|| panic!("{line:?} missing or out of order in\n{config}"));
            at += found + 1;
        }
        let plain = Mosquitto::builder().config(Path::new("/b"), 7, None);
        assert!(plain.contains("allow_anonymous true\n"));
        assert!(plain.contains("persistence false\n"));
        assert!(!plain.contains("password_file") && !plain.contains("cafile"));
    }

    #[test]
    fn a_missing_program_names_the_install_command() {
        let error = find_program("haka-no-such-program").expect_err("not installed");
        assert!(error
            .to_string()
            .contains("apt-get install -y mosquitto mosquitto-clients"));
    }

    #[test]
    fn a_bad_option_fails_the_start_with_the_log() {
        let error = Mosquitto::builder()
            .extra("no_such_option 1")
            .start()
            .expect_err("mosquitto rejects the option");
        match error {
            TestkitError::BrokerExited { log, .. } => {
                assert!(log.contains("no_such_option"), "{log}");
            }
            other => panic!("expected BrokerExited, got {other}"),
        }
    }
}
