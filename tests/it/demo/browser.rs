//! The demo in a real browser: Debian's headless Chromium, driven over
//! WebDriver (fantoccini) through a chromedriver this test starts on a free
//! port. One login; the legacy page (session) and the API (token cookie) see
//! the same user; the expiry banner shows and "Stay signed in" moves the
//! end; logout and "log out everywhere" leave both refused, even when the
//! old cookies are replayed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::{BASE, Setup};
use crate::common::{free_port, harness_env, out_dir};

const PASSWORD: &str = "correct horse battery";

/// Idle lifetime 1 min, banner 50 s before the end: it shows about 10 s
/// after login, well before the lazy extension (at half the idle time)
/// would move the end on its own.
fn config() -> String {
    format!(
        "{BASE}\n[session]\nidle_ttl = \"1m\"\n\n[demo]\nenabled = true\nwarn_before = \"50s\"\n"
    )
}

/// A chromedriver child on a free port, with its browsers' profile folder.
struct Chromedriver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    fn start() -> Self {
        let driver = PathBuf::from(harness_env("SB_CHROMEDRIVER"));
        let chromium = PathBuf::from(harness_env("SB_CHROMIUM"));
        for (what, path) in [("SB_CHROMEDRIVER", &driver), ("SB_CHROMIUM", &chromium)] {
            assert!(
                path.is_file(),
                "{what}={} does not exist: infra/harness.sh installs Debian's chromium and chromium-driver",
                path.display()
            );
        }
        let port = free_port();
        let log = out_dir().join("chromedriver.log");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let mut driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited ({status}); log: {}", log.display());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    async fn browser(&self) -> Client {
        let chromium = harness_env("SB_CHROMIUM");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1100,800",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A browser left behind by a failed session: ours are the ones
        // running on our profile folder.
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        for pid in pids_with_arg(&marker) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn pids_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_shared_by_the_legacy_page_and_the_api_in_chromium() {
    let setup = Setup::new(&config());
    setup.add_user("alice", "admins,staff", PASSWORD);
    let service = setup.start();
    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    let (b, base, out) = (browser.clone(), service.url.clone(), out_dir());
    let outcome = tokio::spawn(async move { scenario(&b, &base, &out).await }).await;
    let _ = browser.close().await;
    drop(driver);
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn scenario(c: &Client, base: &str, out: &Path) {
    let url = |path: &str| format!("{base}{path}");

    // Not signed in: the legacy page sends the browser to the login page.
    c.goto(&url("/demo/legacy")).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert_eq!(at.path(), "/login", "{at}");
    assert!(
        at.query_pairs()
            .any(|(k, v)| k == "next" && v == "/demo/legacy"),
        "{at}"
    );
    log_in(c, "alice").await;
    wait_until(
        c,
        "the legacy page",
        "location.pathname === '/demo/legacy'",
        15,
    )
    .await;

    // Legacy page: rendered on the server from the session.
    let user = text(c, "#user").await;
    let sub = text(c, "#sub").await;
    assert_eq!(user, "alice");
    assert_eq!(text(c, "#groups").await, "admins, staff");
    save_png(c, &out.join("demo-legacy.png")).await;
    // No credential is readable by script: only the CSRF cookie is.
    let visible = c.execute("return document.cookie", vec![]).await.unwrap();
    let visible = visible.as_str().unwrap();
    assert!(visible.contains("sb_csrf="), "{visible}");
    assert!(
        !visible.contains("sb_token") && !visible.contains("sb_session"),
        "{visible}"
    );

    // App page: its script calls the token-only API.
    c.goto(&url("/demo/app")).await.unwrap();
    wait_until(
        c,
        "the API answer",
        "document.getElementById('api-status').dataset.status === '200'",
        15,
    )
    .await;
    assert_eq!(text(c, "#api-user").await, user, "same user on both stacks");
    assert_eq!(text(c, "#api-sub").await, sub);
    assert_eq!(text(c, "#api-credential").await, "token cookie");
    save_png(c, &out.join("demo-app.png")).await;
    // The browser drops the token cookie when the token expires: the script
    // gets a new one from POST /token (with the CSRF header) and retries.
    c.delete_cookie("sb_token").await.unwrap();
    c.find(Locator::Css("#call-api"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        c,
        "the API answer after POST /token",
        "document.getElementById('api-credential').textContent.includes('renewed')",
        15,
    )
    .await;
    assert_eq!(text(c, "#api-user").await, user);
    assert!(
        c.get_named_cookie("sb_token").await.is_ok(),
        "a new token cookie"
    );

    // The expiry banner, on the app page and on the legacy page.
    let banner_shown = "!document.getElementById('expiry-banner').hidden";
    wait_until(c, "the expiry banner on the app page", banner_shown, 40).await;
    c.goto(&url("/demo/legacy")).await.unwrap();
    wait_until(c, "the expiry banner on the legacy page", banner_shown, 40).await;
    let message = text(c, "#expiry-message").await;
    assert!(message.starts_with("Your session ends in "), "{message}");
    let before = session_end(c).await;
    save_png(c, &out.join("demo-banner.png")).await;

    // "Stay signed in": the end moves later, the banner goes away.
    c.find(Locator::Css("#stay-signed-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        c,
        "the extended session",
        &format!(
            "Number(document.getElementById('session-expires').dataset.ts) > {before} \
             && document.getElementById('expiry-banner').hidden"
        ),
        15,
    )
    .await;
    let after = session_end(c).await;
    assert!(after > before, "{before} -> {after}");
    let reported = fetch_json(c, "/session").await;
    assert_eq!(reported["status"], 200);
    assert_eq!(reported["body"]["credential"]["expires_at"], after);
    c.refresh().await.unwrap();
    assert!(
        session_end(c).await >= after,
        "the server renders the new end"
    );

    // Log out: both stacks refuse, even with the old cookies replayed.
    let old = cookies(c).await;
    c.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        c,
        "the login page after logout",
        "location.pathname === '/login'",
        15,
    )
    .await;
    assert_refused(c, base, &old).await;

    // Log in again, then "log out everywhere".
    c.goto(&url("/login?next=%2Fdemo%2Fapp")).await.unwrap();
    log_in(c, "alice").await;
    wait_until(
        c,
        "the API answer",
        "document.getElementById('api-status').dataset.status === '200'",
        15,
    )
    .await;
    let old = cookies(c).await;
    c.find(Locator::Css("#logout-all"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        c,
        "the login page after logout everywhere",
        "location.pathname === '/login'",
        15,
    )
    .await;
    assert_refused(c, base, &old).await;
}

async fn log_in(c: &Client, username: &str) {
    let form = c.find(Locator::Css("form[action='/login']")).await.unwrap();
    form.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(username)
        .await
        .unwrap();
    form.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The session and token cookies the browser holds now.
async fn cookies(c: &Client) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for name in ["sb_session", "sb_token"] {
        let cookie = c
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("no {name} cookie: {e}"));
        found.push((name.to_owned(), cookie.value().to_owned()));
    }
    found
}

/// Cleared cookies and replayed old ones: the API answers 401, the legacy
/// page sends the browser to the login page.
async fn assert_refused(c: &Client, base: &str, old: &[(String, String)]) {
    // The login page's policy allows no script requests: call from the demo.
    c.goto(&format!("{base}/demo")).await.unwrap();
    let api = fetch_json(c, "/demo/api/whoami").await;
    assert_eq!(api["status"], 401, "{api}");
    c.goto(&format!("{base}/demo/legacy")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");

    for (name, value) in old {
        let mut cookie = fantoccini::cookies::Cookie::new(name.clone(), value.clone());
        cookie.set_path("/");
        // chromedriver refuses a cookie without a domain, and fantoccini
        // sends `SameSite=None` when unset, which needs `Secure`.
        cookie.set_domain("127.0.0.1");
        cookie.set_same_site(cookie::SameSite::Lax);
        c.add_cookie(cookie).await.unwrap();
    }
    assert!(c.get_named_cookie("sb_session").await.is_ok());
    c.goto(&format!("{base}/demo")).await.unwrap();
    let api = fetch_json(c, "/demo/api/whoami").await;
    assert_eq!(api["status"], 401, "replayed token: {api}");
    assert_eq!(api["body"]["error"], "revoked", "{api}");
    c.goto(&format!("{base}/demo/legacy")).await.unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/login",
        "replayed session"
    );
}

/// `fetch(path)` from the page, as its own script would: `{status, body}`.
async fn fetch_json(c: &Client, path: &str) -> Value {
    c.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch(arguments[0], { credentials: 'same-origin', headers: { accept: 'application/json' } })
           .then(r => r.json().then(body => done({ status: r.status, body }),
                                    () => done({ status: r.status, body: null })))
           .catch(e => done({ status: 0, body: String(e) }));",
        vec![json!(path)],
    )
    .await
    .unwrap()
}

async fn session_end(c: &Client) -> i64 {
    c.find(Locator::Css("#session-expires"))
        .await
        .unwrap()
        .attr("data-ts")
        .await
        .unwrap()
        .and_then(|ts| ts.parse().ok())
        .expect("#session-expires has data-ts")
}

async fn text(c: &Client, selector: &str) -> String {
    c.find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn save_png(c: &Client, path: &Path) {
    let png = c.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a real screenshot"
    );
    std::fs::write(path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Poll the page's `condition` (a JavaScript expression) until it holds.
async fn wait_until(c: &Client, what: &str, condition: &str, seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let script = format!("return !!({condition});");
    loop {
        if let Ok(Value::Bool(true)) = c.execute(&script, vec![]).await {
            return;
        }
        if Instant::now() > deadline {
            let at = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = c
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!(
                "timed out after {seconds} s waiting for {what} ({condition}) at {at}; page text: {body}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
