//! Migration telemetry through the `metrics` facade: the service installs a
//! Prometheus recorder; a library user's own recorder gets the same series.

/// Requests by route rule × credential that proved them × outcome.
pub const REQUESTS: &str = "session_bridge_requests_total";
/// Shadow-mode disagreements by rule × enforced mode × evaluated mode.
pub const SHADOW_DISAGREEMENTS: &str = "session_bridge_shadow_disagreements_total";
/// Tokens minted from sessions, and sessions linked to tokens.
pub const EXCHANGES: &str = "session_bridge_exchanges_total";

/// Count one request.
pub fn request(rule: &str, credential: &'static str, outcome: &'static str) {
    metrics::counter!(REQUESTS, "rule" => rule.to_owned(), "credential" => credential, "outcome" => outcome).increment(1);
}

/// Count one shadow disagreement.
pub fn shadow_disagreement(
    rule: &str,
    enforced: &'static str,
    evaluated: &'static str,
    enforced_outcome: &'static str,
    evaluated_outcome: &'static str,
) {
    metrics::counter!(
        SHADOW_DISAGREEMENTS,
        "rule" => rule.to_owned(),
        "enforced" => enforced,
        "evaluated" => evaluated,
        "enforced_outcome" => enforced_outcome,
        "evaluated_outcome" => evaluated_outcome
    )
    .increment(1);
}

/// Count one exchange (`kind`: `token_from_session`, `session_from_token`).
pub fn exchange(kind: &'static str) {
    metrics::counter!(EXCHANGES, "kind" => kind).increment(1);
}
