//! Revocation cases: the [`RevocationStore`] contract.

use std::time::Duration as StdDuration;

use session_bridge_store::{Change, Cursor, Epoch, RevocationStore, StoreResult};
use time::{Duration, OffsetDateTime};

use crate::{unique, within};

fn ok<T>(what: &str, result: StoreResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e} ({e:?})"))
}

/// Now plus `secs`, in whole seconds.
fn at(secs: i64) -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() + Duration::seconds(secs);
    t.replace_nanosecond(0).unwrap_or(t)
}

fn now_millis() -> Epoch {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Read bumps back; a lower bump leaves the epoch where it was.
pub async fn epoch_bumps_are_monotonic<S: RevocationStore>(store: S) {
    let user = unique("user");
    assert_eq!(ok("epoch", within("epoch", store.epoch(&user)).await), None);
    let base = now_millis();
    let first = ok("bump", within("bump", store.bump_epoch(&user, base)).await);
    assert_eq!(first, base);
    assert_eq!(
        ok("epoch", within("epoch", store.epoch(&user)).await),
        Some(base)
    );
    let lower = ok(
        "bump",
        within("bump", store.bump_epoch(&user, base - 1000)).await,
    );
    assert_eq!(lower, base, "a lower bump returns the stored epoch");
    let same = ok("bump", within("bump", store.bump_epoch(&user, base)).await);
    assert_eq!(same, base);
    let higher = ok(
        "bump",
        within("bump", store.bump_epoch(&user, base + 1)).await,
    );
    assert_eq!(higher, base + 1);
    assert_eq!(
        ok("epoch", within("epoch", store.epoch(&user)).await),
        Some(base + 1)
    );
    // Another user is untouched.
    assert_eq!(
        ok("epoch", within("epoch", store.epoch(&unique("user"))).await),
        None
    );
}

/// 50 concurrent bumps to different values end at the maximum; every bump
/// returns at least its own value and a concurrent reader never sees the
/// epoch move backwards.
pub async fn epoch_concurrent_bumps_end_at_max<S: RevocationStore + Clone>(store: S) {
    const WRITERS: i64 = 50;
    let user = unique("user");
    let base = now_millis();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let reader = {
        let (store, user, done) = (store.clone(), user.clone(), done.clone());
        tokio::spawn(async move {
            let mut last: Option<Epoch> = None;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let seen = ok("epoch", within("epoch", store.epoch(&user)).await);
                assert!(seen >= last, "epoch moved backwards: {last:?} -> {seen:?}");
                last = seen;
            }
        })
    };

    // Interleave values so that high and low bumps race each other.
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let value = base + if i % 2 == 0 { i } else { WRITERS - i };
        let (store, user) = (store.clone(), user.clone());
        writers.push(tokio::spawn(async move {
            let stored = ok("bump", within("bump", store.bump_epoch(&user, value)).await);
            assert!(stored >= value, "bump to {value} returned {stored}");
        }));
    }
    for w in writers {
        w.await.expect("writer task");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.await.expect("reader task");

    assert_eq!(
        ok("epoch", within("epoch", store.epoch(&user)).await),
        Some(base + WRITERS - 1)
    );
}

/// A killed id is killed until its expiry and not after; a kill never
/// shortens an earlier, longer one.
pub async fn killed_ids_expire<S: RevocationStore>(store: S) {
    let short = unique("jti");
    let extended = unique("jti");
    let kept = unique("jti");
    let past = unique("jti");

    assert!(!ok(
        "is_killed",
        within("is_killed", store.is_killed(&short)).await
    ));

    ok("kill", within("kill", store.kill(&short, at(2))).await);
    ok("kill", within("kill", store.kill(&extended, at(2))).await);
    ok("kill", within("kill", store.kill(&extended, at(120))).await);
    ok("kill", within("kill", store.kill(&kept, at(120))).await);
    ok("kill", within("kill", store.kill(&kept, at(2))).await);
    ok("kill", within("kill", store.kill(&past, at(-5))).await);

    for id in [&short, &extended, &kept] {
        assert!(
            ok("is_killed", within("is_killed", store.is_killed(id)).await),
            "{id} killed"
        );
    }
    assert!(
        !ok(
            "is_killed",
            within("is_killed", store.is_killed(&past)).await
        ),
        "an id killed until the past is not killed"
    );

    tokio::time::sleep(StdDuration::from_millis(3100)).await;
    assert!(
        !ok(
            "is_killed",
            within("is_killed", store.is_killed(&short)).await
        ),
        "kill expired"
    );
    assert!(
        ok(
            "is_killed",
            within("is_killed", store.is_killed(&extended)).await
        ),
        "a later kill extends"
    );
    assert!(
        ok(
            "is_killed",
            within("is_killed", store.is_killed(&kept)).await
        ),
        "a shorter kill does not shorten"
    );
}

/// Read the log from `since` to its end with pages of `limit`, keeping the
/// changes that mention one of `names`.
async fn read_log<S: RevocationStore>(
    store: &S,
    since: Cursor,
    limit: usize,
    names: &[&str],
) -> (Vec<Change>, Cursor) {
    let mut cursor = since;
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let batch = ok(
            "changes_since",
            within("changes_since", store.changes_since(cursor, limit)).await,
        );
        if batch.changes.is_empty() {
            assert_eq!(batch.next, cursor, "an empty page keeps the cursor");
            return (out, cursor);
        }
        assert!(batch.next > cursor, "a non-empty page moves the cursor");
        cursor = batch.next;
        out.extend(batch.changes.into_iter().filter(|c| match c {
            Change::Epoch { user, .. } => names.contains(&user.as_str()),
            Change::Killed { id, .. } => names.contains(&id.as_str()),
            _ => false,
        }));
    }
    panic!("changes_since never reached the end of the log");
}

async fn write_changes<S: RevocationStore>(store: &S, user: &str, jti: &str) -> Vec<Change> {
    let killed_until = at(600);
    let base = now_millis();
    ok("bump", within("bump", store.bump_epoch(user, base)).await);
    ok("kill", within("kill", store.kill(jti, killed_until)).await);
    ok(
        "bump",
        within("bump", store.bump_epoch(user, base + 10)).await,
    );
    // No change: not logged.
    ok(
        "bump",
        within("bump", store.bump_epoch(user, base + 5)).await,
    );
    ok(
        "bump",
        within("bump", store.bump_epoch(user, base + 20)).await,
    );
    vec![
        Change::Epoch {
            user: user.to_owned(),
            epoch: base,
        },
        Change::Killed {
            id: jti.to_owned(),
            expires_at: killed_until,
        },
        Change::Epoch {
            user: user.to_owned(),
            epoch: base + 10,
        },
        Change::Epoch {
            user: user.to_owned(),
            epoch: base + 20,
        },
    ]
}

/// Epoch raises and kills appear in `changes_since`, in the order they were
/// made; a bump that changes nothing is not logged.
pub async fn changes_since_in_order<S: RevocationStore>(store: S) {
    let (user, jti) = (unique("user"), unique("jti"));
    let names = [user.as_str(), jti.as_str()];
    let (_, start) = read_log(&store, Cursor::START, 1000, &names).await;
    // A cursor names a millisecond: keep our changes out of the last one read.
    tokio::time::sleep(StdDuration::from_millis(5)).await;

    let expected = write_changes(&store, &user, &jti).await;
    let (seen, end) = read_log(&store, start, 1000, &names).await;
    assert_eq!(seen, expected);
    let (again, _) = read_log(&store, end, 1000, &names).await;
    assert!(again.is_empty(), "nothing after the end: {again:?}");
}

/// Reading the log in small pages loses and repeats nothing, also when
/// several changes share a millisecond.
pub async fn changes_since_pages_without_loss<S: RevocationStore>(store: S) {
    let (user, jti) = (unique("user"), unique("jti"));
    let names = [user.as_str(), jti.as_str()];
    let (_, start) = read_log(&store, Cursor::START, 1000, &names).await;
    tokio::time::sleep(StdDuration::from_millis(5)).await;

    let expected = write_changes(&store, &user, &jti).await;
    for limit in [1, 2, 3] {
        let (seen, _) = read_log(&store, start, limit, &names).await;
        assert_eq!(seen, expected, "pages of {limit}");
    }
}

/// Non-ASCII user names and token ids.
pub async fn unicode_revocation<S: RevocationStore>(store: S) {
    let user = unique("Zoë 🦀 ユーザー");
    let jti = unique("jtï:{slot}*?[]");
    let epoch = now_millis();
    assert_eq!(
        ok("bump", within("bump", store.bump_epoch(&user, epoch)).await),
        epoch
    );
    assert_eq!(
        ok("epoch", within("epoch", store.epoch(&user)).await),
        Some(epoch)
    );
    ok("kill", within("kill", store.kill(&jti, at(60))).await);
    assert!(ok(
        "is_killed",
        within("is_killed", store.is_killed(&jti)).await
    ));
    assert!(
        !ok(
            "is_killed",
            within("is_killed", store.is_killed(&jti.to_uppercase())).await
        ),
        "ids are compared exactly"
    );
}

/// `ping` answers.
pub async fn ping_works<S: RevocationStore>(store: S) {
    ok("ping", within("ping", store.ping()).await);
}
