//! The names a bundle entry may have, checked before anything else is done with an entry of
//! an untrusted tar: the metadata files, the two blob directories, and
//! `blobs/sha256/<64 lowercase hex>`. Everything else is refused with a reason.

use super::{DIRECTORIES, METADATA_FILES};
use ferry_oci::digest::{Algorithm, Digest, truncate_for_message};

/// What an accepted entry name denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryName {
    /// One of [`METADATA_FILES`].
    Metadata(&'static str),
    /// One of [`DIRECTORIES`].
    Directory(&'static str),
    /// `blobs/sha256/<hex>`: the blob with this digest.
    Blob(Digest),
}

/// Why a bundle never holds an entry of that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameProblem {
    /// Not UTF-8.
    #[error("is not valid UTF-8")]
    NotUtf8,
    /// Starts with `/`.
    #[error("is an absolute path")]
    Absolute,
    /// Has a `..` component.
    #[error("climbs out of the bundle with \"..\"")]
    DotDot,
    /// Has a backslash or NUL.
    #[error("contains a backslash or NUL byte")]
    Odd,
    /// Under `blobs/`, but not `blobs/<alg>/<hex>`.
    #[error("is not named blobs/sha256/<64 lowercase hex digits>")]
    NotBlobName,
    /// `blobs/<alg>/<hex>` that is not a digest.
    #[error("is not named after a valid digest ({0})")]
    BadDigest(ferry_oci::digest::DigestError),
    /// A digest of another algorithm.
    #[error("is not a sha256 blob (ferry bundles hold blobs/sha256/ only)")]
    NotSha256,
    /// Anything else.
    #[error(
        "is not a file of a ferry bundle (expected oci-layout, index.json, images.lock, manifest.json, ferry-delta.json, blobs/, blobs/sha256/ or blobs/sha256/<64 lowercase hex digits>)"
    )]
    Unknown,
}

/// The name as it may be quoted in a message: lossy UTF-8, shortened.
pub(crate) fn quote(name: &[u8]) -> String {
    truncate_for_message(&String::from_utf8_lossy(name))
}

/// Classifies an entry name, or says why a bundle never holds it.
pub(crate) fn classify(name: &[u8]) -> Result<EntryName, NameProblem> {
    let Ok(text) = std::str::from_utf8(name) else {
        return Err(NameProblem::NotUtf8);
    };
    // Blob names first: the digest is validated before the name is used for anything else.
    if let Some(rest) = text.strip_prefix("blobs/")
        && !DIRECTORIES.contains(&text)
    {
        return classify_blob(text, rest);
    }
    if let Some(&known) = METADATA_FILES.iter().find(|&&m| m == text) {
        return Ok(EntryName::Metadata(known));
    }
    if let Some(&known) = DIRECTORIES.iter().find(|&&d| d == text) {
        return Ok(EntryName::Directory(known));
    }
    Err(unsafe_reason(text).unwrap_or(NameProblem::Unknown))
}

fn classify_blob(text: &str, rest: &str) -> Result<EntryName, NameProblem> {
    let Some((algorithm, hex)) = rest.split_once('/') else {
        return Err(unsafe_reason(text).unwrap_or(NameProblem::NotBlobName));
    };
    let digest = Digest::parse(&format!("{algorithm}:{hex}"))
        .map_err(|e| unsafe_reason(text).unwrap_or(NameProblem::BadDigest(e)))?;
    if digest.kind() != Algorithm::Sha256 {
        return Err(NameProblem::NotSha256);
    }
    // The digest's own path must be the entry name, byte for byte.
    if digest.blob_path() != text {
        return Err(NameProblem::NotBlobName);
    }
    Ok(EntryName::Blob(digest))
}

/// A more pointed reason for names that try to escape the bundle directory.
fn unsafe_reason(text: &str) -> Option<NameProblem> {
    if text.starts_with('/') {
        return Some(NameProblem::Absolute);
    }
    if text.split('/').any(|c| c == "..") {
        return Some(NameProblem::DotDot);
    }
    if text.contains('\\') || text.contains('\0') {
        return Some(NameProblem::Odd);
    }
    None
}

#[cfg(test)]
mod tests;
