//! The copy engine, written once for both directions: `export` (registry → bundle) and
//! `import` (bundle → registry). It walks each image's graph children before parents, moves
//! every blob once per destination scope (a failed transfer is not cached, so a retry of the
//! run can redo it), and reports through a [`Reporter`]. It bounds nothing itself: the stores
//! hold a permit for each real transfer, so walking the graph never deadlocks on a limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::OnceCell;

use crate::oci::digest::Digest;
use crate::plan::resolve::ResolvedImage;
use crate::progress::Reporter;
use crate::store::FetchedManifest;

/// One direction of copying: how to check, move and write objects for an image.
pub trait Transfer: Sync {
    /// The scope in which a blob moved once need not move again (a bundle has one scope; a
    /// registry has one per repository).
    fn scope(&self, image: &ResolvedImage) -> String;

    /// Whether the destination already has this blob (or manifest) for `image`.
    fn has_blob(
        &self,
        image: &ResolvedImage,
        digest: &Digest,
        size: u64,
    ) -> impl Future<Output = Result<bool, String>> + Send;

    /// Moves one blob, verifying it; `progress` gets new byte counts.
    fn copy_blob(
        &self,
        image: &ResolvedImage,
        digest: &Digest,
        size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Writes one manifest (exact bytes). `top` is true for the image's top-level manifest,
    /// which a registry tags; children go by digest, before their parents.
    fn put_manifest(
        &self,
        image: &ResolvedImage,
        manifest: &FetchedManifest,
        top: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// What copying one image did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// Blobs moved by this image's walk.
    pub blobs_moved: u64,
    /// Bytes moved by this image's walk.
    pub bytes_moved: u64,
    /// Blobs found present (or moved by another image's walk).
    pub blobs_skipped: u64,
}

/// A failed image and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name}: {detail}")]
pub struct CopyError {
    /// The image name as listed.
    pub name: String,
    /// What went wrong.
    pub detail: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Moved,
    Present,
}

type Cell = Arc<OnceCell<Outcome>>;

/// The engine over one [`Transfer`].
pub struct Engine<'a, T: Transfer> {
    transfer: &'a T,
    reporter: &'a dyn Reporter,
    blobs: Mutex<HashMap<(String, Digest), Cell>>,
}

impl<'a, T: Transfer> Engine<'a, T> {
    /// An engine moving objects with `transfer`, reporting to `reporter`.
    pub fn new(transfer: &'a T, reporter: &'a dyn Reporter) -> Self {
        Engine {
            transfer,
            reporter,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    fn cell(&self, scope: String, digest: &Digest) -> Cell {
        let mut map = self
            .blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((scope, digest.clone())).or_default().clone()
    }

    /// Moves one blob once per scope. A failure is not cached: the cell stays empty, so a
    /// later caller tries again.
    async fn blob(
        &self,
        image: &ResolvedImage,
        digest: &Digest,
        size: u64,
    ) -> Result<(Outcome, bool), String> {
        let cell = self.cell(self.transfer.scope(image), digest);
        let mut mine = false;
        let outcome = cell
            .get_or_try_init(|| async {
                mine = true;
                if self.transfer.has_blob(image, digest, size).await? {
                    self.reporter.finished(digest, size, false);
                    return Ok(Outcome::Present);
                }
                self.reporter.started(digest, size);
                self.transfer
                    .copy_blob(image, digest, size, &|n| self.reporter.bytes(n))
                    .await?;
                self.reporter.finished(digest, size, true);
                Ok::<_, String>(Outcome::Moved)
            })
            .await?;
        Ok((*outcome, mine))
    }

    /// Copies one image: every blob (largest first), then its manifests, children first.
    pub async fn copy_image(
        &self,
        name: &str,
        image: &ResolvedImage,
    ) -> Result<ImageStats, CopyError> {
        let fail = |detail: String| CopyError {
            name: name.to_string(),
            detail,
        };
        let mut blobs: Vec<(&Digest, u64)> = image.blobs.iter().map(|(d, s)| (d, *s)).collect();
        blobs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let results =
            futures_util::future::join_all(blobs.iter().map(|(d, s)| self.blob(image, d, *s)))
                .await;
        let mut stats = ImageStats::default();
        let mut errors = Vec::new();
        for ((_, size), r) in blobs.iter().zip(results) {
            match r {
                Ok((Outcome::Moved, true)) => {
                    stats.blobs_moved += 1;
                    stats.bytes_moved += size;
                }
                Ok(_) => stats.blobs_skipped += 1,
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            errors.dedup();
            return Err(fail(errors.join("; ")));
        }
        let last = image.manifests.len().saturating_sub(1);
        for (i, m) in image.manifests.iter().enumerate() {
            let top = i == last;
            let mut wrote = false;
            // Each manifest is written once per scope, like a blob: two images that share a
            // child, or two names of one image, never write the same object at once.
            self.manifest(image, m, top, &mut wrote)
                .await
                .map_err(fail)?;
            // The top-level manifest carries this image's tag: a registry must get it even
            // when another name of the same digest wrote the object first.
            if top && !wrote {
                self.transfer
                    .put_manifest(image, m, true)
                    .await
                    .map_err(fail)?;
            }
        }
        Ok(stats)
    }

    /// Writes one manifest once per scope: children only when the destination lacks them,
    /// the top-level one always (with its tag). `wrote` says whether this call wrote it.
    async fn manifest(
        &self,
        image: &ResolvedImage,
        m: &FetchedManifest,
        top: bool,
        wrote: &mut bool,
    ) -> Result<(), String> {
        let size = m.bytes.len() as u64;
        let cell = self.cell(self.transfer.scope(image), &m.digest);
        cell.get_or_try_init(|| async {
            if !top && self.transfer.has_blob(image, &m.digest, size).await? {
                return Ok(Outcome::Present);
            }
            self.transfer.put_manifest(image, m, top).await?;
            *wrote = true;
            Ok::<_, String>(Outcome::Moved)
        })
        .await?;
        Ok(())
    }

    /// Copies every image, `parallel` images at a time; results in input order.
    pub async fn copy_all(
        &self,
        images: &[(String, ResolvedImage)],
        parallel: usize,
    ) -> Vec<Result<ImageStats, CopyError>> {
        let total_blobs: u64 = images.iter().map(|(_, i)| i.blobs.len() as u64).sum();
        let mut seen = std::collections::BTreeMap::new();
        for (_, i) in images {
            for (d, s) in &i.blobs {
                seen.insert(d.clone(), *s);
            }
        }
        self.reporter.planned(
            total_blobs.min(seen.len() as u64),
            seen.values().fold(0u64, |a, b| a.saturating_add(*b)),
        );
        let mut out: Vec<(usize, Result<ImageStats, CopyError>)> =
            futures_util::stream::iter(images.iter().enumerate())
                .map(|(i, (name, image))| async move {
                    let r = self.copy_image(name, image).await;
                    self.reporter.image(name, r.is_ok());
                    (i, r)
                })
                .buffer_unordered(parallel.max(1))
                .collect()
                .await;
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }
}
