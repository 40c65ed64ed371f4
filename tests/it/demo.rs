//! The out-of-the-box demo (issue 7): the demo pages in a real headless
//! Chromium, their HTTP contract, and the built-in users' login through
//! `POST /login` (answers, rate limits, restart, corrupt file).

mod browser;
mod http;
mod login;

use std::path::PathBuf;

use crate::common::{Service, bin};

/// A data directory and a config file for one `session-bridge serve`.
pub struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `config` is the whole TOML configuration (`[cookies] secure = false`
    /// and `[users] dev_user = false` are the usual base: see [`BASE`]).
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn users_file(&self) -> PathBuf {
        self.data().join("users.toml")
    }

    fn global_args(&self) -> [String; 4] {
        [
            "--config".into(),
            self.config().display().to_string(),
            "--data-dir".into(),
            self.data().display().to_string(),
        ]
    }

    /// `session-bridge users add NAME --groups G --password-stdin`.
    pub fn add_user(&self, name: &str, groups: &str, password: &str) {
        use std::io::Write as _;
        let mut cmd = std::process::Command::new(bin());
        cmd.args(self.global_args())
            .args(["users", "add", name, "--password-stdin"]);
        if !groups.is_empty() {
            cmd.args(["--groups", groups]);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "users add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start the service on a free port.
    pub fn start(&self) -> Service {
        let args = self.global_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Service::start(&args, &[])
    }

    /// Run `serve` expecting it to fail at start: (exit code, stdout + stderr).
    pub fn start_fails(&self) -> (i32, String) {
        let mut child = std::process::Command::new(bin())
            .args(self.global_args())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the service started instead of refusing to: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// Plain http on 127.0.0.1, no development user (tests add their own).
pub const BASE: &str = "[cookies]\nsecure = false\n\n[users]\ndev_user = false\n";

/// A client that keeps cookies, like a browser (no redirects followed).
pub fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `POST /login` with a JSON body: (status, headers, body).
pub async fn login_json(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = client
        .post(format!("{base}/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// The value of cookie `name` a response set.
pub fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}
