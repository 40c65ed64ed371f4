//! aws-sdk-php's DynamoDB session items on moto. Reference items are
//! written with boto3 (the harness's `$SB_PYTHON`) making exactly the calls
//! aws-sdk-php makes: `StandardSessionConnection::write` (an `UpdateItem`
//! with `AttributeUpdates`: `expires`, `data`, `lock` DELETE) and
//! `LockingSessionConnection::read` (an `UpdateItem` setting `lock` with
//! `Expected: lock does not exist`).

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use session_bridge_php::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use session_bridge_php::aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use session_bridge_php::aws_sdk_dynamodb::{Client, Config};
use session_bridge_php::{
    BridgeIdentity, DataType, DynamoLayout, DynamoLocking, EncodeProblem, Error, LoginMapping,
    PhpDynamoDbStore, PhpSession, PhpSessionStore, Value, new_session_id,
};

use crate::{PHP_CLI_SESSION, env, php};

/// boto3, as aws-sdk-php calls DynamoDB. `op` and a JSON argument.
const BOTO: &str = r#"
import base64, json, os, sys, boto3
c = boto3.client("dynamodb", endpoint_url=os.environ["SB_MOTO_URL"],
                 region_name=os.environ.get("SB_AWS_REGION", "us-east-1"),
                 aws_access_key_id="test", aws_secret_access_key="test")
op, a = sys.argv[1], json.loads(sys.argv[2])
key = {"id": {"S": a["id"]}}
if op == "write":  # StandardSessionConnection::write($id, $data, true)
    data = base64.b64decode(a["data"])
    if a.get("binary"):
        # moto stores a B value given in AttributeUpdates as the text of its
        # Python repr; PutItem gives the item aws-sdk-php's UpdateItem makes.
        c.put_item(TableName=a["table"], Item={**key, "expires": {"N": str(a["expires"])}, "data": {"B": data}})
    else:
        attrs = {"expires": {"Value": {"N": str(a["expires"])}}, "lock": {"Action": "DELETE"},
                 "data": {"Value": {"S": data.decode()}}}
        c.update_item(TableName=a["table"], Key=key, AttributeUpdates=attrs)
elif op == "lock":  # LockingSessionConnection::read($id), one attempt
    c.update_item(TableName=a["table"], Key=key, Expected={"lock": {"Exists": False}},
                  AttributeUpdates={"lock": {"Value": {"N": "1"}}}, ReturnValues="ALL_NEW")
elif op == "get":
    item = c.get_item(TableName=a["table"], Key=key, ConsistentRead=True).get("Item")
    out = None
    if item is not None:
        out = {}
        for name, v in item.items():
            (t, x), = v.items()
            out[name] = {t: base64.b64encode(x).decode() if t == "B" else x}
    print(json.dumps(out))
"#;

fn boto(op: &str, arg: serde_json::Value) -> serde_json::Value {
    let out = Command::new(env("SB_PYTHON"))
        .args(["-c", BOTO, op, &arg.to_string()])
        .output()
        .expect("run $SB_PYTHON");
    assert!(
        out.status.success(),
        "boto3 {op}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn client() -> Client {
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            std::env::var("SB_AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(env("SB_MOTO_URL"))
        .build();
    Client::from_conf(config)
}

/// A table as aws-sdk-php's docs create it: hash key `id` (S).
async fn table(client: &Client) -> String {
    let name = format!("php-sessions-{}", new_session_id());
    client
        .create_table()
        .table_name(&name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    name
}

async fn store() -> (PhpDynamoDbStore, String) {
    let client = client();
    let table = table(&client).await;
    let layout = DynamoLayout {
        table: table.clone(),
        ..DynamoLayout::default()
    };
    (PhpDynamoDbStore::new(client, layout), table)
}

fn alice() -> BridgeIdentity {
    BridgeIdentity {
        sub: "b3f1c2".into(),
        username: Some("alice".into()),
        groups: vec!["staff".into()],
        auth_time: Some(1_767_225_600),
        iss: "https://idp.example".into(),
    }
}

/// A UTF-8 session as PHP writes it at login: the user, an object that
/// refers to itself and appears twice, a PHP reference, a float.
fn php_login_data() -> Vec<u8> {
    let code = format!(
        r#"{PHP_CLI_SESSION}
$o = new stdClass; $o->items = ['apple' => 2]; $o->self = $o;
$_SESSION['user_id'] = 42;
$_SESSION['username'] = 'alice';
$_SESSION['cart'] = $o;
$_SESSION['cart_again'] = $o;
$_SESSION['alias'] = &$_SESSION['username'];
$_SESSION['price'] = 0.1;
echo session_encode();"#
    );
    php(&code, &["php"], b"")
}

/// What PHP makes of session data read from the item.
fn php_reads(data: &[u8]) -> serde_json::Value {
    let code = format!(
        r#"{PHP_CLI_SESSION}
session_decode(stream_get_contents(STDIN));
$s = &$_SESSION;
$a = ReflectionReference::fromArrayElement($s, 'alias');
$u = ReflectionReference::fromArrayElement($s, 'username');
echo json_encode([
    'cart' => $s['cart']->self === $s['cart'] && $s['cart_again'] === $s['cart'],
    'alias' => $a !== null && $u !== null && $a->getId() === $u->getId(),
    'bridge' => $s['bridge'] ?? null,
    'theme' => $s['theme'] ?? null,
    'hex' => bin2hex(session_encode()),
]);"#
    );
    serde_json::from_slice(&php(&code, &["php"], data)).unwrap()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn item_of(table: &str, store: &PhpDynamoDbStore, id: &str) -> serde_json::Value {
    boto("get", json!({"table": table, "id": store.item_id(id)}))
}

#[tokio::test]
async fn items_as_aws_sdk_php_writes_them() {
    let (store, table) = store().await;
    let id = new_session_id();
    assert_eq!(store.item_id(&id), format!("PHPSESSID_{id}"));
    let data = php_login_data();
    let expires = now() + 1440;
    boto(
        "write",
        json!({"table": table, "id": store.item_id(&id), "expires": expires, "data": b64(&data)}),
    );

    // A login PHP recorded is accepted through the mapping.
    let session = store.load(&id).await.unwrap().expect("PHP's session");
    let login = session
        .identity_from_mapping(&LoginMapping::default())
        .unwrap()
        .unwrap();
    assert_eq!(login.sub, "42");

    // The bridge's identity is added; PHP's bytes are kept.
    store.write_identity(&id, "bridge", &alice()).await.unwrap();
    let item = item_of(&table, &store, &id);
    let names: Vec<&String> = item.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 3, "id, data, expires only: {item}");
    assert_eq!(item["id"]["S"], store.item_id(&id));
    let written = item["data"]["S"].as_str().unwrap().as_bytes().to_vec();
    assert!(written.starts_with(&data));
    let new_expires: i64 = item["expires"]["N"].as_str().unwrap().parse().unwrap();
    assert!(
        (now() + 1430..=now() + 1441).contains(&new_expires),
        "{new_expires}"
    );

    // PHP reads it all back, and would write back exactly these bytes.
    let seen = php_reads(&written);
    assert_eq!(seen["cart"], true);
    assert_eq!(seen["alias"], true);
    assert_eq!(seen["bridge"]["sub"], "b3f1c2");
    assert_eq!(seen["hex"], hex(&written));

    // PHP writes again (as a later request would): both survive.
    let mut later = PhpSession::decode(
        session_bridge_php::Format::Php,
        &written,
        &Default::default(),
    )
    .unwrap();
    later.insert("theme", "dark");
    let later = later.encode().unwrap();
    boto(
        "write",
        json!({"table": table, "id": store.item_id(&id), "expires": now() + 1440, "data": b64(&later)}),
    );
    let session = store.load(&id).await.unwrap().unwrap();
    assert_eq!(
        session.get_bridge_identity("bridge").unwrap(),
        Some(alice())
    );
    assert_eq!(session.get("theme"), Some(&Value::from("dark")));

    // Logout ends it.
    assert!(store.delete(&id).await.unwrap());
    assert_eq!(item_of(&table, &store, &id), serde_json::Value::Null);
    assert!(store.load(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn expired_items_are_absent() {
    let (store, table) = store().await;
    let id = new_session_id();
    boto(
        "write",
        json!({"table": table, "id": store.item_id(&id), "expires": now() - 1, "data": b64(b"user_id|i:1;")}),
    );
    assert!(store.load(&id).await.unwrap().is_none());
    // Writing starts from an empty session, as PHP would.
    store.write_identity(&id, "bridge", &alice()).await.unwrap();
    let session = store.load(&id).await.unwrap().unwrap();
    assert_eq!(session.len(), 1);
    assert!(session.get("user_id").is_none());
    assert!(!store.delete("x").await.unwrap());
}

#[tokio::test]
async fn a_php_lock_is_waited_for_and_never_broken() {
    let (store, table) = store().await;
    let id = new_session_id();
    let item_id = store.item_id(&id);
    boto(
        "write",
        json!({"table": table, "id": item_id, "expires": now() + 1440, "data": b64(b"user_id|i:1;")}),
    );
    // A PHP request (locking = true) reads the session: it holds the lock.
    boto("lock", json!({"table": table, "id": item_id}));

    let impatient = store.clone().with_locking(DynamoLocking {
        max_wait: Duration::from_millis(300),
        ..DynamoLocking::default()
    });
    let err = impatient
        .write_identity(&id, "bridge", &alice())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    let item = item_of(&table, &store, &id);
    assert_eq!(item["lock"]["N"], "1");
    assert_eq!(item["data"]["S"], "user_id|i:1;");

    // PHP finishes after a second: its write stores its data and drops the
    // lock. The bridge, waiting meanwhile, writes after it.
    let php_done = {
        let (table, item_id) = (table.clone(), item_id.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_secs(1));
            boto(
                "write",
                json!({"table": table, "id": item_id, "expires": now() + 1440,
                "data": b64(b"user_id|i:1;theme|s:4:\"dark\";")}),
            );
        })
    };
    let patient = store.clone().with_locking(DynamoLocking::default());
    let started = Instant::now();
    patient
        .write_identity(&id, "bridge", &alice())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    php_done.await.unwrap();

    let item = item_of(&table, &store, &id);
    assert!(item.get("lock").is_none(), "lock released: {item}");
    let session = store.load(&id).await.unwrap().unwrap();
    assert_eq!(session.get("theme"), Some(&Value::from("dark")));
    assert_eq!(
        session.get_bridge_identity("bridge").unwrap(),
        Some(alice())
    );

    // With the lock held, a delete waits too (and fails when PHP does not
    // let go); without it, it goes through.
    boto("lock", json!({"table": table, "id": item_id}));
    assert!(matches!(
        impatient.delete(&id).await,
        Err(Error::Locked { .. })
    ));
    boto(
        "write",
        json!({"table": table, "id": item_id, "expires": now() + 1440, "data": b64(b"a|i:1;")}),
    );
    assert!(impatient.delete(&id).await.unwrap());
}

#[tokio::test]
async fn a_lock_taken_on_a_missing_session_leaves_nothing_behind() {
    let (store, table) = store().await;
    let store = store.with_locking(DynamoLocking::default());
    let id = new_session_id();
    // Nothing to change: the item the lock created is removed again.
    store
        .update(&id, &mut |_: &mut PhpSession| Ok(()))
        .await
        .unwrap();
    assert_eq!(item_of(&table, &store, &id), serde_json::Value::Null);
    // A failing change releases the lock.
    let err = store
        .update(&id, &mut |_: &mut PhpSession| Err(Error::InvalidSessionId))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSessionId));
    assert_eq!(item_of(&table, &store, &id), serde_json::Value::Null);
    store.write_identity(&id, "bridge", &alice()).await.unwrap();
    let item = item_of(&table, &store, &id);
    assert!(item.get("lock").is_none());
    assert!(
        item["data"]["S"]
            .as_str()
            .unwrap()
            .starts_with("bridge|a:5:{")
    );
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let (store, _) = store().await;
    for locking in [false, true] {
        let mut store = store.clone().with_max_attempts(50);
        if locking {
            store = store.with_locking(DynamoLocking::default());
        }
        let id = new_session_id();
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    store
                        .update(&id, &mut |s: &mut PhpSession| {
                            s.insert(format!("k{i}"), i64::from(i));
                            Ok(())
                        })
                        .await
                        .unwrap();
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().len(),
            8,
            "locking={locking}"
        );
    }
}

#[tokio::test]
async fn binary_data_attributes_and_other_names() {
    let client = client();
    let table = table(&client).await;
    let layout = DynamoLayout {
        table: table.clone(),
        session_name: "APPSESS".into(),
        data_type: DataType::Binary,
        ..DynamoLayout::default()
    };
    let store = PhpDynamoDbStore::new(client, layout);
    let id = new_session_id();
    assert_eq!(store.item_id(&id), format!("APPSESS_{id}"));
    let data = b"blob|s:3:\"\x00\xff\x01\";";
    boto(
        "write",
        json!({"table": table, "id": store.item_id(&id), "expires": now() + 60, "data": b64(data), "binary": true}),
    );
    let session = store.load(&id).await.unwrap().unwrap();
    assert_eq!(session.get("blob"), Some(&Value::Str(vec![0, 0xff, 1])));
    store.write_identity(&id, "bridge", &alice()).await.unwrap();
    let item = item_of(&table, &store, &id);
    assert!(
        item["data"]["B"]
            .as_str()
            .unwrap()
            .starts_with(&b64(data)[..20])
    );

    // The same bytes cannot go into a string attribute.
    let (strings, _) = self::store().await;
    let err = strings
        .update(&id, &mut |s: &mut PhpSession| {
            s.insert("blob", vec![0xffu8]);
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Encode(EncodeProblem::NotUtf8)),
        "{err}"
    );
}

/// aws-sdk-php items, seen through boto3 and the SDK.
struct DynamoProbe {
    store: PhpDynamoDbStore,
    table: String,
}

#[async_trait::async_trait]
impl crate::index::Probe for DynamoProbe {
    async fn set_expiry(&self, id: &str, at: i64) {
        client()
            .update_item()
            .table_name(&self.table)
            .key(
                "id",
                session_bridge_php::aws_sdk_dynamodb::types::AttributeValue::S(
                    self.store.item_id(id),
                ),
            )
            .update_expression("SET expires = :e")
            .condition_expression("attribute_exists(id)")
            .expression_attribute_values(
                ":e",
                session_bridge_php::aws_sdk_dynamodb::types::AttributeValue::N(at.to_string()),
            )
            .send()
            .await
            .unwrap();
    }

    async fn index(&self, sub: &str) -> Option<i64> {
        let item = boto(
            "get",
            json!({"table": self.table, "id": format!("PHPSESSID_session-bridge:user:{sub}")}),
        );
        if item.is_null() {
            return None;
        }
        Some(item["expires"]["N"].as_str().unwrap().parse().unwrap())
    }

    async fn hold_lock(&self, id: &str) {
        boto(
            "lock",
            json!({"table": self.table, "id": self.store.item_id(id)}),
        );
    }

    async fn lock_held(&self, id: &str) -> bool {
        item_of(&self.table, &self.store, id)
            .get("lock")
            .is_some_and(|l| l["N"] == "1")
    }
}

#[tokio::test]
async fn the_index_contract_on_dynamodb() {
    let (store, table) = store().await;
    let probe = DynamoProbe {
        store: store.clone(),
        table,
    };
    crate::index::the_index_contract(&store, &probe).await;
    crate::index::lapsed_entries_follow_their_records(&store, &probe).await;
    let locking = store.clone().with_locking(DynamoLocking::default());
    crate::index::the_touch_contract(&store, &locking, &probe).await;
}
