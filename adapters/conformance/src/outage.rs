//! Cases for stores with a server: what callers see while it is down and
//! after it comes back.

use std::future::Future;
use std::time::{Duration, Instant};

use session_bridge_store::{Id, RevocationStore, SessionStore, StoreError, StoreResult};
use time::OffsetDateTime;

use crate::sessions::identity_only_record;
use crate::{unique, within};

/// A local TCP port that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn unavailable<T: std::fmt::Debug>(what: &str, result: StoreResult<T>) -> StoreError {
    match result {
        Ok(value) => panic!("{what} succeeded against a down store: {value:?}"),
        Err(e) => {
            assert!(
                e.is_unavailable(),
                "{what}: expected Unavailable, got {e:?}"
            );
            e
        }
    }
}

async fn every_call_fails<S: SessionStore + RevocationStore>(store: &S) {
    let mut rec = identity_only_record();
    let id = Id::default();
    assert!(within("create", store.create(&mut rec)).await.is_err());
    assert!(within("load", store.load(&id)).await.is_err());
    assert!(within("save", store.save(&rec)).await.is_err());
    assert!(within("delete", store.delete(&id)).await.is_err());

    let user = unique("user");
    unavailable("epoch", within("epoch", store.epoch(&user)).await);
    unavailable("bump", within("bump", store.bump_epoch(&user, 1)).await);
    let until = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    unavailable("kill", within("kill", store.kill("jti", until)).await);
    unavailable(
        "is_killed",
        within("is_killed", store.is_killed("jti")).await,
    );
    unavailable(
        "changes_since",
        within("changes_since", store.changes_since(Default::default(), 10)).await,
    );
    let err = unavailable("ping", within("ping", store.ping()).await);
    // The message names the store, for the log line of a 503.
    assert!(err.to_string().contains("unavailable"), "{err}");
}

/// Every call on a store whose server is unreachable fails within
/// [`CALL_TIMEOUT`](crate::CALL_TIMEOUT): revocation calls with
/// [`StoreError::Unavailable`], session calls with an error. No call panics
/// or hangs.
pub async fn unavailable_when_down<S: SessionStore + RevocationStore>(store: S) {
    every_call_fails(&store).await;
    // Still failing (not panicking, not hanging) the second time round.
    every_call_fails(&store).await;
}

async fn works<S: SessionStore + RevocationStore>(store: &S) -> Result<(), String> {
    let mut rec = identity_only_record();
    store.create(&mut rec).await.map_err(|e| e.to_string())?;
    let loaded = store.load(&rec.id).await.map_err(|e| e.to_string())?;
    if loaded.as_ref() != Some(&rec) {
        return Err(format!("loaded {loaded:?}"));
    }
    let user = unique("user");
    store
        .bump_epoch(&user, 7)
        .await
        .map_err(|e| e.to_string())?;
    if store.epoch(&user).await.map_err(|e| e.to_string())? != Some(7) {
        return Err("epoch not stored".to_owned());
    }
    store.ping().await.map_err(|e| e.to_string())
}

/// The same store value fails while its server is down and works again
/// after it is back, without being rebuilt.
///
/// `ctl("stop")` and `ctl("start")` stop and start the server (same address).
pub async fn survives_restart<S, F, Fut>(store: S, ctl: F)
where
    S: SessionStore + RevocationStore,
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    works(&store).await.expect("store works before the restart");

    ctl("stop").await;
    every_call_fails(&store).await;

    ctl("start").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), works(&store)).await {
            Ok(Ok(())) => break,
            Ok(Err(e)) if Instant::now() < deadline => {
                eprintln!("not back yet: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(Err(e)) => panic!("store did not recover after the server came back: {e}"),
            Err(_) => panic!("a call hung after the server came back"),
        }
    }
    // And keeps working.
    works(&store).await.expect("store works after the restart");
}
