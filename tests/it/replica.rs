//! The local revocation replica: token checks without a store round trip,
//! logouts on another instance arriving within a poll, and failing closed
//! once the replica is stale.

use std::time::{Duration, Instant};

use crate::common::{OwnRedis, Service, run_bin};

async fn status(url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/session"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn eventually(url: &str, token: &str, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = status(url, token).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {got}, wanted {want} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_locally_and_logouts_propagate() {
    let mut redis = OwnRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"http://bridge.test\"\n[store]\nkind = \"redis\"\n[store.redis]\nurl = \"{}\"\n\
             [tokens]\nkeys_file = \"{}\"\n[login]\nsource = \"none\"\n\
             [revocation]\nreplica = true\npoll_interval = \"100ms\"\nmax_staleness = \"1s\"\n",
            redis.url(),
            dir.path().join("keys.json").display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (code, _, err) = run_bin(dir.path(), &["--config", cfg, "keys", "generate"], &[]);
    assert_eq!(code, 0, "{err}");
    let mint = |sub: &str| {
        let (code, out, err) = run_bin(
            dir.path(),
            &["--config", cfg, "token", "mint", "--sub", sub],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    };
    let a = Service::start(
        &[
            "--config",
            cfg,
            "--data-dir",
            dir.path().join("a").to_str().unwrap(),
        ],
        &[],
    );
    let b = Service::start(
        &[
            "--config",
            cfg,
            "--data-dir",
            dir.path().join("b").to_str().unwrap(),
        ],
        &[],
    );
    let alice = mint("alice");
    let bob = mint("bob");
    assert_eq!(status(&a.url, &alice).await, 200);
    assert_eq!(status(&b.url, &bob).await, 200);

    // Logout on B: B refuses at once, A within a poll or two.
    let r = reqwest::Client::new()
        .post(format!("{}/logout", b.url))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        status(&b.url, &alice).await,
        401,
        "the instance that logged out must refuse at once"
    );
    let took = eventually(&a.url, &alice, 401, Duration::from_secs(3)).await;
    eprintln!("logout reached the other instance in {took:?}");
    assert_eq!(status(&a.url, &bob).await, 200);

    // No round trip: with Redis down, a fresh replica still answers…
    redis.stop();
    let fresh = mint("carol");
    assert_eq!(
        status(&a.url, &fresh).await,
        200,
        "a token check must not need the store while the replica is fresh"
    );
    assert_eq!(
        status(&a.url, &alice).await,
        401,
        "the replica still knows the logout"
    );
    // …and once it is stale, token checks fail closed.
    eventually(&a.url, &fresh, 503, Duration::from_secs(5)).await;
    // The store is back (empty: this Redis keeps nothing on disk); checks
    // work again without a restart.
    redis.resume();
    eventually(&a.url, &fresh, 200, Duration::from_secs(10)).await;
}
