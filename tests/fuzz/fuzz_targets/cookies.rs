//! Cookie header parsing: any header value, any cookie name asked for.
#![no_main]

use http::{HeaderMap, HeaderValue, header};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.append(header::COOKIE, value.clone());
    headers.append(header::COOKIE, value);
    for name in [
        "sb_session",
        "sb_token",
        "__Host-sb_session",
        "PHPSESSID",
        "",
    ] {
        if let Some(found) = session_bridge::bridge::cookies::read(&headers, name) {
            assert!(!found.contains(';'), "a cookie value spans a separator");
        }
    }
});
