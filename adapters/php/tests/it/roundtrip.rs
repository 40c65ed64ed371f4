//! Property tests: encode ∘ decode is the identity on encoded values and
//! sessions, including PHP-written sessions after random edits.

use proptest::collection::vec;
use proptest::prelude::*;
use session_bridge_php::{Array, Format, Key, Limits, PhpSession, Value, serialize, unserialize};

use crate::codec::{FORMATS, php_fixture};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<i64>().prop_map(Key::Int),
        bytes(12).prop_map(Key::Str)
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e-300)
        ]
        .prop_map(Value::Float),
        bytes(24).prop_map(Value::Str),
    ];
    scalar.prop_recursive(4, 64, 8, |inner| {
        vec((key(), inner), 0..8).prop_map(|pairs| Value::Array(pairs.into_iter().collect()))
    })
}

/// Session keys the format can hold.
fn session_key(format: Format) -> BoxedStrategy<Key> {
    match format {
        Format::Php => bytes(16)
            .prop_map(|mut k| {
                k.retain(|&c| c != b'|');
                Key::Str(k)
            })
            .boxed(),
        Format::PhpBinary => bytes(128)
            .prop_map(|mut k| {
                k.truncate(127);
                Key::Str(k)
            })
            .boxed(),
        _ => key().boxed(),
    }
}

fn session() -> impl Strategy<Value = PhpSession> {
    prop::sample::select(FORMATS.to_vec()).prop_flat_map(|format| {
        vec((session_key(format), value()), 0..6).prop_map(move |pairs| {
            let mut s = PhpSession::new(format);
            for (k, v) in pairs {
                s.insert(k, v);
            }
            s
        })
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(String, Value),
    Remove(String),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let name = prop::sample::select(vec![
        "user_id", "obj", "obj2", "arr", "ref", "floats", "uni", "bridge", "new", "estr", "objects",
    ])
    .prop_map(str::to_owned);
    vec(
        prop_oneof![
            (name.clone(), value()).prop_map(|(k, v)| Edit::Insert(k, v)),
            name.prop_map(Edit::Remove),
        ],
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn values_round_trip(v in value()) {
        let once = serialize(&v);
        let back = unserialize(&once, &Limits::default()).unwrap();
        prop_assert_eq!(serialize(&back), once);
    }

    #[test]
    fn sessions_round_trip(s in session()) {
        let once = s.encode().unwrap();
        let back = PhpSession::decode(s.format(), &once, &Limits::default()).unwrap();
        prop_assert_eq!(back.len(), s.len());
        prop_assert_eq!(back.encode().unwrap(), once);
    }

    #[test]
    fn edited_php_sessions_round_trip(format in prop::sample::select(FORMATS.to_vec()), edits in edits()) {
        let mut s = PhpSession::decode(format, &fixture(format), &Limits::default()).unwrap();
        for edit in edits {
            match edit {
                Edit::Insert(k, v) => { s.insert(k, v); }
                Edit::Remove(k) => { s.remove(k); }
            }
        }
        // Removing a value something refers to is refused; anything else
        // encodes, and decodes to the same.
        if let Ok(once) = s.encode() {
            let back = PhpSession::decode(format, &once, &Limits::default()).unwrap();
            prop_assert_eq!(back.encode().unwrap(), once);
        }
    }
}

/// The PHP fixture, made once per format.
fn fixture(format: Format) -> Vec<u8> {
    use std::sync::OnceLock;
    static CACHE: OnceLock<Vec<(Format, Vec<u8>)>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        FORMATS
            .iter()
            .map(|&f| (f, php_fixture(f, false)))
            .collect()
    });
    all.iter()
        .find(|(f, _)| *f == format)
        .map(|(_, b)| b.clone())
        .unwrap()
}

#[test]
fn arrays_keep_php_order() {
    let a: Array = [(Key::Int(5), Value::Null), (Key::from("a"), Value::Int(1))]
        .into_iter()
        .collect();
    assert_eq!(serialize(&Value::Array(a)), br#"a:2:{i:5;N;s:1:"a";i:1;}"#);
}
