//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A setting the test harness exports; fails the test (never skips) when it
/// is missing.
pub fn harness_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ./infra/test.sh (or source infra/harness.sh)"
        )
    })
}

/// The `session-bridge` binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_session-bridge"))
}

/// Where tests may write artifacts (screenshots, logs) to keep.
pub fn out_dir() -> PathBuf {
    let dir = std::env::var("SB_TEST_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("session-bridge-test-out"));
    std::fs::create_dir_all(&dir).expect("create test output dir");
    dir
}

/// A `session-bridge serve` child process, killed on drop.
pub struct Service {
    child: std::process::Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Log lines seen so far (JSON), shared with the reader thread.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Service {
    /// Start `session-bridge serve` with `args` (plus `--listen 127.0.0.1:0`)
    /// and environment `envs`, and wait until it listens.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Service {
        Self::start_on("127.0.0.1:0", args, envs)
    }

    /// Like [`Service::start`], listening on `listen`.
    pub fn start_on(listen: &str, args: &[&str], envs: &[(&str, &str)]) -> Service {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(bin());
        cmd.args(args)
            .args(["serve", "--listen", listen])
            .env("SESSION_BRIDGE__LOG__FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn session-bridge");
        let stdout = child.stdout.take().expect("stdout");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "service did not listen within 30 s; logs: {:?}",
                    logs.lock().unwrap()
                );
            }
        };
        Service {
            child,
            url: format!("http://{addr}"),
            logs,
        }
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "service did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The process id (for /proc measurements).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The development user's password, from the line `serve` prints once
    /// (waits up to 10 s for it).
    pub fn dev_password(&self) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self.logs.lock().unwrap().iter().find_map(|line| {
                let (_, rest) = line.split_once("with password `")?;
                rest.split_once('`').map(|(pw, _)| pw.to_owned())
            });
            if found.is_some() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Whether any log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the binary to completion with `args` in `dir`; returns (exit code, stdout, stderr).
pub fn run_bin(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.current_dir(dir).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run session-bridge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free TCP port on loopback (bound once and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private `redis-server` on a free port, for tests that stop and start it.
pub struct OwnRedis {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Start one and wait until it answers.
    pub fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            child: None,
        };
        redis.resume();
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stop it (the port closes).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freeze it (`SIGSTOP`): the port stays open and nothing answers, as
    /// with a hung server or a network partition.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Let a frozen one run again (`SIGCONT`).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// Start it again on the same port and wait until it answers PING.
    pub fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (infra/harness.sh installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A browser-like client: a cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// moto's Cognito IdP over its JSON protocol (moto does not check request
/// signatures; it reads the region from the credential scope). Scenario
/// helpers live next to the tests that use them.
pub struct Moto {
    pub url: String,
    pub region: String,
    pub http: reqwest::Client,
}

impl Moto {
    pub fn new() -> Self {
        Self {
            url: harness_env("SB_MOTO_URL"),
            region: harness_env("SB_AWS_REGION"),
            http: reqwest::Client::new(),
        }
    }

    /// Call `AWSCognitoIdentityProviderService.<action>`; panics on an error answer.
    pub async fn call(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{}/cognito-idp/aws4_request, SignedHeaders=host, Signature=00",
            self.region
        );
        let resp = self
            .http
            .post(format!("{}/", self.url))
            .header(
                "X-Amz-Target",
                format!("AWSCognitoIdentityProviderService.{action}"),
            )
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("Authorization", auth)
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto {action}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "moto {action}: {status} {text}");
        if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }
}

/// The in-process route tests of `tests/layer.rs`, run here on the live stores.
#[path = "../common/route_tests.rs"]
pub mod route_tests;
