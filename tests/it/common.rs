//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A setting the test harness exports; fails the test (never skips) when it
/// is missing.
pub fn harness_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through ./infra/test.sh (or source infra/harness.sh)")
    })
}

/// The `session-bridge` binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_session-bridge"))
}

/// Where tests may write artifacts (screenshots, logs) to keep.
pub fn out_dir() -> PathBuf {
    let dir = std::env::var("SB_TEST_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("session-bridge-test-out"));
    std::fs::create_dir_all(&dir).expect("create test output dir");
    dir
}
