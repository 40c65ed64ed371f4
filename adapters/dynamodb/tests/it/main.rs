//! The conformance suite and footprint figures against the moto server that
//! `infra/harness.sh` starts (URL from the environment at run time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod down;
mod footprint;
mod moto;
mod tables;

use std::time::Duration;

use session_bridge_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use session_bridge_dynamodb::aws_sdk_dynamodb::{Client, Config};
use session_bridge_dynamodb::{
    DynamoDbStore, TableNames, create_tables, recommended_retries, recommended_timeouts,
};

/// An environment variable the harness sets; a clear failure when missing.
pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ./infra/test.sh (or source infra/harness.sh)"
        )
    })
}

/// A client for `endpoint` with the recommended timeouts and retries.
pub(crate) fn client(endpoint: &str, timeout: Duration) -> Client {
    let region = std::env::var("SB_AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .timeout_config(recommended_timeouts(timeout))
        .retry_config(recommended_retries())
        .build();
    Client::from_conf(config)
}

/// Table names of their own.
pub(crate) fn unique_tables() -> TableNames {
    let id = session_bridge_conformance::unique("t");
    TableNames {
        sessions: format!("{id}-sessions"),
        revocation: format!("{id}-revocation"),
    }
}

/// A store on the moto server with tables of its own.
pub(crate) async fn store() -> DynamoDbStore {
    let client = client(&env("SB_MOTO_URL"), Duration::from_secs(2));
    let tables = unique_tables();
    create_tables(&client, &tables)
        .await
        .expect("create tables");
    DynamoDbStore::new(client, tables)
}
