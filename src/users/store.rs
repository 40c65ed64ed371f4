//! [`UserStore`]: the users file as the CLI changes it.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{User, UsersConfig, UsersError, file, names, password};
use crate::login::Password;

/// The users file, read and changed one whole-file transaction at a time.
///
/// Every change takes an exclusive lock, re-reads the file, applies the
/// change and replaces the file atomically. A file that does not parse is
/// reported and left alone: nothing is ever written over it.
///
/// ```no_run
/// use session_bridge::login::Password;
/// use session_bridge::users::{NewUser, UserStore};
///
/// let store = UserStore::new("/var/lib/session-bridge/users.toml");
/// let alice = store.add(
///     NewUser::new("alice").with_groups(["admins"]),
///     &Password::new("a long passphrase".to_owned()),
/// )?;
/// println!("{} has sub {}", alice.username, alice.sub);
/// # Ok::<(), session_bridge::users::UsersError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UserStore {
    path: PathBuf,
    min_password_length: usize,
}

/// A user to create with [`UserStore::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUser {
    /// Login name (see [the naming rules](super#usernames)).
    pub username: String,
    /// Group names.
    pub groups: Vec<String>,
    /// Email address.
    pub email: Option<String>,
}

impl NewUser {
    /// A user named `username` with no groups and no email.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            groups: Vec::new(),
            email: None,
        }
    }

    /// Set the groups.
    #[must_use]
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Set the email address.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

impl UserStore {
    /// The users file at `path`, accepting passwords of at least 12
    /// characters.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            min_password_length: UsersConfig::default().min_password_length,
        }
    }

    /// The users file `cfg` names (see [`UsersConfig::path_for`]), with its
    /// password rules.
    pub fn from_config(cfg: &UsersConfig, data_dir: &Path) -> Self {
        Self::new(cfg.path_for(data_dir)).with_min_password_length(cfg.min_password_length)
    }

    /// Accept new passwords of at least `chars` characters.
    #[must_use]
    pub fn with_min_password_length(mut self, chars: usize) -> Self {
        self.min_password_length = chars;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every user, in file order; `None` when the file does not exist.
    pub fn load(&self) -> Result<Option<Vec<User>>, UsersError> {
        file::read(&self.path)?
            .map(|(bytes, _)| file::parse(&self.path, &bytes))
            .transpose()
    }

    /// Every user, in file order (none when the file does not exist).
    pub fn list(&self) -> Result<Vec<User>, UsersError> {
        Ok(self.load()?.unwrap_or_default())
    }

    /// Create a user with a new random `sub`; creates the file when missing.
    pub fn add(&self, new: NewUser, password: &Password) -> Result<User, UsersError> {
        check_names(&new)?;
        password::check_new(password.expose(), self.min_password_length)?;
        let hash = password::hash(password.expose())?;
        let now = now();
        let mut groups = new.groups;
        groups.dedup();
        let user = User {
            username: new.username,
            sub: uuid::Uuid::new_v4().to_string(),
            password_hash: hash,
            groups,
            email: new.email,
            created_at: now,
            updated_at: now,
        };
        self.change(|users| {
            let key = names::fold(&user.username);
            if let Some(existing) = users.iter().find(|u| names::fold(&u.username) == key) {
                return Err(UsersError::AlreadyExists {
                    existing: existing.username.clone(),
                });
            }
            users.push(user.clone());
            Ok(user)
        })
    }

    /// Whether `add(new, …)` would fail for a reason other than the
    /// password: checked before asking for one.
    pub(crate) fn check_addable(&self, new: &NewUser) -> Result<(), UsersError> {
        check_names(new)?;
        let key = names::fold(&new.username);
        match self
            .list()?
            .into_iter()
            .find(|u| names::fold(&u.username) == key)
        {
            Some(existing) => Err(UsersError::AlreadyExists {
                existing: existing.username,
            }),
            None => Ok(()),
        }
    }

    /// Replace a user's password (the username is matched regardless of
    /// case).
    pub fn set_password(&self, username: &str, password: &Password) -> Result<User, UsersError> {
        password::check_new(password.expose(), self.min_password_length)?;
        let hash = password::hash(password.expose())?;
        self.change(|users| {
            let user = find(users, username)?;
            user.password_hash = hash;
            user.updated_at = now();
            Ok(user.clone())
        })
    }

    /// Delete a user (matched regardless of case); returns what was removed.
    pub fn remove(&self, username: &str) -> Result<User, UsersError> {
        self.change(|users| {
            let key = names::fold(username);
            let at = users
                .iter()
                .position(|u| names::fold(&u.username) == key)
                .ok_or_else(|| UsersError::UnknownUser {
                    username: username.to_owned(),
                })?;
            Ok(users.remove(at))
        })
    }

    /// Write `users` as a new file unless one exists; whether it was
    /// written. Used for the first-run user, so a racing `users add` wins.
    pub(crate) fn create(&self, users: &[User]) -> Result<bool, UsersError> {
        let _lock = file::lock(&self.path)?;
        if file::stamp(&self.path)?.is_some() {
            return Ok(false);
        }
        file::write_atomic(&self.path, file::encode(&self.path, users)?.as_bytes())?;
        Ok(true)
    }

    /// Lock, read, apply `change`, write. Nothing is written when the file
    /// does not parse or `change` fails.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut Vec<User>) -> Result<T, UsersError>,
    ) -> Result<T, UsersError> {
        let _lock = file::lock(&self.path)?;
        let mut users = self.list()?;
        let outcome = change(&mut users)?;
        file::write_atomic(&self.path, file::encode(&self.path, &users)?.as_bytes())?;
        Ok(outcome)
    }
}

fn check_names(new: &NewUser) -> Result<(), UsersError> {
    names::check_username(&new.username)?;
    for group in &new.groups {
        names::check_group(group)?;
    }
    if let Some(email) = &new.email {
        names::check_email(email)?;
    }
    Ok(())
}

fn find<'a>(users: &'a mut [User], username: &str) -> Result<&'a mut User, UsersError> {
    let key = names::fold(username);
    users
        .iter_mut()
        .find(|u| names::fold(&u.username) == key)
        .ok_or_else(|| UsersError::UnknownUser {
            username: username.to_owned(),
        })
}

/// Now, to the second: the file stores whole seconds.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pw(text: &str) -> Password {
        Password::new(text.to_owned())
    }

    #[test]
    fn add_passwd_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("users.toml"));
        assert_eq!(store.load().unwrap(), None);
        let alice = store
            .add(
                NewUser::new("Alice")
                    .with_groups(["admins", "dev"])
                    .with_email("alice@example.com"),
                &pw("first password 1"),
            )
            .unwrap();
        uuid::Uuid::parse_str(&alice.sub).unwrap();
        assert!(password::verify("first password 1", &alice.password_hash));
        let bob = store
            .add(NewUser::new("bob"), &pw("bob's password"))
            .unwrap();
        assert_ne!(alice.sub, bob.sub);
        assert_eq!(store.list().unwrap(), [alice.clone(), bob.clone()]);

        // Case-insensitive uniqueness and lookup.
        let err = store
            .add(NewUser::new("ALICE"), &pw("another password"))
            .unwrap_err();
        assert!(matches!(err, UsersError::AlreadyExists { existing } if existing == "Alice"));
        let changed = store
            .set_password("alice", &pw("second password 2"))
            .unwrap();
        assert_eq!(changed.sub, alice.sub);
        assert!(password::verify(
            "second password 2",
            &changed.password_hash
        ));
        assert!(!password::verify(
            "first password 1",
            &changed.password_hash
        ));

        assert_eq!(store.remove("BOB").unwrap().sub, bob.sub);
        assert!(matches!(
            store.remove("bob").unwrap_err(),
            UsersError::UnknownUser { .. }
        ));
        assert_eq!(store.list().unwrap(), [changed]);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("users.toml"));
        for (new, password) in [
            (NewUser::new("bad name"), "long enough password"),
            (
                NewUser::new("ok").with_groups(["a,b"]),
                "long enough password",
            ),
            (
                NewUser::new("ok").with_email("nope"),
                "long enough password",
            ),
            (NewUser::new("ok"), "short"),
        ] {
            assert!(store.add(new, &pw(password)).is_err());
        }
        assert_eq!(store.load().unwrap(), None, "no file was created");
        assert!(matches!(
            store
                .set_password("ghost", &pw("long enough password"))
                .unwrap_err(),
            UsersError::UnknownUser { .. }
        ));
    }

    #[test]
    fn corrupt_file_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let store = UserStore::new(&path);
        store
            .add(NewUser::new("alice"), &pw("alice password"))
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text = text.replace("groups = []", "groups = [unquoted]");
        std::fs::write(&path, &text).unwrap();
        let line = text.lines().position(|l| l.contains("unquoted")).unwrap() + 1;

        let attempts = [
            store.list().unwrap_err(),
            store
                .add(NewUser::new("bob"), &pw("bob password 1"))
                .unwrap_err(),
            store
                .set_password("alice", &pw("new password 12"))
                .unwrap_err(),
            store.remove("alice").unwrap_err(),
        ];
        // The first-run path refuses any existing file, valid or not.
        assert!(!store.create(&[]).unwrap());
        for err in &attempts {
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{}:{line}:", path.display())),
                "{message}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "byte for byte"
        );
    }
}
