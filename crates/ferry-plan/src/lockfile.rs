//! `images.lock`: YAML, one entry per image in a stable order (sorted by source reference),
//! a format version, no credentials ever. It travels inside the bundle and is what `import`
//! and `verify` check against.
//!
//! ```yaml
//! # images.lock: written by ferry; do not edit
//! version: 1
//! generator: ferry 0.1.0
//! total_size: 123456789       # unique bytes of every manifest and blob, counted once
//! images:
//! - name: rancher/rke-tools:v0.1.103          # as listed
//!   source: docker.io/rancher/rke-tools:v0.1.103
//!   digest: sha256:…                          # top-level manifest or index, as upstream
//!   media_type: application/vnd.oci.image.index.v1+json
//!   size: 1609                                # of the top-level manifest
//!   total_size: 45678901                      # unique bytes of this image
//!   platforms:
//!   - platform: linux/amd64
//!     digest: sha256:…
//!     media_type: application/vnd.oci.image.manifest.v1+json
//!     size: 1234
//! - name: rancher/rke-tools:sha256-….sig      # a cosign signature of the image above
//!   source: docker.io/rancher/rke-tools:sha256-….sig
//!   …
//!   attached_to:
//!     image: rancher/rke-tools:v0.1.103
//!     subject: sha256:…
//!     kind: sig
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use ferry_oci::digest::Digest;
use ferry_oci::reference::{Reference, ReferenceError};

/// The format version this ferry writes and reads.
pub const LOCK_VERSION: u32 = 1;

/// One platform of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPlatform {
    /// `os/arch[/variant]`; `unknown/unknown` for attestation manifests.
    pub platform: String,
    /// `os.version`, for Windows images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// The platform's manifest digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedImage {
    /// The reference as listed (e.g. by `ferry images`).
    pub name: String,
    /// The fully qualified source reference.
    pub source: String,
    /// Digest of the top-level manifest or index, as upstream serves it.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Unique bytes of this image: every manifest and blob, counted once.
    pub total_size: u64,
    /// Digest of the index ferry wrote when `--platform` filtered the upstream index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_digest: Option<Digest>,
    /// Every platform (one entry for a single-platform manifest).
    pub platforms: Vec<LockedPlatform>,
    /// For a cosign signature, attestation or SBOM: the image it is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<AttachedTo>,
}

/// What a cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`) is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedTo {
    /// The image's name, as the lock lists it.
    pub image: String,
    /// The digest it is attached to: the image's top-level digest, one of its platform
    /// manifests, or another attachment (a signature of an SBOM).
    pub subject: Digest,
    /// Signature, attestation or SBOM.
    pub kind: ferry_oci::cosign::Attachment,
}

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// Format version.
    pub version: u32,
    /// The ferry that wrote it.
    pub generator: String,
    /// Unique bytes across all images.
    pub total_size: u64,
    /// The images, sorted by source reference.
    pub images: Vec<LockedImage>,
}

/// Why a lock file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Unreadable.
    #[error("cannot read lock file {path}: {source}; check the path given to --lock")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not YAML of the lock shape.
    #[error(
        "{path} is not a valid images.lock: {detail}; write one with `ferry lock -o images.lock`"
    )]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Another format version.
    #[error(
        "{path} has lock format version {found}, but this ferry reads version {LOCK_VERSION}; use the ferry that wrote it or re-run `ferry lock`"
    )]
    Version {
        /// The file.
        path: String,
        /// The version found.
        found: u32,
    },
}

impl LockedImage {
    /// The top-level digest inside the bundle and the mirror: the written one when
    /// `--platform` filtered the index, else the upstream one.
    pub fn bundle_digest(&self) -> &Digest {
        self.written_digest.as_ref().unwrap_or(&self.digest)
    }
}

/// Which top-level digest [`LockFile::inputs`] pins each image to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// The digest upstream serves ([`LockedImage::digest`]): what an export fetches.
    Upstream,
    /// The digest inside the bundle and the mirror ([`LockedImage::bundle_digest`]): what
    /// an import, a delta's base and `serve` read.
    Bundle,
}

/// A lock entry whose source is not an image reference.
#[derive(Debug, thiserror::Error)]
#[error("lock entry {name:?} has an invalid source")]
pub struct InvalidSource {
    /// The entry's name.
    pub name: String,
    /// Why its source does not parse.
    #[source]
    pub source: ReferenceError,
}

/// How many distinct manifests a lock names ([`LockFile::manifest_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestCounts {
    /// Every top-level and platform manifest, each once.
    pub all: usize,
    /// Those of images on Docker Hub.
    pub docker_hub: usize,
}

/// The first line of every lock file ferry writes.
const HEADER: &str = "# images.lock: written by ferry; do not edit. Format: see ferry's README.\n";

/// The order of a lock's images: by source, then by name.
fn lock_order(a: &LockedImage, b: &LockedImage) -> std::cmp::Ordering {
    a.source.cmp(&b.source).then_with(|| a.name.cmp(&b.name))
}

/// A lock over borrowed images: the same YAML as the [`LockFile`] of copies of them.
#[derive(Serialize)]
struct LockView<'a> {
    version: u32,
    generator: String,
    total_size: u64,
    images: Vec<&'a LockedImage>,
}

/// `lock` as YAML after [`HEADER`], in one buffer.
fn render<T: Serialize>(lock: &T) -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::from(HEADER);
    serde_saphyr::to_fmt_writer(&mut out, lock)?;
    out.shrink_to_fit();
    Ok(out)
}

fn generator() -> String {
    format!("ferry {}", env!("CARGO_PKG_VERSION"))
}

impl LockFile {
    /// A lock of `images` (sorted here), with the given unique total.
    pub fn new(mut images: Vec<LockedImage>, total_size: u64) -> LockFile {
        images.sort_by(lock_order);
        LockFile {
            version: LOCK_VERSION,
            generator: generator(),
            total_size,
            images,
        }
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::ser::Error> {
        render(self)
    }

    /// The YAML text of the lock of `images` (sorted here) with the given unique total, as
    /// [`LockFile::new`] then [`LockFile::to_yaml`] would give it, without copying the images.
    pub fn yaml_of<'a>(
        images: impl IntoIterator<Item = &'a LockedImage>,
        total_size: u64,
    ) -> Result<String, serde_saphyr::ser::Error> {
        let mut images: Vec<&LockedImage> = images.into_iter().collect();
        images.sort_by(|a, b| lock_order(a, b));
        render(&LockView {
            version: LOCK_VERSION,
            generator: generator(),
            total_size,
            images,
        })
    }

    /// Parses lock YAML; `name` is used in errors.
    pub fn parse(text: &str, name: &str) -> Result<LockFile, LockError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_saphyr::from_str(text).map_err(|e| LockError::Parse {
            path: name.into(),
            detail: one_line(&e.to_string()),
        })?;
        if probe.version != LOCK_VERSION {
            return Err(LockError::Version {
                path: name.into(),
                found: probe.version,
            });
        }
        let lock: LockFile = serde_saphyr::from_str(text).map_err(|e| LockError::Parse {
            path: name.into(),
            detail: one_line(&e.to_string()),
        })?;
        // One source at two digests cannot be mirrored: which one would the tag point at?
        let mut seen: std::collections::HashMap<&str, &Digest> = std::collections::HashMap::new();
        for i in &lock.images {
            if let Some(first) = seen.insert(&i.source, i.bundle_digest())
                && first != i.bundle_digest()
            {
                return Err(LockError::Parse {
                    path: name.into(),
                    detail: format!(
                        "it lists {} twice, at {first} and at {}",
                        i.source,
                        i.bundle_digest()
                    ),
                });
            }
        }
        Ok(lock)
    }

    /// The lock's images as inputs to resolve: each `(name, source)` pinned to the digest
    /// `pin` says, in lock order.
    pub fn inputs(&self, pin: Pin) -> Result<Vec<(String, Reference)>, InvalidSource> {
        self.images
            .iter()
            .map(|i| {
                let r = Reference::parse(&i.source).map_err(|source| InvalidSource {
                    name: i.name.clone(),
                    source,
                })?;
                let digest = match pin {
                    Pin::Upstream => &i.digest,
                    Pin::Bundle => i.bundle_digest(),
                };
                Ok((i.name.clone(), r.with_digest(digest.clone())))
            })
            .collect()
    }

    /// The distinct manifests (top-level and platform) the lock names: all of them, and
    /// those on Docker Hub (each a GET against its pull rate limit).
    pub fn manifest_counts(&self) -> ManifestCounts {
        let mut all = std::collections::BTreeSet::new();
        let mut docker_hub = std::collections::BTreeSet::new();
        for i in &self.images {
            let is_hub = Reference::parse(&i.source).is_ok_and(|r| r.is_docker_hub());
            for d in std::iter::once(&i.digest).chain(i.platforms.iter().map(|p| &p.digest)) {
                all.insert(d);
                if is_hub {
                    docker_hub.insert(d);
                }
            }
        }
        ManifestCounts {
            all: all.len(),
            docker_hub: docker_hub.len(),
        }
    }

    /// Reads a lock file.
    pub fn load(path: &Path) -> Result<LockFile, LockError> {
        let name = path.display().to_string();
        let text = ferry_base::fsutil::read_small(path, ferry_base::fsutil::MAX_TEXT_FILE)
            .map_err(|source| LockError::Read {
                path: name.clone(),
                source,
            })?;
        LockFile::parse(&text, &name)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
