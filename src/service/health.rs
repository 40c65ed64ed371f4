//! `GET /healthz` and `GET /readyz`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

/// How long a readiness probe waits for a store before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is alive and serving HTTP.
pub(super) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Every configured store answers. 503 names the ones that do not; the
/// reason goes to the log, not to the client.
pub(super) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let name = state.stores.kind.as_str();
    let outcome = tokio::time::timeout(READY_TIMEOUT, state.stores.revocation.ping()).await;
    let ok = match outcome {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            tracing::warn!(store = name, error = %crate::error_chain(&err), "readiness: store unreachable");
            false
        }
        Err(_) => {
            tracing::warn!(store = name, timeout = ?READY_TIMEOUT, "readiness: store did not answer in time");
            false
        }
    };
    let check = if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "checks": { format!("store:{name}"): check },
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
