//! `session-bridge keys …` and `session-bridge token …`: operator and test
//! tools over the key ring, the minter and the verifier.
//!
//! Exit codes: 0 success; 1 the operation failed (or, for `token verify`,
//! the token is not valid: its error kind, e.g. `expired`, is the first word
//! on stderr); 2 the tool could not run (unreadable key ring, bad trust
//! configuration).

use std::io::{self, Read as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};

use crate::error_chain;
use crate::tokens::config::TokensConfig;
use crate::tokens::keys::{KeyError, KeyInfo, KeyRing};
use crate::tokens::mint::{Minter, Subject, TokenUse, new_jti};
use crate::tokens::verify::{OwnIssuer, Verifier};

/// `session-bridge keys …`: manage the signing key ring.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum KeysCommand {
    /// Create a key ring (a `current` and a `next` key) at the configured path.
    Generate {
        /// Replace an existing key ring: every token it signed stops verifying.
        #[arg(long)]
        force: bool,
    },
    /// previous ← current ← next ← a new key. A running service picks the
    /// change up within `tokens.reload_interval`.
    Rotate,
    /// Drop the previous key: tokens it signed stop verifying. Run it once
    /// the longest token lifetime has passed since the last rotation.
    Retire,
    /// Print stage, kid, algorithm and creation time of every key.
    List,
}

/// `session-bridge token …`: mint and check tokens (development, tests,
/// debugging a rejected token).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TokenCommand {
    /// Print a token signed by the current key.
    Mint {
        /// `sub` claim (not empty or blank).
        #[arg(long, value_parser = not_blank)]
        sub: String,
        /// Username (default: the `sub`).
        #[arg(long)]
        username: Option<String>,
        /// Groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Access or id token.
        #[arg(long = "use", value_enum, default_value_t = TokenUseArg::Access)]
        token_use: TokenUseArg,
        /// Token family (`origin_jti`; default: a new random one).
        #[arg(long)]
        origin_jti: Option<String>,
        /// `email` claim (id tokens).
        #[arg(long)]
        email: Option<String>,
        /// `name` claim (id tokens).
        #[arg(long)]
        name: Option<String>,
        /// The running service's address, as given to `serve --listen`: the
        /// issuer is `http://ADDR` unless a public URL is configured.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// The running service's public URL, as given to `serve
        /// --public-url` (the tokens' issuer).
        #[arg(long, value_name = "URL")]
        public_url: Option<url::Url>,
    },
    /// Verify a token against our keys and the configured trusted issuers;
    /// print its claims as JSON.
    Verify {
        /// The token, or `-` to read it from standard input.
        #[arg(default_value = "-")]
        token: String,
        /// Require this token use.
        #[arg(long = "use", value_enum)]
        token_use: Option<TokenUseArg>,
        /// As for `mint`: the address given to `serve --listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// As for `mint`: the URL given to `serve --public-url`.
        #[arg(long, value_name = "URL")]
        public_url: Option<url::Url>,
    },
}

impl TokenCommand {
    /// `--listen` and `--public-url`: they decide the issuer like the
    /// service's own flags, so minted tokens are the ones it accepts.
    pub fn issuer_overrides(&self) -> (Option<std::net::SocketAddr>, Option<url::Url>) {
        match self {
            Self::Mint {
                listen, public_url, ..
            }
            | Self::Verify {
                listen, public_url, ..
            } => (*listen, public_url.clone()),
        }
    }
}

/// A `--sub` that names somebody.
fn not_blank(value: &str) -> Result<String, &'static str> {
    if value.trim().is_empty() {
        Err("must not be empty or blank")
    } else {
        Ok(value.to_owned())
    }
}

/// `--use` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenUseArg {
    /// An access token.
    Access,
    /// An id token.
    Id,
}

impl From<TokenUseArg> for TokenUse {
    fn from(arg: TokenUseArg) -> Self {
        match arg {
            TokenUseArg::Access => TokenUse::Access,
            TokenUseArg::Id => TokenUse::Id,
        }
    }
}

/// Run a `keys` command on the key ring of `cfg` (see
/// [`KeyRing::path_for`]). Lists go to stdout, notes to stderr.
pub async fn run_keys(cmd: KeysCommand, cfg: &TokensConfig, data_dir: &Path) -> ExitCode {
    let path = KeyRing::path_for(cfg, data_dir);
    let (algorithm, reload) = (cfg.algorithm, cfg.reload_interval);
    // Key generation (RSA) and file I/O block: keep them off the runtime.
    let outcome = tokio::task::spawn_blocking(move || -> Result<(KeyRing, String), KeyError> {
        match cmd {
            KeysCommand::Generate { force } => {
                let ring = KeyRing::generate(&path, algorithm, force)?;
                Ok((
                    ring,
                    format!("generated a key ring ({algorithm}) at {}", path.display()),
                ))
            }
            KeysCommand::Rotate => {
                let (ring, _) = KeyRing::open(&path, algorithm, false)?;
                ring.rotate()?;
                Ok((
                    ring,
                    format!(
                        "rotated: the former next key now signs; a running service \
                         picks this up within {}",
                        humantime::format_duration(reload)
                    ),
                ))
            }
            KeysCommand::Retire => {
                let (ring, _) = KeyRing::open(&path, algorithm, false)?;
                let note = match ring.retire()? {
                    true => "retired the previous key",
                    false => "there is no previous key to retire",
                };
                Ok((ring, note.to_owned()))
            }
            KeysCommand::List => Ok((KeyRing::open(&path, algorithm, false)?.0, String::new())),
        }
    })
    .await;
    match outcome {
        Ok(Ok((ring, note))) => {
            if !note.is_empty() {
                eprintln!("{note}");
            }
            print!("{}", key_table(&ring.keys()));
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("session-bridge: {}", error_chain(&err));
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("session-bridge: key ring task failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One line per key: stage, kid, algorithm, creation time (RFC 3339).
fn key_table(keys: &[KeyInfo]) -> String {
    keys.iter()
        .map(|key| {
            let created = humantime::format_rfc3339_seconds(key.created_at.into());
            format!(
                "{:<8}  {}  {:<5}  {created}\n",
                key.stage.as_str(),
                key.kid,
                key.algorithm.as_str()
            )
        })
        .collect()
}

/// Run a `token` command. `public_url` is our issuer (`iss`).
pub async fn run_token(
    cmd: TokenCommand,
    cfg: &TokensConfig,
    public_url: &str,
    data_dir: &Path,
) -> ExitCode {
    match cmd {
        TokenCommand::Mint {
            sub,
            username,
            groups,
            token_use,
            origin_jti,
            email,
            name,
            ..
        } => {
            let mut subject = Subject::new(sub).with_groups(groups);
            if let Some(username) = username {
                subject = subject.with_username(username);
            }
            subject.email = email;
            subject.name = name;
            let origin_jti = origin_jti.unwrap_or_else(new_jti);
            mint(
                cfg,
                public_url,
                data_dir,
                &subject,
                token_use.into(),
                &origin_jti,
            )
            .await
        }
        TokenCommand::Verify {
            token, token_use, ..
        } => verify(cfg, public_url, data_dir, &token, token_use.map(Into::into)).await,
    }
}

async fn mint(
    cfg: &TokensConfig,
    public_url: &str,
    data_dir: &Path,
    subject: &Subject,
    token_use: TokenUse,
    origin_jti: &str,
) -> ExitCode {
    let (cfg_owned, dir) = (cfg.clone(), data_dir.to_owned());
    let loaded =
        tokio::task::spawn_blocking(move || KeyRing::load_or_generate(&cfg_owned, &dir)).await;
    let ring = match loaded {
        Ok(Ok((ring, generated))) => {
            if generated {
                eprintln!(
                    "note: generated new signing keys at {}",
                    ring.path().display()
                );
            }
            ring
        }
        Ok(Err(err)) => return fail(2, &err),
        Err(err) => return fail(2, &err),
    };
    let minter = Minter::new(Arc::new(ring), public_url.to_owned(), cfg);
    match minter.mint(token_use, subject, origin_jti) {
        Ok(minted) => {
            println!("{}", minted.token);
            ExitCode::SUCCESS
        }
        Err(err) => fail(1, &err),
    }
}

async fn verify(
    cfg: &TokensConfig,
    public_url: &str,
    data_dir: &Path,
    token: &str,
    token_use: Option<TokenUse>,
) -> ExitCode {
    let token = match read_token(token) {
        Ok(token) => token,
        Err(err) => return fail(2, &err),
    };
    // Our own keys, when there are any: never generated here, since a fresh
    // key ring could not have signed the token.
    let path = KeyRing::path_for(cfg, data_dir);
    let algorithm = cfg.algorithm;
    let own = match tokio::task::spawn_blocking(move || KeyRing::open(path, algorithm, false)).await
    {
        Ok(Ok((ring, _))) => Some(OwnIssuer {
            issuer: public_url.to_owned(),
            client_id: cfg.client_id.clone(),
            keys: Arc::new(ring),
        }),
        Ok(Err(KeyError::Missing { .. })) => None,
        Ok(Err(err)) => return fail(2, &err),
        Err(err) => return fail(2, &err),
    };
    // `new`, not `start`: remote keys are fetched on demand for this one token.
    let verifier = match Verifier::new(&cfg.verify, &cfg.trust, own) {
        Ok(verifier) => verifier,
        Err(err) => return fail(2, &err),
    };
    let verified = match token_use {
        Some(token_use) => verifier.verify_as(&token, token_use).await,
        None => verifier.verify(&token).await,
    };
    match verified {
        Ok(verified) => match serde_json::to_string_pretty(&verified.raw_claims()) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => fail(2, &err),
        },
        Err(err) => {
            // The kind first, alone as a word: scripts match on it.
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// The token from the argument, or from stdin for `-`; surrounding
/// whitespace (a trailing newline from `echo`) removed.
fn read_token(arg: &str) -> io::Result<String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut token = String::new();
    // A token is a few KiB; the verifier's size limit rejects anything
    // larger, so stop reading well past it.
    io::stdin().take(1024 * 1024).read_to_string(&mut token)?;
    Ok(token.trim().to_owned())
}

fn fail(code: u8, err: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("session-bridge: {}", error_chain(err));
    ExitCode::from(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, Subcommand)]
    #[allow(clippy::large_enum_variant)]
    enum Command {
        #[command(subcommand)]
        Keys(KeysCommand),
        #[command(subcommand)]
        Token(TokenCommand),
    }

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("sb").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    #[test]
    fn mint_arguments() {
        let Command::Token(cmd) = parse(&[
            "token",
            "mint",
            "--sub",
            "s1",
            "--groups",
            "a,b",
            "--use",
            "id",
            "--origin-jti",
            "fam",
        ]) else {
            panic!()
        };
        assert_eq!(
            cmd,
            TokenCommand::Mint {
                sub: "s1".into(),
                username: None,
                groups: vec!["a".into(), "b".into()],
                token_use: TokenUseArg::Id,
                origin_jti: Some("fam".into()),
                email: None,
                name: None,
                listen: None,
                public_url: None,
            }
        );
    }

    #[test]
    fn verify_reads_stdin_by_default() {
        let Command::Token(cmd) = parse(&["token", "verify"]) else {
            panic!()
        };
        assert_eq!(
            cmd,
            TokenCommand::Verify {
                token: "-".into(),
                token_use: None,
                listen: None,
                public_url: None,
            }
        );
        let Command::Keys(cmd) = parse(&["keys", "generate", "--force"]) else {
            panic!()
        };
        assert_eq!(cmd, KeysCommand::Generate { force: true });
    }

    #[test]
    fn key_table_has_no_private_material() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, _) = KeyRing::open(
            dir.path().join("keys.json"),
            crate::tokens::config::SigningAlgorithm::EdDSA,
            true,
        )
        .unwrap();
        let table = key_table(&ring.keys());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("current "));
        assert!(lines[0].contains(ring.signing_key().kid()));
        assert!(lines[0].contains("EdDSA"));
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ring.path()).unwrap()).unwrap();
        let secret = file["current"]["private_key_pkcs8"].as_str().unwrap();
        assert!(!table.contains(&secret[..12]));
    }
}
