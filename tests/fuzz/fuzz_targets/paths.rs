//! Path checks and route matching: never a panic, and an ambiguous path is
//! never matched as if it were plain.
#![no_main]

use std::sync::OnceLock;

use session_bridge::bridge::config::PolicyConfig;
use session_bridge::bridge::policy::{RoutePolicy, is_ambiguous};

fn policy() -> &'static RoutePolicy {
    static POLICY: OnceLock<RoutePolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let cfg: PolicyConfig = toml::from_str(
            r#"
            default = "public"
            [[routes]]
            path = "/admin/*"
            mode = "session"
            [[routes]]
            path = "/api/*"
            methods = ["GET", "POST"]
            mode = "token"
            [[routes]]
            path = "/exact"
            mode = "either"
            "#,
        )
        .unwrap_or_default();
        RoutePolicy::new(&cfg)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (method, path) = match data.split_first() {
        Some((m, rest)) => (*m, rest),
        None => return,
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let method = match method % 4 {
        0 => http::Method::GET,
        1 => http::Method::POST,
        2 => http::Method::HEAD,
        _ => http::Method::DELETE,
    };
    let _ = is_ambiguous(path);
    let _ = policy().rule_for(&method, path);
});
