//! Configuration loading from an untrusted file: never a panic, only a
//! configuration or a list of problems.
#![no_main]

use session_bridge::config::{Config, Overrides};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut file, data).is_err() {
        return;
    }
    let _ = Config::load(Some(file.path()), &Overrides::default());
});
