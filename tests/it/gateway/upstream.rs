//! The upstream behind the gateway: an in-process axum app that answers
//! every request with what it received, plus streaming endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::{any, get, post};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One running upstream app.
pub struct Upstream {
    /// `127.0.0.1:port`.
    pub addr: String,
    pub signals: Arc<Signals>,
}

/// Rendezvous points between a test and the upstream's handlers.
#[derive(Default)]
pub struct Signals {
    /// The upload handler got its first body chunk.
    pub first_chunk: Notify,
    /// The slow download may send the rest.
    pub release: Notify,
}

#[derive(Clone)]
struct App {
    name: &'static str,
    signals: Arc<Signals>,
}

impl Upstream {
    /// Start an app that calls itself `name` in its answers.
    pub async fn start(name: &'static str) -> Upstream {
        let signals = Arc::new(Signals::default());
        let app = App {
            name,
            signals: signals.clone(),
        };
        let router = Router::new()
            .route("/public/upload", post(upload))
            .route("/api/download", get(download))
            .route("/api/slow", get(slow))
            .fallback(any(echo))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Upstream { addr, signals }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// What the upstream saw: `{"app", "method", "uri", "headers": {name: [values]}, "body"}`.
async fn echo(State(app): State<App>, req: Request) -> axum::Json<Value> {
    let (parts, body) = req.into_parts();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    axum::Json(json!({
        "app": app.name,
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

/// FNV-1a over a byte stream, so both ends can compare what went through.
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// The byte at `i` of the generated download (and upload) content.
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// Reads the body as it arrives; signals the first chunk.
async fn upload(State(app): State<App>, body: Body) -> axum::Json<Value> {
    let mut stream = body.into_data_stream();
    let mut hash = Fnv::new();
    let mut bytes = 0usize;
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if first && !chunk.is_empty() {
            app.signals.first_chunk.notify_one();
            first = false;
        }
        bytes += chunk.len();
        hash.update(&chunk);
    }
    axum::Json(json!({ "bytes": bytes, "hash": hash.0.to_string() }))
}

/// `?mib=N`: N MiB of [`pattern`], in 64 KiB chunks, generated on the fly.
async fn download(req: Request) -> Body {
    let mib: usize = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("mib="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let total = mib << 20;
    const CHUNK: usize = 64 << 10;
    let stream = futures_util::stream::unfold(0usize, move |offset| async move {
        if offset >= total {
            return None;
        }
        let end = (offset + CHUNK).min(total);
        let chunk: Vec<u8> = (offset..end).map(pattern).collect();
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)), end))
    });
    Body::from_stream(stream)
}

/// Sends `first\n`, then waits for the test's release (at most 30 s) before
/// `rest\n`.
async fn slow(State(app): State<App>) -> Body {
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let app = app.clone();
        async move {
            match step {
                0 => Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"first\n")),
                    1,
                )),
                1 => {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        app.signals.release.notified(),
                    )
                    .await;
                    Some((Ok(axum::body::Bytes::from_static(b"rest\n")), 2))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(stream)
}

/// A TCP server that accepts connections and never answers.
pub struct Hanging {
    pub addr: String,
    _task: tokio::task::JoinHandle<()>,
}

impl Hanging {
    pub async fn start() -> Hanging {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Hanging { addr, _task: task }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self._task.abort();
    }
}
