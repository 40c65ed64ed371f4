//! An upstream that reads paths and methods as loosely as real ones do,
//! all at once: percent-decoding twice, cutting at NUL, NFKC-folding and
//! lowercasing (Express routes case-insensitively), trimming trailing dots
//! and spaces from segments (IIS), resolving dot segments, running the GET
//! handler for HEAD and honouring method overrides (Express
//! `method-override`, also in their CGI `_` spellings).
//!
//! It answers with the handler it ran in `X-Route` (`admin`, `api`,
//! `reports`, `items:<METHOD>` or `other`), so a test can tell when a
//! request the bridge should have refused reached a protected handler.

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use unicode_normalization::UnicodeNormalization;

pub struct Lenient {
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl Lenient {
    pub async fn start() -> Lenient {
        let router = Router::new().fallback(handle);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Lenient { addr }
    }
}

/// The handler an application reading the request loosely runs.
pub fn route(method: &str, path: &str, overrides: &[String]) -> String {
    let segments = read_path(path);
    let method = match overrides.first() {
        Some(m) if method == "POST" => m.to_ascii_uppercase(),
        _ => method.to_owned(),
    };
    match segments.first().map(String::as_str) {
        Some("admin") => "admin".to_owned(),
        Some("api") => "api".to_owned(),
        Some("reports") => "reports".to_owned(),
        Some("items") => format!("items:{method}"),
        _ => "other".to_owned(),
    }
}

fn read_path(raw: &str) -> Vec<String> {
    let once = decode(raw.as_bytes());
    let twice = decode(&once);
    let text = String::from_utf8_lossy(&twice);
    let text = text.split('\0').next().unwrap_or_default();
    let folded: String = text.nfkc().collect::<String>().to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for segment in folded.split(['/', '\\']) {
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            ".." => {
                out.pop();
            }
            "" | "." => {}
            s => {
                let s = s.trim_end_matches(['.', ' ']);
                if !s.is_empty() {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

async fn handle(req: Request) -> Response {
    let overrides: Vec<String> = req
        .headers()
        .iter()
        .filter(|(name, _)| {
            let folded = name.as_str().replace('_', "-");
            matches!(
                folded.as_str(),
                "x-http-method-override" | "x-http-method" | "x-method-override"
            )
        })
        .filter_map(|(_, v)| v.to_str().ok().map(str::to_owned))
        .collect();
    let route = route(req.method().as_str(), req.uri().path(), &overrides);
    let mut response = format!("{route}\n").into_response();
    if let Ok(v) = HeaderValue::from_str(&route) {
        response.headers_mut().insert("x-route", v);
    }
    response
}

#[test]
fn the_lenient_reader_is_as_loose_as_intended() {
    for (path, want) in [
        ("/ADMIN/secret", "admin"),
        ("/admin%00", "admin"),
        ("/admin%20/x", "admin"),
        ("/admin./x", "admin"),
        ("/\u{ff41}dmin/x", "admin"),
        ("/%EF%BD%81dmin/x", "admin"),
        ("/%2561dmin/x", "admin"),
        ("//admin", "admin"),
        ("/x/../admin", "admin"),
        ("/Api/x", "api"),
        ("/public/x", "other"),
    ] {
        assert_eq!(route("GET", path, &[]), want, "{path}");
    }
    assert_eq!(
        route("POST", "/items/1", &["delete".into()]),
        "items:DELETE"
    );
    assert_eq!(route("GET", "/items/1", &["delete".into()]), "items:GET");
}
