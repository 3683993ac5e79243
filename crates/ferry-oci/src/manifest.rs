//! Typed, read-only views over manifest bytes. ferry parses a manifest only to learn what it
//! references; the bytes themselves are stored and forwarded untouched, never re-serialised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::media_types::{self, ManifestKind};
use super::platform::Platform;

/// Manifests larger than this are refused (registries cap them at about 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 8 * 1024 * 1024;

/// A descriptor claiming more bytes than this is absurd and refused (real layers reach tens
/// of GB). It keeps every sum of sizes far from overflowing.
pub const MAX_BLOB_SIZE: u64 = 1 << 40;

/// The most distinct manifests and blobs one image may consist of. Real images have tens
/// (a Windows list with many `os.version`s, an index with attestations, ~100 layers); a
/// hostile index can name tens of thousands, and each would be fetched.
pub const MAX_IMAGE_OBJECTS: usize = 10_000;

/// The sum of `sizes`, or `None` when it does not fit in a `u64`.
pub fn sum_sizes(sizes: impl IntoIterator<Item = u64>) -> Option<u64> {
    sizes.into_iter().try_fold(0u64, u64::checked_add)
}

/// An OCI content descriptor, as found in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Content digest (validated when parsed).
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Platform, for index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Why manifest bytes cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("manifest {digest} ({media_type}) is malformed: {detail}")]
    Malformed {
        /// The manifest's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// The parser's message.
        detail: String,
    },
    /// A media type ferry does not carry.
    #[error(
        "manifest {digest} has media type {media_type:?}, which ferry does not carry (expected an OCI or Docker schema 2 manifest or index)"
    )]
    Unsupported {
        /// The manifest's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A descriptor claims an impossible size.
    #[error(
        "manifest {digest} says {what} {target} is {size} bytes, which is absurd (ferry accepts up to {limit}); the manifest is broken or hostile"
    )]
    AbsurdSize {
        /// The manifest's digest.
        digest: Digest,
        /// "layer", "config" or "manifest".
        what: &'static str,
        /// The descriptor's digest.
        target: Digest,
        /// The size it claims.
        size: u64,
        /// The largest accepted.
        limit: u64,
    },
    /// The body's `mediaType` contradicts the type it was served or referenced with.
    #[error("manifest {digest} was served as {declared:?} but its body says {body:?}; refusing it")]
    MediaTypeMismatch {
        /// The manifest's digest.
        digest: Digest,
        /// The type from the header or descriptor.
        declared: String,
        /// The type in the body.
        body: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIndex {
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawImage {
    #[serde(default)]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// What a manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An index or manifest list: child manifests.
    Index {
        /// The child manifest descriptors, in order.
        manifests: Vec<Descriptor>,
    },
    /// An image manifest: config and layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layer blobs, in order.
        layers: Vec<Descriptor>,
    },
}

impl Manifest {
    /// Parses `bytes`, served or referenced as `media_type`, with digest `digest` (for errors).
    pub fn parse(
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
    ) -> Result<Manifest, ManifestError> {
        let media_type = media_types::strip_params(media_type);
        let malformed = |e: serde_json::Error| ManifestError::Malformed {
            digest: digest.clone(),
            media_type: media_type.to_string(),
            detail: e.to_string(),
        };
        let check = |body: Option<String>| match body {
            Some(b) if b != media_type => Err(ManifestError::MediaTypeMismatch {
                digest: digest.clone(),
                declared: media_type.to_string(),
                body: b,
            }),
            _ => Ok(()),
        };
        let bounded = |what: &'static str, d: &Descriptor, limit: u64| {
            if d.size > limit {
                return Err(ManifestError::AbsurdSize {
                    digest: digest.clone(),
                    what,
                    target: d.digest.clone(),
                    size: d.size,
                    limit,
                });
            }
            Ok(())
        };
        match media_types::manifest_kind(media_type) {
            Some(ManifestKind::Index) => {
                let raw: RawIndex = serde_json::from_slice(bytes).map_err(malformed)?;
                check(raw.media_type)?;
                for m in &raw.manifests {
                    bounded("manifest", m, MAX_MANIFEST_SIZE)?;
                }
                Ok(Manifest::Index {
                    manifests: raw.manifests,
                })
            }
            Some(ManifestKind::Image) => {
                let raw: RawImage = serde_json::from_slice(bytes).map_err(malformed)?;
                check(raw.media_type)?;
                bounded("config", &raw.config, MAX_BLOB_SIZE)?;
                for l in &raw.layers {
                    bounded("layer", l, MAX_BLOB_SIZE)?;
                }
                Ok(Manifest::Image {
                    config: raw.config,
                    layers: raw.layers,
                })
            }
            None => Err(ManifestError::Unsupported {
                digest: digest.clone(),
                media_type: media_type.to_string(),
            }),
        }
    }

    /// Every blob (config first, then layers) of an image manifest; empty for an index.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Index { .. } => Vec::new(),
            Manifest::Image { config, layers } => std::iter::once(config).chain(layers).collect(),
        }
    }

    /// Child manifests of an index; empty for an image.
    pub fn children(&self) -> &[Descriptor] {
        match self {
            Manifest::Index { manifests } => manifests,
            Manifest::Image { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests;
