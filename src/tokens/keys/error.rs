//! The one error type of the key ring (and of minting, which fails only
//! when signing does or the subject is blank).

use std::io;
use std::path::PathBuf;

use super::Stage;
use crate::tokens::config::SigningAlgorithm;

/// Why the key ring could not be loaded, changed or used.
///
/// No variant ever holds key bytes: parse failures of the key file carry a
/// position and a reason, not the offending text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading, writing or creating the key ring file (or its directory) failed.
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
    /// The key ring file can be read or changed by its group or by others:
    /// anyone who can read it can mint tokens for any user. Refused, as ssh
    /// refuses such private keys.
    #[error(
        "{path} is accessible by group or others (mode {mode:03o}); refusing to use the signing keys: `chmod 600` the file, or mount it root-owned with the service's group and mode 0440 (Kubernetes: fsGroup + defaultMode 0440)"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// There is no key ring file and generating one is not allowed here.
    #[error("no key ring at {path} (create one with `session-bridge keys generate`)")]
    Missing {
        /// Where the file was expected.
        path: PathBuf,
    },
    /// `keys generate` would replace an existing key ring.
    #[error(
        "a key ring already exists at {path} (replacing it invalidates every live token; use --force)"
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file is not a key ring: bad JSON or wrong structure.
    ///
    /// The detail is flattened to text on purpose: a `serde_json` error can
    /// quote the offending value, which may be private key material.
    #[error("{path} is not a valid key ring: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (a position and a reason; never file content).
        detail: String,
    },
    /// One key in the file is unusable.
    #[error("{path}: the {stage} key is unusable: {reason}")]
    InvalidKey {
        /// The file.
        path: PathBuf,
        /// Which key.
        stage: Stage,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The crypto library could not generate a key.
    #[error("cannot generate a {algorithm} key")]
    Generate {
        /// The algorithm asked for.
        algorithm: SigningAlgorithm,
        /// The crypto library's (content-free) error.
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },
    /// The crypto library could not sign.
    #[error("cannot sign with key {kid}")]
    Sign {
        /// The key that failed.
        kid: String,
        /// The crypto library's (content-free) error.
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },
    /// A token was asked for a blank subject (`sub`): it would name nobody.
    #[error("cannot mint a token for an empty or blank subject (sub)")]
    EmptySubject,
    /// Token claims could not be encoded as JSON.
    #[error("cannot encode token claims")]
    Encode(#[source] serde_json::Error),
}
