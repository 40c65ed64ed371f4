//! Bytes DynamoDB bills for one identity-only session (printed; run with
//! `--nocapture` to see the figure).

use std::collections::HashMap;

use session_bridge_conformance::{SessionStore, identity_only_record};
use session_bridge_dynamodb::aws_sdk_dynamodb::types::AttributeValue;

/// Item size by DynamoDB's rules: attribute names plus values (strings and
/// binaries by length; numbers 1 byte per 2 significant digits plus 1).
fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::N(n) => {
                        let digits = n.trim_start_matches('-').trim_matches('0').replace('.', "");
                        digits.len().div_ceil(2) + 1
                    }
                    other => panic!("unexpected attribute {other:?}"),
                }
        })
        .sum()
}

#[tokio::test]
async fn identity_only_session_size() {
    let store = crate::store().await;
    let mut record = identity_only_record();
    store.create(&mut record).await.unwrap();
    let item = store
        .client()
        .get_item()
        .table_name(&store.tables().sessions)
        .key("id", AttributeValue::S(record.id.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let size = item_size(&item);
    let data = item["data"].as_b().unwrap().as_ref().len();
    println!("dynamodb identity-only session: item {size} bytes (data attribute {data} bytes)");
    assert!(size < 1024, "{size}");
}
