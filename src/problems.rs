//! Validation problems collected while checking a configuration.

use std::fmt;

/// One invalid setting: the dotted key (as written in the TOML file, e.g.
/// `store.redis.url`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `tokens.access_ttl`.
    pub key: String,
    /// What is wrong, phrased for an operator (no secret values).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// Collects every problem of a configuration, so an operator sees all of
/// them at once instead of fixing one per restart.
#[derive(Debug, Default, Clone)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Record a problem with `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded problems, in the order they were found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}
