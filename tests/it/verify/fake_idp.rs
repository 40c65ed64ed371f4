//! A scriptable HTTP server on loopback standing in for an IdP's key
//! endpoints, for what a real IdP cannot be made to do on demand: fail,
//! hang, send too much, lie in its discovery document.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What one path answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with a JSON body and a Content-Length.
    Json(Value),
    /// 200, chunked (no Content-Length), `bytes` of JSON-ish filler.
    Chunked(usize),
    /// An error status.
    Status(u16),
    /// Accept the request and never answer.
    Hang,
}

#[derive(Clone)]
pub struct FakeIdp {
    pub url: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<AtomicUsize>,
}

impl FakeIdp {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let idp = Self {
            url,
            routes: Arc::default(),
            hits: Arc::default(),
        };
        let server = idp.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(server.clone().answer(sock));
            }
        });
        idp
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn answer(self, mut sock: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        let request = String::from_utf8_lossy(&buf);
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let reply = self
            .routes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Reply::Status(404));
        let response = match reply {
            Reply::Json(v) => {
                let body = v.to_string();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            Reply::Chunked(n) => {
                let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
                for _ in 0..n.div_ceil(4096) {
                    out.extend_from_slice(b"1000\r\n");
                    out.extend_from_slice(&[b' '; 4096]);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
            Reply::Status(code) => {
                format!("HTTP/1.1 {code} Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .into_bytes()
            }
            Reply::Hang => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                return;
            }
        };
        let _ = sock.write_all(&response).await;
        let _ = sock.shutdown().await;
    }
}
