//! `session-bridge users …`: manage the built-in users file.
//!
//! Passwords are never taken from the command line (it shows in `ps` and
//! shell history): they are typed at a prompt without echo, or, with
//! `--password-stdin`, read as one line from standard input.
//!
//! Exit codes: 0 success; 1 the change was refused (unknown or existing
//! user, invalid name, password too short); 2 the tool could not run
//! (unreadable or invalid users file, no password to read).

use std::io::{self, BufRead as _, IsTerminal as _, Read as _};
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use zeroize::Zeroizing;

use super::password::MAX_PASSWORD_CHARS;
use super::{NewUser, User, UserStore, UsersConfig, UsersError};
use crate::error_chain;
use crate::login::Password;

/// `session-bridge users …`: manage the built-in users. A running service
/// picks changes up at the next login attempt.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UsersCommand {
    /// Add a user (asks for the password, or reads it with --password-stdin).
    Add {
        /// Login name: ASCII letters, digits and . _ - @ (case-insensitive).
        username: String,
        /// Groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Read the password as one line from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password.
    Passwd {
        /// The user.
        username: String,
        /// Read the password as one line from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user. Sessions and tokens already issued to them are not
    /// ended by this.
    Remove {
        /// The user.
        username: String,
    },
    /// Print username, sub, groups and email of every user (never hashes).
    List,
}

/// Run a `users` command on the users file of `cfg` (see
/// [`UsersConfig::path_for`]). Lists go to stdout, notes to stderr.
pub async fn run_users(cmd: UsersCommand, cfg: &UsersConfig, data_dir: &Path) -> ExitCode {
    let store = UserStore::from_config(cfg, data_dir);
    // Prompts, argon2 and file I/O all block: keep them off the runtime.
    let outcome =
        tokio::task::spawn_blocking(move || execute(cmd, &store, &mut read_password)).await;
    match outcome {
        Ok(Ok(output)) => {
            if !output.note.is_empty() {
                eprintln!("{}", output.note);
            }
            print!("{}", output.stdout);
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("session-bridge: {}", error_chain(&err));
            ExitCode::from(exit_code(&err))
        }
        Err(err) => {
            eprintln!("session-bridge: users task failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// 1: the change was refused; 2: the tool could not run.
fn exit_code(err: &UsersError) -> u8 {
    match err {
        UsersError::UnknownUser { .. }
        | UsersError::AlreadyExists { .. }
        | UsersError::InvalidName { .. }
        | UsersError::PasswordLength { .. } => 1,
        _ => 2,
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Output {
    stdout: String,
    note: String,
}

/// Where the password comes from: `true` for one line of stdin.
type ReadPassword<'a> = &'a mut dyn FnMut(bool) -> Result<Password, UsersError>;

fn execute(
    cmd: UsersCommand,
    store: &UserStore,
    read_password: ReadPassword<'_>,
) -> Result<Output, UsersError> {
    let note = |note: String| Output {
        stdout: String::new(),
        note,
    };
    match cmd {
        UsersCommand::Add {
            username,
            groups,
            email,
            password_stdin,
        } => {
            let mut new = NewUser::new(username).with_groups(groups);
            new.email = email;
            // Fail before prompting when the user could not be added anyway.
            store.check_addable(&new)?;
            let password = read_password(password_stdin)?;
            let user = store.add(new, &password)?;
            Ok(note(format!(
                "added user {} (sub {}) to {}",
                user.username,
                user.sub,
                store.path().display()
            )))
        }
        UsersCommand::Passwd {
            username,
            password_stdin,
        } => {
            // Fail before prompting when the user does not exist.
            if !store
                .list()?
                .iter()
                .any(|u| u.username.eq_ignore_ascii_case(&username))
            {
                return Err(UsersError::UnknownUser { username });
            }
            let password = read_password(password_stdin)?;
            let user = store.set_password(&username, &password)?;
            Ok(note(format!("changed the password of {}", user.username)))
        }
        UsersCommand::Remove { username } => {
            let user = store.remove(&username)?;
            Ok(note(format!(
                "removed user {} (sub {})",
                user.username, user.sub
            )))
        }
        UsersCommand::List => match store.load()? {
            Some(users) => Ok(Output {
                stdout: user_table(&users),
                note: String::new(),
            }),
            None => Ok(note(format!("no users file at {}", store.path().display()))),
        },
    }
}

/// One line per user: username, sub, groups (comma-separated) and email,
/// `-` for none, columns aligned.
fn user_table(users: &[User]) -> String {
    let width = users.iter().map(|u| u.username.len()).max().unwrap_or(0);
    users
        .iter()
        .map(|user| {
            let groups = match user.groups.is_empty() {
                true => "-".to_owned(),
                false => user.groups.join(","),
            };
            format!(
                "{:<width$}  {}  {groups}  {}\n",
                user.username,
                user.sub,
                user.email.as_deref().unwrap_or("-"),
            )
        })
        .collect()
}

/// The password: one line of stdin, or typed twice at a prompt without
/// echo when stdin is a terminal.
fn read_password(from_stdin: bool) -> Result<Password, UsersError> {
    let input = |err: io::Error| UsersError::PasswordInput(err.to_string());
    if from_stdin {
        return read_line(&mut io::stdin().lock()).map_err(input);
    }
    if !io::stdin().is_terminal() {
        return Err(UsersError::PasswordInput(
            "standard input is not a terminal: use --password-stdin and write the password \
             as one line"
                .to_owned(),
        ));
    }
    let first = Zeroizing::new(rpassword::prompt_password("New password: ").map_err(input)?);
    let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ").map_err(input)?);
    if first != second {
        return Err(UsersError::PasswordInput(
            "the two passwords differ".to_owned(),
        ));
    }
    Ok(Password::new(first.as_str().to_owned()))
}

/// One line, without its line ending; an empty input is an error (a
/// forgotten pipe must not become an empty password).
fn read_line(input: &mut dyn io::BufRead) -> io::Result<Password> {
    // Longer than any accepted password (in bytes, 4 per char at most), so
    // an over-long one is reported as too long rather than cut.
    let limit = (MAX_PASSWORD_CHARS * 4 + 2) as u64;
    let mut line = Zeroizing::new(String::new());
    if input.take(limit).read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "standard input is empty",
        ));
    }
    let text = line.trim_end_matches(['\n', '\r']);
    Ok(Password::new(text.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        users: UsersCommand,
    }

    fn parse(args: &[&str]) -> UsersCommand {
        Cli::try_parse_from(std::iter::once("users").chain(args.iter().copied()))
            .unwrap()
            .users
    }

    fn run(store: &UserStore, args: &[&str], password: &str) -> Result<Output, UsersError> {
        let mut source = |_| Ok(Password::new(password.to_owned()));
        execute(parse(args), store, &mut source)
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&[
                "add",
                "alice",
                "--groups",
                "a,b",
                "--email",
                "a@x.io",
                "--password-stdin"
            ]),
            UsersCommand::Add {
                username: "alice".into(),
                groups: vec!["a".into(), "b".into()],
                email: Some("a@x.io".into()),
                password_stdin: true,
            }
        );
        assert_eq!(parse(&["list"]), UsersCommand::List);
        // There is no way to pass a password as an argument.
        assert!(Cli::try_parse_from(["users", "add", "alice", "--password", "x"]).is_err());
        assert!(Cli::try_parse_from(["users", "passwd", "alice", "secret"]).is_err());
    }

    #[test]
    fn add_list_passwd_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("users.toml"));
        assert!(
            run(&store, &["list"], "")
                .unwrap()
                .note
                .starts_with("no users file")
        );
        let out = run(
            &store,
            &[
                "add",
                "alice",
                "--groups",
                "admins,dev",
                "--email",
                "alice@example.com",
            ],
            "alice password",
        )
        .unwrap();
        assert!(
            out.note.starts_with("added user alice (sub "),
            "{}",
            out.note
        );
        run(&store, &["add", "bob"], "bob's password").unwrap();
        let listed = run(&store, &["list"], "").unwrap().stdout;
        let lines: Vec<Vec<&str>> = listed
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let users = store.list().unwrap();
        assert_eq!(
            lines,
            [
                vec![
                    "alice",
                    users[0].sub.as_str(),
                    "admins,dev",
                    "alice@example.com"
                ],
                vec!["bob", users[1].sub.as_str(), "-", "-"],
            ]
        );
        assert!(!listed.contains("argon2"), "never hashes");

        let err = run(&store, &["add", "Alice"], "short").unwrap_err();
        assert!(matches!(err, UsersError::AlreadyExists { .. }), "{err:?}");
        assert_eq!(exit_code(&err), 1);
        let err = run(&store, &["add", "carol"], "short").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the password must be 12 to 1024 characters long"
        );
        run(&store, &["passwd", "ALICE"], "a new password").unwrap();
        let err = run(&store, &["passwd", "ghost"], "a new password").unwrap_err();
        assert_eq!(exit_code(&err), 1);
        run(&store, &["remove", "bob"], "").unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn no_password_is_asked_for_a_change_that_cannot_happen() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("users.toml"));
        let asked = std::cell::Cell::new(0);
        let mut source = |_| {
            asked.set(asked.get() + 1);
            Ok(Password::new("irrelevant password".to_owned()))
        };
        let err = execute(parse(&["passwd", "ghost"]), &store, &mut source).unwrap_err();
        assert!(matches!(err, UsersError::UnknownUser { .. }));
        let err = execute(parse(&["add", "a/b"]), &store, &mut source).unwrap_err();
        assert!(matches!(err, UsersError::InvalidName { .. }));
        assert_eq!(asked.get(), 0);
        execute(parse(&["add", "alice"]), &store, &mut source).unwrap();
        let err = execute(parse(&["add", "ALICE"]), &store, &mut source).unwrap_err();
        assert!(matches!(err, UsersError::AlreadyExists { .. }));
        assert_eq!(asked.get(), 1);
    }

    #[test]
    fn stdin_password_is_one_line() {
        let read = |input: &str| read_line(&mut io::Cursor::new(input.as_bytes().to_vec()));
        assert_eq!(
            read("secret pass\r\nignored\n").unwrap().expose(),
            "secret pass"
        );
        assert_eq!(read("no newline").unwrap().expose(), "no newline");
        assert_eq!(
            read("  spaces kept  \n").unwrap().expose(),
            "  spaces kept  "
        );
        assert!(read("").is_err());
        assert_eq!(read("\n").unwrap().expose(), "");
    }
}
