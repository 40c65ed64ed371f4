//! The built-in users through `POST /login`: the same 401 for a wrong
//! password and an unknown user, a burst of failures limited (401, then 429
//! with `Retry-After`) until the window passes, the users file across a
//! restart, and a corrupt users file refusing the start without touching it.

use std::time::{Duration, Instant};

use super::{BASE, Setup, browser_like, login_json};

const ALICE_PASSWORD: &str = "correct horse battery";

/// Per user: 5 failures per 2 s; per address: 20 per 3 s (every request
/// here comes from 127.0.0.1).
fn limited() -> Setup {
    Setup::new(&format!(
        "{BASE}\n[users.rate_limit]\nuser_failures = 5\nuser_window = \"2s\"\n\
         address_failures = 20\naddress_window = \"3s\"\n"
    ))
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let setup = limited();
    setup.add_user("alice", "staff", ALICE_PASSWORD);
    let service = setup.start();
    let client = browser_like();
    let (status, _, wrong) = login_json(&client, &service.url, "alice", "not her password").await;
    assert_eq!(status, 401, "{wrong}");
    let (status, _, unknown) =
        login_json(&client, &service.url, "nobody", "not her password").await;
    assert_eq!(status, 401, "{unknown}");
    assert_eq!(
        wrong, unknown,
        "the answer must not tell whether the user exists"
    );
    let body: serde_json::Value = serde_json::from_str(&wrong).unwrap();
    assert_eq!(body["error"], "invalid_credentials");

    // The login form gets the same page for both.
    let form = |username: &'static str| {
        client
            .post(format!("{}/login", service.url))
            .form(&[("username", username), ("password", "not her password")])
            .send()
    };
    let (a, b) = (form("alice").await.unwrap(), form("nobody").await.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (401, 401));
    let (a, b) = (a.text().await.unwrap(), b.text().await.unwrap());
    assert_eq!(a, b);
    assert!(a.contains("Wrong username or password."), "{a}");

    let (status, headers, body) = login_json(&client, &service.url, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(super::set_cookie(&headers, "sb_session").is_some());
}

/// 50 failed logins for `username`: the status of each and the longest
/// `Retry-After`.
async fn burst(client: &reqwest::Client, base: &str, username: &str) -> (Vec<u16>, u64, String) {
    let mut statuses = Vec::new();
    let mut retry_after = 0;
    let mut limited_body = String::new();
    for _ in 0..50 {
        let (status, headers, body) = login_json(client, base, username, "a wrong guess").await;
        if status == 429 {
            let secs: u64 = headers
                .get(reqwest::header::RETRY_AFTER)
                .expect("429 carries Retry-After")
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=3).contains(&secs), "Retry-After {secs}");
            retry_after = retry_after.max(secs);
            limited_body = body;
        }
        statuses.push(status);
    }
    (statuses, retry_after, limited_body)
}

#[tokio::test]
async fn a_burst_of_failures_is_limited_until_the_window_passes() {
    let setup = limited();
    setup.add_user("alice", "staff", ALICE_PASSWORD);
    let service = setup.start();
    let client = browser_like();

    let started = Instant::now();
    let (statuses, retry_after, body) = burst(&client, &service.url, "alice").await;
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [429; 45], "{statuses:?}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "rate_limited");
    // An unknown user is limited the same way: the limit reveals nothing.
    let (unknown, _, _) = burst(&client, &service.url, "mallory").await;
    assert_eq!(unknown, statuses, "unknown user");

    // While limited, even the right password is refused unchecked.
    let (status, _, _) = login_json(&client, &service.url, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, 429);

    // Once the window has passed, the right password works. `Retry-After`
    // is in whole seconds, rounded down: poll a little past it.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = login_json(&client, &service.url, "alice", ALICE_PASSWORD).await;
        if status == 200 {
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["username"], "alice");
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(
            Instant::now() < deadline,
            "still limited {:?} after the burst began",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_users_file_survives_a_restart() {
    let setup = Setup::new(BASE);
    setup.add_user("alice", "admins,staff", ALICE_PASSWORD);
    let before = std::fs::read(setup.users_file()).unwrap();

    let service = setup.start();
    let client = browser_like();
    let (status, _, body) = login_json(&client, &service.url, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(service.terminate().success());
    assert_eq!(
        std::fs::read(setup.users_file()).unwrap(),
        before,
        "the service does not rewrite the users file"
    );

    // Added while the service is down: seen after the restart.
    setup.add_user("bob", "", "bob's long password");
    let service = setup.start();
    let client = browser_like();
    let (status, _, body) = login_json(&client, &service.url, "alice", ALICE_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(second["sub"], first["sub"], "same user, same sub");
    assert_eq!(second["groups"], serde_json::json!(["admins", "staff"]));
    let (status, _, _) = login_json(&client, &service.url, "bob", "bob's long password").await;
    assert_eq!(status, 200);
}

#[test]
fn a_corrupt_users_file_stops_the_start_and_is_left_untouched() {
    let setup = Setup::new(BASE);
    setup.add_user("alice", "admins,staff", ALICE_PASSWORD);
    let path = setup.users_file();
    // A hand edit gone wrong: an unclosed array.
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "groups = [\"admins\", \"staff\"]",
        "groups = [\"admins\", \"staff\"",
    );
    std::fs::write(&path, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("groups")).unwrap() + 1;
    let before = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

    let (code, output) = setup.start_fails();
    assert_ne!(code, 0, "{output}");
    let location = format!("{}:", path.display());
    assert!(
        output.contains(&location),
        "the error names the file: {output}"
    );
    let at = output.find(&location).unwrap() + location.len();
    let reported: usize = output[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no line number after the path: {output}"));
    assert!(
        reported == line || reported == line + 1,
        "line {reported}, the broken line is {line}: {output}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "byte for byte");
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    let names: Vec<String> = std::fs::read_dir(setup.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("users.toml.") && !n.contains(".tmp")),
        "no backup or temp files left next to it: {names:?}"
    );
}
