//! Serving HTTP/1.1 connections with limits `axum::serve` does not offer:
//! a deadline for request heads, an idle timeout, a pause limit for
//! request bodies, a bound on head size, and a connection cap with room
//! kept for health checks. Slow or numerous clients then cost bounded
//! memory and descriptors, and `/healthz` keeps answering.

mod activity;
mod config;
mod limits;

pub use config::ServerConfig;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use activity::{Activity, PacedBody, TrackedIo, counted};
use limits::ConnectionCaps;

/// Head deadline on a health-only connection: probes send their request at
/// once, and a slow client must not sit on a reserved slot.
const HEALTH_HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Pending connections the kernel may queue before `accept`.
const LISTEN_BACKLOG: u32 = 4096;
/// Pause after an `accept` error (out of descriptors, …) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Which connections a slot serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Every route, keep-alive.
    Full,
    /// `/healthz` and `/readyz` only, one request per connection.
    HealthOnly,
}

#[derive(Debug)]
struct Settings {
    cfg: ServerConfig,
    app: Router,
}

/// Listen on `addr` with a backlog that absorbs bursts of connections (the
/// kernel caps it at `net.core.somaxconn`): a full backlog drops handshakes
/// silently, and clients then wait on retransmissions.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting
/// and let open requests finish for at most `drain`.
pub(super) async fn run(
    listener: TcpListener,
    app: Router,
    cfg: &ServerConfig,
    proxied: bool,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let caps = limits::fit_connections(
        ConnectionCaps {
            general: cfg.max_connections,
            health: cfg.health_reserve,
        },
        proxied,
    );
    let general = Arc::new(Semaphore::new(caps.general));
    let health = Arc::new(Semaphore::new(caps.health));
    let settings = Arc::new(Settings {
        cfg: cfg.clone(),
        app,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Per-connection failures (reset before accept) need no
                    // pause; running out of descriptors does.
                    if !is_connection_error(&err) {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        let (permit, lane) = match Arc::clone(&general).try_acquire_owned() {
            Ok(permit) => (permit, Lane::Full),
            Err(_) => match Arc::clone(&health).try_acquire_owned() {
                Ok(permit) => (permit, Lane::HealthOnly),
                Err(_) => {
                    // Closed at once: held in the backlog it would only wait
                    // for a slot the flood keeps taking.
                    drop(stream);
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(
                            refused,
                            max_connections = caps.general,
                            "connection limit reached: closing new connections"
                        );
                    }
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            remote,
            lane,
            permit,
            Arc::clone(&settings),
            stop_rx.clone(),
        ));
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    let all_closed = async {
        let _ = general.acquire_many(permits(caps.general)).await;
        let _ = health.acquire_many(permits(caps.health)).await;
    };
    if tokio::time::timeout(drain, all_closed).await.is_err() {
        tracing::warn!(timeout = ?drain, "shutdown timeout reached; dropping remaining requests");
    }
}

fn permits(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serve one connection until it ends, times out or the service stops.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    lane: Lane,
    _slot: OwnedSemaphorePermit,
    settings: Arc<Settings>,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &settings.cfg;
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&activity)));
    let head_timeout = match lane {
        Lane::Full => cfg.header_read_timeout,
        Lane::HealthOnly => cfg.header_read_timeout.min(HEALTH_HEAD_TIMEOUT),
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_header_size(cfg.max_header_bytes)
        .keep_alive(lane == Lane::Full);
    let service = {
        let (settings, activity) = (Arc::clone(&settings), Arc::clone(&activity));
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (settings, activity) = (Arc::clone(&settings), Arc::clone(&activity));
            async move {
                let guard = activity.begin();
                if lane == Lane::HealthOnly && !matches!(req.uri().path(), "/healthz" | "/readyz") {
                    return Ok::<_, Infallible>(overloaded().map(|b| counted(b, guard)));
                }
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo(remote));
                let body = Body::new(PacedBody::new(body, settings.cfg.body_read_timeout));
                let response = match settings
                    .app
                    .clone()
                    .oneshot(Request::from_parts(parts, body))
                    .await
                {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok(response.map(|b| counted(b, guard)))
            }
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let idle = activity.idle_for(cfg.idle_timeout);
    tokio::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    // Timeouts, oversized heads and resets are the client's
                    // doing: not worth more than a debug line each.
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                break;
            }
            _ = stop.wait_for(|stopping| *stopping), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut idle, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The answer on a health-only connection to anything but a health check.
fn overloaded() -> Response<Body> {
    let body =
        crate::bridge::rejection::error_body("overloaded", "too many connections; try again later");
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
