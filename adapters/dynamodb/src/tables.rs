//! Creating the two tables.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use session_bridge_store::{StoreError, StoreResult};

use crate::TableNames;
use crate::error::{STORE, backend, sdk_error};
use crate::revocation::{PK, SK};
use crate::sessions::{EXPIRES_AT, ID};

/// How long [`create_tables`] waits for a table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: Box::new(e),
    }
}

/// Create the sessions and revocation tables (on-demand capacity) and turn
/// on their TTL attribute (`expires_at`), then wait until both are active.
///
/// Idempotent: existing tables are left as they are (their TTL is turned on
/// when it is off), so it can run at every deployment.
///
/// ```no_run
/// # async fn demo(client: &session_bridge_dynamodb::aws_sdk_dynamodb::Client)
/// # -> Result<(), session_bridge_dynamodb::StoreError> {
/// use session_bridge_dynamodb::{TableNames, create_tables};
/// create_tables(client, &TableNames::default()).await?;
/// # Ok(()) }
/// ```
pub async fn create_tables(client: &Client, tables: &TableNames) -> StoreResult<()> {
    create_table(
        client,
        &tables.sessions,
        &[(ID, ScalarAttributeType::S, KeyType::Hash)],
    )
    .await?;
    create_table(
        client,
        &tables.revocation,
        &[
            (PK, ScalarAttributeType::S, KeyType::Hash),
            (SK, ScalarAttributeType::N, KeyType::Range),
        ],
    )
    .await?;
    for table in [&tables.sessions, &tables.revocation] {
        wait_active(client, table).await?;
        enable_ttl(client, table).await?;
    }
    Ok(())
}

async fn create_table(
    client: &Client,
    name: &str,
    keys: &[(&str, ScalarAttributeType, KeyType)],
) -> StoreResult<()> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind, key_type) in keys {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*attribute)
                    .attribute_type(kind.clone())
                    .build()
                    .map_err(build_error)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*attribute)
                    .key_type(key_type.clone())
                    .build()
                    .map_err(build_error)?,
            );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::debug!(table = name, "table exists");
            Ok(())
        }
        Err(e) => Err(sdk_error(e)),
    }
}

/// Poll `DescribeTable` (the SDK's waiter waits at least 20 s).
async fn wait_active(client: &Client, name: &str) -> StoreResult<()> {
    let deadline = Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let output = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(sdk_error)?;
        let status = output.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(backend("table did not become active in time"));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn enable_ttl(client: &Client, name: &str) -> StoreResult<()> {
    let output = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(sdk_error)?;
    let status = output
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(EXPIRES_AT)
                .enabled(true)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}
