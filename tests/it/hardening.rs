//! Smaller holes from issue 10 (items 7, 8, 9a–d, 9f): blank subjects, the
//! development user outside development, files that are not what they
//! claim, framework errors as JSON, and `token mint` for the running
//! configuration.

use std::time::{Duration, Instant};

use session_bridge::tokens::config::TokensConfig;
use session_bridge::tokens::keys::KeyRing;

use crate::common::{Service, bin, harness_env, run_bin};

/// Run `serve` in `data` (listen on port 0); it must exit within 20 s.
/// Returns (exit code, stdout, stderr).
fn serve_must_fail(data: &std::path::Path, envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["--data-dir", data.to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SESSION_BRIDGE__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve kept running; stdout: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn token_mint_refuses_a_blank_subject() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["", "   "] {
        let (code, stdout, stderr) = run_bin(
            dir.path(),
            &["--data-dir", "data", "token", "mint", "--sub", sub],
            &[],
        );
        assert_ne!(code, 0, "minted for {sub:?}: {stdout}");
        assert!(stdout.trim().is_empty(), "{stdout}");
        assert!(stderr.contains("--sub"), "{stderr}");
    }
}

#[tokio::test]
async fn a_validly_signed_token_with_a_blank_sub_is_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
    let (keys, _) = KeyRing::load_or_generate(&TokensConfig::default(), &data).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let http = reqwest::Client::new();
    let mut accepted = Vec::new();
    for sub in ["", " \t"] {
        let claims = serde_json::json!({
            "sub": sub, "iss": svc.url, "client_id": "session-bridge", "token_use": "access",
            "scope": "openid", "auth_time": now, "iat": now, "exp": now + 600,
            "jti": format!("jti-{}", sub.len()), "origin_jti": "family-blank", "username": "nobody",
        });
        let token = keys
            .signing_key()
            .sign_jws(claims.to_string().as_bytes())
            .unwrap();
        let whoami = http
            .get(format!("{}/session", svc.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let verify = http
            .get(format!("{}/auth/verify", svc.url))
            .header("X-Original-URI", "/app")
            .header("X-Original-Method", "GET")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let exchange = http
            .post(format!("{}/session", svc.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        for (name, status) in [
            ("GET /session", whoami.status()),
            ("/auth/verify", verify.status()),
            ("POST /session", exchange.status()),
        ] {
            if status != 401 {
                accepted.push(format!("{name} sub={sub:?}: {status}"));
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "blank subjects accepted: {accepted:#?}"
    );
}

#[tokio::test]
async fn the_dev_user_exists_only_in_the_development_setup() {
    // Embedded store on loopback http: created, password printed once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
    assert!(svc.dev_password().is_some(), "no dev user in development");
    drop(svc);

    let redis = harness_env("SB_REDIS_URL");
    let outside: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "redis store",
            vec![
                ("SESSION_BRIDGE__STORE__KIND", "redis"),
                ("SESSION_BRIDGE__STORE__REDIS__URL", redis.as_str()),
            ],
        ),
        (
            "https public_url",
            vec![("SESSION_BRIDGE__PUBLIC_URL", "https://auth.example.test")],
        ),
        (
            "non-loopback public_url",
            vec![("SESSION_BRIDGE__PUBLIC_URL", "http://auth.example.test")],
        ),
    ];
    for (setup, envs) in outside {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &envs);
        // The line that would carry the password comes right after
        // "listening"; the hint comes before it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !svc.logged("with password"),
            "{setup}: a dev password was printed"
        );
        assert!(
            !data.join("users.toml").exists(),
            "{setup}: users file created"
        );
        assert!(
            svc.logged("session-bridge users add"),
            "{setup}: no hint on how to add a user"
        );
    }
}

#[test]
fn an_existing_store_file_that_is_not_a_store_is_refused() {
    for (what, content) in [("empty", &b""[..]), ("foreign", &b"hello, not redb"[..])] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("store.redb"), content).unwrap();
        let (code, stdout, _) = serve_must_fail(&data, &[]);
        assert_ne!(code, 0, "{what}");
        assert!(!stdout.contains("\"listening\""), "{what}: {stdout}");
        assert!(stdout.contains("is not a store file"), "{what}: {stdout}");
        assert_eq!(
            std::fs::read(data.join("store.redb")).unwrap(),
            content,
            "{what}: the file was changed"
        );
    }
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, stderr) = run_bin(
        dir.path(),
        &["--data-dir", data.to_str().unwrap(), "keys", "generate"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let keys = data.join("keys.json");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stdout, _) = serve_must_fail(&data, &[]);
    assert_ne!(code, 0);
    assert!(!stdout.contains("\"listening\""), "{stdout}");
    assert!(stdout.contains("chmod 600"), "{stdout}");
    let (code, _, stderr) = run_bin(
        dir.path(),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "token",
            "mint",
            "--sub",
            "s",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("accessible by group or others"), "{stderr}");
}

#[test]
fn a_corrupt_users_file_stops_the_start_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let users = data.join("users.toml");
    std::fs::write(&users, "[[user]\nname = \n").unwrap();
    std::fs::set_permissions(&users, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, stdout, _) = serve_must_fail(&data, &[]);
    assert_ne!(code, 0);
    assert!(!stdout.contains("\"listening\""), "{stdout}");
    assert!(stdout.contains("users"), "{stdout}");
}

#[tokio::test]
async fn framework_errors_come_back_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
    let http = reqwest::Client::new();
    let big = http
        .post(format!("{}/login", svc.url))
        .header("Origin", &svc.url)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 17 * 1024])
        .send()
        .await
        .unwrap();
    let wrong_method = http
        .get(format!("{}/logout", svc.url))
        .send()
        .await
        .unwrap();
    let bad_query = http
        .post(format!("{}/token?delivery=a&delivery=b", svc.url))
        .send()
        .await
        .unwrap();
    let mut plain = Vec::new();
    for (name, response, status, code) in [
        ("413", big, 413, "payload_too_large"),
        ("405", wrong_method, 405, "method_not_allowed"),
        ("400", bad_query, 400, "bad_request"),
    ] {
        assert_eq!(response.status(), status, "{name}");
        let ct = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v)
                if ct.starts_with("application/json")
                    && v["error"] == code
                    && v["message"].is_string() => {}
            _ => plain.push(format!("{name}: {ct} {text:?}")),
        }
    }
    assert!(plain.is_empty(), "not JSON: {plain:#?}");
}

#[tokio::test]
async fn token_mint_mints_what_a_service_on_another_address_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = crate::common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let svc = Service::start_on(&listen, &["--data-dir", data.to_str().unwrap()], &[]);
    let mint = |extra: &[&str]| {
        let mut args = vec![
            "--data-dir",
            data.to_str().unwrap(),
            "token",
            "mint",
            "--sub",
            "alice",
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run_bin(dir.path(), &args, &[]);
        assert_eq!(code, 0, "{stderr}");
        stdout.trim().to_owned()
    };
    let http = reqwest::Client::new();
    let whoami = |token: String| {
        let http = http.clone();
        let url = format!("{}/session", svc.url);
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };

    let r = whoami(mint(&["--listen", &listen])).await;
    assert_eq!(r.status(), 200, "--listen");
    let r = whoami(mint(&["--public-url", &svc.url])).await;
    assert_eq!(r.status(), 200, "--public-url");

    // Minted for the default address: refused, and the refusal names the
    // issuer this service expects.
    let r = whoami(mint(&[])).await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "unknown_issuer", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&svc.url),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(svc.logged("token refused: unknown issuer"));
}
