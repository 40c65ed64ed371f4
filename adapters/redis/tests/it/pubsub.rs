//! Every revocation change is announced on the store's channel.

use std::time::Duration;

use session_bridge_conformance::{RevocationStore, unique};
use session_bridge_redis::fred::prelude::*;
use time::OffsetDateTime;

#[tokio::test]
async fn changes_are_published() {
    let store = crate::store("SB_REDIS_URL").await;
    let config = Config::from_url(&crate::env("SB_REDIS_URL")).unwrap();
    let subscriber = Builder::from_config(config).build().unwrap();
    subscriber.init().await.unwrap();
    let mut messages = subscriber.message_rx();
    subscriber.subscribe(store.changes_channel()).await.unwrap();

    let (user, jti) = (unique("user é"), unique("jti"));
    store.bump_epoch(&user, 42).await.unwrap();
    store.bump_epoch(&user, 41).await.unwrap(); // no change, no message
    let until =
        OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp() + 60)
            .unwrap();
    store.kill(&jti, until).await.unwrap();

    let mut next = async || {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.recv())
            .await
            .expect("a message within 5 s")
            .unwrap();
        assert_eq!(&*message.channel, store.changes_channel().as_str());
        message.value.as_string().unwrap()
    };
    let first = next().await;
    let (entry, rest) = first.split_once(' ').unwrap();
    assert!(entry.contains('-'), "stream entry id first: {first}");
    assert_eq!(rest, format!("epoch 42 {user}"));
    let second = next().await;
    assert_eq!(
        second.split_once(' ').unwrap().1,
        format!("killed {} {jti}", until.unix_timestamp())
    );
}
