//! Integration tests: one binary, talking to the real servers that
//! `infra/harness.sh` starts (addresses come from the environment).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod bridge;
mod common;
mod demo;
mod faults;
mod gateway;
mod hardening;
mod keys;
mod layer_stores;
mod legacy_php;
mod legacy_php_expiry;
mod legacy_php_logout;
mod logout;
mod oidc_login;
mod replica;
mod serve;
mod slow_clients;
mod users;
mod verify;
