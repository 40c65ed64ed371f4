//! The built-in identity source: users in a file in the data directory.
//!
//! It is the default when no external identity provider is configured, so
//! the service works out of the box; it implements the same
//! [`PasswordSource`](crate::login::PasswordSource) as the Cognito source,
//! so moving to a user pool later is a configuration change.
//!
//! * [`UserStore`] reads and changes the users file (`session-bridge users
//!   add | passwd | remove | list`, see [`cli`]).
//! * [`BuiltinUsers`] checks logins against it: argon2id hashes, the same
//!   cost for unknown users as for wrong passwords, failed logins limited
//!   per username and per client address.
//! * [`UsersConfig`] is the `[users]` configuration section.
//!
//! The file format is described in the `file` module docs: TOML, one
//! `[[user]]` table per user, written atomically with mode 0600.
//!
//! # Usernames
//!
//! 1 to 64 characters from ASCII letters, digits and `. _ - @`, starting
//! with a letter or digit. Unique regardless of case: `Alice` and `alice`
//! are one user, stored as first written and found whichever case is typed.

mod builtin;
pub mod cli;
mod config;
mod error;
mod file;
mod gate;
pub(crate) mod limiter;
mod names;
mod password;
mod store;

use time::OffsetDateTime;

pub use builtin::BuiltinUsers;
pub use config::{DEFAULT_FILE_NAME, RateLimitConfig, UsersConfig};
pub use error::UsersError;
pub use password::GeneratedPassword;
pub use store::{NewUser, UserStore};

/// One user of the users file.
///
/// `Debug` leaves the password hash out; so does everything that prints
/// users.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name, as first written.
    pub username: String,
    /// Stable subject id (a random UUID made when the user was added); the
    /// `sub` of the user's tokens, unchanged by renames or new passwords.
    pub sub: String,
    /// argon2id PHC string.
    password_hash: String,
    /// Group names (`cognito:groups` of the user's tokens).
    pub groups: Vec<String>,
    /// Email address, when known.
    pub email: Option<String>,
    /// When the user was added.
    pub created_at: OffsetDateTime,
    /// When the user was last changed.
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("sub", &self.sub)
            .field("groups", &self.groups)
            .field("email", &self.email)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}
