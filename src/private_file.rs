//! Files only the service's user may read (the key ring, the users file):
//! directories created 0700, files written 0600 and replaced atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What failed while writing a private file.
#[derive(Debug)]
pub(crate) struct WriteError {
    /// `create directory` or `write`.
    pub(crate) action: &'static str,
    /// The directory or file.
    pub(crate) path: PathBuf,
    /// The I/O error.
    pub(crate) source: io::Error,
}

/// Create `dir` (and its parents) with mode 0700 when missing.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Replace the file at `path` with `bytes`: written to a temporary file
/// (mode 0600) in the same directory, flushed, then renamed over the old
/// one, so a reader never sees a half-written file. The directory is created
/// with mode 0700 when missing.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(|source| WriteError {
        action: "create directory",
        path: dir.clone(),
        source,
    })?;
    let name = path.file_name().ok_or_else(|| WriteError {
        action: "write",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{:016x}", rand::random::<u64>()));
    let tmp = dir.join(tmp_name);
    if let Err(source) = write_new_private(&tmp, bytes).and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(WriteError {
            action: "write",
            path: path.to_owned(),
            source,
        });
    }
    // Make the rename durable; failing here loses nothing already visible.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
