//! The codec against a real broker: a mosquitto started for this test on a free loopback port
//! with its own configuration carries a full exchange (CONNECT, SUBSCRIBE, PUBLISH at QoS 0, 1
//! and 2 in both directions with all their acknowledgements, PINGREQ, UNSUBSCRIBE,
//! DISCONNECT) encoded and decoded by `haka-codec` alone.
//!
//! Without mosquitto the test fails and names the command that installs it.

#[path = "../examples/broker_exchange/exchange.rs"]
mod exchange;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// A mosquitto process owned by one test, killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mosquitto_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("mosquitto"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "mosquitto is not installed; install it with \
                 `sudo apt-get install -y mosquitto` (or run scripts/test, which does)"
            )
        })
}

impl Mosquitto {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("haka-mosquitto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let dir = TempDir(dir);
        let config = dir.0.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest stderr\nlog_type all\n"
            ),
        )
        .expect("the broker's configuration");
        let mut child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto starts");
        // Wait for the broker to say it is running, with a bound, instead of sleeping.
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" running") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = child.kill();
            panic!("mosquitto did not report running within 10 s");
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn full_exchange_with_mosquitto() {
    let broker = Mosquitto::start();
    let mut trace = Vec::new();
    let summary = exchange::run(&format!("127.0.0.1:{}", broker.port), &mut trace)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&trace)));
    assert_eq!(
        summary.delivered,
        [1, 1, 1],
        "{}",
        String::from_utf8_lossy(&trace)
    );
    assert_eq!(summary.completed[1..], [1, 1]);
}
