//! Integration tests of the PHP adapter against real PHP 8.2 (the `php`
//! CLI, and `php -S` with phpredis's session handler on the harness's
//! Redis), and against moto for aws-sdk-php's DynamoDB layout. Run them
//! through `./infra/test.sh`, which starts the servers and sets the
//! `SB_*` variables; without it they fail, never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod codec;
mod dynamodb;
mod garbage;
mod index;
mod php_redis;
mod roundtrip;

use std::io::Write;
use std::process::{Command, Stdio};

/// An environment variable the harness sets; a clear failure when missing.
pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ./infra/test.sh (or source infra/harness.sh)"
        )
    })
}

/// Run PHP code with the `php` CLI (`$argv[1..]` = `args`, stdin = `input`)
/// and return its stdout; panics with its stderr when it fails.
pub(crate) fn php(code: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("php")
        .args(["-d", "display_errors=stderr", "-d", "error_reporting=-1", "-r", code, "--"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `php` ({e}): run the tests through ./infra/test.sh, which installs php-cli")
        });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "php failed: {stderr}");
    assert!(
        !stderr.contains("Warning") && !stderr.contains("Notice") && !stderr.contains("Fatal"),
        "php complained: {stderr}"
    );
    out.stdout
}

/// PHP code that starts a session in the CLI (files handler in the temp
/// dir, never written) with `session.serialize_handler = $argv[1]`.
pub(crate) const PHP_CLI_SESSION: &str = r#"
ini_set('session.save_handler', 'files');
session_save_path(sys_get_temp_dir());
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.serialize_handler', $argv[1]);
session_start();
register_shutdown_function('session_abort');
"#;

/// The classes the PHP fixtures use, declared the same on both sides.
pub(crate) const PHP_CLASSES: &str = r#"
class Foo { public $a = 1; protected $b = [1, 2]; private $c = "x"; public $self; }
enum Suit: string { case Hearts = 'H'; }
class Legacy implements Serializable {
    public $d;
    public function serialize() { return serialize($this->d); }
    public function unserialize($s) { $this->d = unserialize($s); }
}
"#;
