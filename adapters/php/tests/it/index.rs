//! The contract of the per-user index and of `touch`, run by every store
//! (`php_redis.rs`, `dynamodb.rs`) with a [`Probe`] that looks at the
//! store's raw records.

use std::time::{SystemTime, UNIX_EPOCH};

use session_bridge_php::{BridgeIdentity, IndexedSession, PhpSessionStore, new_session_id};

/// Raw access to a store's records, for what the trait does not show.
#[async_trait::async_trait]
pub(crate) trait Probe: Sync {
    /// Set the expiry of session `id`'s record to `at` (Unix seconds).
    async fn set_expiry(&self, id: &str, at: i64);
    /// Whether `sub`'s index exists, and when it expires (Unix seconds).
    async fn index(&self, sub: &str) -> Option<i64>;
    /// Take PHP's lock of session `id`, as a PHP request would.
    async fn hold_lock(&self, id: &str);
    /// Whether PHP's lock of session `id` is held.
    async fn lock_held(&self, id: &str) -> bool;
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn user() -> BridgeIdentity {
    BridgeIdentity {
        sub: format!("user-{}", new_session_id()),
        username: Some("zoe".into()),
        groups: Vec::new(),
        auth_time: Some(1_767_225_600),
        iss: "https://idp.example".into(),
    }
}

fn entry(id: &str, family: &str, expires_at: i64) -> IndexedSession {
    IndexedSession {
        id: id.to_owned(),
        family: family.to_owned(),
        expires_at,
    }
}

/// A record holding `who`'s identity, indexed under `family`.
async fn started(store: &dyn PhpSessionStore, who: &BridgeIdentity, family: &str) -> String {
    let id = new_session_id();
    store
        .remember(&who.sub, &entry(&id, family, now() + 1440))
        .await
        .unwrap();
    store.write_identity(&id, "bridge", who).await.unwrap();
    id
}

fn sorted(mut v: Vec<IndexedSession>) -> Vec<IndexedSession> {
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// Entries are listed, raised, forgotten; the index expires with its
/// latest entry and goes when empty; logouts delete exactly the records
/// they name.
pub(crate) async fn the_index_contract(store: &dyn PhpSessionStore, probe: &dyn Probe) {
    let (zoe, other) = (user(), user());
    assert!(store.sessions_of(&zoe.sub).await.unwrap().is_empty());
    let a = started(store, &zoe, "fam-a").await;
    let a2 = started(store, &zoe, "fam-a").await;
    let b = started(store, &zoe, "fam-b").await;
    let o = started(store, &other, "fam-a").await;
    let listed = store.sessions_of(&zoe.sub).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let expiry = probe.index(&zoe.sub).await.expect("the index exists");
    assert!(
        (now() + 1430..=now() + 1441).contains(&expiry),
        "the index lives no longer than its entries: {expiry}"
    );

    // A later expiry raises an entry; an earlier one never lowers it.
    store
        .remember(&zoe.sub, &entry(&b, "fam-b", now() + 2000))
        .await
        .unwrap();
    store
        .remember(&zoe.sub, &entry(&b, "fam-b", now() + 100))
        .await
        .unwrap();
    let listed = store.sessions_of(&zoe.sub).await.unwrap();
    let eb = listed.iter().find(|e| e.id == b).unwrap();
    assert!(eb.expires_at >= now() + 1990, "{eb:?}");
    assert!(probe.index(&zoe.sub).await.unwrap() >= now() + 1990);

    // A family's logout ends that family's records only.
    assert_eq!(
        store
            .end_sessions_of(&zoe.sub, Some("fam-a"))
            .await
            .unwrap(),
        2
    );
    for (id, alive) in [(&a, false), (&a2, false), (&b, true), (&o, true)] {
        assert_eq!(store.load(id).await.unwrap().is_some(), alive);
    }
    let left: Vec<String> = store
        .sessions_of(&zoe.sub)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![b.clone()]);

    // Everywhere: the rest, and the index with them; other users untouched.
    assert_eq!(store.end_sessions_of(&zoe.sub, None).await.unwrap(), 1);
    assert!(store.load(&b).await.unwrap().is_none());
    assert!(probe.index(&zoe.sub).await.is_none(), "the index is gone");
    assert!(store.load(&o).await.unwrap().is_some());
    assert_eq!(store.sessions_of(&other.sub).await.unwrap().len(), 1);
    // Nothing indexed: nothing to end.
    assert_eq!(store.end_sessions_of(&zoe.sub, None).await.unwrap(), 0);
}

/// An entry past its expiry is kept, with its record's expiry, while PHP
/// keeps the record alive, and dropped once the record is gone.
pub(crate) async fn lapsed_entries_follow_their_records(
    store: &dyn PhpSessionStore,
    probe: &dyn Probe,
) {
    let zoe = user();
    // `keeper` keeps the index alive (it expires with its latest entry).
    let keeper = started(store, &zoe, "f").await;
    let alive = new_session_id();
    store.write_identity(&alive, "bridge", &zoe).await.unwrap();
    let gone = new_session_id();
    for id in [&alive, &gone] {
        store
            .remember(&zoe.sub, &entry(id, "f", now() + 1))
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // Both entries lapsed; PHP kept `alive`'s record alive meanwhile.
    probe.set_expiry(&alive, now() + 1000).await;
    let fresh = started(store, &zoe, "f").await;
    let listed = sorted(store.sessions_of(&zoe.sub).await.unwrap());
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    let mut expected = vec![keeper.as_str(), alive.as_str(), fresh.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let e = listed.iter().find(|e| e.id == alive).unwrap();
    assert!(
        (now() + 990..=now() + 1001).contains(&e.expires_at),
        "{e:?}"
    );
}

/// `touch` extends a live record to a full lifetime, reports it, never
/// brings a missing record back, and leaves a record alone while PHP holds
/// its lock.
pub(crate) async fn the_touch_contract(
    store: &dyn PhpSessionStore,
    locking: &dyn PhpSessionStore,
    probe: &dyn Probe,
) {
    let zoe = user();
    let id = started(store, &zoe, "f").await;
    probe.set_expiry(&id, now() + 100).await;
    let record = store.load_record(&id).await.unwrap().unwrap();
    let before = record.expires_at.unwrap();
    assert!((now() + 95..=now() + 101).contains(&before), "{before}");

    let extended = store.touch(&id).await.unwrap().expect("extended");
    assert!((now() + 1435..=now() + 1441).contains(&extended));
    let after = store.load_record(&id).await.unwrap().unwrap();
    assert!((after.expires_at.unwrap() - extended).abs() <= 1);
    assert_eq!(
        after.session.get_bridge_identity("bridge").unwrap(),
        Some(zoe.clone()),
        "the data is untouched"
    );

    let missing = new_session_id();
    assert_eq!(store.touch(&missing).await.unwrap(), None);
    assert!(store.load(&missing).await.unwrap().is_none());

    // With locking: a PHP request holds the session; it will extend the
    // record itself, so the bridge leaves it (and the lock) alone.
    probe.set_expiry(&id, now() + 100).await;
    probe.hold_lock(&id).await;
    assert_eq!(locking.touch(&id).await.unwrap(), None);
    let held = store.load_record(&id).await.unwrap().unwrap();
    assert!(held.expires_at.unwrap() <= now() + 101);
    assert!(probe.lock_held(&id).await, "PHP's lock is not ours to take");
    // Free again: extended under the lock, which is released.
    let other = started(store, &zoe, "f").await;
    probe.set_expiry(&other, now() + 100).await;
    let extended = locking.touch(&other).await.unwrap().expect("extended");
    assert!(extended >= now() + 1435);
    assert!(!probe.lock_held(&other).await, "the lock is released");
}
