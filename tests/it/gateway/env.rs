//! A bridge service for the gateway tests (built-in users, memory store),
//! the proxies in front of it, and checks shared by the scenarios.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_bridge::login::Password;
use session_bridge::users::{NewUser, UserStore, UsersConfig};

pub use crate::common::browser;
use crate::common::{Service, harness_env};

pub const PASSWORD: &str = "gateway-test-password-1";

/// The route policy every gateway test runs under.
const POLICY: &str = r#"
[policy]
default = "either"
unauthenticated = "redirect"
[[policy.routes]]
path = "/api/*"
mode = "token"
[[policy.routes]]
path = "/legacy/*"
mode = "session"
[[policy.routes]]
path = "/public/*"
mode = "public"
[[policy.routes]]
path = "/dead/*"
mode = "public"
[[policy.routes]]
path = "/hang/*"
mode = "public"
[[policy.routes]]
path = "/shadow/*"
mode = "shadow"
enforce = "session"
evaluate = "token"
name = "gateway-shadow"
"#;

pub struct Bridge {
    pub service: Service,
    /// alice (groups staff, ops; an email) and bob (neither).
    pub alice_sub: String,
    pub bob_sub: String,
    _dir: tempfile::TempDir,
}

impl Bridge {
    /// Start the service. `public_url`: the proxy's URL when one fronts the
    /// bridge. `extra`: more TOML.
    pub fn start(public_url: Option<&str>, extra: &str) -> Bridge {
        Bridge::start_with_policy(public_url, POLICY, extra)
    }

    /// [`Bridge::start`] under another `[policy]` section.
    pub fn start_with_policy(public_url: Option<&str>, policy: &str, extra: &str) -> Bridge {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let users = UserStore::from_config(&UsersConfig::default(), &data);
        let password = || Password::new(PASSWORD.to_owned());
        let alice = users
            .add(
                NewUser::new("alice")
                    .with_groups(["staff", "ops"])
                    .with_email("alice@example.test"),
                &password(),
            )
            .unwrap();
        let bob = users.add(NewUser::new("bob"), &password()).unwrap();
        let public = public_url
            .map(|u| format!("public_url = \"{u}\"\n"))
            .unwrap_or_default();
        let config = format!(
            "{public}[store]\nkind = \"memory\"\n[users]\ndev_user = false\n{policy}\n[forward_auth]\nbearer = true\n{extra}"
        );
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, config).unwrap();
        let service = Service::start(
            &[
                "--config",
                path.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
        );
        Bridge {
            service,
            alice_sub: alice.sub,
            bob_sub: bob.sub,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> &str {
        self.service.url.trim_start_matches("http://")
    }

    /// The sum of `session_bridge_requests_total` lines on the bridge's
    /// `/metrics` that carry every one of `labels`.
    pub async fn requests(&self, labels: &[(&str, &str)]) -> f64 {
        self.counter("session_bridge_requests_total", labels).await
    }

    /// The sum of `metric` lines on the bridge's `/metrics` that carry every
    /// one of `labels`.
    pub async fn counter(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.service.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Shadow disagreements counted for the `/shadow/*` rule.
    pub async fn shadow_disagreements(&self) -> f64 {
        self.counter(
            "session_bridge_shadow_disagreements_total",
            &[("rule", "gateway-shadow")],
        )
        .await
    }
}

/// Log `user` in at `base` (the proxy, or the bridge itself).
pub async fn login(client: &reqwest::Client, base: &str, user: &str) -> Value {
    let r = client
        .post(format!("{base}/login"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "login as {user} at {base}: {body}");
    body
}

/// GET `url` expecting the upstream's echo; returns it.
pub async fn echo(req: reqwest::RequestBuilder) -> Value {
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(
        status, 200,
        "expected the upstream's echo, got {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an echo: {text}"))
}

/// The values the upstream received for header `name`.
pub fn header<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|vs| vs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The one value of header `name` (fails when absent or repeated).
pub fn one<'a>(echo: &'a Value, name: &str) -> &'a str {
    let values = header(echo, name);
    assert_eq!(values.len(), 1, "{name}: {values:?} in {echo}");
    values[0]
}

/// Verify the bearer token the upstream received against the bridge's
/// JWKS, with the checks a Cognito-configured API would make; returns the
/// claims.
pub async fn verify_bearer(authorization: &str, bridge_url: &str, issuer: &str) -> Value {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a bearer header: {authorization}"));
    let jwks: JwkSet = reqwest::get(format!("{bridge_url}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(token).unwrap();
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.validate_aud = false;
    let claims = decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("the upstream's bearer token does not verify: {e}"))
        .claims;
    assert_eq!(claims["token_use"], "access", "{claims}");
    assert_eq!(claims["client_id"], "session-bridge", "{claims}");
    claims
}

/// A reverse proxy process (nginx or Caddy) the test started; killed on
/// drop, its log printed when it fails to start.
pub struct Front {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The upstream addresses a proxy config is rendered with.
pub struct Addrs<'a> {
    pub listen: &'a str,
    pub bridge: &'a str,
    pub legacy: &'a str,
    pub api: &'a str,
}

pub fn infra(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("infra")
        .join(path)
}

impl Front {
    /// nginx with infra/nginx/nginx.conf + bridge.conf, rendered.
    pub fn nginx(addrs: &Addrs<'_>) -> Front {
        let dir = tempfile::tempdir().unwrap();
        let template = std::fs::read_to_string(infra("nginx/bridge.conf")).unwrap();
        let rendered = template
            .replace("${LISTEN}", addrs.listen)
            .replace("${BRIDGE}", addrs.bridge)
            .replace("${LEGACY}", addrs.legacy)
            .replace("${API}", addrs.api);
        for line in rendered
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            assert!(!line.contains("${"), "unrendered placeholder: {line}");
        }
        std::fs::write(dir.path().join("bridge.conf"), rendered).unwrap();
        std::fs::copy(infra("nginx/nginx.conf"), dir.path().join("nginx.conf")).unwrap();
        let log = dir.path().join("error.log");
        let prefix = format!("{}/", dir.path().display());
        let child = Command::new(harness_env("SB_NGINX_BIN"))
            .args([
                "-p",
                &prefix,
                "-c",
                dir.path().join("nginx.conf").to_str().unwrap(),
                "-e",
                log.to_str().unwrap(),
                "-g",
                "daemon off; master_process off;",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx (SB_NGINX_BIN)");
        Front::ready(child, addrs.listen, log, dir)
    }

    /// Caddy with infra/caddy/Caddyfile (its placeholders are environment
    /// variables).
    pub fn caddy(addrs: &Addrs<'_>) -> Front {
        Front::caddy_with(&infra("caddy/Caddyfile"), addrs)
    }

    /// Caddy with a Caddyfile of the test's own (listening on
    /// `addrs.listen`).
    pub fn caddy_with(caddyfile: &Path, addrs: &Addrs<'_>) -> Front {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("caddy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(harness_env("SB_CADDY_BIN"))
            .args([
                "run",
                "--adapter",
                "caddyfile",
                "--config",
                caddyfile.to_str().unwrap(),
            ])
            .env("SB_LISTEN", addrs.listen)
            .env("SB_BRIDGE", addrs.bridge)
            .env("SB_LEGACY", addrs.legacy)
            .env("SB_API", addrs.api)
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start caddy (SB_CADDY_BIN)");
        Front::ready(child, addrs.listen, log, dir)
    }

    fn ready(mut child: Child, listen: &str, log: PathBuf, dir: tempfile::TempDir) -> Front {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(listen).is_ok() {
                break;
            }
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "proxy on {listen} did not start ({exited:?}); log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Front {
            child,
            url: format!("http://{listen}"),
            log,
            _dir: dir,
        }
    }

    /// The proxy's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
