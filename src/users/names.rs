//! Naming rules for usernames, groups and email addresses.
//!
//! Usernames: 1 to 64 characters from ASCII letters, digits and `. _ - @`,
//! starting with a letter or digit (so an email address works as a
//! username, and no name can look like a command-line flag). They are unique
//! regardless of case: `Alice` and `alice` are one user, stored as first
//! written and found whichever case is typed at login. ASCII-only means
//! "regardless of case" has one meaning everywhere (no Unicode folding
//! surprises such as the Kelvin sign).

use super::UsersError;

/// Longest username.
pub(crate) const MAX_USERNAME: usize = 64;
/// Longest group name (Cognito's limit).
const MAX_GROUP: usize = 128;
/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;

/// The key a username is found (and rate limited) under.
pub(crate) fn fold(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Why `username` is not a valid username, if it is not.
pub(crate) fn username_problem(username: &str) -> Option<&'static str> {
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Some("must be 1 to 64 characters long");
    }
    if !username
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
    {
        return Some("may contain only ASCII letters, digits and . _ - @");
    }
    if !username.as_bytes()[0].is_ascii_alphanumeric() {
        return Some("must start with a letter or digit");
    }
    None
}

/// Why `group` is not a valid group name, if it is not: 1 to 128 printable
/// ASCII characters without spaces or commas (the CLI splits on commas).
pub(crate) fn group_problem(group: &str) -> Option<&'static str> {
    if group.is_empty() || group.len() > MAX_GROUP {
        return Some("must be 1 to 128 characters long");
    }
    if !group.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Some("may contain only printable ASCII characters other than space and comma");
    }
    None
}

/// Why `email` is not a plausible email address, if it is not. Only the
/// shape is checked (`local@domain`, no spaces); whether it receives mail
/// is not our business.
pub(crate) fn email_problem(email: &str) -> Option<&'static str> {
    if email.len() > MAX_EMAIL || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must be at most 254 characters without spaces");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            None
        }
        _ => Some("must look like name@domain"),
    }
}

/// [`username_problem`] as an error.
pub(crate) fn check_username(username: &str) -> Result<(), UsersError> {
    invalid("username", username, username_problem(username))
}

/// [`group_problem`] as an error.
pub(crate) fn check_group(group: &str) -> Result<(), UsersError> {
    invalid("group", group, group_problem(group))
}

/// [`email_problem`] as an error.
pub(crate) fn check_email(email: &str) -> Result<(), UsersError> {
    invalid("email", email, email_problem(email))
}

fn invalid(
    what: &'static str,
    value: &str,
    problem: Option<&'static str>,
) -> Result<(), UsersError> {
    match problem {
        None => Ok(()),
        Some(reason) => Err(UsersError::InvalidName {
            what,
            value: value.chars().take(80).collect(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in [
            "dev",
            "Alice",
            "a",
            "alice.smith",
            "a_b-c",
            "alice@example.com",
            "007",
        ] {
            assert_eq!(username_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "-rf",
            ".hidden",
            "al ice",
            "ålice",
            "a/b",
            "a:b",
            &"x".repeat(65),
        ] {
            assert!(username_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(fold("Alice@Example.COM"), "alice@example.com");
    }

    #[test]
    fn groups_and_emails() {
        assert_eq!(group_problem("admins"), None);
        assert_eq!(group_problem("team:ops/eu"), None);
        assert!(group_problem("a,b").is_some());
        assert!(group_problem("has space").is_some());
        assert!(group_problem("").is_some());
        assert_eq!(email_problem("a@example.com"), None);
        for bad in ["a", "@x", "a@", "a@b@c", "a b@c"] {
            assert!(email_problem(bad).is_some(), "{bad}");
        }
    }
}
