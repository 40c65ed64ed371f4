//! `POST /logout` with several credentials at once (issue 10, item 5): it
//! ends every live one it was given, refuses (400) live ones that name
//! different users or token families, and never answers 200 while a
//! presented credential still works. Each order: a live session cookie
//! with a stale, revoked, bogus, foreign or live bearer (or token cookie),
//! and a live bearer with a dead session cookie.

use std::sync::Arc;

use reqwest::StatusCode;
use session_bridge::tokens::config::TokensConfig;
use session_bridge::tokens::keys::KeyRing;
use session_bridge::tokens::mint::{Minter, Subject, TokenUse};

use crate::common::{Service, bin};

const PASSWORD: &str = "a long enough password";

fn add_user(data: &std::path::Path, name: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(bin())
        .args(["--data-dir", data.to_str().unwrap(), "users", "add", name])
        .arg("--password-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success(), "users add {name}");
}

/// One login's credentials.
#[derive(Clone, Debug)]
struct Login {
    session: String,
    token: String,
}

struct Env {
    svc: Service,
    http: reqwest::Client,
    minter: Minter,
    _dir: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        add_user(&data, "alice");
        add_user(&data, "bob");
        let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
        let (keys, _) = KeyRing::load_or_generate(&TokensConfig::default(), &data).unwrap();
        let minter = Minter::new(Arc::new(keys), svc.url.clone(), &TokensConfig::default());
        Env {
            svc,
            http: reqwest::Client::new(),
            minter,
            _dir: dir,
        }
    }

    async fn login(&self, user: &str) -> Login {
        let r = self
            .http
            .post(format!("{}/login", self.svc.url))
            .header("Origin", &self.svc.url)
            .json(&serde_json::json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = |name: &str| {
            r.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| c.strip_prefix(&format!("{name}=")))
                .and_then(|rest| rest.split(';').next())
                .unwrap()
                .to_owned()
        };
        Login {
            session: cookie("sb_session"),
            token: cookie("sb_token"),
        }
    }

    /// Another token of the same session (same family), as an API client
    /// gets it.
    async fn bearer_of(&self, login: &Login) -> String {
        let r = self
            .http
            .post(format!("{}/token?delivery=body", self.svc.url))
            .header("Origin", &self.svc.url)
            .header("Cookie", format!("sb_session={}", login.session))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A validly signed token of alice's that expired an hour ago.
    fn stale_token(&self) -> String {
        let past = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
        self.minter
            .mint_at(
                TokenUse::Access,
                &Subject::new("stale-sub"),
                "stale-family",
                past,
            )
            .unwrap()
            .token
    }

    async fn logout(&self, cookies: &[(&str, &str)], bearer: Option<&str>) -> StatusCode {
        let mut req = self
            .http
            .post(format!("{}/logout", self.svc.url))
            .header("Origin", &self.svc.url);
        if !cookies.is_empty() {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("Cookie", header.join("; "));
        }
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        if status == 400 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "credential_mismatch", "{body}");
        }
        status
    }

    async fn session_alive(&self, session: &str) -> bool {
        let r = self
            .http
            .get(format!("{}/session", self.svc.url))
            .header("Cookie", format!("sb_session={session}"))
            .send()
            .await
            .unwrap();
        r.status() == 200
    }

    async fn token_alive(&self, token: &str) -> bool {
        let r = self
            .http
            .get(format!("{}/session", self.svc.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        r.status() == 200
    }
}

/// What a case presents besides (or instead of) a live session cookie.
#[derive(Debug, Clone, Copy)]
enum Second {
    /// A token of the same session.
    SameFamily,
    /// Expired but validly signed.
    Stale,
    /// A token of a session that was logged out.
    Revoked,
    /// Not a token.
    Bogus,
    /// Alice's token from another login (another family).
    OtherFamily,
    /// Bob's token.
    OtherUser,
}

const SECONDS: [Second; 6] = [
    Second::SameFamily,
    Second::Stale,
    Second::Revoked,
    Second::Bogus,
    Second::OtherFamily,
    Second::OtherUser,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_every_credential_or_refuses() {
    let env = Env::start();
    let mut leftovers = Vec::new();
    let mut wrong_status = Vec::new();

    for other in SECONDS {
        // As a bearer header, then as the token cookie.
        for as_cookie in [false, true] {
            let alice = env.login("alice").await;
            let token = match other {
                Second::SameFamily => env.bearer_of(&alice).await,
                Second::Stale => env.stale_token(),
                Second::Revoked => {
                    let gone = env.login("alice").await;
                    assert_eq!(
                        env.logout(&[("sb_session", &gone.session)], None).await,
                        200
                    );
                    gone.token
                }
                Second::Bogus => "not.a.token".to_owned(),
                Second::OtherFamily => env.login("alice").await.token,
                Second::OtherUser => env.login("bob").await.token,
            };
            let token_was_live = env.token_alive(&token).await;
            let status = if as_cookie {
                env.logout(
                    &[("sb_session", &alice.session), ("sb_token", &token)],
                    None,
                )
                .await
            } else {
                env.logout(&[("sb_session", &alice.session)], Some(&token))
                    .await
            };
            let case = format!(
                "session + {other:?} {}",
                if as_cookie { "token cookie" } else { "bearer" }
            );
            let refused = matches!(other, Second::OtherFamily | Second::OtherUser);
            let expected = if refused { 400 } else { 200 };
            if status != expected {
                wrong_status.push(format!("{case}: {status}"));
            }
            let session_alive = env.session_alive(&alice.session).await;
            let token_alive = env.token_alive(&token).await;
            if status == 200 && (session_alive || token_alive) {
                leftovers.push(format!(
                    "{case}: 200 but session alive={session_alive}, token alive={token_alive}"
                ));
            }
            if status == 400 && !(session_alive && token_alive == token_was_live) {
                leftovers.push(format!("{case}: 400 yet something was ended"));
            }
        }
    }

    // The other order: a live bearer with a dead session cookie.
    for dead_session in ["revoked", "bogus"] {
        let alice = env.login("alice").await;
        let bearer = env.bearer_of(&alice).await;
        let session = match dead_session {
            "revoked" => {
                let gone = env.login("alice").await;
                assert_eq!(
                    env.logout(&[("sb_session", &gone.session)], None).await,
                    200
                );
                gone.session
            }
            _ => "bogus-session-id".to_owned(),
        };
        let status = env.logout(&[("sb_session", &session)], Some(&bearer)).await;
        let case = format!("{dead_session} session + live bearer");
        if status != 200 {
            wrong_status.push(format!("{case}: {status}"));
        }
        if env.token_alive(&bearer).await || env.session_alive(&alice.session).await {
            leftovers.push(format!("{case}: the bearer or its session is still alive"));
        }
    }

    // A live token cookie alone with a bogus bearer: both orders end it.
    let alice = env.login("alice").await;
    let status = env
        .logout(&[("sb_token", &alice.token)], Some("not.a.token"))
        .await;
    if status != 200
        || env.token_alive(&alice.token).await
        || env.session_alive(&alice.session).await
    {
        leftovers.push(format!(
            "token cookie + bogus bearer: {status}, token or session alive"
        ));
    }

    eprintln!(
        "logout matrix: {} leftover cases, {} wrong statuses",
        leftovers.len(),
        wrong_status.len()
    );
    assert!(
        leftovers.is_empty() && wrong_status.is_empty(),
        "leftovers: {leftovers:#?}\nwrong statuses: {wrong_status:#?}"
    );
}
