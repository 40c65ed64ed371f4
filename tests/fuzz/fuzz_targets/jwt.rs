//! The JWT header and claims parsing of an untrusted token.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = session_bridge::tokens::verify::fuzz_parse_untrusted(token);
    }
});
