//! The PHP session codecs (`php`, `php_binary`, `php_serialize`) and
//! `unserialize`: never a panic, and what decodes encodes back to bytes
//! that decode to the same session.
#![no_main]

use session_bridge_php::{Format, Limits, PhpSession, serialize, unserialize};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for format in [Format::Php, Format::PhpBinary, Format::PhpSerialize] {
        let Ok(session) = PhpSession::decode(format, data, &limits) else {
            continue;
        };
        let Ok(encoded) = session.encode() else {
            continue;
        };
        let again = PhpSession::decode(format, &encoded, &limits)
            .unwrap_or_else(|e| panic!("{format:?}: re-encoded session does not decode: {e}"));
        assert_eq!(
            again.encode().ok().as_deref(),
            Some(encoded.as_slice()),
            "{format:?}: round trip changed the bytes"
        );
    }
    if let Ok(value) = unserialize(data, &limits) {
        let bytes = serialize(&value);
        let again = unserialize(&bytes, &limits)
            .unwrap_or_else(|e| panic!("serialized value does not unserialize: {e}"));
        assert_eq!(serialize(&again), bytes, "round trip changed the bytes");
    }
});
