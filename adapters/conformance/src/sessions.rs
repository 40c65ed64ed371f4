//! Session cases: the `tower_sessions_core::SessionStore` contract as
//! session-bridge relies on it.

use std::collections::HashMap;

use serde_json::{Value, json};
use session_bridge_store::{Id, Record, SessionStore};
use time::{Duration, OffsetDateTime};

use crate::{unique, within};

/// Now plus `secs`, in whole seconds: what every store can keep exactly.
fn expiry_in(secs: i64) -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() + Duration::seconds(secs);
    t.replace_nanosecond(0).unwrap_or(t)
}

fn record(data: HashMap<String, Value>, expiry_date: OffsetDateTime) -> Record {
    Record {
        id: Id::default(),
        data,
        expiry_date,
    }
}

/// A session holding only the bridge identity (what a login creates): the
/// record whose stored size the adapters report.
pub fn identity_only_record() -> Record {
    let mut data = HashMap::new();
    data.insert(
        "bridge.identity".to_owned(),
        json!({
            "sub": "8f1e2c34-5b6a-4d7e-9f80-1a2b3c4d5e6f",
            "username": "alice",
            "groups": ["admins", "editors"],
            "auth_time": 1_764_417_600,
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI",
        }),
    );
    record(data, expiry_in(3600))
}

async fn load<S: SessionStore>(store: &S, id: &Id) -> Option<Record> {
    within("load", store.load(id))
        .await
        .unwrap_or_else(|e| panic!("load failed: {e}"))
}

async fn create<S: SessionStore>(store: &S, record: &mut Record) {
    within("create", store.create(record))
        .await
        .unwrap_or_else(|e| panic!("create failed: {e}"));
}

/// Create, load, save a change, load it back, delete, and load nothing.
pub async fn create_load_save_delete<S: SessionStore>(store: S) {
    let missing = Id::default();
    assert_eq!(
        load(&store, &missing).await,
        None,
        "unknown id loads nothing"
    );

    let mut rec = identity_only_record();
    create(&store, &mut rec).await;
    assert_eq!(load(&store, &rec.id).await, Some(rec.clone()), "created");

    rec.data.insert("counter".to_owned(), json!(1));
    rec.expiry_date = expiry_in(7200);
    within("save", store.save(&rec)).await.expect("save");
    assert_eq!(load(&store, &rec.id).await, Some(rec.clone()), "saved");

    within("delete", store.delete(&rec.id))
        .await
        .expect("delete");
    assert_eq!(load(&store, &rec.id).await, None, "deleted");
    within("delete again", store.delete(&rec.id))
        .await
        .expect("deleting a missing id is not an error");
}

/// A record whose expiry has passed is never returned, even when the backend
/// still holds it (DynamoDB deletes expired items late).
pub async fn expired_record_is_never_returned<S: SessionStore>(store: S) {
    let mut rec = identity_only_record();
    create(&store, &mut rec).await;
    rec.expiry_date = expiry_in(-60);
    within("save expired", store.save(&rec))
        .await
        .expect("saving an expired record is not an error");
    assert_eq!(load(&store, &rec.id).await, None, "expired via save");

    let mut born_dead = record(HashMap::new(), expiry_in(-60));
    create(&store, &mut born_dead).await;
    assert_eq!(load(&store, &born_dead.id).await, None, "created expired");

    // Expiring while stored.
    let mut short = identity_only_record();
    short.expiry_date = expiry_in(2);
    create(&store, &mut short).await;
    assert!(
        load(&store, &short.id).await.is_some(),
        "live before expiry"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(load(&store, &short.id).await, None, "expired while stored");
}

/// Creating a record whose id is taken never overwrites the stored record:
/// the new record gets a fresh id.
pub async fn create_never_overwrites<S: SessionStore>(store: S) {
    let mut first = identity_only_record();
    create(&store, &mut first).await;
    let taken = first.id;

    let mut data = HashMap::new();
    data.insert("other".to_owned(), json!("record"));
    let mut second = record(data, expiry_in(600));
    second.id = taken;
    create(&store, &mut second).await;

    assert_ne!(second.id, taken, "create must pick a new id on collision");
    assert_eq!(load(&store, &taken).await, Some(first), "first kept");
    assert_eq!(
        load(&store, &second.id).await,
        Some(second),
        "second stored"
    );
}

/// A 256 KiB record round-trips.
pub async fn large_record<S: SessionStore>(store: S) {
    let mut data = HashMap::new();
    let big: String = "0123456789abcdef".repeat(256 * 1024 / 16);
    data.insert("big".to_owned(), json!(big));
    let mut rec = record(data, expiry_in(600));
    create(&store, &mut rec).await;
    assert_eq!(load(&store, &rec.id).await, Some(rec));
}

/// Non-ASCII keys and values round-trip unchanged.
pub async fn unicode_data<S: SessionStore>(store: S) {
    let mut data = HashMap::new();
    data.insert("名前".to_owned(), json!("Zoë Ünïcødé 🦀"));
    data.insert(
        "emoji 🔑".to_owned(),
        json!({"ключ": ["значение", "ß", "\u{0}"]}),
    );
    data.insert(unique("키"), json!(null));
    let mut rec = record(data, expiry_in(600));
    create(&store, &mut rec).await;
    assert_eq!(load(&store, &rec.id).await, Some(rec.clone()));
    rec.data.insert("مرحبا".to_owned(), json!("עולם"));
    within("save", store.save(&rec)).await.expect("save");
    assert_eq!(load(&store, &rec.id).await, Some(rec));
}

/// Saving a record that was deleted meanwhile (a logout on another request)
/// or that expired is not an error. Whether the store writes it is its own
/// choice (Redis and DynamoDB do not bring it back).
pub async fn save_after_delete_is_not_an_error<S: SessionStore>(store: S) {
    let mut rec = identity_only_record();
    create(&store, &mut rec).await;
    within("delete", store.delete(&rec.id))
        .await
        .expect("delete");
    within("save", store.save(&rec))
        .await
        .expect("saving a deleted record is not an error");
    let never = identity_only_record();
    within("save", store.save(&never))
        .await
        .expect("saving a never-created record is not an error");
}
