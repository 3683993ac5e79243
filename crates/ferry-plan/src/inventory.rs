//! What a bundle, a split bundle or a lock holds, without hashing anything ([`Inventory`]):
//! `ferry inspect` and its reports. A bundle is read through its reader's offset table:
//! `index.json`, `images.lock`, the `.parts` file, `ferry-delta.json` and every manifest once
//! (each at most [`MAX_MANIFEST_SIZE`] bytes); configs and layers are never read, only their
//! sizes as the manifests give them. So it takes milliseconds on any bundle, and it shows
//! what the bundle *says*: `ferry verify` is what checks the bytes.
//!
//! Per image, every object (manifest, config, layer) it reaches counts once: as **unique**
//! when no other image of the set reaches it, else as **shared**. Layers a delta bundle
//! leaves out are counted apart (`left_out_bytes`). The bytes saved by de-duplication are
//! what the images would take each on its own, minus what the bundle holds of them.
//!
//! The bundle is untrusted: a manifest naming itself (or an ancestor), indexes nested deeper
//! than [`MAX_DEPTH`], an image of more than [`MAX_IMAGE_OBJECTS`] objects, or more than
//! [`MAX_VISITS`] (image, object) pairs in all end the walk with an [`InventoryError`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read as _;

use serde::Serialize;

use super::lockfile::{LockError, LockFile, LockedImage};
use ferry_oci::digest::Digest;
use ferry_oci::manifest::{MAX_IMAGE_OBJECTS, MAX_MANIFEST_SIZE, Manifest, ManifestError};
use ferry_oci::platform::Platform;
use ferry_store::bundle::index::read_index;
use ferry_store::bundle::{BundleReader, BundleSource, IMAGES_LOCK, INDEX_JSON};

/// Indexes nested deeper than this are refused (as the resolver refuses them).
pub const MAX_DEPTH: usize = 4;

/// Most (image, object) pairs one inventory walks: a million images naming the same huge
/// index end here instead of running for hours.
pub const MAX_VISITS: usize = 20_000_000;

/// The annotation BuildKit puts on an attestation manifest's index entry.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What was inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// One bundle file.
    Bundle,
    /// A bundle split into parts (its `.parts` file).
    SplitBundle,
    /// An `images.lock`.
    Lock,
}

/// One image of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// As listed (the lock's `name`; the full reference when the lock does not name it).
    pub name: String,
    /// The full reference.
    pub source: String,
    /// The top-level manifest or index (in the bundle: the written one under `--platform`).
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its platforms (`os/arch[/variant]`), attestations not included.
    pub platforms: Vec<String>,
    /// Attestation manifests in its index (BuildKit's `unknown/unknown` entries).
    pub attestations: usize,
    /// cosign tags attached to it (`sig`, `att`, `sbom` → how many), as the lock lists them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cosign: BTreeMap<String, usize>,
    /// For a cosign signature, attestation or SBOM: the image it is attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<String>,
    /// Manifests it reaches, top-level included (bundles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<usize>,
    /// Configs and layers it reaches (bundles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs: Option<usize>,
    /// Every byte it is made of, each object once (a lock's `total_size`).
    pub bytes: u64,
    /// Bytes in the bundle that only this image reaches (bundles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_bytes: Option<u64>,
    /// Bytes in the bundle that other images reach too (bundles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_bytes: Option<u64>,
    /// Bytes of its layers a delta bundle leaves out (delta bundles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out_bytes: Option<u64>,
}

/// The whole set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Images.
    pub images: usize,
    /// The distinct platforms of all images, sorted.
    pub platforms: Vec<String>,
    /// Platform manifests in all (an image's platform counted once per image).
    pub platform_manifests: usize,
    /// Objects (manifests, configs, layers) the bundle holds (bundles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs: Option<usize>,
    /// Unique bytes: what the bundle holds of the images (a lock: its `total_size`).
    pub bytes: u64,
    /// What the images would take each on its own.
    pub bytes_without_dedup: u64,
    /// `bytes_without_dedup - bytes`.
    pub bytes_saved: u64,
}

/// One part of a split bundle, as its `.parts` file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// File name, beside the `.parts` file.
    pub name: String,
    /// Size.
    pub size: u64,
    /// SHA-256, as recorded (not computed here).
    pub sha256: Digest,
}

/// A split bundle's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parts {
    /// The joined bundle's name.
    pub bundle: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256, as recorded.
    pub sha256: Digest,
    /// The parts, in order.
    pub parts: Vec<Part>,
}

/// What a delta bundle is a delta of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeltaSummary {
    /// SHA-256 of the older set's `images.lock`.
    pub delta_of: Digest,
    /// What the older set was given as.
    pub base: String,
    /// Layers left out.
    pub layers_left_out: usize,
    /// Their bytes.
    pub bytes_left_out: u64,
}

/// What a bundle, split bundle or lock holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// What was inspected.
    pub kind: Kind,
    /// Its path, as given.
    pub path: String,
    /// Bytes of the bundle file (the parts together), when a bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// SHA-256 of its `images.lock` (what a delta against it records as `delta_of`).
    pub lock_digest: Digest,
    /// The images, in the order of the lock (by source).
    pub images: Vec<ImageSummary>,
    /// The totals.
    pub totals: Totals,
    /// A split bundle's parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Parts>,
    /// A delta bundle's base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaSummary>,
}

/// Why a bundle cannot be inventoried.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// It has no `index.json`, or one that is not an OCI index.
    #[error("{path} has no readable index.json ({detail}); is it a ferry bundle?")]
    Index {
        /// The bundle.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// It has no `images.lock`.
    #[error(
        "{path} is not a ferry bundle: it has no images.lock; write bundles with `ferry export`"
    )]
    NoLock {
        /// The bundle.
        path: String,
    },
    /// Its lock is not UTF-8.
    #[error("images.lock in {path} is not UTF-8")]
    LockNotText {
        /// The bundle.
        path: String,
    },
    /// Its lock does not parse.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Its `ferry-delta.json` does not parse.
    #[error(transparent)]
    Delta(#[from] ferry_store::bundle::delta::DeltaError),
    /// An index.json entry without a name or with a broken descriptor.
    #[error("{path}: index.json entry {index} {detail}")]
    Entry {
        /// The bundle.
        path: String,
        /// Its position, from 1.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// A manifest an image names is not in the bundle.
    #[error("{image}: manifest {digest} is not in the bundle; run `ferry verify` on it")]
    MissingManifest {
        /// The image.
        image: String,
        /// The manifest.
        digest: Digest,
    },
    /// A manifest larger than [`MAX_MANIFEST_SIZE`].
    #[error(
        "{image}: manifest {digest} is {size} bytes, more than the {MAX_MANIFEST_SIZE} a manifest may have"
    )]
    ManifestTooLarge {
        /// The image.
        image: String,
        /// The manifest.
        digest: Digest,
        /// Its size in the bundle.
        size: u64,
    },
    /// A manifest that does not parse.
    #[error("{image}: {source}")]
    Manifest {
        /// The image.
        image: String,
        /// Why.
        source: ManifestError,
    },
    /// A manifest naming itself or one of its parents.
    #[error(
        "{image}: manifest {digest} names itself (directly or through its children): a cycle, refused"
    )]
    Cycle {
        /// The image.
        image: String,
        /// The manifest on the cycle.
        digest: Digest,
    },
    /// Indexes nested deeper than [`MAX_DEPTH`].
    #[error("{image}: manifest {digest} nests indexes deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The image.
        image: String,
        /// The index at the limit.
        digest: Digest,
    },
    /// An image of more than [`MAX_IMAGE_OBJECTS`] objects.
    #[error(
        "{image}: manifest {digest} brings the image to more than {MAX_IMAGE_OBJECTS} distinct manifests and blobs; ferry refuses an image that large"
    )]
    TooManyObjects {
        /// The image.
        image: String,
        /// The manifest that crossed the limit.
        digest: Digest,
    },
    /// More than [`MAX_VISITS`] (image, object) pairs.
    #[error("{path}: its images name more than {MAX_VISITS} objects in all; refused")]
    TooManyVisits {
        /// The bundle.
        path: String,
    },
    /// Reading the bundle failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The bundle.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A manifest, read and parsed once.
struct Node {
    size: u64,
    /// Child manifests: digest, media type, and whether the entry is an attestation.
    children: Vec<(Digest, String, Option<String>)>,
    /// Configs and layers.
    blobs: Vec<(Digest, u64)>,
}

/// An image's walk: every object it reaches with its size, and its manifests.
#[derive(Default)]
struct Reach {
    objects: BTreeMap<Digest, u64>,
    manifests: usize,
    blobs: usize,
}

struct Walker<'a> {
    reader: &'a BundleReader,
    path: String,
    nodes: HashMap<Digest, Node>,
    visits: usize,
}

impl Walker<'_> {
    fn node(&mut self, image: &str, d: &Digest, media_type: &str) -> Result<&Node, InventoryError> {
        if !self.nodes.contains_key(d) {
            let node = self.read(image, d, media_type)?;
            self.nodes.insert(d.clone(), node);
        }
        self.nodes
            .get(d)
            .ok_or_else(|| InventoryError::MissingManifest {
                image: image.into(),
                digest: d.clone(),
            })
    }

    fn read(&self, image: &str, d: &Digest, media_type: &str) -> Result<Node, InventoryError> {
        let loc = self
            .reader
            .blob(d)
            .ok_or_else(|| InventoryError::MissingManifest {
                image: image.into(),
                digest: d.clone(),
            })?;
        if loc.size > MAX_MANIFEST_SIZE {
            return Err(InventoryError::ManifestTooLarge {
                image: image.into(),
                digest: d.clone(),
                size: loc.size,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(loc.size).unwrap_or(0));
        self.reader
            .read_at(loc, 0, loc.size)
            .take(MAX_MANIFEST_SIZE)
            .read_to_end(&mut bytes)
            .map_err(|source| InventoryError::Io {
                path: self.path.clone(),
                source,
            })?;
        let parsed =
            Manifest::parse(&bytes, media_type, d).map_err(|source| InventoryError::Manifest {
                image: image.into(),
                source,
            })?;
        Ok(Node {
            size: loc.size,
            children: parsed
                .children()
                .iter()
                .map(|c| {
                    let platform = c.platform.as_ref().map(Platform::to_string);
                    let attestation = c.annotations.get(REFERENCE_TYPE).map(String::as_str)
                        == Some("attestation-manifest")
                        || c.platform.as_ref().is_some_and(Platform::is_unknown);
                    let platform = if attestation {
                        None
                    } else {
                        Some(platform.unwrap_or_default())
                    };
                    (c.digest.clone(), c.media_type.clone(), platform)
                })
                .collect(),
            blobs: parsed
                .blobs()
                .iter()
                .map(|b| (b.digest.clone(), b.size))
                .collect(),
        })
    }

    /// Walks `top` and everything below it, each manifest once per image; the platforms
    /// and attestation count of the top-level index.
    fn walk(
        &mut self,
        image: &str,
        top: &Digest,
        media_type: &str,
    ) -> Result<(Reach, Vec<String>, usize), InventoryError> {
        let mut reach = Reach::default();
        let mut platforms = Vec::new();
        let mut attestations = 0;
        // (digest, media type, path from the top)
        let mut stack: Vec<(Digest, String, Vec<Digest>)> =
            vec![(top.clone(), media_type.to_string(), Vec::new())];
        let mut first = true;
        while let Some((d, mt, path)) = stack.pop() {
            if reach.objects.contains_key(&d) {
                continue;
            }
            let (size, children, blobs) = {
                let n = self.node(image, &d, &mt)?;
                (n.size, n.children.clone(), n.blobs.clone())
            };
            reach.objects.insert(d.clone(), size);
            reach.manifests += 1;
            for (b, s) in blobs {
                if reach.objects.insert(b, s).is_none() {
                    reach.blobs += 1;
                }
            }
            if first {
                // Each child once, however often the index names it.
                let mut seen = BTreeSet::new();
                for (c, _, p) in &children {
                    if !seen.insert(c) {
                        continue;
                    }
                    match p {
                        Some(p) if !platforms.contains(p) => platforms.push(p.clone()),
                        Some(_) => {}
                        None => attestations += 1,
                    }
                }
                first = false;
            }
            if !children.is_empty() && path.len() >= MAX_DEPTH {
                return Err(InventoryError::TooDeep {
                    image: image.into(),
                    digest: d,
                });
            }
            let mut child_path = path.clone();
            child_path.push(d.clone());
            for (c, cmt, _) in children.into_iter().rev() {
                if child_path.contains(&c) {
                    return Err(InventoryError::Cycle {
                        image: image.into(),
                        digest: c,
                    });
                }
                if !reach.objects.contains_key(&c) {
                    stack.push((c, cmt, child_path.clone()));
                }
            }
            if reach.objects.len() > MAX_IMAGE_OBJECTS {
                return Err(InventoryError::TooManyObjects {
                    image: image.into(),
                    digest: d,
                });
            }
        }
        self.visits = self.visits.saturating_add(reach.objects.len());
        if self.visits > MAX_VISITS {
            return Err(InventoryError::TooManyVisits {
                path: self.path.clone(),
            });
        }
        Ok((reach, platforms, attestations))
    }
}

fn sum(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().fold(0u64, u64::saturating_add)
}

fn totals(images: &[ImageSummary], blobs: Option<usize>, bytes: u64) -> Totals {
    let platforms: BTreeSet<&String> = images.iter().flat_map(|i| &i.platforms).collect();
    let without = sum(images.iter().map(|i| {
        i.unique_bytes
            .zip(i.shared_bytes)
            .map_or(i.bytes, |(u, s)| u.saturating_add(s))
    }));
    Totals {
        images: images.len(),
        platforms: platforms.into_iter().cloned().collect(),
        platform_manifests: images.iter().map(|i| i.platforms.len()).sum(),
        blobs,
        bytes,
        bytes_without_dedup: without,
        bytes_saved: without.saturating_sub(bytes),
    }
}

/// The platforms of a lock entry, and how many of its entries are attestations.
fn lock_platforms(locked: &LockedImage) -> (Vec<String>, usize) {
    let (att, real): (Vec<_>, Vec<_>) = locked
        .platforms
        .iter()
        .partition(|p| p.platform == "unknown/unknown");
    (
        real.into_iter().map(|p| p.platform.clone()).collect(),
        att.len(),
    )
}

/// Marks what cosign attached to each image, as `lock` records it: the count per kind on
/// the image, and the owner on each attachment's own row.
fn mark_attachments(images: &mut [ImageSummary], lock: &LockFile) {
    let mut counts: HashMap<&str, BTreeMap<String, usize>> = HashMap::new();
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for i in &lock.images {
        if let Some(a) = &i.attached_to {
            *counts
                .entry(a.image.as_str())
                .or_default()
                .entry(a.kind.name().to_string())
                .or_default() += 1;
            owners.insert(i.source.as_str(), a.image.as_str());
        }
    }
    for img in images {
        if let Some(c) = counts.get(img.name.as_str()) {
            img.cosign = c.clone();
        }
        if let Some(owner) = owners.get(img.source.as_str()) {
            img.attached_to = Some((*owner).to_string());
        }
    }
}

impl Inventory {
    /// What the lock `lock` (read from `path`, whose bytes are `lock_bytes`) knows: digests,
    /// platforms, sizes; no unique or shared bytes (a lock has no manifests).
    pub fn of_lock(path: &str, lock: &LockFile, lock_bytes: &[u8]) -> Inventory {
        let images: Vec<ImageSummary> = lock
            .images
            .iter()
            .map(|i| {
                let (platforms, attestations) = lock_platforms(i);
                ImageSummary {
                    name: i.name.clone(),
                    source: i.source.clone(),
                    digest: i.bundle_digest().clone(),
                    media_type: i.media_type.clone(),
                    platforms,
                    attestations,
                    cosign: BTreeMap::new(),
                    attached_to: None,
                    manifests: None,
                    blobs: None,
                    bytes: i.total_size,
                    unique_bytes: None,
                    shared_bytes: None,
                    left_out_bytes: None,
                }
            })
            .collect();
        let mut images = images;
        mark_attachments(&mut images, lock);
        let totals = totals(&images, None, lock.total_size);
        Inventory {
            kind: Kind::Lock,
            path: path.into(),
            file_size: None,
            lock_digest: Digest::sha256_of(lock_bytes),
            images,
            totals,
            parts: None,
            delta: None,
        }
    }

    /// What the bundle `source` holds (its reader's offset table, its metadata and its
    /// manifests; no blob is hashed). `path` is the path as given, for the record.
    pub fn of_bundle(path: &str, source: &BundleSource) -> Result<Inventory, InventoryError> {
        let reader = source.reader();
        let shown = reader.path().display().to_string();
        let lock_bytes = reader
            .metadata(IMAGES_LOCK)
            .ok_or_else(|| InventoryError::NoLock {
                path: shown.clone(),
            })?;
        let lock_text =
            std::str::from_utf8(lock_bytes).map_err(|_| InventoryError::LockNotText {
                path: shown.clone(),
            })?;
        let lock = LockFile::parse(lock_text, &format!("{shown} (images.lock)"))?;
        let by_source: HashMap<&str, &LockedImage> =
            lock.images.iter().map(|i| (i.source.as_str(), i)).collect();
        let index_bytes = reader
            .metadata(INDEX_JSON)
            .ok_or_else(|| InventoryError::Index {
                path: shown.clone(),
                detail: "it is missing".into(),
            })?;
        let entries = read_index(index_bytes).map_err(|e| InventoryError::Index {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        let delta = source.delta()?.cloned();
        let left_out: BTreeSet<Digest> = delta.as_ref().map(|d| d.digests()).unwrap_or_default();

        let mut walker = Walker {
            reader,
            path: shown.clone(),
            nodes: HashMap::new(),
            visits: 0,
        };
        // Each image's reach, then how many images reach each object.
        let mut walked = Vec::new();
        for (n, e) in entries.into_iter().enumerate() {
            let entry_err = |detail: String| InventoryError::Entry {
                path: shown.clone(),
                index: n + 1,
                detail,
            };
            let desc = e.descriptor.map_err(|err| entry_err(err.to_string()))?;
            let source_name = e
                .name
                .ok_or_else(|| entry_err("names no image (no ref.name annotation)".into()))?;
            let locked = by_source.get(source_name.as_str()).copied();
            let name = locked.map_or_else(|| source_name.clone(), |l| l.name.clone());
            let (reach, mut platforms, mut attestations) =
                walker.walk(&name, &desc.digest, &desc.media_type)?;
            if reach.manifests == 1 {
                // A single-platform manifest: its platform is the lock's (its config is
                // not read).
                if let Some(l) = locked {
                    (platforms, attestations) = lock_platforms(l);
                }
            }
            walked.push((name, source_name, desc, reach, platforms, attestations));
        }
        let mut holders: HashMap<&Digest, usize> = HashMap::new();
        for (_, _, _, reach, _, _) in &walked {
            for d in reach.objects.keys() {
                *holders.entry(d).or_default() += 1;
            }
        }
        let mut held: BTreeMap<&Digest, u64> = BTreeMap::new();
        let mut images = Vec::new();
        for (name, source_name, desc, reach, platforms, attestations) in &walked {
            let (mut unique, mut shared, mut out) = (0u64, 0u64, 0u64);
            for (d, &size) in &reach.objects {
                if left_out.contains(d) {
                    out = out.saturating_add(size);
                    continue;
                }
                held.insert(d, size);
                if holders.get(d).copied().unwrap_or(0) > 1 {
                    shared = shared.saturating_add(size);
                } else {
                    unique = unique.saturating_add(size);
                }
            }
            images.push(ImageSummary {
                name: name.clone(),
                source: source_name.clone(),
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                platforms: platforms.clone(),
                attestations: *attestations,
                cosign: BTreeMap::new(),
                attached_to: None,
                manifests: Some(reach.manifests),
                blobs: Some(reach.blobs),
                bytes: sum(reach.objects.values().copied()),
                unique_bytes: Some(unique),
                shared_bytes: Some(shared),
                left_out_bytes: delta.as_ref().map(|_| out),
            });
        }
        images.sort_by(|a, b| a.source.cmp(&b.source).then_with(|| a.name.cmp(&b.name)));
        mark_attachments(&mut images, &lock);
        let blob_count = reader.blobs().count();
        let totals = totals(&images, Some(blob_count), sum(held.values().copied()));
        let parts = reader.parts().map(|p| Parts {
            bundle: p.bundle.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
            parts: p
                .parts
                .iter()
                .map(|e| Part {
                    name: e.name.clone(),
                    size: e.size,
                    sha256: e.sha256.clone(),
                })
                .collect(),
        });
        Ok(Inventory {
            kind: if parts.is_some() {
                Kind::SplitBundle
            } else {
                Kind::Bundle
            },
            path: path.into(),
            file_size: Some(reader.volume().len()),
            lock_digest: Digest::sha256_of(lock_bytes),
            images,
            totals,
            parts,
            delta: delta.map(|d| DeltaSummary {
                delta_of: d.delta_of.clone(),
                base: d.base.clone(),
                layers_left_out: d.left_out.len(),
                bytes_left_out: d.bytes(),
            }),
        })
    }
}
