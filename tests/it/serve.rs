//! `session-bridge serve`: configuration errors, health, restart, shutdown.

use crate::common::{Service, run_bin};

fn config_error(toml: &str, envs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), toml).unwrap();
    let (code, _, stderr) = run_bin(dir.path(), &["--config", "c.toml", "check-config"], envs);
    assert_ne!(code, 0, "expected a config error, stderr: {stderr}");
    assert!(
        !dir.path().join(".data").exists(),
        "a bad config must not create state"
    );
    stderr
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_bin(dir.path(), &["--config", "nope.toml", "serve"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nope.toml"), "{stderr}");
}

#[test]
fn malformed_toml_names_the_line() {
    let stderr = config_error("listen = \"127.0.0.1:1\n[store\n", &[]);
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn unknown_keys_are_errors() {
    let stderr = config_error("[store.redis]\nurll = \"redis://127.0.0.1\"\n", &[]);
    assert!(
        stderr.contains("`store.redis.urll`: unknown key"),
        "{stderr}"
    );
    let stderr = config_error("", &[("SESSION_BRIDGE__LISTN", "127.0.0.1:1")]);
    assert!(stderr.contains("`listn`: unknown key"), "{stderr}");
}

#[test]
fn bad_listen_address_names_the_key() {
    let stderr = config_error("listen = \"localhost:http\"\n", &[]);
    assert!(stderr.contains("`listen`"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_bin(dir.path(), &["serve", "--listen", "127.0.0.1:99999"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn bad_store_settings_name_the_key_and_hide_secrets() {
    let stderr = config_error(
        "[store]\nkind = \"redis\"\n[store.redis]\nurl = \"http://:hunter2@127.0.0.1\"\n",
        &[],
    );
    assert!(stderr.contains("`store.redis.url`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    let stderr = config_error("[store]\nkind = \"redis\"\n", &[]);
    assert!(stderr.contains("`store.redis.url`: required"), "{stderr}");
    let stderr = config_error("[store]\nkind = \"casandra\"\n", &[]);
    assert!(stderr.contains("`store.kind`"), "{stderr}");
    let stderr = config_error(
        "",
        &[
            ("SESSION_BRIDGE__STORE__KIND", "dynamodb"),
            ("SESSION_BRIDGE__STORE__DYNAMODB__SESSIONS_TABLE", "x"),
        ],
    );
    assert!(
        stderr.contains("`store.dynamodb.sessions_table`"),
        "{stderr}"
    );
}

#[test]
fn wrong_types_name_the_key() {
    let stderr = config_error("shutdown_timeout = \"soon\"\n", &[]);
    assert!(stderr.contains("`shutdown_timeout`"), "{stderr}");
    let stderr = config_error("[log]\nformat = \"xml\"\n", &[]);
    assert!(stderr.contains("`log.format`"), "{stderr}");
}

#[tokio::test]
async fn defaults_serve_health_and_readiness_then_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
    assert!(
        svc.logged("development setup"),
        "the dev setup must be announced"
    );
    let health = reqwest::get(format!("{}/healthz", svc.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", svc.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["store:embedded"], "ok");
    let status = svc.terminate();
    assert!(
        status.success(),
        "SIGTERM must end with exit 0, got {status}"
    );
    assert!(data.join("store.redb").exists());
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    // A request that is still being handled when SIGTERM arrives: /readyz
    // against a "Redis" that accepts connections and never answers takes
    // about two seconds (the readiness timeout). Its answer must still
    // arrive, and the process must then exit 0.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = blackhole.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = blackhole.accept().await {
            held.push(sock);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let svc = Service::start(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[
            ("SESSION_BRIDGE__STORE__KIND", "redis"),
            ("SESSION_BRIDGE__STORE__REDIS__URL", &url),
        ],
    );
    let addr = svc.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let exit = std::thread::spawn(move || svc.terminate());
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(exit.join().unwrap().success());
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "the request was not in flight"
    );
}

#[test]
fn a_second_instance_on_the_same_data_dir_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let _first = Service::start(&["--data-dir", data], &[]);
    let (code, stdout, stderr) = run_bin(
        dir.path(),
        &["--data-dir", data, "serve", "--listen", "127.0.0.1:0"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        format!("{stdout}{stderr}").contains("cannot open the embedded store"),
        "{stdout}{stderr}"
    );
}

async fn readiness(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{url}/readyz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn wait_for_readiness(url: &str, want: u16) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body) = readiness(url).await;
        if status == want {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {status} ({body}), wanted {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readiness_follows_the_store_without_a_restart() {
    let mut redis = crate::common::OwnRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let svc = Service::start(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[
            ("SESSION_BRIDGE__STORE__KIND", "redis"),
            ("SESSION_BRIDGE__STORE__REDIS__URL", &url),
        ],
    );
    assert!(
        !svc.logged("development setup"),
        "a Redis setup is not the development setup"
    );
    wait_for_readiness(&svc.url, 200).await;

    redis.stop();
    let body = wait_for_readiness(&svc.url, 503).await;
    assert_eq!(body["checks"]["store:redis"], "unavailable");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "internals leaked: {body}"
    );
    // Health is about the process, not its dependencies.
    assert_eq!(
        reqwest::get(format!("{}/healthz", svc.url))
            .await
            .unwrap()
            .status(),
        200
    );

    redis.resume();
    wait_for_readiness(&svc.url, 200).await;
    assert!(svc.terminate().success());
}

#[tokio::test]
async fn starts_while_the_store_is_down_and_reports_it() {
    let port = crate::common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let svc = Service::start(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[
            ("SESSION_BRIDGE__STORE__KIND", "redis"),
            ("SESSION_BRIDGE__STORE__REDIS__URL", &url),
        ],
    );
    let (status, _) = readiness(&svc.url).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_restart_keeps_the_data_directory_and_keys() {
    use session_bridge_store::{EmbeddedStore, RevocationStore};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--data-dir", data.to_str().unwrap()];

    let first = Service::start(&args, &[]);
    let jwks_before: serde_json::Value =
        reqwest::get(format!("{}/.well-known/jwks.json", first.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(first.terminate().success());
    let keys_before = std::fs::read(data.join("keys.json")).unwrap();
    {
        let store = EmbeddedStore::open(data.join("store.redb")).await.unwrap();
        store.bump_epoch("user-1", 1234).await.unwrap();
    }

    let second = Service::start(&args, &[]);
    let jwks_after: serde_json::Value =
        reqwest::get(format!("{}/.well-known/jwks.json", second.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(second.terminate().success());
    assert_eq!(
        std::fs::read(data.join("keys.json")).unwrap(),
        keys_before,
        "keys were regenerated"
    );
    assert_eq!(jwks_before, jwks_after);
    assert!(!jwks_before["keys"].as_array().unwrap().is_empty());
    let store = EmbeddedStore::open(data.join("store.redb")).await.unwrap();
    assert_eq!(
        store.epoch("user-1").await.unwrap(),
        Some(1234),
        "the store lost data across a restart"
    );
}

#[tokio::test]
async fn credentials_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[("RUST_LOG", "trace")],
    );
    let client = reqwest::Client::new();
    client
        .get(format!("{}/readyz?code=query-secret-3", svc.url))
        .header("authorization", "Bearer header-secret-1")
        .header("cookie", "sid=cookie-secret-2")
        .send()
        .await
        .unwrap();
    let status = svc.logs.clone();
    let _ = svc.terminate();
    let logs = status.lock().unwrap().join("\n");
    assert!(
        logs.contains("/readyz"),
        "the request was not logged at all"
    );
    for secret in ["header-secret-1", "cookie-secret-2", "query-secret-3"] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
}
