//! Image lists as users hand them to ferry: `--images FILE` in the `rancher-images.txt` shape
//! (one reference per line, `#` comments, blank lines ignored, RKE log lines skipped).

use std::path::Path;

use ferry_oci::reference::Reference;

/// Why an image list cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Unreadable file.
    #[error("cannot read image list {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line that is not an image reference.
    #[error(
        "{path}:{line}: {reason}; each line must hold one image reference such as rancher/rke-tools:v0.1.103 (# starts a comment)"
    )]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        reason: String,
    },
    /// Nothing to do.
    #[error("image list {path} names no images")]
    Empty {
        /// The file.
        path: String,
    },
}

/// True for log lines RKE mixes into `rke config --system-images` output.
fn is_log_line(line: &str) -> bool {
    line.starts_with("INFO[")
        || line.starts_with("WARN[")
        || line.starts_with("time=")
        || line.contains('\u{1b}')
}

pub use ferry_oci::reference::dedupe;

/// Parses an image list. Duplicates (also two spellings of one reference) are dropped, the
/// first occurrence kept.
pub fn parse_image_list(text: &str, path: &str) -> Result<Vec<(String, Reference)>, InputError> {
    let mut out: Vec<(String, Reference)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() || is_log_line(line) {
            continue;
        }
        let r = Reference::parse(line).map_err(|e| InputError::BadLine {
            path: path.into(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        out.push((line.to_string(), r));
    }
    if out.is_empty() {
        return Err(InputError::Empty { path: path.into() });
    }
    Ok(dedupe(out))
}

/// Reads an image list file.
pub fn read_image_list(path: &Path) -> Result<Vec<(String, Reference)>, InputError> {
    let name = path.display().to_string();
    let text = ferry_base::fsutil::read_small(path, ferry_base::fsutil::MAX_TEXT_FILE).map_err(
        |source| InputError::Read {
            path: name.clone(),
            source,
        },
    )?;
    parse_image_list(&text, &name)
}

#[cfg(test)]
mod tests;
