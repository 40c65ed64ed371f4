//! [`BuiltinUsers`]: the users file as a [`PasswordSource`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::file::{self, Stamp};
use super::gate::LoginGate;
use super::password::{self, GeneratedPassword};
use super::store::{self, UserStore};
use super::{User, UsersConfig, UsersError, names};
use crate::error_chain;
use crate::login::{Attempt, AuthenticatedUser, LoginError, Password, PasswordSource};

/// Name and groups of the development user created on first run.
const DEV_USERNAME: &str = "dev";
const DEV_GROUPS: &[&str] = &["dev"];

/// The built-in identity source: users from the users file, passwords
/// checked with argon2id, failed logins rate limited per username and per
/// client address.
///
/// * Unknown users cost the same as wrong passwords: their password is
///   checked against a hash made at start-up with the same parameters.
/// * A refused attempt (rate limited) is answered without any password
///   check, and the same way whether or not the user exists.
/// * The file is re-read when it changes (checked on every attempt, which
///   costs one `stat`), so `session-bridge users …` takes effect without a
///   restart. A file that breaks while the service runs is logged and the
///   users loaded before stay in force.
///
/// Cloning is cheap and clones share the users and the counters.
#[derive(Clone)]
pub struct BuiltinUsers {
    inner: Arc<Inner>,
}

struct Inner {
    store: UserStore,
    issuer: String,
    /// Checked when the username is unknown, so that case costs the same.
    dummy_hash: String,
    loaded: Mutex<Loaded>,
    gate: Arc<LoginGate>,
    /// Each check holds ~19 MiB for tens of milliseconds: unbounded
    /// parallel checks would let a flood of logins exhaust memory.
    checks: Semaphore,
}

struct Loaded {
    /// Keyed by the case-folded username.
    users: Arc<HashMap<String, User>>,
    /// What `users` was read from (`None`: there was no file).
    stamp: Option<Stamp>,
}

impl std::fmt::Debug for BuiltinUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinUsers")
            .field("file", &self.inner.store.path())
            .field("issuer", &self.inner.issuer)
            .field("users", &self.inner.loaded().users.len())
            .finish_non_exhaustive()
    }
}

impl BuiltinUsers {
    /// Load the users file `cfg` names. When it does not exist and
    /// `cfg.dev_user` is on, first create it with one user, `dev` (group
    /// `dev`), whose random password is returned: print it once for the
    /// operator (on stdout, not through the logs) and drop it.
    ///
    /// `issuer` is the service's public URL, the `issuer` of every
    /// [`AuthenticatedUser`] this source returns.
    ///
    /// Blocks (file I/O and two argon2 hashes): call it from
    /// `spawn_blocking` or before the runtime starts.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use session_bridge::users::{BuiltinUsers, UsersConfig};
    ///
    /// let (users, generated) =
    ///     BuiltinUsers::open_or_init(&UsersConfig::default(), Path::new(".data"), "http://127.0.0.1:8080")?;
    /// if let Some(generated) = generated {
    ///     println!("log in as {} with password {}", generated.username(), generated.expose());
    /// }
    /// # Ok::<(), session_bridge::users::UsersError>(())
    /// ```
    pub fn open_or_init(
        cfg: &UsersConfig,
        data_dir: &Path,
        issuer: impl Into<String>,
    ) -> Result<(Self, Option<GeneratedPassword>), UsersError> {
        let store = UserStore::from_config(cfg, data_dir);
        let mut generated = None;
        if cfg.dev_user && file::stamp(store.path())?.is_none() {
            let dev = GeneratedPassword::new(DEV_USERNAME.to_owned());
            let now = store::now();
            let user = User {
                username: DEV_USERNAME.to_owned(),
                sub: uuid::Uuid::new_v4().to_string(),
                password_hash: password::hash(dev.expose())?,
                groups: DEV_GROUPS.iter().map(|g| (*g).to_owned()).collect(),
                email: None,
                created_at: now,
                updated_at: now,
            };
            if store.create(&[user])? {
                generated = Some(dev);
            }
        }
        let loaded = match file::read(store.path())? {
            Some((bytes, stamp)) => Loaded {
                users: Arc::new(by_name(file::parse(store.path(), &bytes)?)),
                stamp: Some(stamp),
            },
            None => {
                tracing::warn!(
                    file = %store.path().display(),
                    "no users file: nobody can log in until one is added with `session-bridge users add NAME` (add --password-stdin to read the password from standard input)"
                );
                Loaded {
                    users: Arc::default(),
                    stamp: None,
                }
            }
        };
        let parallel = match cfg.rate_limit.max_concurrent_checks {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let inner = Inner {
            dummy_hash: password::hash(GeneratedPassword::new(String::new()).expose())?,
            store,
            issuer: issuer.into(),
            loaded: Mutex::new(loaded),
            gate: Arc::new(LoginGate::new(&cfg.rate_limit)),
            checks: Semaphore::new(parallel),
        };
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            generated,
        ))
    }

    /// The users file.
    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// How many users are loaded (after re-reading the file if it changed).
    /// Blocks on file I/O when it did.
    pub fn user_count(&self) -> usize {
        self.inner.current_users().len()
    }
}

fn by_name(users: Vec<User>) -> HashMap<String, User> {
    users
        .into_iter()
        .map(|user| (names::fold(&user.username), user))
        .collect()
}

impl Inner {
    fn loaded(&self) -> MutexGuard<'_, Loaded> {
        // A panic elsewhere cannot leave `Loaded` half-updated (fields are
        // assigned whole), so a poisoned lock is still usable.
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The users, re-read first when the file changed since last read.
    fn current_users(&self) -> Arc<HashMap<String, User>> {
        let path = self.store.path();
        let mut loaded = self.loaded();
        let stamp = match file::stamp(path) {
            Ok(stamp) => stamp,
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "cannot check the users file; keeping the users loaded before");
                return loaded.users.clone();
            }
        };
        if stamp == loaded.stamp {
            return loaded.users.clone();
        }
        match file::read(path) {
            Ok(None) => {
                tracing::warn!(file = %path.display(), "the users file was removed: nobody can log in");
                *loaded = Loaded {
                    users: Arc::default(),
                    stamp: None,
                };
            }
            Ok(Some((bytes, stamp))) => match file::parse(path, &bytes) {
                Ok(users) => {
                    tracing::info!(file = %path.display(), users = users.len(), "users file reloaded");
                    loaded.users = Arc::new(by_name(users));
                    loaded.stamp = Some(stamp);
                }
                Err(err) => {
                    // Remember the broken version so it is reported once,
                    // not on every attempt.
                    tracing::error!(
                        error = %error_chain(&err),
                        "the users file is invalid; keeping the users loaded before"
                    );
                    loaded.stamp = Some(stamp);
                }
            },
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "cannot read the users file; keeping the users loaded before");
            }
        }
        loaded.users.clone()
    }

    /// The user, if `password` is theirs. Runs one argon2 check whether or
    /// not the user exists.
    fn check(&self, username: &str, password: &str) -> Option<User> {
        let users = self.current_users();
        let user = users.get(&names::fold(username));
        let hash = user.map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let matches = password::verify(password, hash);
        user.filter(|_| matches).cloned()
    }
}

#[async_trait]
impl PasswordSource for BuiltinUsers {
    async fn authenticate(
        &self,
        username: &str,
        password: &Password,
        attempt: Attempt,
    ) -> Result<AuthenticatedUser, LoginError> {
        let guard = match self.inner.gate.enter(username, attempt.client).await {
            Ok(guard) => guard,
            Err(retry_after) => {
                tracing::info!(client = %attempt.client, "login refused: too many failed attempts");
                return Err(LoginError::RateLimited { retry_after });
            }
        };
        let _permit = self
            .inner
            .checks
            .acquire()
            .await
            .map_err(|err| LoginError::Unavailable(Box::new(err)))?;
        let inner = self.inner.clone();
        let (name, secret) = (
            username.to_owned(),
            Zeroizing::new(password.expose().to_owned()),
        );
        let checked = tokio::task::spawn_blocking(move || inner.check(&name, &secret))
            .await
            .map_err(|err| LoginError::Unavailable(Box::new(err)))?;
        match checked {
            Some(user) => {
                guard.succeeded();
                Ok(AuthenticatedUser {
                    sub: user.sub,
                    username: Some(user.username).filter(|u| !u.is_empty()),
                    groups: user.groups,
                    email: user.email,
                    issuer: self.inner.issuer.clone(),
                    auth_time: OffsetDateTime::now_utc(),
                })
            }
            None => {
                guard.failed();
                Err(LoginError::InvalidCredentials)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::users::NewUser;

    const ISSUER: &str = "https://login.example.com";

    fn attempt(ip: &str) -> Attempt {
        Attempt {
            client: ip.parse::<IpAddr>().unwrap(),
        }
    }

    fn pw(text: &str) -> Password {
        Password::new(text.to_owned())
    }

    fn open(dir: &Path, cfg: &UsersConfig) -> (BuiltinUsers, Option<GeneratedPassword>) {
        BuiltinUsers::open_or_init(cfg, dir, ISSUER).unwrap()
    }

    #[tokio::test]
    async fn first_run_creates_dev_once_and_its_password_works() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = UsersConfig::default();
        let (users, generated) = open(dir.path(), &cfg);
        let generated = generated.expect("first run generates a password");
        assert_eq!(generated.username(), "dev");
        let user = users
            .authenticate("dev", &pw(generated.expose()), attempt("192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(user.username.as_deref(), Some("dev"));
        assert_eq!(user.groups, ["dev"]);
        assert_eq!(user.issuer, ISSUER);
        // A restart finds the file: no new user, no password shown again.
        let (again, none) = open(dir.path(), &cfg);
        assert!(none.is_none());
        let same = again
            .authenticate("DEV", &pw(generated.expose()), attempt("192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(same.sub, user.sub);
    }

    #[tokio::test]
    async fn without_dev_user_nobody_logs_in_until_the_cli_adds_someone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = UsersConfig {
            dev_user: false,
            ..UsersConfig::default()
        };
        let (users, generated) = open(dir.path(), &cfg);
        assert!(generated.is_none());
        assert!(!users.path().exists());
        let err = users
            .authenticate("alice", &pw("alice password"), attempt("192.0.2.1"))
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials));
        // Picked up on the next attempt, without a restart.
        UserStore::from_config(&cfg, dir.path())
            .add(
                NewUser::new("alice").with_groups(["admins"]),
                &pw("alice password"),
            )
            .unwrap();
        let user = users
            .authenticate("alice", &pw("alice password"), attempt("192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(user.groups, ["admins"]);
        assert_eq!(users.user_count(), 1);
    }

    #[tokio::test]
    async fn changes_are_picked_up_and_a_broken_edit_keeps_the_old_users() {
        let dir = tempfile::tempdir().unwrap();
        let (users, generated) = open(dir.path(), &UsersConfig::default());
        let dev_password = generated.unwrap();
        let store = UserStore::new(users.path());
        store
            .set_password("dev", &pw("a brand new password"))
            .unwrap();
        let at = attempt("192.0.2.1");
        assert!(
            users
                .authenticate("dev", &pw(dev_password.expose()), at)
                .await
                .is_err()
        );
        users
            .authenticate("dev", &pw("a brand new password"), at)
            .await
            .unwrap();

        let text = std::fs::read_to_string(users.path()).unwrap();
        std::fs::write(users.path(), text.replace("version = 1", "version = ")).unwrap();
        users
            .authenticate("dev", &pw("a brand new password"), at)
            .await
            .unwrap();

        store.remove("dev").unwrap_err(); // the broken file is left alone
        std::fs::write(users.path(), &text).unwrap();
        store.remove("dev").unwrap();
        assert!(matches!(
            users
                .authenticate("dev", &pw("a brand new password"), at)
                .await,
            Err(LoginError::InvalidCredentials)
        ));
    }

    #[tokio::test]
    async fn burst_is_limited_without_revealing_users_and_window_expires() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = UsersConfig::default();
        cfg.rate_limit.user_failures = 3;
        cfg.rate_limit.user_window = Duration::from_secs(1);
        let (users, generated) = open(dir.path(), &cfg);
        let good = generated.unwrap();
        for name in ["dev", "nobody"] {
            let mut answers = Vec::new();
            for _ in 0..6 {
                let started = Instant::now();
                let outcome = users
                    .authenticate(name, &pw("wrong password!"), attempt("192.0.2.1"))
                    .await;
                answers.push((
                    match outcome {
                        Err(LoginError::InvalidCredentials) => "invalid",
                        Err(LoginError::RateLimited { .. }) => "limited",
                        other => panic!("{other:?}"),
                    },
                    started.elapsed(),
                ));
            }
            let kinds: Vec<_> = answers.iter().map(|(k, _)| *k).collect();
            assert_eq!(
                kinds,
                [
                    "invalid", "invalid", "invalid", "limited", "limited", "limited"
                ],
                "{name}"
            );
            if name == "dev" {
                // Even the right password is refused while limited...
                let outcome = users
                    .authenticate("dev", &pw(good.expose()), attempt("192.0.2.1"))
                    .await;
                assert!(
                    matches!(&outcome, Err(LoginError::RateLimited { retry_after }) if *retry_after <= Duration::from_secs(1)),
                    "{outcome:?}"
                );
            }
        }
        // ...and accepted once the window has passed.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        users
            .authenticate("dev", &pw(good.expose()), attempt("192.0.2.1"))
            .await
            .unwrap();
    }

    /// Not a pass/fail check (timings are noisy): prints the mean time of
    /// wrong passwords for a real user against unknown users, for the eye.
    #[tokio::test]
    async fn timing_of_unknown_and_known_users() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = UsersConfig::default();
        cfg.rate_limit.user_failures = 1000;
        cfg.rate_limit.address_failures = 1000;
        let (users, _) = open(dir.path(), &cfg);
        let mean = |total: Duration| total / 20;
        let (mut known, mut unknown) = (Duration::ZERO, Duration::ZERO);
        for i in 0..20 {
            let started = Instant::now();
            let _ = users
                .authenticate("dev", &pw("wrong password!"), attempt("192.0.2.1"))
                .await;
            known += started.elapsed();
            let started = Instant::now();
            let _ = users
                .authenticate(
                    &format!("ghost{i}"),
                    &pw("wrong password!"),
                    attempt("192.0.2.1"),
                )
                .await;
            unknown += started.elapsed();
        }
        eprintln!(
            "mean over 20: wrong password {:?}, unknown user {:?}",
            mean(known),
            mean(unknown)
        );
    }
}
