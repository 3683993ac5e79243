//! Small filesystem helpers shared by the commands: atomic writes (temp file in the same
//! directory, then rename), so a reader never sees half a file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `bytes` to `path` atomically: the final name appears only with the whole content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-tmp-")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot create a temporary file in {} to write {}",
                dir.display(),
                path.display()
            )
        })?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| {
        format!(
            "cannot move the finished file into place at {}",
            path.display()
        )
    })?;
    Ok(())
}

/// Reads a small file of the user's (an htpasswd file, a list, a lock, a CA bundle), at most
/// `max` bytes: a larger one is an `InvalidData` error that says the size, instead of a read
/// that fills memory with whatever the path names (a device, a log, the wrong file).
pub fn read_small_bytes(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    crate::bounded::read(path, max).map_err(|e| match e {
        crate::bounded::ReadError::Io(e) => e,
        too_large => std::io::Error::new(std::io::ErrorKind::InvalidData, too_large.to_string()),
    })
}

/// [`read_small_bytes`], as UTF-8 text.
pub fn read_small(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_small_bytes(path, max)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The largest list, lock or config file read: far past any real one (a lock of 3,000
/// images is a few MB).
pub const MAX_TEXT_FILE: u64 = 64 * 1024 * 1024;
