//! The built-in identity source: the users file across restarts, a corrupt
//! file, and the login rate limits.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use session_bridge::login::{Attempt, LoginError, Password, PasswordSource};
use session_bridge::users::{BuiltinUsers, NewUser, UserStore, UsersConfig, UsersError};

const ISSUER: &str = "http://127.0.0.1:8080";

fn pw(text: &str) -> Password {
    Password::new(text.to_owned())
}

fn from(ip: &str) -> Attempt {
    Attempt {
        client: ip.parse::<IpAddr>().unwrap(),
    }
}

fn config(dev_user: bool) -> UsersConfig {
    let mut cfg = UsersConfig::default();
    cfg.dev_user = dev_user;
    cfg
}

#[tokio::test]
async fn users_survive_a_restart_and_cli_changes_apply_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(true);
    let (service, generated) = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap();
    let dev_password = generated.expect("first run prints a password");
    let store = UserStore::from_config(&cfg, dir.path());
    assert_eq!(store.path(), dir.path().join("users.toml"));

    let alice = store
        .add(
            NewUser::new("alice")
                .with_groups(["admins", "staff"])
                .with_email("alice@example.com"),
            &pw("alice's first password"),
        )
        .unwrap();
    let bob = store
        .add(NewUser::new("bob"), &pw("bob's first password"))
        .unwrap();
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["dev", "alice", "bob"]);

    // The running source sees the additions at once.
    let user = service
        .authenticate("alice", &pw("alice's first password"), from("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(user.sub, alice.sub);
    assert_eq!(user.groups, ["admins", "staff"]);
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(user.issuer, ISSUER);

    store
        .set_password("Alice", &pw("alice's second password"))
        .unwrap();
    store.remove("bob").unwrap();
    drop(service);

    // "Restart": a new source over the same data directory.
    let (service, generated) = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap();
    assert!(generated.is_none(), "the dev password is shown only once");
    let at = from("192.0.2.2");
    assert!(matches!(
        service
            .authenticate("alice", &pw("alice's first password"), at)
            .await,
        Err(LoginError::InvalidCredentials)
    ));
    let user = service
        .authenticate("ALICE", &pw("alice's second password"), at)
        .await
        .unwrap();
    assert_eq!(
        (
            user.sub.as_str(),
            user.username.as_deref().unwrap_or_default()
        ),
        (alice.sub.as_str(), "alice")
    );
    assert!(matches!(
        service
            .authenticate("bob", &pw("bob's first password"), at)
            .await,
        Err(LoginError::InvalidCredentials)
    ));
    let dev = service
        .authenticate("dev", &pw(dev_password.expose()), at)
        .await
        .unwrap();
    assert_ne!(dev.sub, bob.sub);
}

#[test]
fn corrupt_users_file_names_file_and_line_and_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(true);
    let path = dir.path().join("users.toml");
    let (_, generated) = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap();
    assert!(generated.is_some());
    // A hand edit gone wrong: an unclosed string.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("groups = [\"dev\"]", "groups = [\"dev]");
    std::fs::write(&path, &text).unwrap();
    let line = text.lines().position(|l| l.starts_with("groups")).unwrap() + 1;

    let err = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap_err();
    let UsersError::Malformed {
        path: reported,
        line: reported_line,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((reported.as_path(), *reported_line), (path.as_path(), line));
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}:{line}:", path.display())),
        "{message}"
    );

    let store = UserStore::from_config(&cfg, dir.path());
    assert!(
        store
            .add(NewUser::new("eve"), &pw("eve's long password"))
            .is_err()
    );
    assert!(
        store
            .set_password("dev", &pw("dev's long password"))
            .is_err()
    );
    assert!(store.remove("dev").is_err());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "byte for byte"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `user_failures` = 5 within a 2 s window.
fn short_window() -> UsersConfig {
    let mut cfg = config(false);
    cfg.rate_limit.user_failures = 5;
    cfg.rate_limit.user_window = Duration::from_secs(2);
    cfg.rate_limit.address_failures = 200;
    cfg
}

async fn outcome(service: &BuiltinUsers, username: &str, password: &str, ip: &str) -> &'static str {
    match service
        .authenticate(username, &pw(password), from(ip))
        .await
    {
        Ok(_) => "ok",
        Err(LoginError::InvalidCredentials) => "invalid",
        Err(LoginError::RateLimited { retry_after }) => {
            assert!(retry_after <= Duration::from_secs(2), "{retry_after:?}");
            "limited"
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn burst_of_failed_logins_is_limited_then_the_window_passes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = short_window();
    UserStore::from_config(&cfg, dir.path())
        .add(NewUser::new("alice"), &pw("alice's real password"))
        .unwrap();
    let (service, _) = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap();

    // 50 wrong passwords in a row, for a real user and for an unknown one:
    // the same answers, so the limit reveals nothing.
    for username in ["alice", "mallory"] {
        let mut answers = Vec::new();
        for _ in 0..50 {
            answers.push(outcome(&service, username, "guess", "192.0.2.10").await);
        }
        assert_eq!(answers[..5], ["invalid"; 5], "{username}");
        assert_eq!(answers[5..], ["limited"; 45], "{username}");
    }
    // The right password does not get through while the user is limited.
    assert_eq!(
        outcome(&service, "alice", "alice's real password", "198.51.100.1").await,
        "limited"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        outcome(&service, "alice", "alice's real password", "192.0.2.10").await,
        "ok"
    );
    // The success cleared alice's count: a full budget again.
    for _ in 0..5 {
        assert_eq!(
            outcome(&service, "alice", "guess", "192.0.2.10").await,
            "invalid"
        );
    }
    assert_eq!(
        outcome(&service, "alice", "guess", "192.0.2.10").await,
        "limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_burst_gets_no_more_password_checks_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = short_window();
    let (service, _) = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let service = service.clone();
        tasks.spawn(async move { outcome(&service, "alice", "guess", "192.0.2.20").await });
    }
    let mut counts = std::collections::BTreeMap::new();
    while let Some(answer) = tasks.join_next().await {
        *counts.entry(answer.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(counts, [("invalid", 5), ("limited", 45)].into());
}

#[tokio::test]
async fn address_limit_stops_spraying_many_usernames() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(false);
    cfg.rate_limit.address_failures = 20;
    let (service, _) = BuiltinUsers::open_or_init(&cfg, dir.path(), ISSUER).unwrap();
    let mut answers = Vec::new();
    for i in 0..25 {
        answers.push(outcome_any(&service, &format!("user{i}"), "192.0.2.30").await);
    }
    assert_eq!(answers[..20], ["invalid"; 20]);
    assert_eq!(answers[20..], ["limited"; 5]);
    // Another address is not affected.
    assert_eq!(
        outcome_any(&service, "user0", "192.0.2.31").await,
        "invalid"
    );
}

async fn outcome_any(service: &BuiltinUsers, username: &str, ip: &str) -> &'static str {
    match service.authenticate(username, &pw("guess"), from(ip)).await {
        Err(LoginError::InvalidCredentials) => "invalid",
        Err(LoginError::RateLimited { .. }) => "limited",
        other => panic!("{other:?}"),
    }
}

/// `session-bridge users …` through the binary; stdin carries the password.
fn users_cli(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(crate::common::bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("users")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_add_passwd_remove_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (code, _, err) = users_cli(
        data,
        &["add", "alice", "--groups", "admins,dev", "--password-stdin"],
        "alice's long password\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = users_cli(data, &["add", "bob", "--password-stdin"], "short\n");
    assert_eq!(code, 1);
    assert!(err.contains("at least") || err.contains("12 to"), "{err}");
    let (code, _, err) = users_cli(data, &["add", "bob"], "");
    assert_eq!(code, 2, "no terminal, no --password-stdin: {err}");
    let (code, _, _) = users_cli(
        data,
        &["add", "bob", "--password-stdin"],
        "bob's long password\n",
    );
    assert_eq!(code, 0);

    let (code, list, _) = users_cli(data, &["list"], "");
    assert_eq!(code, 0);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!((rows[0][0], rows[0][2]), ("alice", "admins,dev"));
    assert_eq!((rows[1][0], rows[1][2]), ("bob", "-"));
    assert!(!list.contains("argon2"));
    let file = std::fs::read_to_string(data.join("users.toml")).unwrap();
    assert!(!file.contains("alice's long password"));

    let (code, _, err) = users_cli(
        data,
        &["passwd", "ALICE", "--password-stdin"],
        "alice's new password\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = users_cli(
        data,
        &["passwd", "ghost", "--password-stdin"],
        "whatever password\n",
    );
    assert_eq!(code, 1);
    let (code, _, _) = users_cli(data, &["remove", "bob"], "");
    assert_eq!(code, 0);
    let (_, list, _) = users_cli(data, &["list"], "");
    assert_eq!(list.lines().count(), 1);

    let users = UserStore::new(data.join("users.toml")).list().unwrap();
    assert_eq!(users[0].sub, rows[0][1], "passwd keeps the sub");

    // A broken file: every command refuses, names file and line, writes nothing.
    let path = data.join("users.toml");
    let broken = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[[user]]", "[[user]");
    std::fs::write(&path, &broken).unwrap();
    let line = broken.lines().position(|l| l == "[[user]").unwrap() + 1;
    for (args, stdin) in [
        (&["list"][..], ""),
        (&["remove", "alice"][..], ""),
        (
            &["add", "carol", "--password-stdin"][..],
            "carol's long password\n",
        ),
    ] {
        let (code, _, err) = users_cli(data, args, stdin);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!("{}:{line}:", path.display())),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
}
