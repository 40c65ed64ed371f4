//! A store whose endpoint is not there.

use std::time::{Duration, Instant};

use session_bridge_dynamodb::{DynamoDbStore, TableNames};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_when_down() {
    let port = session_bridge_conformance::closed_port();
    let client = crate::client(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_millis(500),
    );
    let store = DynamoDbStore::new(client, TableNames::default());
    let started = Instant::now();
    session_bridge_conformance::unavailable_when_down(store).await;
    // 2 rounds of 10 calls, each bounded by the operation timeout.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}
