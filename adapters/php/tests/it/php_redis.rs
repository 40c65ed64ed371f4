//! Real PHP pages (`php -S` from the harness, phpredis's session handler on
//! the harness's Redis; pages in `infra/php/`) and the adapter sharing
//! sessions.

use std::time::{Duration, Instant};

use session_bridge_php::fred::prelude::*;
use session_bridge_php::{
    BridgeIdentity, Error, Format, LoginMapping, PhpRedisStore, PhpSession, PhpSessionStore,
    RedisLocking, Value, new_session_id,
};

use crate::codec::FORMATS;
use crate::env;

async fn pool() -> Pool {
    let config = Config::from_url(&env("SB_REDIS_URL")).unwrap();
    let pool = Builder::from_config(config).build_pool(2).unwrap();
    pool.init().await.unwrap();
    pool
}

fn store(pool: &Pool, format: Format) -> PhpRedisStore {
    PhpRedisStore::new(pool.clone()).with_format(format)
}

fn alice() -> BridgeIdentity {
    BridgeIdentity {
        sub: "b3f1c2".into(),
        username: Some("alice".into()),
        groups: vec!["staff".into(), "admins".into()],
        auth_time: Some(1_767_225_600),
        iss: "https://idp.example".into(),
    }
}

/// A page of the PHP test app, as a browser holding `PHPSESSID=id` asks
/// for it.
async fn page(name: &str, id: &str, query: &[(&str, &str)]) -> serde_json::Value {
    let url =
        reqwest::Url::parse_with_params(&format!("{}/{name}", env("SB_PHP_URL")), query).unwrap();
    let response = reqwest::Client::new()
        .get(url.clone())
        .header("Cookie", format!("PHPSESSID={id}"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

fn unbase64(s: &serde_json::Value) -> Vec<u8> {
    // PHP's base64_encode output, decoded without a dependency.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.as_str().unwrap().bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn a_php_login_is_accepted_through_the_mapping() {
    let pool = pool().await;
    for format in FORMATS {
        let id = new_session_id();
        page(
            "login.php",
            &id,
            &[("user", "42"), ("name", "alice"), ("format", format.name())],
        )
        .await;
        let session = store(&pool, format)
            .load(&id)
            .await
            .unwrap()
            .expect("PHP's session");
        let mapping = LoginMapping {
            username_key: Some("username".into()),
            groups_key: Some("roles".into()),
            ..LoginMapping::default()
        };
        let login = session
            .identity_from_mapping(&mapping)
            .unwrap()
            .expect("logged in");
        assert_eq!(login.sub, "42");
        assert_eq!(login.username.as_deref(), Some("alice"));
        assert_eq!(login.groups, ["staff", "editors"]);
        assert_eq!(login.iss, "php");
    }
}

#[tokio::test]
async fn php_pages_see_the_bridge_identity_and_keep_their_values() {
    let pool = pool().await;
    for format in FORMATS {
        let store = store(&pool, format);
        let id = new_session_id();
        let q = [("format", format.name())];
        page(
            "login.php",
            &id,
            &[("user", "7"), ("format", format.name())],
        )
        .await;
        let written_by_php: Vec<u8> = pool.get(store.key(&id)).await.unwrap();

        store.write_identity(&id, "bridge", &alice()).await.unwrap();
        let written_by_us: Vec<u8> = pool.get(store.key(&id)).await.unwrap();
        let ttl: i64 = pool.ttl(store.key(&id)).await.unwrap();
        assert!((1430..=1440).contains(&ttl), "gc_maxlifetime: {ttl}");
        if format != Format::PhpSerialize {
            // PHP's bytes are untouched; the identity comes after them.
            assert!(written_by_us.starts_with(&written_by_php), "{format}");
        }

        let seen = page("read.php", &id, &q).await;
        let bridge = &seen["values"]["bridge"];
        assert_eq!(bridge["sub"], "b3f1c2");
        assert_eq!(bridge["username"], "alice");
        assert_eq!(bridge["groups"], serde_json::json!(["staff", "admins"]));
        assert_eq!(bridge["auth_time"], 1_767_225_600);
        assert_eq!(bridge["iss"], "https://idp.example");
        assert_eq!(seen["values"]["user_id"], 7);
        // The object (referring to itself and seen twice) and the PHP
        // reference are what PHP stored, and PHP would write back exactly
        // the bytes the adapter wrote.
        assert_eq!(seen["cart_is_cart"], true);
        assert_eq!(seen["cart_again_is_cart"], true);
        assert_eq!(seen["alias_is_reference"], true);
        assert_eq!(unbase64(&seen["encoded"]), written_by_us, "{format}");
    }
}

#[tokio::test]
async fn a_php_write_after_the_bridge_keeps_both() {
    let pool = pool().await;
    for format in FORMATS {
        let store = store(&pool, format);
        let id = new_session_id();
        page(
            "login.php",
            &id,
            &[("user", "9"), ("format", format.name())],
        )
        .await;
        store.write_identity(&id, "bridge", &alice()).await.unwrap();
        page(
            "write.php",
            &id,
            &[
                ("key", "theme"),
                ("value", "dark"),
                ("format", format.name()),
            ],
        )
        .await;

        let session = store.load(&id).await.unwrap().unwrap();
        assert_eq!(
            session.get_bridge_identity("bridge").unwrap(),
            Some(alice())
        );
        assert_eq!(session.get("theme"), Some(&Value::from("dark")));
        assert_eq!(session.get("user_id"), Some(&Value::Int(9)));

        // The bridge updating the identity again keeps PHP's new value.
        let mut newer = alice();
        newer.groups.push("auditors".into());
        store.write_identity(&id, "bridge", &newer).await.unwrap();
        let seen = page("read.php", &id, &[("format", format.name())]).await;
        assert_eq!(seen["values"]["theme"], "dark");
        assert_eq!(seen["values"]["bridge"]["groups"][2], "auditors");
        assert_eq!(seen["cart_is_cart"], true);
        assert_eq!(seen["alias_is_reference"], true);
    }
}

#[tokio::test]
async fn deleting_ends_the_php_session() {
    let pool = pool().await;
    for format in FORMATS {
        let store = store(&pool, format);
        let id = new_session_id();
        page(
            "login.php",
            &id,
            &[("user", "3"), ("format", format.name())],
        )
        .await;
        store.write_identity(&id, "bridge", &alice()).await.unwrap();
        assert!(store.delete(&id).await.unwrap());
        let seen = page("read.php", &id, &[("format", format.name())]).await;
        assert_eq!(seen["values"], serde_json::json!({}), "{format}");
        assert!(store.load(&id).await.unwrap().is_none());
        assert!(!store.delete(&id).await.unwrap());
    }
}

#[tokio::test]
async fn a_key_prefix_from_the_save_path() {
    let pool = pool().await;
    let store = store(&pool, Format::Php).with_prefix("legacy-app:");
    let id = new_session_id();
    page(
        "login.php",
        &id,
        &[("user", "11"), ("prefix", "legacy-app:")],
    )
    .await;
    let exists: i64 = pool.exists(format!("legacy-app:{id}")).await.unwrap();
    assert_eq!(exists, 1);
    let session = store.load(&id).await.unwrap().unwrap();
    assert_eq!(session.get("user_id"), Some(&Value::Int(11)));
    store.write_identity(&id, "bridge", &alice()).await.unwrap();
    let seen = page("read.php", &id, &[("prefix", "legacy-app:")]).await;
    assert_eq!(seen["values"]["bridge"]["sub"], "b3f1c2");
}

#[tokio::test]
async fn the_bridge_waits_for_php_session_locks() {
    let pool = pool().await;
    let store = store(&pool, Format::Php).with_locking(RedisLocking {
        max_wait: Duration::from_secs(10),
        ..RedisLocking::default()
    });
    let id = new_session_id();
    page("login.php", &id, &[("user", "5"), ("locking", "1")]).await;

    // A PHP request holds the session (and its lock) for 1.5 s, then
    // writes `held`.
    let holder = {
        let id = id.clone();
        tokio::spawn(async move {
            page(
                "hold.php",
                &id,
                &[("locking", "1"), ("ms", "1500"), ("value", "php")],
            )
            .await
        })
    };
    let lock_key = format!("{}_LOCK", store.key(&id));
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.exists::<i64, _>(&lock_key).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "PHP never took the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    store.write_identity(&id, "bridge", &alice()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "did not wait: {:?}",
        started.elapsed()
    );
    holder.await.unwrap();

    // Both writes landed: PHP's (made under its lock) and the bridge's
    // (made after it).
    let session = store.load(&id).await.unwrap().unwrap();
    assert_eq!(session.get("held"), Some(&Value::from("php")));
    assert_eq!(
        session.get_bridge_identity("bridge").unwrap(),
        Some(alice())
    );
    assert_eq!(
        pool.exists::<i64, _>(&lock_key).await.unwrap(),
        0,
        "lock released"
    );
}

#[tokio::test]
async fn a_lock_held_too_long_is_an_error_not_an_overwrite() {
    let pool = pool().await;
    let store = store(&pool, Format::Php).with_locking(RedisLocking {
        max_wait: Duration::from_millis(200),
        ..RedisLocking::default()
    });
    let id = new_session_id();
    let key = store.key(&id);
    pool.set::<(), _, _>(&key, "user_id|i:1;", None, None, false)
        .await
        .unwrap();
    // Someone else's lock (as phpredis writes it: host|pid).
    pool.set::<(), _, _>(format!("{key}_LOCK"), "web-1|4242", None, None, false)
        .await
        .unwrap();
    let err = store
        .write_identity(&id, "bridge", &alice())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(matches!(store.delete(&id).await, Err(Error::Locked { .. })));
    let data: Vec<u8> = pool.get(&key).await.unwrap();
    assert_eq!(data, b"user_id|i:1;");
    let lock: String = pool.get(format!("{key}_LOCK")).await.unwrap();
    assert_eq!(lock, "web-1|4242", "someone else's lock is left alone");
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let pool = pool().await;
    for locking in [false, true] {
        let mut store = store(&pool, Format::Php).with_max_attempts(50);
        if locking {
            store = store.with_locking(RedisLocking::default());
        }
        let id = new_session_id();
        let writers = (0..16).map(|i| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .update(&id, &mut |s: &mut PhpSession| {
                        s.insert(format!("k{i}"), i64::from(i));
                        Ok(())
                    })
                    .await
                    .unwrap();
            })
        });
        for w in writers.collect::<Vec<_>>() {
            w.await.unwrap();
        }
        let session = store.load(&id).await.unwrap().unwrap();
        assert_eq!(session.len(), 16, "locking={locking}");
    }
}

#[tokio::test]
async fn an_undecodable_record_is_not_overwritten() {
    let pool = pool().await;
    let store = store(&pool, Format::Php);
    let id = new_session_id();
    pool.set::<(), _, _>(store.key(&id), "igbinary\x00\x02garbage", None, None, false)
        .await
        .unwrap();
    assert!(matches!(store.load(&id).await, Err(Error::Decode { .. })));
    assert!(matches!(
        store.write_identity(&id, "bridge", &alice()).await,
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        store.load("bad id!").await,
        Err(Error::InvalidSessionId)
    ));
}

/// phpredis keys, seen through the pool.
struct RedisProbe {
    pool: Pool,
    store: PhpRedisStore,
}

#[async_trait::async_trait]
impl crate::index::Probe for RedisProbe {
    async fn set_expiry(&self, id: &str, at: i64) {
        let set: bool = self
            .pool
            .expire_at(self.store.key(id), at, None)
            .await
            .unwrap();
        assert!(set, "no record to expire");
    }

    async fn index(&self, sub: &str) -> Option<i64> {
        let key = format!("PHPREDIS_SESSION:session-bridge:user:{sub}");
        let ttl: i64 = self.pool.ttl(&key).await.unwrap();
        (ttl >= 0).then(|| crate::index::now() + ttl)
    }

    async fn hold_lock(&self, id: &str) {
        let _: () = self
            .pool
            .set(
                format!("{}_LOCK", self.store.key(id)),
                "php-request",
                Some(session_bridge_php::fred::types::Expiration::EX(30)),
                None,
                false,
            )
            .await
            .unwrap();
    }

    async fn lock_held(&self, id: &str) -> bool {
        let lock: Option<String> = self
            .pool
            .get(format!("{}_LOCK", self.store.key(id)))
            .await
            .unwrap();
        lock.as_deref() == Some("php-request")
    }
}

#[tokio::test]
async fn the_index_contract_on_phpredis() {
    let pool = pool().await;
    let store = store(&pool, Format::Php);
    let probe = RedisProbe {
        pool: pool.clone(),
        store: store.clone(),
    };
    crate::index::the_index_contract(&store, &probe).await;
    crate::index::lapsed_entries_follow_their_records(&store, &probe).await;
    let locking = store.clone().with_locking(RedisLocking::default());
    crate::index::the_touch_contract(&store, &locking, &probe).await;
}
