//! Delta bundles (`ferry export --since OLD`): a bundle that leaves out the layers an older
//! image set already has, for upgrades inside the air gap. It stays a standard OCI layout —
//! `index.json` and `images.lock` describe the full new image set, and every manifest and
//! config is in it — but some layers its manifests name live elsewhere. It says so twice:
//!
//! - an annotation on `index.json`, [`DELTA_ANNOTATION`] = the digest of the older set's
//!   `images.lock`, so any OCI reader that looks can tell it is not self-contained;
//! - [`DELTA_JSON`] (`ferry-delta.json`), which lists every left-out layer with its size and
//!   the repositories of the older set that hold it (so an import can mount it from there).
//!
//! Only layers are left out: manifests and configs are small, and with them the delta alone
//! resolves, lists platforms and checks every image offline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use ferry_oci::digest::Digest;

/// The metadata file of a delta bundle.
pub const DELTA_JSON: &str = "ferry-delta.json";

/// The `index.json` annotation naming what a delta bundle is a delta of.
pub const DELTA_ANNOTATION: &str = "io.ferry.bundle.delta-of";

/// The format version of [`DELTA_JSON`].
pub const DELTA_FORMAT: u32 = 1;

/// Why a bundle's [`DELTA_JSON`] cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeltaError {
    /// It is not the JSON ferry writes.
    #[error("{DELTA_JSON} in {} is not valid: {source}; export the delta again", bundle.display())]
    Invalid {
        /// The bundle.
        bundle: PathBuf,
        /// What the parser found (shared: the bundle answers it to every caller).
        source: std::sync::Arc<serde_json::Error>,
    },
    /// It is of a format this ferry does not read.
    #[error(
        "{DELTA_JSON} in {} has format {format}, this ferry reads format {DELTA_FORMAT}; use a newer ferry",
        bundle.display()
    )]
    Format {
        /// The bundle.
        bundle: PathBuf,
        /// The format it says.
        format: u32,
    },
}

/// A layer a delta bundle leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// The layer.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Repositories of the older set that hold it (full source names, e.g.
    /// `docker.io/rancher/hyperkube`), where an import finds it to mount.
    pub repositories: Vec<String>,
}

/// The contents of [`DELTA_JSON`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaInfo {
    /// Format version, [`DELTA_FORMAT`].
    pub format: u32,
    /// SHA-256 of the older set's `images.lock` (the file's bytes).
    pub delta_of: Digest,
    /// What the older set was given as (`old.lock`, `v1.29.tar`), for messages.
    pub base: String,
    /// Every left-out layer, sorted by digest.
    pub left_out: Vec<LeftOut>,
}

impl DeltaInfo {
    /// The file's bytes (pretty JSON: people read it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses the file of bundle `bundle` (for messages).
    pub fn parse(bytes: &[u8], bundle: &std::path::Path) -> Result<DeltaInfo, DeltaError> {
        let info: DeltaInfo = serde_json::from_slice(bytes).map_err(|e| DeltaError::Invalid {
            bundle: bundle.to_path_buf(),
            source: std::sync::Arc::new(e),
        })?;
        if info.format != DELTA_FORMAT {
            return Err(DeltaError::Format {
                bundle: bundle.to_path_buf(),
                format: info.format,
            });
        }
        Ok(info)
    }

    /// The left-out layers by digest.
    pub fn by_digest(&self) -> BTreeMap<&Digest, &LeftOut> {
        self.left_out.iter().map(|l| (&l.digest, l)).collect()
    }

    /// Bytes left out.
    pub fn bytes(&self) -> u64 {
        self.left_out
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.size))
    }

    /// The digests left out.
    pub fn digests(&self) -> BTreeSet<Digest> {
        self.left_out.iter().map(|l| l.digest.clone()).collect()
    }
}
