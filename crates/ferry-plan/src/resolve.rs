//! Resolving images to digests: HEAD each tag first (free on Docker Hub), then GET only the
//! manifests that must be read — each digest once across all images — and each image's
//! config for its platform. Images resolve concurrently; one failing image never hides the
//! others.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::OnceCell;

pub use super::image::ResolvedImage;
use super::lockfile::{LockedImage, LockedPlatform};
use ferry_oci::digest::Digest;
use ferry_oci::manifest::{Descriptor, MAX_IMAGE_OBJECTS, Manifest, sum_sizes};
use ferry_oci::platform::Platform;
use ferry_oci::reference::Reference;
use ferry_store::{FetchedManifest, MAX_SMALL_BLOB, Source, StoreError, read_small};

/// Nesting deeper than this (index in index in index …) is refused.
const MAX_DEPTH: usize = 4;

/// Why one image could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The tag does not exist.
    #[error("{name}: not found ({source_ref} does not exist)")]
    NotFound {
        /// As listed.
        name: String,
        /// Fully qualified.
        source_ref: String,
    },
    /// The store failed or refused (shared by every image that needed the same object).
    #[error("{name}: {source}")]
    Store {
        /// As listed.
        name: String,
        /// The store's error.
        source: Arc<StoreError>,
    },
    /// The image's manifests break ferry's rules (malformed, inconsistent, too large).
    #[error("{name}: {source}")]
    Invalid {
        /// As listed.
        name: String,
        /// What is wrong.
        source: InvalidImage,
    },
}

/// How an image's manifests break ferry's rules.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvalidImage {
    /// A manifest cannot be parsed (shared by every image that names it).
    #[error(transparent)]
    Manifest(Arc<ferry_oci::manifest::ManifestError>),
    /// Too many distinct objects.
    #[error(
        "manifest {digest} brings the image to more than {MAX_IMAGE_OBJECTS} distinct manifests and blobs; ferry refuses an image that large (no real image comes near it)"
    )]
    TooManyObjects {
        /// The manifest that crossed the limit.
        digest: Digest,
    },
    /// Indexes nested deeper than [`MAX_DEPTH`].
    #[error("manifest {digest} nests indexes deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The index at the limit that names more.
        digest: Digest,
    },
    /// A child manifest's size is not the one its index gives.
    #[error("manifest {digest} is {size} bytes but its index says {said}")]
    SizeMismatch {
        /// The child.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The size the index gives.
        said: u64,
    },
    /// A child manifest is served as another media type than its index gives.
    #[error("manifest {digest} is served as {served} but its index says {said}")]
    MediaTypeMismatch {
        /// The child.
        digest: Digest,
        /// The media type it was served as.
        served: String,
        /// The one the index gives (without parameters).
        said: String,
    },
    /// What a result slot holds before its image is resolved; never returned.
    #[error("not resolved")]
    Unresolved,
}

impl ResolveError {
    /// The image name as listed.
    pub fn name(&self) -> &str {
        match self {
            ResolveError::NotFound { name, .. }
            | ResolveError::Store { name, .. }
            | ResolveError::Invalid { name, .. } => name,
        }
    }

    /// What went wrong, without the image's name (the same text for every image a shared
    /// cause, such as an unreachable registry, hit).
    pub fn cause(&self) -> String {
        match self {
            ResolveError::NotFound { source_ref, .. } => {
                format!("not found ({source_ref} does not exist)")
            }
            ResolveError::Store { source, .. } => ferry_base::chain::flatten(source.as_ref()),
            ResolveError::Invalid { source, .. } => source.to_string(),
        }
    }
}

/// Why a walk over an image's manifests stopped.
#[derive(Debug, Clone)]
enum WalkError {
    Store(Arc<StoreError>),
    Invalid(InvalidImage),
}

impl From<InvalidImage> for WalkError {
    fn from(e: InvalidImage) -> WalkError {
        WalkError::Invalid(e)
    }
}

impl WalkError {
    fn named(self, name: &str) -> ResolveError {
        match self {
            WalkError::Store(source) => ResolveError::Store {
                name: name.to_string(),
                source,
            },
            WalkError::Invalid(source) => ResolveError::Invalid {
                name: name.to_string(),
                source,
            },
        }
    }
}

/// What a walk collects. Each manifest is walked once, however many parents name it.
#[derive(Default)]
struct Graph {
    objects: BTreeMap<Digest, u64>,
    manifests: Vec<Arc<FetchedManifest>>,
    blobs: BTreeMap<Digest, u64>,
    walked: std::collections::HashSet<Digest>,
    /// The manifests walked so far, by digest.
    known: HashMap<Digest, Arc<FetchedManifest>>,
}

impl Graph {
    fn check_size(&self, m: &FetchedManifest, more: usize) -> Result<(), InvalidImage> {
        if self.objects.len().saturating_add(more) > MAX_IMAGE_OBJECTS {
            return Err(InvalidImage::TooManyObjects {
                digest: m.digest.clone(),
            });
        }
        Ok(())
    }
}

type Shared<T> = Arc<OnceCell<Result<T, WalkError>>>;

/// Resolves images against a source, de-duplicating manifest fetches across images.
pub struct Resolver<'a, S: Source> {
    source: &'a S,
    manifests: Mutex<HashMap<Digest, Shared<Arc<FetchedManifest>>>>,
    configs: Mutex<HashMap<Digest, Shared<Option<Platform>>>>,
}

#[derive(serde::Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(rename = "os.version", default)]
    os_version: Option<String>,
}

fn store(e: StoreError) -> WalkError {
    WalkError::Store(Arc::new(e))
}

impl<'a, S: Source> Resolver<'a, S> {
    /// A resolver over `source`.
    pub fn new(source: &'a S) -> Self {
        Resolver {
            source,
            manifests: Mutex::new(HashMap::new()),
            configs: Mutex::new(HashMap::new()),
        }
    }

    fn cell<T>(map: &Mutex<HashMap<Digest, Shared<T>>>, d: &Digest) -> Shared<T> {
        let mut m = match map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(d.clone()).or_default().clone()
    }

    async fn manifest(
        &self,
        image: &Reference,
        d: &Digest,
    ) -> Result<Arc<FetchedManifest>, WalkError> {
        let cell = Self::cell(&self.manifests, d);
        cell.get_or_init(|| async {
            self.source
                .manifest(image, Some(d))
                .await
                .map(Arc::new)
                .map_err(store)
        })
        .await
        .clone()
    }

    async fn config_platform(
        &self,
        image: &Reference,
        config: &Descriptor,
    ) -> Result<Option<Platform>, WalkError> {
        let cell = Self::cell(&self.configs, &config.digest);
        cell.get_or_init(|| async {
            let bytes = read_small(self.source, image, config, MAX_SMALL_BLOB)
                .await
                .map_err(store)?;
            let Ok(c) = serde_json::from_slice::<ConfigPlatform>(&bytes) else {
                return Ok(None);
            };
            if c.os.is_empty() || c.architecture.is_empty() {
                return Ok(None);
            }
            Ok(Some(Platform {
                os: c.os,
                architecture: c.architecture,
                variant: c.variant,
                os_version: c.os_version,
            }))
        })
        .await
        .clone()
    }

    /// Adds `m` (already fetched, not yet walked) and everything below it to `graph`,
    /// children first. A manifest named by several parents (or many times by one) is
    /// fetched and walked once; the image's size is bounded before anything is fetched.
    async fn walk(
        &self,
        image: &Reference,
        m: &Arc<FetchedManifest>,
        depth: usize,
        graph: &mut Graph,
    ) -> Result<Manifest, WalkError> {
        graph.walked.insert(m.digest.clone());
        graph.objects.insert(m.digest.clone(), m.bytes.len() as u64);
        let parsed = Manifest::parse(&m.bytes, &m.media_type, &m.digest)
            .map_err(|e| InvalidImage::Manifest(Arc::new(e)))?;
        for blob in parsed.blobs() {
            graph.objects.insert(blob.digest.clone(), blob.size);
            graph.blobs.insert(blob.digest.clone(), blob.size);
        }
        graph.check_size(m, 0)?;
        let mut new: Vec<&Digest> = Vec::new();
        let mut named = std::collections::HashSet::new();
        for c in parsed.children() {
            if !graph.walked.contains(&c.digest) && named.insert(&c.digest) {
                new.push(&c.digest);
            }
        }
        if depth >= MAX_DEPTH && !parsed.children().is_empty() {
            return Err(InvalidImage::TooDeep {
                digest: m.digest.clone(),
            }
            .into());
        }
        graph.check_size(m, new.len())?;
        let fetched =
            futures_util::future::join_all(new.iter().map(|d| self.manifest(image, d))).await;
        let mut children: HashMap<&Digest, Arc<FetchedManifest>> = HashMap::new();
        for (d, child) in new.iter().zip(fetched) {
            children.insert(*d, child?);
        }
        // Every entry must describe what it names (size, media type), also repeated ones.
        for desc in parsed.children() {
            if let Some(child) = children.get(&desc.digest) {
                check_descriptor(desc, child)?;
            } else if let Some(known) = graph.known.get(&desc.digest) {
                check_descriptor(desc, known)?;
            }
        }
        for d in new {
            if graph.walked.contains(d) {
                continue;
            }
            if let Some(child) = children.get(d) {
                Box::pin(self.walk(image, child, depth + 1, graph)).await?;
            }
        }
        graph.known.insert(m.digest.clone(), m.clone());
        graph.manifests.push(m.clone());
        Ok(parsed)
    }

    /// Resolves one image (`name` as listed, `image` parsed).
    pub async fn resolve(
        &self,
        name: &str,
        image: &Reference,
    ) -> Result<ResolvedImage, ResolveError> {
        let failed = |e: WalkError| e.named(name);
        let top = match image.digest() {
            Some(d) => self.manifest(image, d).await.map_err(failed)?,
            None => {
                let head = self
                    .source
                    .head(image)
                    .await
                    .map_err(|e| failed(store(e)))?;
                match head {
                    None => {
                        return Err(ResolveError::NotFound {
                            name: name.to_string(),
                            source_ref: image.to_string(),
                        });
                    }
                    Some(h) => match h.digest {
                        Some(d) => self.manifest(image, &d).await.map_err(failed)?,
                        // No digest header: GET by tag once and take the digest of the bytes.
                        None => Arc::new(
                            self.source
                                .manifest(image, None)
                                .await
                                .map_err(|e| failed(store(e)))?,
                        ),
                    },
                }
            }
        };
        let mut graph = Graph::default();
        let parsed = self
            .walk(image, &top, 0, &mut graph)
            .await
            .map_err(failed)?;
        let platforms = match &parsed {
            Manifest::Index { manifests } => manifests
                .iter()
                .map(|c| LockedPlatform {
                    platform: c
                        .platform
                        .as_ref()
                        .map_or_else(|| "unknown/unknown".to_string(), |p| p.to_string()),
                    os_version: c.platform.as_ref().and_then(|p| p.os_version.clone()),
                    digest: c.digest.clone(),
                    media_type: c.media_type.clone(),
                    size: c.size,
                })
                .collect(),
            Manifest::Image { config, .. } => {
                let p = self.config_platform(image, config).await.map_err(failed)?;
                vec![LockedPlatform {
                    platform: p
                        .as_ref()
                        .map_or_else(|| "unknown/unknown".to_string(), |p| p.to_string()),
                    os_version: p.and_then(|p| p.os_version),
                    digest: top.digest.clone(),
                    media_type: top.media_type.clone(),
                    size: top.bytes.len() as u64,
                }]
            }
        };
        let locked = LockedImage {
            name: name.to_string(),
            source: image.to_string(),
            digest: top.digest.clone(),
            media_type: top.media_type.clone(),
            size: top.bytes.len() as u64,
            // Bounded: at most MAX_IMAGE_OBJECTS sizes of at most MAX_BLOB_SIZE each.
            total_size: sum_sizes(graph.objects.values().copied()).unwrap_or(u64::MAX),
            written_digest: None,
            platforms,
            attached_to: None,
        };
        Ok(ResolvedImage {
            reference: image.clone(),
            locked,
            objects: graph.objects,
            manifests: graph.manifests,
            blobs: graph.blobs,
        })
    }

    /// Resolves every image, `jobs` at a time; `done` is called as each finishes. Results come
    /// back in input order.
    pub async fn resolve_all(
        &self,
        images: &[(String, Reference)],
        jobs: usize,
        done: &(dyn Fn(&str, bool) + Sync),
    ) -> Vec<Result<ResolvedImage, ResolveError>> {
        // One slot per image, filled as each finishes: no second list to sort and copy over
        // (for thousands of images, each list is hundreds of KiB). Every slot is filled; the
        // placeholder allocates nothing.
        let mut results: Vec<Result<ResolvedImage, ResolveError>> =
            Vec::with_capacity(images.len());
        results.resize_with(images.len(), || {
            Err(ResolveError::Invalid {
                name: String::new(),
                source: InvalidImage::Unresolved,
            })
        });
        futures_util::stream::iter(images.iter().enumerate())
            .map(|(i, (name, r))| async move {
                let res = self.resolve(name, r).await;
                done(name, res.is_ok());
                (i, res)
            })
            .buffer_unordered(jobs.max(1))
            .for_each(|(i, res)| {
                if let Some(slot) = results.get_mut(i) {
                    *slot = res;
                }
                std::future::ready(())
            })
            .await;
        results
    }
}

fn check_descriptor(desc: &Descriptor, got: &FetchedManifest) -> Result<(), InvalidImage> {
    if desc.size != got.bytes.len() as u64 {
        return Err(InvalidImage::SizeMismatch {
            digest: desc.digest.clone(),
            size: got.bytes.len() as u64,
            said: desc.size,
        });
    }
    let want = ferry_oci::media_types::strip_params(&desc.media_type);
    if want != got.media_type {
        return Err(InvalidImage::MediaTypeMismatch {
            digest: desc.digest.clone(),
            served: got.media_type.clone(),
            said: want.to_string(),
        });
    }
    Ok(())
}

/// Unique bytes across resolved images; `None` when the sum overflows (hostile sizes).
pub fn total_unique(images: &[&ResolvedImage]) -> Option<u64> {
    let mut all: BTreeMap<&Digest, u64> = BTreeMap::new();
    for i in images {
        for (d, s) in &i.objects {
            all.insert(d, *s);
        }
    }
    sum_sizes(all.values().copied())
}
