//! A resolved image ([`ResolvedImage`]): its lock entry, every manifest (exact bytes) and
//! every blob with its size; and what can be done with one before it is copied: keep only
//! some platforms (`export --platform`), or name its docker-archive view for one platform.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::lockfile::LockedImage;
use ferry_oci::archive::DockerEntry;
use ferry_oci::digest::Digest;
use ferry_oci::filter::select_platforms;
use ferry_oci::manifest::{Manifest, sum_sizes};
use ferry_oci::platform::Platform;
use ferry_oci::reference::Reference;
use ferry_store::FetchedManifest;

/// Why an image cannot be narrowed to the platforms `export --platform` asks for.
#[derive(Debug, thiserror::Error)]
pub enum PlatformsError {
    /// It was resolved to no manifest at all.
    #[error("no manifest")]
    NoManifest,
    /// Its top-level manifest cannot be parsed.
    #[error(transparent)]
    Manifest(#[from] ferry_oci::manifest::ManifestError),
    /// A single-platform image of another platform.
    #[error("its only platform is {platform}, which --platform does not select")]
    OnlyPlatform {
        /// Its platform, as the lock gives it.
        platform: String,
    },
    /// An index none of whose platforms is selected (or the new index cannot be written).
    #[error(transparent)]
    Filter(#[from] ferry_oci::filter::FilterError),
    /// The sizes of what the new index reaches overflow.
    #[error("its sizes add up to more than 16 EiB")]
    SizeOverflow,
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

impl ResolvedImage {
    /// The top-level manifest (the last one).
    pub fn top(&self) -> Option<&Arc<FetchedManifest>> {
        self.manifests.last()
    }

    /// Keeps only the platforms `want` selects (and their attestations): a new index, whose
    /// digest the lock records as `written_digest`, and only the manifests and blobs it still
    /// reaches. A single-platform image must be of a wanted platform.
    pub fn keep_platforms(&mut self, want: &[Platform]) -> Result<(), PlatformsError> {
        let Some(top) = self.top().cloned() else {
            return Err(PlatformsError::NoManifest);
        };
        let parsed = Manifest::parse(&top.bytes, &top.media_type, &top.digest)?;
        let Manifest::Index {
            manifests: children,
        } = &parsed
        else {
            let p = self
                .locked
                .platforms
                .first()
                .map(|p| p.platform.clone())
                .unwrap_or_default();
            if Platform::parse(&p).is_ok_and(|pp| want.iter().any(|w| pp.matches(w))) {
                return Ok(());
            }
            return Err(PlatformsError::OnlyPlatform { platform: p });
        };
        let Some(selected) = select_platforms(&top.bytes, children, want)? else {
            return Ok(());
        };
        let new_top = Arc::new(FetchedManifest {
            digest: Digest::sha256_of(&selected.bytes),
            bytes: selected.bytes.into(),
            media_type: top.media_type.clone(),
        });
        // What the new index still reaches, children before parents.
        let by_digest: BTreeMap<&Digest, &Arc<FetchedManifest>> =
            self.manifests.iter().map(|m| (&m.digest, m)).collect();
        let mut reached: Vec<Arc<FetchedManifest>> = Vec::new();
        let mut todo: Vec<Digest> = selected.kept.clone();
        while let Some(d) = todo.pop() {
            let Some(m) = by_digest.get(&d) else { continue };
            if reached.iter().any(|r| r.digest == d) {
                continue;
            }
            if let Ok(Manifest::Index { manifests }) =
                Manifest::parse(&m.bytes, &m.media_type, &m.digest)
            {
                todo.extend(manifests.iter().map(|c| c.digest.clone()));
            }
            reached.push((*m).clone());
        }
        let order: BTreeMap<&Digest, usize> = self
            .manifests
            .iter()
            .enumerate()
            .map(|(i, m)| (&m.digest, i))
            .collect();
        reached.sort_by_key(|m| order.get(&m.digest).copied().unwrap_or(usize::MAX));
        let mut blobs = BTreeMap::new();
        for m in &reached {
            if let Ok(p) = Manifest::parse(&m.bytes, &m.media_type, &m.digest) {
                for b in p.blobs() {
                    blobs.insert(b.digest.clone(), b.size);
                }
            }
        }
        reached.push(new_top.clone());
        let mut objects = blobs.clone();
        for m in &reached {
            objects.insert(m.digest.clone(), m.bytes.len() as u64);
        }
        self.locked
            .platforms
            .retain(|p| selected.kept.contains(&p.digest));
        self.locked.written_digest = Some(new_top.digest.clone());
        self.locked.total_size =
            sum_sizes(objects.values().copied()).ok_or(PlatformsError::SizeOverflow)?;
        self.manifests = reached;
        self.blobs = blobs;
        self.objects = objects;
        Ok(())
    }

    /// The docker-archive view of the image for `platform` (classic `docker load`), if it has
    /// that platform.
    pub fn docker_entry(&self, platform: &Platform) -> Option<DockerEntry> {
        let chosen = self
            .locked
            .platforms
            .iter()
            .find(|p| Platform::parse(&p.platform).is_ok_and(|pp| pp.matches(platform)))?;
        let m = self.manifests.iter().find(|m| m.digest == chosen.digest)?;
        let parsed = Manifest::parse(&m.bytes, &m.media_type, &m.digest).ok()?;
        let reference = Reference::parse(&self.locked.source).ok()?;
        DockerEntry::of(&parsed, reference.familiar())
    }
}
