//! Choosing platforms of an index (`export --platform`): a new index holding only the
//! entries of the wanted platforms, and the attestations that describe a kept entry. Every
//! other field of the index is kept as it was. This is the one place ferry writes a manifest
//! of its own; the lock records the new digest next to the upstream one.

use super::digest::Digest;
use super::manifest::Descriptor;
use super::platform::Platform;

/// The annotation BuildKit puts on an attestation entry: the digest it describes.
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// A new index, with the children it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The new index's bytes (compact JSON).
    pub bytes: Vec<u8>,
    /// The kept entries' digests, in index order.
    pub kept: Vec<Digest>,
}

/// Why no new index can be made.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// `--platform` selects none of the index's platforms.
    #[error(
        "none of its platforms ({}) is selected by --platform",
        have.iter().map(Platform::to_string).collect::<Vec<_>>().join(", ")
    )]
    NoneSelected {
        /// The platforms the index has.
        have: Vec<Platform>,
    },
    /// The index is not JSON (it was parsed before, so it is not what was parsed).
    #[error("the index is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Keeps the entries of `children` (the parsed entries of `index`) whose platform `want`
/// selects, and the attestations of those. `Ok(None)` when every entry is kept (the index
/// stays as it is); an error naming the platforms there are when none is selected.
pub fn select_platforms(
    index: &[u8],
    children: &[Descriptor],
    want: &[Platform],
) -> Result<Option<Selected>, FilterError> {
    let chosen: Vec<&Digest> = children
        .iter()
        .filter(|c| {
            c.platform
                .as_ref()
                .is_some_and(|p| !p.is_unknown() && want.iter().any(|w| p.matches(w)))
        })
        .map(|c| &c.digest)
        .collect();
    if chosen.is_empty() {
        let have = children.iter().filter_map(|c| c.platform.clone()).collect();
        return Err(FilterError::NoneSelected { have });
    }
    let keep = |c: &Descriptor| {
        chosen.contains(&&c.digest)
            || c.annotations
                .get(REFERENCE_DIGEST)
                .is_some_and(|d| chosen.iter().any(|k| k.as_str() == d))
    };
    let kept: Vec<Digest> = children
        .iter()
        .filter(|c| keep(c))
        .map(|c| c.digest.clone())
        .collect();
    if kept.len() == children.len() {
        return Ok(None);
    }
    let mut doc: serde_json::Value = serde_json::from_slice(index)?;
    if let Some(list) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|e| {
            e["digest"]
                .as_str()
                .is_some_and(|d| kept.iter().any(|k| k.as_str() == d))
        });
    }
    let bytes = serde_json::to_vec(&doc)?;
    Ok(Some(Selected { bytes, kept }))
}

#[cfg(test)]
mod tests;
