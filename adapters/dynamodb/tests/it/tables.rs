//! `create_tables`.

use session_bridge_dynamodb::aws_sdk_dynamodb::types::TimeToLiveStatus;
use session_bridge_dynamodb::create_tables;

#[tokio::test]
async fn create_tables_is_idempotent_and_enables_ttl() {
    let client = crate::client(
        &crate::env("SB_MOTO_URL"),
        std::time::Duration::from_secs(2),
    );
    let tables = crate::unique_tables();
    create_tables(&client, &tables).await.unwrap();
    create_tables(&client, &tables).await.expect("second run");
    for table in [&tables.sessions, &tables.revocation] {
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let description = ttl.time_to_live_description().unwrap();
        assert_eq!(description.attribute_name(), Some("expires_at"));
        assert_eq!(
            description.time_to_live_status(),
            Some(&TimeToLiveStatus::Enabled)
        );
    }
}
