//! Faults found from outside (issue 14): a frozen store must cost one
//! store attempt per request, and concurrent valid logins from one address
//! must not be refused. (Concurrent unknown `kid`s against a hanging JWKS:
//! `verify::remote::unknown_kids_share_one_fetch_of_a_hanging_jwks`.)

use std::time::{Duration, Instant};

use crate::common::OwnRedis;
use crate::demo::{BASE, Setup, browser_like, login_json};

const PASSWORD: &str = "correct horse battery";

/// How many store attempts failed, as the service logs them (one line per
/// attempt: the session load, the token's revocation check, the PHP login).
fn failed_attempts(service: &crate::common::Service) -> usize {
    service
        .logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("check failed") && l.contains("unavailable"))
        .count()
}

/// Issue 14, bug 2: `GET /session` used to read a dead store twice (once as
/// a session, then again through the token cookie or the same session),
/// taking two store timeouts before its 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_session_tries_a_frozen_store_once() {
    let redis = OwnRedis::start();
    let timeout = Duration::from_secs(1);
    let setup = Setup::new(&format!(
        "{BASE}\n[store]\nkind = \"redis\"\n[store.redis]\nurl = \"{}\"\ntimeout = \"1s\"\n",
        redis.url()
    ));
    setup.add_user("alice", "staff", PASSWORD);
    let service = setup.start();
    let browser = browser_like();
    let (status, headers, body) = login_json(&browser, &service.url, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let session = crate::demo::set_cookie(&headers, "sb_session").unwrap();
    let whoami = |client: &reqwest::Client, cookie: Option<&str>| {
        let mut r = client.get(format!("{}/session", service.url));
        if let Some(cookie) = cookie {
            r = r.header("cookie", cookie);
        }
        r.send()
    };
    assert_eq!(whoami(&browser, None).await.unwrap().status(), 200);

    redis.freeze();
    let session_only = format!("sb_session={session}");
    let plain = reqwest::Client::new();
    // What a browser sends (session + token cookies), then the session alone.
    for (client, cookie) in [(&browser, None), (&plain, Some(session_only.as_str()))] {
        let before = failed_attempts(&service);
        let started = Instant::now();
        let r = whoami(client, cookie).await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "cookie {cookie:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unavailable");
        // Two attempts take at least two timeouts; one takes one.
        assert!(took < 2 * timeout, "cookie {cookie:?}: 503 after {took:?}");
        // The reader thread may lag the response a little.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            failed_attempts(&service) - before,
            1,
            "cookie {cookie:?}: one store attempt"
        );
    }

    // Back without a restart.
    redis.thaw();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = whoami(&browser, None).await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {status} after the thaw");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Issue 14, bug 3: concurrent valid logins from one address (users behind
/// one NAT) were charged to the address while in flight, so 40 at once got
/// 18 × 429 with a `Retry-After` of the whole window. Successes never
/// count; failures still do, exactly up to the limit, and `Retry-After` is
/// the true time until the window ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_valid_logins_from_one_address_all_succeed() {
    let window = 10;
    let setup = Setup::new(&format!(
        "{BASE}\n[users.rate_limit]\naddress_failures = 20\naddress_window = \"{window}s\"\n"
    ));
    let users = 10;
    let store = session_bridge::users::UserStore::new(setup.users_file());
    for i in 0..users {
        store
            .add(
                session_bridge::users::NewUser::new(format!("user{i}")),
                &session_bridge::login::Password::new(PASSWORD.to_owned()),
            )
            .unwrap();
    }
    let service = setup.start();

    let statuses = |tasks: Vec<(String, &'static str)>| {
        let url = service.url.clone();
        async move {
            let mut set = tokio::task::JoinSet::new();
            for (username, password) in tasks {
                let url = url.clone();
                set.spawn(async move {
                    let (status, headers, _) =
                        login_json(&browser_like(), &url, &username, password).await;
                    let retry_after = headers
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                    (status, retry_after)
                });
            }
            let mut out = Vec::new();
            while let Some(done) = set.join_next().await {
                out.push(done.unwrap());
            }
            out
        }
    };

    let valid: Vec<_> = (0..40)
        .map(|i| (format!("user{}", i % users), PASSWORD))
        .collect();
    let answers = statuses(valid).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 40, "{answers:?}");

    // 30 wrong passwords at once, each for another name: exactly the 20
    // allowed are checked, the rest are refused until the window ends.
    let first_failure = Instant::now();
    let wrong: Vec<_> = (0..30).map(|i| (format!("ghost{i}"), "guess")).collect();
    let answers = statuses(wrong).await;
    let count = |code| answers.iter().filter(|(s, _)| *s == code).count();
    assert_eq!((count(401), count(429)), (20, 10), "{answers:?}");
    let waits: Vec<u64> = answers.iter().filter_map(|(_, r)| *r).collect();
    assert_eq!(waits.len(), 10, "every 429 says when to retry");
    let elapsed = first_failure.elapsed().as_secs();
    for &wait in &waits {
        assert!(
            wait <= window && wait + elapsed + 1 >= window,
            "Retry-After {wait} s for a {window} s window ({elapsed} s in): {waits:?}"
        );
    }
    // A valid login is refused too while the address is limited...
    let (status, headers, _) = login_json(&browser_like(), &service.url, "user0", PASSWORD).await;
    assert_eq!(status, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait <= window, "{wait}");
    // ... and gets in once the Retry-After it was given has passed.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, _, body) = login_json(&browser_like(), &service.url, "user0", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
}
