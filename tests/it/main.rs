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
mod keys;
mod legacy_php;
mod oidc_login;
mod replica;
mod serve;
mod users;
mod verify;
