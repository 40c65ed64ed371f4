//! The key ring file: one JSON document, private keys as base64 PKCS#8,
//! replaced atomically (temp file + rename) with mode 0600.
//!
//! ```json
//! {
//!   "version": 1,
//!   "current":  { "kid": "…", "alg": "RS256", "created_at": "2026-11-29T13:49:00Z", "private_key_pkcs8": "MIIE…" },
//!   "next":     { … },
//!   "previous": null
//! }
//! ```
//!
//! `kid` may be left out (it is computed from the key; when present it must
//! match), and `private_key_pkcs8` may also hold a PEM `PRIVATE KEY` block,
//! so an operator can bring keys made with `openssl genpkey`.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::signing_key::{PrivateKeyDer, SigningKey};
use super::{KeyError, Stage, Stages};
use crate::tokens::config::SigningAlgorithm;

const FORMAT_VERSION: u32 = 1;
/// A key ring is a few KiB; anything much larger is the wrong file (and
/// reading `/dev/zero` by mistake must not hang the service).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// SHA-256 of the file as last read or written: lets a periodic reload skip
/// parsing (and RSA key checks) when nothing changed.
pub(crate) type FileDigest = [u8; 32];

pub(crate) fn digest(bytes: &[u8]) -> FileDigest {
    let mut out = [0; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    out
}

/// Read the file; `None` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    let io_err = |source| KeyError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_err(err)),
    };
    check_private(path, &file)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(16 * 1024));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(KeyError::Malformed {
            path: path.to_owned(),
            detail: "larger than 1 MiB".to_owned(),
        });
    }
    Ok(Some(bytes))
}

/// Refuse a key file its group or others may read or change (ssh's rule),
/// with one exception, as PostgreSQL makes for its key file: a file owned by
/// root that a non-root group may read and nobody else may (`0440`/`0640`,
/// group not root) is how Kubernetes (`fsGroup` + `defaultMode: 0440`) and
/// Docker secrets hand a secret to a service running as that group.
#[cfg(unix)]
fn check_private(path: &Path, file: &File) -> Result<(), KeyError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = file.metadata().map_err(|source| KeyError::Io {
        action: "inspect",
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    let secret_mount = meta.uid() == 0 && meta.gid() != 0 && mode & 0o077 == 0o040;
    if mode & 0o077 != 0 && !secret_mount {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &File) -> Result<(), KeyError> {
    Ok(())
}

#[derive(Deserialize)]
struct FileIn {
    version: u32,
    current: KeyIn,
    #[serde(default)]
    next: Option<KeyIn>,
    #[serde(default)]
    previous: Option<KeyIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyIn {
    #[serde(default)]
    kid: Option<String>,
    alg: String,
    created_at: String,
    #[serde(deserialize_with = "secret_string")]
    private_key_pkcs8: Zeroizing<String>,
}

fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

/// Parse the file's content into stages.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Stages, KeyError> {
    let malformed = |detail: String| KeyError::Malformed {
        path: path.to_owned(),
        detail,
    };
    let file: FileIn = serde_json::from_slice(bytes).map_err(|err| malformed(describe(&err)))?;
    if file.version != FORMAT_VERSION {
        return Err(malformed(format!(
            "unsupported version {} (expected {FORMAT_VERSION})",
            file.version
        )));
    }
    let load = |stage, key: Option<KeyIn>| {
        key.map(|key| load_key(path, stage, key).map(Arc::new))
            .transpose()
    };
    let stages = Stages {
        next: load(Stage::Next, file.next)?,
        current: load_key(path, Stage::Current, file.current).map(Arc::new)?,
        previous: load(Stage::Previous, file.previous)?,
    };
    let kids: Vec<&str> = stages.iter().map(|(_, key)| key.kid()).collect();
    if (1..kids.len()).any(|i| kids[..i].contains(&kids[i])) {
        return Err(malformed("the same key appears in two stages".to_owned()));
    }
    Ok(stages)
}

/// `serde_json`'s message without anything it may have quoted from the file.
fn describe(err: &serde_json::Error) -> String {
    let message = err.to_string();
    // Data errors may quote a string value (`invalid type: string "MIIE…"`);
    // syntax errors and field names never carry content.
    if err.classify() == serde_json::error::Category::Data && message.contains('"') {
        format!(
            "unexpected value at line {} column {}",
            err.line(),
            err.column()
        )
    } else {
        message
    }
}

fn load_key(path: &Path, stage: Stage, key: KeyIn) -> Result<SigningKey, KeyError> {
    let invalid = |reason| KeyError::InvalidKey {
        path: path.to_owned(),
        stage,
        reason,
    };
    let algorithm = SigningAlgorithm::from_jose(&key.alg)
        .ok_or_else(|| invalid("`alg` must be RS256, ES256 or EdDSA"))?;
    let created_at = humantime::parse_rfc3339_weak(&key.created_at)
        .map(OffsetDateTime::from)
        .map_err(|_| invalid("`created_at` is not an RFC 3339 time"))?;
    let der = decode_private_key(&key.private_key_pkcs8)
        .ok_or_else(|| invalid("`private_key_pkcs8` is not base64 or PEM"))?;
    let signing = SigningKey::from_pkcs8(algorithm, der, created_at).map_err(invalid)?;
    if key.kid.as_deref().is_some_and(|kid| kid != signing.kid()) {
        return Err(invalid("`kid` is not the key's RFC 7638 thumbprint"));
    }
    Ok(signing)
}

fn decode_private_key(text: &str) -> Option<PrivateKeyDer> {
    let text = text.trim();
    let body: Zeroizing<String> = match text.strip_prefix("-----BEGIN PRIVATE KEY-----") {
        Some(rest) => Zeroizing::new(
            rest.strip_suffix("-----END PRIVATE KEY-----")?
                .split_whitespace()
                .collect(),
        ),
        None => Zeroizing::new(text.to_owned()),
    };
    STANDARD
        .decode(body.as_bytes())
        .ok()
        .map(PrivateKeyDer::new)
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    current: KeyOut<'a>,
    next: Option<KeyOut<'a>>,
    previous: Option<KeyOut<'a>>,
}

#[derive(Serialize)]
struct KeyOut<'a> {
    kid: &'a str,
    alg: &'static str,
    created_at: String,
    #[serde(serialize_with = "expose_secret")]
    private_key_pkcs8: Zeroizing<String>,
}

fn expose_secret<S: serde::Serializer>(
    secret: &Zeroizing<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret)
}

impl<'a> KeyOut<'a> {
    fn new(key: &'a SigningKey) -> Self {
        Self {
            kid: key.kid(),
            alg: key.algorithm().as_str(),
            created_at: humantime::format_rfc3339_seconds(SystemTime::from(key.created_at()))
                .to_string(),
            private_key_pkcs8: Zeroizing::new(STANDARD.encode(key.pkcs8().as_bytes())),
        }
    }
}

/// The file content for `stages`.
pub(crate) fn encode(stages: &Stages) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let file = FileOut {
        version: FORMAT_VERSION,
        current: KeyOut::new(&stages.current),
        next: stages.next.as_deref().map(KeyOut::new),
        previous: stages.previous.as_deref().map(KeyOut::new),
    };
    // Sized up front so the buffer is not reallocated, which would leave
    // unwiped copies of the private keys behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(32 * 1024));
    serde_json::to_writer_pretty(&mut *bytes, &file).map_err(KeyError::Encode)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Replace the key ring file atomically (see [`crate::private_file`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    crate::private_file::write_atomic(path, bytes).map_err(|e| KeyError::Io {
        action: e.action,
        path: e.path,
        source: e.source,
    })
}
