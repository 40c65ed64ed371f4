//! The one error type of the built-in users.

use std::io;
use std::path::PathBuf;

/// Why the users file could not be read or changed, or a change was refused.
///
/// No variant holds a password; parse failures of the users file carry a
/// position and a reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// Reading, writing or locking the users file (or creating its
    /// directory) failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was attempted, e.g. `read` or `write`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The users file is not valid: bad TOML, an unknown key, or a value
    /// that breaks a rule (duplicate username, unparsable hash). The file is
    /// never rewritten in this case: fix it by hand.
    #[error("{path}:{line}:{column}: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong.
        detail: String,
    },
    /// No user has this name.
    #[error("no user named `{username}`")]
    UnknownUser {
        /// The name asked for.
        username: String,
    },
    /// A user with this name (compared case-insensitively) exists.
    #[error("a user named `{existing}` already exists (usernames are case-insensitive)")]
    AlreadyExists {
        /// The existing user's name as stored.
        existing: String,
    },
    /// A username, group or email address breaks the naming rules.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidName {
        /// `username`, `group` or `email`.
        what: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A new password is shorter than `users.min_password_length` or longer
    /// than the maximum.
    #[error("the password must be {min} to {max} characters long")]
    PasswordLength {
        /// Shortest accepted.
        min: usize,
        /// Longest accepted.
        max: usize,
    },
    /// No password could be read (closed stdin, no terminal, the two typed
    /// passwords differ).
    #[error("cannot read the password: {0}")]
    PasswordInput(String),
    /// The password hasher failed (it does not for valid parameters).
    #[error("cannot hash the password")]
    Hash(#[source] argon2::password_hash::Error),
}
