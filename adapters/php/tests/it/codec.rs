//! The codecs against what real PHP writes and reads.

use session_bridge_php::{
    Array, BridgeIdentity, EncodeProblem, Error, Format, Limits, PhpSession, RawKind, Value,
};

use crate::{PHP_CLASSES, PHP_CLI_SESSION, php};

pub(crate) const FORMATS: [Format; 3] = [Format::Php, Format::PhpBinary, Format::PhpSerialize];

/// A session full of what apps keep: objects referring to themselves and
/// to each other, PHP references, enums, floats of every shape, unicode
/// and binary strings. With `legacy`, also a `Serializable` object whose
/// payload is itself serialized (its slots count in PHP's numbering) and
/// references after it.
pub(crate) fn php_fixture(format: Format, legacy: bool) -> Vec<u8> {
    let code = format!(
        r#"{PHP_CLASSES}{PHP_CLI_SESSION}
$o = new Foo; $o->self = $o;
$_SESSION['user_id'] = 42;
$_SESSION['obj'] = $o;
$_SESSION['obj2'] = $o;
$_SESSION['arr'] = ['x' => 1, 5 => 'five', 'nested' => ['deep' => [true, false, null]]];
$_SESSION['ref'] = &$_SESSION['arr']['x'];
$_SESSION['floats'] = [0.1, 1e100, INF, -INF, NAN, -0.0, 1.5, 1e15, 1e16, 1e17, 1e-5, 0.0001,
    123456789012345678.0, -2.5e-300, 5e-324, 1.7976931348623157e308, 100.0, 0.30000000000000004, 1/3, -1e-7];
$_SESSION['uni'] = "héllo ☃ 😀";
$_SESSION['bin'] = "\x00\x01\xff\"';|}}{{";
$_SESSION['enum'] = Suit::Hearts;
$_SESSION['ints'] = [PHP_INT_MIN, PHP_INT_MAX, -1, 0];
$_SESSION['ao'] = new ArrayObject([1, 2]);
$_SESSION['dt'] = new DateTime('2020-01-01 00:00:00 UTC');
$_SESSION['empty'] = [];
$_SESSION['estr'] = '';
$_SESSION['objects'] = [$o, new stdClass];
if ($argv[2] === 'legacy') {{
    $l = new Legacy; $l->d = ['in' => [1, 2]];
    $_SESSION['legacy'] = $l;
    $_SESSION['after'] = $o;
    $_SESSION['after_arr'] = [1, 2];
    $_SESSION['after_ref'] = &$_SESSION['after_arr'];
}}
echo session_encode();
"#
    );
    php(
        &code,
        &[format.name(), if legacy { "legacy" } else { "plain" }],
        b"",
    )
}

/// What PHP makes of `data`: whether the object graph is intact, and the
/// bytes PHP itself writes for the session it read.
fn php_reads(format: Format, data: &[u8]) -> serde_json::Value {
    let code = format!(
        r#"{PHP_CLASSES}{PHP_CLI_SESSION}
function same_ref(array &$a, $ka, array &$b, $kb): bool {{
    $x = ReflectionReference::fromArrayElement($a, $ka);
    $y = ReflectionReference::fromArrayElement($b, $kb);
    return $x !== null && $y !== null && $x->getId() === $y->getId();
}}
if (!session_decode(stream_get_contents(STDIN))) {{ fwrite(STDERR, "Fatal: session_decode failed\n"); exit(1); }}
$s = &$_SESSION;
echo json_encode([
    'obj_self' => $s['obj']->self === $s['obj'],
    'obj2_same' => $s['obj2'] === $s['obj'],
    'ref_bound' => same_ref($s, 'ref', $s['arr'], 'x'),
    'enum' => $s['enum'] === Suit::Hearts,
    'floats' => count($s['floats']),
    'bridge_sub' => $s['bridge']['sub'] ?? null,
    'bridge_groups' => $s['bridge']['groups'] ?? null,
    'legacy' => isset($s['legacy']) ? ($s['legacy']->d === ['in' => [1, 2]]) : null,
    'after_same' => isset($s['after']) ? ($s['after'] === $s['obj']) : null,
    'after_ref' => isset($s['after_ref']) ? same_ref($s, 'after_ref', $s, 'after_arr') : null,
    'hex' => bin2hex(session_encode()),
]);
"#
    );
    serde_json::from_slice(&php(&code, &[format.name()], data)).unwrap()
}

fn unhex(hex: &serde_json::Value) -> Vec<u8> {
    let hex = hex.as_str().unwrap().as_bytes();
    hex.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

fn decode(format: Format, data: &[u8]) -> PhpSession {
    PhpSession::decode(format, data, &Limits::default()).unwrap()
}

fn alice() -> BridgeIdentity {
    BridgeIdentity {
        sub: "u-1".into(),
        username: Some("alice".into()),
        groups: vec!["staff".into(), "ünïcode".into()],
        auth_time: Some(1_767_225_600),
        iss: "https://idp.example".into(),
    }
}

fn assert_graph_intact(seen: &serde_json::Value) {
    for check in ["obj_self", "obj2_same", "ref_bound", "enum"] {
        assert_eq!(seen[check], true, "{check}: {seen}");
    }
    assert_eq!(seen["floats"], 20);
}

#[test]
fn php_output_round_trips_byte_exact() {
    for format in FORMATS {
        for legacy in [false, true] {
            let data = php_fixture(format, legacy);
            let s = decode(format, &data);
            assert_eq!(s.encode().unwrap(), data, "{format} legacy={legacy}");
            // A re-decode of the output sees the same.
            assert_eq!(decode(format, &s.encode().unwrap()).encode().unwrap(), data);
        }
    }
}

#[test]
fn php_values_decode_to_what_php_holds() {
    let s = decode(Format::Php, &php_fixture(Format::Php, true));
    assert_eq!(s.get("user_id"), Some(&Value::Int(42)));
    assert_eq!(s.get("uni").and_then(Value::as_str), Some("héllo ☃ 😀"));
    assert_eq!(
        s.get("bin").and_then(Value::as_bytes),
        Some(&b"\x00\x01\xff\"';|}{"[..])
    );
    let kind = |k: &str| match s.get(k) {
        Some(Value::Raw(r)) => Some(r.kind()),
        _ => None,
    };
    assert_eq!(kind("obj"), Some(RawKind::Object));
    assert_eq!(kind("obj2"), Some(RawKind::ObjectRef));
    assert_eq!(kind("ref"), Some(RawKind::Reference));
    assert_eq!(kind("enum"), Some(RawKind::Enum));
    assert_eq!(kind("legacy"), Some(RawKind::Custom));
    let floats = s.get("floats").and_then(Value::as_array).unwrap();
    let floats: Vec<f64> = floats
        .iter()
        .map(|(_, v)| match v {
            Value::Float(x) => *x,
            other => panic!("not a typed float: {other:?}"),
        })
        .collect();
    assert_eq!(floats[0], 0.1);
    assert!(floats[4].is_nan());
    assert!(floats[5] == 0.0 && floats[5].is_sign_negative());
    assert_eq!(floats[18], 1.0 / 3.0);
    let ints = s.get("ints").and_then(Value::as_array).unwrap();
    assert_eq!(ints.get(0i64), Some(&Value::Int(i64::MIN)));
}

#[test]
fn php_reads_sessions_the_adapter_changed() {
    for format in FORMATS {
        let mut s = decode(format, &php_fixture(format, false));
        // Values before the objects change size: every reference after
        // them must be renumbered.
        s.insert("user_id", Array::list([1i64, 2, 3]));
        s.remove("estr");
        s.set_bridge_identity("bridge", &alice());
        let ours = s.encode().unwrap();
        let seen = php_reads(format, &ours);
        assert_graph_intact(&seen);
        assert_eq!(seen["bridge_sub"], "u-1");
        assert_eq!(
            seen["bridge_groups"],
            serde_json::json!(["staff", "ünïcode"])
        );
        // PHP writes back exactly what we wrote.
        assert_eq!(unhex(&seen["hex"]), ours, "{format}");
    }
}

#[test]
fn sessions_with_serializable_objects_take_a_trailing_identity() {
    for format in FORMATS {
        let data = php_fixture(format, true);
        let mut s = decode(format, &data);
        s.set_bridge_identity("bridge", &alice());
        let ours = s.encode().unwrap();
        let seen = php_reads(format, &ours);
        assert_graph_intact(&seen);
        assert_eq!(seen["legacy"], true);
        assert_eq!(seen["after_same"], true);
        assert_eq!(seen["after_ref"], true);
        assert_eq!(seen["bridge_sub"], "u-1");
        assert_eq!(unhex(&seen["hex"]), ours, "{format}");
        // Growing a value before the `C:` payload would move its inner
        // slots, which cannot be counted: refused rather than corrupted.
        s.insert("user_id", Array::list([1i64, 2, 3]));
        assert!(matches!(
            s.encode(),
            Err(Error::Encode(EncodeProblem::SerializableMoved))
        ));
    }
}

#[test]
fn php_reads_identities_in_every_format() {
    for format in FORMATS {
        let mut s = PhpSession::new(format);
        s.set_bridge_identity("bridge", &alice());
        let code = format!(
            r#"{PHP_CLI_SESSION}
session_decode(stream_get_contents(STDIN));
echo json_encode($_SESSION['bridge']);"#
        );
        let bridge: serde_json::Value =
            serde_json::from_slice(&php(&code, &[format.name()], &s.encode().unwrap())).unwrap();
        assert_eq!(
            bridge,
            serde_json::json!({
                "sub": "u-1", "username": "alice", "groups": ["staff", "ünïcode"],
                "auth_time": 1_767_225_600, "iss": "https://idp.example"
            })
        );
    }
}
