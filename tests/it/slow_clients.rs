//! Slow and numerous clients (issue 10, item 4): half-sent heads, silent
//! connections and short bodies are closed by the `[server]` timeouts,
//! while `/healthz` and a real login keep answering; the connection cap
//! keeps room for health checks.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Service;

/// The flood of one test must not skew another's timing (the tests of
/// this binary run in parallel): these run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Slow connections held at once.
const SLOW: usize = 2000;
/// The RSS the service may reach while holding them (it starts near 30 MB).
const RSS_BOUND_KB: u64 = 160 * 1024;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn addr(svc: &Service) -> String {
    svc.url.trim_start_matches("http://").to_owned()
}

/// Hold one slow connection: `trickle` ones send half a head (8 KiB of one
/// header) and then a byte a second, the others nothing. Returns how long
/// the connection stayed open, or `None` when still open at `give_up`.
async fn hold(addr: String, trickle: bool, give_up: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let opened = Instant::now();
    if trickle {
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', 8 * 1024));
        if stream.write_all(&head).await.is_err() {
            return Some(opened.elapsed());
        }
    }
    let mut buf = [0u8; 512];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(opened.elapsed()),
                Ok(_) => {} // an error answer before the close
            },
            _ = tick.tick(), if trickle => {
                if stream.write_all(b"a").await.is_err() {
                    return Some(opened.elapsed());
                }
            }
            () = tokio::time::sleep_until((opened + give_up).into()) => return None,
        }
    }
}

async fn login(client: &reqwest::Client, svc: &Service, password: &str) -> reqwest::StatusCode {
    client
        .post(format!("{}/login", svc.url))
        .header("Origin", &svc.url)
        .json(&serde_json::json!({"username": "dev", "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_closed_by_the_timeouts_while_health_and_login_answer() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Default [server] settings: heads within 10 s, idle for 5 s.
    let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
    let password = svc.dev_password().expect("the development user's password");
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    assert_eq!(login(&fresh(), &svc, &password).await, 200);
    let rss_before = rss_kb(svc.pid());

    let give_up = Duration::from_secs(30);
    let mut held = Vec::with_capacity(SLOW);
    for i in 0..SLOW {
        held.push(tokio::spawn(hold(addr(&svc), i % 2 == 0, give_up)));
        // Paced like a real flood that lands: a burst beyond the listen
        // backlog would have its handshakes dropped by the kernel.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Let every connection land and send its half head.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let started = Instant::now();
    let health = fresh()
        .get(format!("{}/healthz", svc.url))
        .send()
        .await
        .unwrap();
    let health_latency = started.elapsed();
    assert_eq!(health.status(), 200);
    let started = Instant::now();
    let login_status = login(&fresh(), &svc, &password).await;
    let login_latency = started.elapsed();
    assert_eq!(login_status, 200);
    let rss_held = rss_kb(svc.pid());

    let mut closed_after = Vec::with_capacity(SLOW);
    let mut still_open = 0;
    for (i, task) in held.into_iter().enumerate() {
        match task.await.unwrap() {
            Some(after) => closed_after.push((i % 2 == 0, after)),
            None => still_open += 1,
        }
    }
    let (trickled, silent): (Vec<_>, Vec<_>) = closed_after.iter().partition(|(t, _)| *t);
    let span = |v: &[&(bool, Duration)]| {
        let secs: Vec<f64> = v.iter().map(|(_, d)| d.as_secs_f64()).collect();
        (
            secs.iter().copied().fold(f64::MAX, f64::min),
            secs.iter().copied().fold(0.0, f64::max),
        )
    };
    eprintln!(
        "slowloris: {SLOW} held; /healthz {:?}, login {:?}; RSS {} KiB before, {} KiB held; \
         half heads closed after {:.1?} s, silent after {:.1?} s (min, max); still open at {give_up:?}: {still_open}",
        health_latency,
        login_latency,
        rss_before,
        rss_held,
        span(&trickled),
        span(&silent),
    );
    assert!(
        health_latency < Duration::from_secs(1),
        "/healthz took {health_latency:?}"
    );
    assert!(
        login_latency < Duration::from_secs(1),
        "login took {login_latency:?}"
    );
    assert!(
        rss_held < RSS_BOUND_KB,
        "RSS {rss_held} KiB over {RSS_BOUND_KB} KiB"
    );
    assert_eq!(
        still_open, 0,
        "slow connections left open after {give_up:?}"
    );
    // And the service is still there.
    let health = fresh()
        .get(format!("{}/healthz", svc.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Send `request` on a fresh connection and read until the server closes
/// it (or `within` passes); returns what came back and how long it took.
async fn exchange(svc: &Service, request: &[u8], within: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr(svc)).await.unwrap();
    let started = Instant::now();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_gets_a_json_error_not_a_wait() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(&["--data-dir", data.to_str().unwrap()], &[]);
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"username\"",
        addr(&svc)
    );
    // Default body_read_timeout: 10 s.
    let (answer, took) = exchange(&svc, request.as_bytes(), Duration::from_secs(30)).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "after {took:?}: {answer:?}"
    );
    assert!(
        answer.contains("application/json") && answer.contains("\"error\":\"bad_request\""),
        "{answer}"
    );
    assert!(took < Duration::from_secs(30), "waited {took:?}");
}

#[tokio::test]
async fn oversized_heads_get_431_and_the_cap_keeps_room_for_health_checks() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = Service::start(
        &["--data-dir", data.to_str().unwrap()],
        &[
            ("SESSION_BRIDGE__SERVER__MAX_CONNECTIONS", "20"),
            ("SESSION_BRIDGE__SERVER__HEALTH_RESERVE", "2"),
            ("SESSION_BRIDGE__SERVER__IDLE_TIMEOUT", "60s"),
            ("SESSION_BRIDGE__SERVER__HEADER_READ_TIMEOUT", "60s"),
        ],
    );
    // A 40 KiB head: over the default 32 KiB bound.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let (answer, _) = exchange(&svc, big.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    // Fill every general slot with silent connections.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(addr(&svc)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // Once the service has taken all 20 (a bounded wait: it accepts them
    // as fast as the machine lets it), other routes are refused...
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let (answer, _) = exchange(&svc, get("/login").as_bytes(), Duration::from_secs(10)).await;
        if answer.starts_with("HTTP/1.1 503") || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("\"error\":\"overloaded\""), "{answer}");
    // ... while health checks still get in.
    let (answer, _) = exchange(&svc, get("/healthz").as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let (answer, _) = exchange(&svc, get("/login").as_bytes(), Duration::from_secs(10)).await;
        if answer.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
