//! Resolving images to digests: HEAD each tag first (free on Docker Hub), then GET only the
//! manifests that must be read — each digest once across all images — and each image's
//! config for its platform. Images resolve concurrently; one failing image never hides the
//! others.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::OnceCell;

use super::lockfile::{LockedImage, LockedPlatform};
use crate::oci::digest::Digest;
use crate::oci::manifest::{Descriptor, Manifest};
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::store::{FetchedManifest, ManifestSource};

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
    /// Anything else, already rendered.
    #[error("{name}: {detail}")]
    Failed {
        /// As listed.
        name: String,
        /// The error text.
        detail: String,
    },
}

impl ResolveError {
    /// The image name as listed.
    pub fn name(&self) -> &str {
        match self {
            ResolveError::NotFound { name, .. } | ResolveError::Failed { name, .. } => name,
        }
    }
}

/// Everything an image consists of: its lock entry, its manifests and every blob.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The parsed reference it was resolved from.
    pub reference: Reference,
    /// The lock entry.
    pub locked: LockedImage,
    /// Every manifest and blob with its size (including the top-level manifest).
    pub objects: BTreeMap<Digest, u64>,
    /// Every manifest, children before their parents; the top-level one is last.
    pub manifests: Vec<Arc<FetchedManifest>>,
    /// Configs and layers (not manifests), with their sizes.
    pub blobs: BTreeMap<Digest, u64>,
}

/// What a walk collects.
#[derive(Default)]
struct Graph {
    objects: BTreeMap<Digest, u64>,
    manifests: Vec<Arc<FetchedManifest>>,
    blobs: BTreeMap<Digest, u64>,
}

type Shared<T> = Arc<OnceCell<Result<T, String>>>;

/// Resolves images against a source, de-duplicating manifest fetches across images.
pub struct Resolver<'a, S: ManifestSource> {
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

fn render(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::flatten(e)
}

impl<'a, S: ManifestSource> Resolver<'a, S> {
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
    ) -> Result<Arc<FetchedManifest>, String> {
        let cell = Self::cell(&self.manifests, d);
        cell.get_or_init(|| async {
            self.source
                .manifest(image, Some(d))
                .await
                .map(Arc::new)
                .map_err(|e| render(&e))
        })
        .await
        .clone()
    }

    async fn config_platform(
        &self,
        image: &Reference,
        config: &Descriptor,
    ) -> Result<Option<Platform>, String> {
        let cell = Self::cell(&self.configs, &config.digest);
        cell.get_or_init(|| async {
            let bytes = self
                .source
                .small_blob(image, config)
                .await
                .map_err(|e| render(&e))?;
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

    /// Adds `m` (already fetched) and everything below it to `graph`, children first.
    async fn walk(
        &self,
        image: &Reference,
        m: &Arc<FetchedManifest>,
        depth: usize,
        graph: &mut Graph,
    ) -> Result<Manifest, String> {
        graph.objects.insert(m.digest.clone(), m.bytes.len() as u64);
        let parsed =
            Manifest::parse(&m.bytes, &m.media_type, &m.digest).map_err(|e| e.to_string())?;
        for blob in parsed.blobs() {
            graph.objects.insert(blob.digest.clone(), blob.size);
            graph.blobs.insert(blob.digest.clone(), blob.size);
        }
        if depth >= MAX_DEPTH && !parsed.children().is_empty() {
            return Err(format!(
                "manifest {} nests indexes deeper than {MAX_DEPTH} levels",
                m.digest
            ));
        }
        let children = futures_util::future::join_all(
            parsed
                .children()
                .iter()
                .map(|c| self.manifest(image, &c.digest)),
        )
        .await;
        for (desc, child) in parsed.children().iter().zip(children) {
            let child = child?;
            check_descriptor(desc, &child)?;
            Box::pin(self.walk(image, &child, depth + 1, graph)).await?;
        }
        if !graph.manifests.iter().any(|x| x.digest == m.digest) {
            graph.manifests.push(m.clone());
        }
        Ok(parsed)
    }

    /// Resolves one image (`name` as listed, `image` parsed).
    pub async fn resolve(
        &self,
        name: &str,
        image: &Reference,
    ) -> Result<ResolvedImage, ResolveError> {
        let failed = |detail: String| ResolveError::Failed {
            name: name.to_string(),
            detail,
        };
        let top = match image.digest() {
            Some(d) => self.manifest(image, d).await.map_err(failed)?,
            None => {
                let head = self
                    .source
                    .head(image)
                    .await
                    .map_err(|e| failed(render(&e)))?;
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
                                .map_err(|e| failed(render(&e)))?,
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
            total_size: graph.objects.values().sum(),
            written_digest: None,
            platforms,
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
        let mut results: Vec<(usize, Result<ResolvedImage, ResolveError>)> =
            futures_util::stream::iter(images.iter().enumerate())
                .map(|(i, (name, r))| async move {
                    let res = self.resolve(name, r).await;
                    done(name, res.is_ok());
                    (i, res)
                })
                .buffer_unordered(jobs.max(1))
                .collect()
                .await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }
}

fn check_descriptor(desc: &Descriptor, got: &FetchedManifest) -> Result<(), String> {
    if desc.size != got.bytes.len() as u64 {
        return Err(format!(
            "manifest {} is {} bytes but its index says {}",
            desc.digest,
            got.bytes.len(),
            desc.size
        ));
    }
    let want = crate::oci::media_types::strip_params(&desc.media_type);
    if want != got.media_type {
        return Err(format!(
            "manifest {} is served as {} but its index says {want}",
            desc.digest, got.media_type
        ));
    }
    Ok(())
}

/// Unique bytes across resolved images.
pub fn total_unique(images: &[&ResolvedImage]) -> u64 {
    let mut all: BTreeMap<&Digest, u64> = BTreeMap::new();
    for i in images {
        for (d, s) in &i.objects {
            all.insert(d, *s);
        }
    }
    all.values().sum()
}
