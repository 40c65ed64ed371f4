//! `[users]`: the built-in identity source.
//!
//! ```toml
//! [users]
//! # file = "/var/lib/session-bridge/users.toml"   # default <data_dir>/users.toml
//! dev_user = true              # first run: create `dev` with a printed password
//! min_password_length = 12
//!
//! [users.rate_limit]
//! user_failures = 5            # failed logins per username ...
//! user_window = "15m"          # ... within this window
//! address_failures = 20        # failed logins per client address ...
//! address_window = "15m"       # ... within this window
//! max_tracked = 100000         # counters kept per kind before the oldest go
//! max_concurrent_checks = 0    # parallel password checks (0: one per core)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::problems::Problems;

/// File name of the users file inside the data directory.
pub const DEFAULT_FILE_NAME: &str = "users.toml";

/// Shortest rate-limit window accepted: below it, a limit barely slows a
/// guesser down.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Longest rate-limit window accepted: past a day, a locked-out user waits
/// longer than an operator would want.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Bounds of `min_password_length`: below 8 a password is guessable
/// offline from a leaked file; above 128 nobody can type it.
const PASSWORD_LENGTH_BOUNDS: (usize, usize) = (8, 128);

/// The `[users]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UsersConfig {
    /// The users file (default `<data_dir>/users.toml`).
    pub file: Option<PathBuf>,
    /// On first run (no users file), create a development user `dev` and
    /// print its generated password once (default `true`).
    pub dev_user: bool,
    /// Shortest password `users add` and `users passwd` accept (default 12).
    pub min_password_length: usize,
    /// Login rate limits (`[users.rate_limit]`).
    pub rate_limit: RateLimitConfig,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            file: None,
            dev_user: true,
            min_password_length: 12,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

/// `[users.rate_limit]`: how many failed logins are allowed before further
/// attempts are refused without checking the password.
///
/// A window starts at the first counted attempt of a username (or address)
/// and ends `*_window` later, when the count starts again from zero. A
/// successful login clears the username's count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Failed logins allowed per username within `user_window` (default 5).
    pub user_failures: u32,
    /// Window of the per-username count (default 15 minutes).
    #[serde(with = "humantime_serde")]
    pub user_window: Duration,
    /// Failed logins allowed per client address within `address_window`
    /// (default 20). IPv6 clients are counted per /64 network, the block one
    /// subscriber usually holds.
    pub address_failures: u32,
    /// Window of the per-address count (default 15 minutes).
    #[serde(with = "humantime_serde")]
    pub address_window: Duration,
    /// Most usernames (and, separately, addresses) tracked at once (default
    /// 100 000); when full, the oldest count is dropped, so a flood of
    /// made-up names cannot exhaust memory.
    pub max_tracked: usize,
    /// Most password checks running at once, each holding about 19 MiB
    /// (default 0: one per CPU core). Further attempts wait their turn.
    pub max_concurrent_checks: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            user_failures: 5,
            user_window: Duration::from_secs(15 * 60),
            address_failures: 20,
            address_window: Duration::from_secs(15 * 60),
            max_tracked: 100_000,
            max_concurrent_checks: 0,
        }
    }
}

impl UsersConfig {
    /// The users file: `file` when set, else `<data_dir>/users.toml`.
    pub fn path_for(&self, data_dir: &Path) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| data_dir.join(DEFAULT_FILE_NAME))
    }

    /// Check every setting, recording each problem under `key` (the dotted
    /// key of this section, normally `users`).
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if self
            .file
            .as_ref()
            .is_some_and(|file| file.as_os_str().is_empty() || file.file_name().is_none())
        {
            problems.push(format!("{key}.file"), "must name a file");
        }
        let (min, max) = PASSWORD_LENGTH_BOUNDS;
        if !(min..=max).contains(&self.min_password_length) {
            problems.push(
                format!("{key}.min_password_length"),
                format!("must be between {min} and {max}"),
            );
        }
        self.rate_limit
            .validate(&format!("{key}.rate_limit"), problems);
    }
}

impl RateLimitConfig {
    /// Check every setting, recording each problem under `key`.
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        for (name, value) in [
            ("user_failures", self.user_failures),
            ("address_failures", self.address_failures),
        ] {
            if !(1..=10_000).contains(&value) {
                problems.push(format!("{key}.{name}"), "must be between 1 and 10000");
            }
        }
        for (name, value) in [
            ("user_window", self.user_window),
            ("address_window", self.address_window),
        ] {
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&value) {
                problems.push(
                    format!("{key}.{name}"),
                    "must be between 1 second and 24 hours",
                );
            }
        }
        if !(100..=10_000_000).contains(&self.max_tracked) {
            problems.push(
                format!("{key}.max_tracked"),
                "must be between 100 and 10000000",
            );
        }
        if self.max_concurrent_checks > 1024 {
            problems.push(
                format!("{key}.max_concurrent_checks"),
                "must be at most 1024 (0: one per CPU core)",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn problems_of(cfg: &UsersConfig) -> Vec<String> {
        let mut problems = Problems::default();
        cfg.validate("users", &mut problems);
        problems.into_vec().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(problems_of(&UsersConfig::default()).is_empty());
        assert_eq!(
            UsersConfig::default().path_for(Path::new("/data")),
            Path::new("/data/users.toml")
        );
    }

    #[test]
    fn parses_humantime_windows_and_rejects_unknown_keys() {
        let cfg: UsersConfig = toml::from_str(
            "dev_user = false\n[rate_limit]\nuser_window = \"2s\"\naddress_failures = 3\n",
        )
        .unwrap();
        assert!(!cfg.dev_user);
        assert_eq!(cfg.rate_limit.user_window, Duration::from_secs(2));
        assert_eq!(cfg.rate_limit.address_failures, 3);
        assert_eq!(cfg.rate_limit.user_failures, 5);
        assert!(toml::from_str::<UsersConfig>("dev_users = false\n").is_err());
        assert!(toml::from_str::<UsersConfig>("[rate_limit]\nwindow = \"1m\"\n").is_err());
    }

    #[test]
    fn every_bad_setting_is_reported_with_its_dotted_key() {
        let mut cfg = UsersConfig {
            file: Some(PathBuf::new()),
            min_password_length: 4,
            ..UsersConfig::default()
        };
        cfg.rate_limit.user_failures = 0;
        cfg.rate_limit.address_window = Duration::from_millis(10);
        cfg.rate_limit.max_tracked = 5;
        cfg.rate_limit.max_concurrent_checks = 5000;
        assert_eq!(
            problems_of(&cfg),
            [
                "users.file",
                "users.min_password_length",
                "users.rate_limit.user_failures",
                "users.rate_limit.address_window",
                "users.rate_limit.max_tracked",
                "users.rate_limit.max_concurrent_checks",
            ]
        );
    }
}
