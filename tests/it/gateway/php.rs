//! Identity headers under another spelling (issue 10, item 1): a PHP page
//! (infra/php/identity.php) prints every `$_SERVER['HTTP_X_AUTH_REQUEST_*']`
//! behind each front — nginx, Caddy, the bridge's own proxy — once under
//! `php -S` (the harness's) and once under php-fpm (started here). Clients
//! send identity headers spelled with `_`, which PHP reads under the same
//! names as the bridge's; not one forged value may reach the page.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::env::{Addrs, Bridge, Front, browser, infra, login};
use crate::common::{free_port, harness_env};

/// Requests per front, backend and client (anonymous, signed in).
const REQUESTS: usize = 50;

const POLICY: &str = r#"
[policy]
default = "session"
[[policy.routes]]
path = "/identity.php"
mode = "public"
"#;

/// php-fpm serving infra/php/identity.php on a free loopback port, and a
/// plain Caddy (`php_fastcgi`, no header rules of its own: it passes `_`
/// headers on as FastCGI params) so the fronts reach it over HTTP.
struct PhpFpm {
    child: Child,
    gateway: Front,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PhpFpm {
    fn start() -> PhpFpm {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::copy(infra("php/identity.php"), www.join("identity.php")).unwrap();
        let fpm_port = free_port();
        let log = dir.path().join("php-fpm.log");
        // `user` is required (and used) only when running as root; `-R`
        // allows root, as in the test containers.
        let conf = format!(
            "[global]\nerror_log = {log}\ndaemonize = no\n\
             [www]\nlisten = 127.0.0.1:{fpm_port}\nlisten.allowed_clients = 127.0.0.1\n\
             user = root\ngroup = root\npm = static\npm.max_children = 2\n\
             clear_env = yes\nsecurity.limit_extensions = .php\n",
            log = log.display()
        );
        let conf_path = dir.path().join("php-fpm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(harness_env("SB_PHP_FPM_BIN"))
            .args(["-F", "-R", "-y"])
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start php-fpm (SB_PHP_FPM_BIN)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", fpm_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "php-fpm did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        let listen = format!("127.0.0.1:{}", free_port());
        let caddyfile = dir.path().join("Caddyfile");
        std::fs::write(
            &caddyfile,
            format!(
                "{{\n\tadmin off\n\tauto_https off\n}}\nhttp://{listen} {{\n\tbind 127.0.0.1\n\t\
                 root * {www}\n\tphp_fastcgi 127.0.0.1:{fpm_port}\n}}\n",
                www = www.display()
            ),
        )
        .unwrap();
        let gateway = Front::caddy_with(
            &caddyfile,
            &Addrs {
                listen: &listen,
                bridge: "",
                legacy: "",
                api: "",
            },
        );
        PhpFpm {
            child,
            gateway,
            log,
            _dir: dir,
        }
    }

    fn addr(&self) -> &str {
        self.gateway.url.trim_start_matches("http://")
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy)]
enum FrontKind {
    Nginx,
    Caddy,
    Proxy,
}

/// Forged identity headers, every one spelled so that PHP reads it as an
/// identity header; `n` makes each request's values unique.
fn forged(req: reqwest::RequestBuilder, n: usize) -> reqwest::RequestBuilder {
    req.header("X_Auth_Request_User", format!("forged-user-{n}"))
        .header("x_auth_request_sub", format!("forged-sub-{n}"))
        .header("X_AUTH_REQUEST_GROUPS", format!("forged-groups-{n}"))
        .header("X-Auth-Request_Email", format!("forged-email-{n}"))
        .header("X_Auth_Request_Anything", format!("forged-anything-{n}"))
        .header("X-Auth-Request-Email", format!("forged-email-hyphen-{n}"))
}

/// Runs the requests through one front to one PHP backend; returns the
/// number of forged values the page printed.
async fn forged_values(kind: FrontKind, php_addr: &str, label: &str) -> usize {
    let listen = format!("127.0.0.1:{}", free_port());
    let (bridge, front) = match kind {
        FrontKind::Proxy => {
            let proxy = format!(
                "[proxy]\n[[proxy.upstreams]]\nprefix = \"/\"\nurl = \"http://{php_addr}\"\n"
            );
            (Bridge::start_with_policy(None, POLICY, &proxy), None)
        }
        FrontKind::Nginx | FrontKind::Caddy => {
            let bridge = Bridge::start_with_policy(Some(&format!("http://{listen}")), POLICY, "");
            let addrs = Addrs {
                listen: &listen,
                bridge: bridge.addr(),
                legacy: php_addr,
                api: php_addr,
            };
            let front = match kind {
                FrontKind::Nginx => Front::nginx(&addrs),
                _ => Front::caddy(&addrs),
            };
            (bridge, Some(front))
        }
    };
    let base = front
        .as_ref()
        .map_or_else(|| bridge.service.url.clone(), |f| f.url.clone());
    let log = || front.as_ref().map(Front::log).unwrap_or_default();

    let anonymous = browser();
    let bob = browser();
    login(&bob, &base, "bob").await;
    let mut forged_count = 0;
    for (who, client) in [("anonymous", &anonymous), ("bob", &bob)] {
        for n in 0..REQUESTS {
            let r = forged(client.get(format!("{base}/identity.php")), n)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, 200, "{label} as {who}: {text}\n{}", log());
            let page: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{label}: not the page's JSON: {text}"));
            let server = page["server"].as_object().unwrap();
            forged_count += server
                .values()
                .filter(|v| v.as_str().is_some_and(|v| v.contains("forged")))
                .count();
            // The bridge's own values still arrive (the test can tell).
            let user = server
                .get("HTTP_X_AUTH_REQUEST_USER")
                .and_then(Value::as_str);
            if who == "bob" && !user.is_some_and(|u| u.contains("forged")) {
                assert_eq!(user, Some("bob"), "{label}: {page}");
            }
        }
    }
    eprintln!(
        "identity headers, {label}: {forged_count} forged values in {} requests",
        2 * REQUESTS
    );
    forged_count
}

pub async fn no_forged_identity_reaches_php() {
    let php_s = harness_env("SB_PHP_URL");
    let php_s = php_s.trim_start_matches("http://").to_owned();
    let fpm = PhpFpm::start();
    let mut total = 0;
    let mut report = Vec::new();
    for (backend, addr) in [("php -S", php_s.as_str()), ("php-fpm", fpm.addr())] {
        for kind in [FrontKind::Nginx, FrontKind::Caddy, FrontKind::Proxy] {
            let label = format!("{kind:?} + {backend}");
            let n = forged_values(kind, addr, &label).await;
            report.push(format!("{label}: {n}"));
            total += n;
        }
    }
    assert_eq!(
        total,
        0,
        "forged identity values reached PHP: {}\nphp-fpm log:\n{}",
        report.join(", "),
        std::fs::read_to_string(&fpm.log).unwrap_or_default()
    );
}
