//! The gateway end to end: forward-auth behind real nginx and Caddy (started
//! by the tests on free ports with the configs from infra/), and the
//! bridge's own reverse proxy, each in front of in-process upstreams that
//! echo what they receive.

mod env;
mod fronts;
mod lenient;
mod paths;
mod php;
mod proxy;
mod upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_nginx() {
    fronts::forward_auth(fronts::Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_caddy() {
    fronts::forward_auth(fronts::Kind::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_applies_policy_and_strips_spoofed_identity() {
    proxy::identity_policy_and_spoofing().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_streams_bodies_both_ways() {
    proxy::bodies_stream_both_ways().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_answers_502_for_a_dead_upstream_and_504_for_a_hanging_one() {
    proxy::dead_and_hanging_upstreams().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_under_other_spellings_never_reach_php() {
    php::no_forged_identity_reaches_php().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_case_head_or_override_bypass_behind_nginx() {
    let found = paths::bypasses(paths::Kind::Nginx).await;
    assert!(found.is_empty(), "{} bypasses: {found:#?}", found.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_case_head_or_override_bypass_behind_caddy() {
    let found = paths::bypasses(paths::Kind::Caddy).await;
    assert!(found.is_empty(), "{} bypasses: {found:#?}", found.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_case_head_or_override_bypass_through_the_proxy() {
    let found = paths::bypasses(paths::Kind::Proxy).await;
    assert!(found.is_empty(), "{} bypasses: {found:#?}", found.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_refuses_identity_headers_under_another_spelling() {
    paths::forward_auth_refuses_disguised_headers().await;
}
