//! Real processes for fault-injection tests: `outbox-relay` binaries to kill, and
//! brokers to stop, freeze and start late (through `scripts/broker.sh`, so nothing
//! broker-specific lives here).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `outbox-relay` binary built beside this test binary (`scripts/test.sh` builds
/// it with `cargo build --workspace --bins` before testing).
pub fn relay_binary() -> PathBuf {
    workspace_binary("outbox-relay")
}

/// A binary of the workspace, built beside this test binary (`scripts/test.sh` builds
/// them all with `cargo build --workspace --bins` before testing).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: build it first (scripts/test.sh runs cargo build --workspace --bins first)",
        binary.display()
    );
    binary
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

/// A running `outbox-relay` process. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct RelayProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of its admin endpoints.
    pub admin: String,
    /// Its log file.
    pub log: PathBuf,
}

impl RelayProcess {
    /// Starts a relay on `database_url`, publishing to `topic` on `brokers`, with
    /// short time-outs suited to tests, then `extra_env` (which wins).
    pub fn spawn(
        database_url: &str,
        brokers: &str,
        topic: &str,
        extra_env: &[(&str, &str)],
    ) -> RelayProcess {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "outbox-relay-{}.log",
            uuid::Uuid::now_v7().simple()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(relay_binary());
        command
            .env("DATABASE_URL", database_url)
            .env("KAFKA_BROKERS", brokers)
            .env("ORDERS_TOPIC", topic)
            .env("RELAY_ADMIN_ADDR", format!("127.0.0.1:{port}"))
            .env("RELAY_POLL_INTERVAL_MS", "100")
            .env("RELAY_MESSAGE_TIMEOUT_MS", "2000")
            .env("RELAY_MAX_BACKOFF_MS", "1000")
            .env("RELAY_MEMBER_TTL_MS", "1500")
            .env("RUST_LOG", "info,relay=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start outbox-relay");
        RelayProcess {
            child,
            admin: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for it to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "relay never logged {needle:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The status code of `GET /readyz` (0 when it does not answer).
    pub async fn readyz(&self) -> u16 {
        match reqwest::get(format!("{}/readyz", self.admin)).await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The sum of the samples of a metric whose line starts with `prefix` (e.g.
    /// `relay_failures_total{kind="delivery"}`).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let Ok(response) = reqwest::get(format!("{}/metrics", self.admin)).await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an `outbox-relay` operator subcommand and returns its output.
pub fn relay_cli(database_url: &str, args: &[&str]) -> Output {
    let output = Command::new(relay_binary())
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run outbox-relay");
    assert!(
        output.status.success(),
        "outbox-relay {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A broker of this test's own, on a free port. Killed when dropped.
#[derive(Debug)]
pub struct Broker {
    pid: u32,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Broker {
    /// Starts a fresh in-memory broker on `port` and waits until it serves.
    pub fn start(port: u16) -> Broker {
        let output = Command::new("bash")
            .arg(repo_root().join("scripts/broker.sh"))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/broker.sh");
        assert!(output.status.success(), "scripts/broker.sh {port} failed");
        let pid = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("broker pid");
        Broker {
            pid,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// SIGSTOP: the broker keeps its connections but answers nothing.
    pub fn freeze(&self) {
        signal(self.pid, "-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        signal(self.pid, "-CONT");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        signal(self.pid, "-CONT");
        signal(self.pid, "-KILL");
    }
}
