//! The users file: TOML, one `[[user]]` table per user, replaced atomically
//! (temp file + rename) with mode 0600.
//!
//! ```toml
//! version = 1
//!
//! [[user]]
//! username = "dev"
//! sub = "0b6c4d8e-5f2a-4c1e-9a7d-2f4e8b1c3a5d"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! groups = ["dev"]
//! email = "dev@example.com"            # optional
//! created_at = "2026-11-29T14:00:00Z"
//! updated_at = "2026-11-29T14:00:00Z"
//! ```
//!
//! A file that does not parse is reported with its line and column and is
//! never rewritten: the tools refuse to touch it until a person fixes it.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use toml::Spanned;

use super::{User, UsersError, names, password};

const FORMAT_VERSION: u32 = 1;
/// Far above any real users file (a user is ~300 bytes); reading a wrong
/// path such as `/dev/zero` must not hang or exhaust memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Written above the data on every save (TOML writers drop comments).
const HEADER: &str = "\
# session-bridge users. Manage with `session-bridge users add | passwd | remove | list`;
# a running service re-reads this file when it changes. Hand edits of groups and
# email are fine; password_hash must be an argon2id PHC string.
";

/// Identity of one version of the file: a running service re-reads the
/// file when this changes (a rename gives a new inode even when size and
/// mtime happen to match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt as _;
                (meta.dev(), meta.ino())
            },
        }
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UsersError {
    let path = path.to_owned();
    move |source| UsersError::Io {
        action,
        path,
        source,
    }
}

/// The current stamp of the file; `None` when it does not exist.
pub(crate) fn stamp(path: &Path) -> Result<Option<Stamp>, UsersError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(Stamp::of(&meta))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io_error("read", path)(err)),
    }
}

/// Read the file and the stamp of what was read; `None` when it does not
/// exist.
pub(crate) fn read(path: &Path) -> Result<Option<(Vec<u8>, Stamp)>, UsersError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error("read", path)(err)),
    };
    let stamp = Stamp::of(&file.metadata().map_err(io_error("read", path))?);
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error("read", path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(malformed(path, "", 0, "larger than 64 MiB".to_owned()));
    }
    Ok(Some((bytes, stamp)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    version: Spanned<u32>,
    #[serde(default)]
    user: Vec<UserIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIn {
    username: Spanned<String>,
    sub: Spanned<String>,
    password_hash: Spanned<String>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    email: Option<Spanned<String>>,
    created_at: Spanned<String>,
    updated_at: Spanned<String>,
}

/// Parse the file's content, checking every rule a user must satisfy.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<User>, UsersError> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let valid = String::from_utf8_lossy(&bytes[..err.valid_up_to()]);
        malformed(path, &valid, valid.len(), "not UTF-8 text".to_owned())
    })?;
    let file: FileIn = toml::from_str(text).map_err(|err| {
        let at = err.span().map_or(0, |span| span.start);
        // toml's messages may span lines ("invalid array\nexpected `]`").
        let message: Vec<&str> = err.message().lines().map(str::trim).collect();
        malformed(path, text, at, message.join(": "))
    })?;
    let bad = |span: Range<usize>, detail: String| malformed(path, text, span.start, detail);
    if *file.version.get_ref() != FORMAT_VERSION {
        return Err(bad(
            file.version.span(),
            format!(
                "unsupported version {} (expected {FORMAT_VERSION})",
                file.version.get_ref()
            ),
        ));
    }
    let mut names_seen = HashSet::new();
    let mut subs_seen = HashSet::new();
    let mut users = Vec::with_capacity(file.user.len());
    for user in file.user {
        let rule = |value: &Spanned<String>, problem: Option<&str>, what: &str| match problem {
            Some(reason) => Err(bad(value.span(), format!("invalid {what}: {reason}"))),
            None => Ok(()),
        };
        let username = &user.username;
        rule(
            username,
            names::username_problem(username.get_ref()),
            "username",
        )?;
        if !names_seen.insert(names::fold(username.get_ref())) {
            return Err(bad(
                username.span(),
                format!(
                    "username `{}` appears twice (usernames are case-insensitive)",
                    username.get_ref()
                ),
            ));
        }
        rule(&user.sub, sub_problem(user.sub.get_ref()), "sub")?;
        if !subs_seen.insert(user.sub.get_ref().clone()) {
            return Err(bad(user.sub.span(), "this sub appears twice".to_owned()));
        }
        rule(
            &user.password_hash,
            password::check_hash(user.password_hash.get_ref()).err(),
            "password_hash",
        )?;
        for group in &user.groups {
            rule(group, names::group_problem(group.get_ref()), "group")?;
        }
        if let Some(email) = &user.email {
            rule(email, names::email_problem(email.get_ref()), "email")?;
        }
        let time = |value: &Spanned<String>, what: &str| {
            humantime::parse_rfc3339_weak(value.get_ref())
                .map(OffsetDateTime::from)
                .map_err(|_| bad(value.span(), format!("{what} is not an RFC 3339 time")))
        };
        users.push(User {
            created_at: time(&user.created_at, "created_at")?,
            updated_at: time(&user.updated_at, "updated_at")?,
            username: user.username.into_inner(),
            sub: user.sub.into_inner(),
            password_hash: user.password_hash.into_inner(),
            groups: user.groups.into_iter().map(Spanned::into_inner).collect(),
            email: user.email.map(Spanned::into_inner),
        });
    }
    Ok(users)
}

/// A `sub` may come from elsewhere (a user pool being migrated), so any
/// short printable ASCII string is accepted, not only our UUIDs.
fn sub_problem(sub: &str) -> Option<&'static str> {
    (sub.is_empty() || sub.len() > 128 || !sub.bytes().all(|b| b.is_ascii_graphic()))
        .then_some("must be 1 to 128 printable ASCII characters")
}

fn malformed(path: &Path, text: &str, offset: usize, detail: String) -> UsersError {
    let (line, column) = position(text, offset);
    UsersError::Malformed {
        path: path.to_owned(),
        line,
        column,
        detail,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    user: Vec<UserOut<'a>>,
}

#[derive(Serialize)]
struct UserOut<'a> {
    username: &'a str,
    sub: &'a str,
    password_hash: &'a str,
    groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

fn rfc3339(time: OffsetDateTime) -> String {
    humantime::format_rfc3339_seconds(SystemTime::from(time)).to_string()
}

/// The file content for `users`.
pub(crate) fn encode(path: &Path, users: &[User]) -> Result<String, UsersError> {
    let file = FileOut {
        version: FORMAT_VERSION,
        user: users
            .iter()
            .map(|user| UserOut {
                username: &user.username,
                sub: &user.sub,
                password_hash: &user.password_hash,
                groups: &user.groups,
                email: user.email.as_deref(),
                created_at: rfc3339(user.created_at),
                updated_at: rfc3339(user.updated_at),
            })
            .collect(),
    };
    let body = toml::to_string(&file).map_err(|err| UsersError::Io {
        action: "encode",
        path: path.to_owned(),
        source: io::Error::other(err),
    })?;
    Ok(format!("{HEADER}\n{body}"))
}

/// Hold an exclusive lock on `<dir>/.<name>.lock` while the returned file
/// is open, so two `users` commands do not lose each other's change. The
/// users file itself cannot carry the lock: each save replaces its inode.
pub(crate) fn lock(path: &Path) -> Result<File, UsersError> {
    let (dir, name) = split(path)?;
    crate::private_file::create_private_dir(&dir).map_err(io_error("create directory", &dir))?;
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".lock");
    let lock_path = dir.join(lock_name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&lock_path)
        .map_err(io_error("open", &lock_path))?;
    file.lock().map_err(io_error("lock", &lock_path))?;
    Ok(file)
}

fn split(path: &Path) -> Result<(PathBuf, &std::ffi::OsStr), UsersError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| UsersError::Io {
        action: "write",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    Ok((dir, name))
}

/// Replace the file at `path` with `bytes`: written to a temporary file
/// (mode 0600) in the same directory, flushed, then renamed over the old
/// one, so the service never reads a half-written file. The directory is
/// created with mode 0700 when missing.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), UsersError> {
    crate::private_file::write_atomic(path, bytes)
        .map_err(|e| io_error(e.action, &e.path)(e.source))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhc2g";

    fn user_toml(username: &str, sub: &str) -> String {
        format!(
            "[[user]]\nusername = \"{username}\"\nsub = \"{sub}\"\npassword_hash = \"{HASH}\"\n\
             groups = [\"dev\"]\ncreated_at = \"2026-01-01T00:00:00Z\"\nupdated_at = \"2026-01-02T00:00:00Z\"\n"
        )
    }

    fn parse_text(text: &str) -> Result<Vec<User>, UsersError> {
        parse(Path::new("/data/users.toml"), text.as_bytes())
    }

    fn error_at(text: &str) -> (usize, usize, String) {
        match parse_text(text).unwrap_err() {
            UsersError::Malformed {
                line,
                column,
                detail,
                path,
            } => {
                assert_eq!(path, Path::new("/data/users.toml"));
                (line, column, detail)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let text = format!("version = 1\n{}", user_toml("Alice", "s-1"));
        let mut users = parse_text(&text).unwrap();
        users[0].email = Some("alice@example.com".into());
        let encoded = encode(Path::new("u.toml"), &users).unwrap();
        assert!(encoded.starts_with("# session-bridge users."));
        assert_eq!(parse_text(&encoded).unwrap(), users);
        assert_eq!(users[0].username, "Alice");
        assert_eq!(users[0].created_at.year(), 2026);
        assert_eq!(users[0].updated_at.day(), 2);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let text = format!("version = 1\n{}username = oops\n", user_toml("a", "s"));
        let (line, column, _) = error_at(&text);
        assert_eq!((line, column), (9, 12));
        let (line, _, detail) = error_at("version = 1\n[[user]]\nusername = \"a\"\nshell = 1\n");
        assert_eq!(line, 4);
        assert!(detail.contains("shell"), "{detail}");
    }

    #[test]
    fn rule_violations_point_at_the_value() {
        let text = format!(
            "version = 1\n{}\n{}",
            user_toml("alice", "s-1"),
            user_toml("ALICE", "s-2")
        );
        let (line, column, detail) = error_at(&text);
        assert_eq!((line, column), (11, 12));
        assert!(detail.contains("appears twice"), "{detail}");

        let text = format!("version = 1\n{}", user_toml("alice", "s-1"))
            .replace(HASH, "$2b$12$bcrypthashvalue");
        let (line, _, detail) = error_at(&text);
        assert_eq!(line, 5);
        assert!(detail.contains("password_hash"), "{detail}");

        let (line, _, detail) = error_at("version = 2\n");
        assert_eq!(line, 1);
        assert!(detail.contains("unsupported version"), "{detail}");

        let err = parse(Path::new("u.toml"), b"version = 1\n# caf\xc3\xa9\n\xff").unwrap_err();
        let UsersError::Malformed {
            line,
            column,
            detail,
            ..
        } = err
        else {
            panic!()
        };
        assert!(detail.contains("UTF-8"));
        assert_eq!((line, column), (3, 1));
        let _ = error_at(&format!("version = 1\n{}", user_toml("-x", "s")));
    }

    #[test]
    fn position_counts_characters() {
        assert_eq!(position("ab\ncdé\nf", 0), (1, 1));
        assert_eq!(position("ab\ncdé\nf", 3), (2, 1));
        assert_eq!(position("ab\ncdé\nf", 8), (3, 1));
        assert_eq!(position("ab\ncdé\nf", 99), (3, 2));
    }

    #[test]
    fn write_is_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/users.toml");
        write_atomic(&path, b"version = 1\n").unwrap();
        write_atomic(&path, b"version = 1\n\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"version = 1\n\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["users.toml"]);
        let before = stamp(&path).unwrap().unwrap();
        write_atomic(&path, b"version = 1\n\n").unwrap();
        assert_ne!(
            stamp(&path).unwrap().unwrap(),
            before,
            "a rename is a new version"
        );
        assert_eq!(stamp(&dir.path().join("none")).unwrap(), None);
    }
}
