//! An in-memory store, source and destination both, for unit tests of the engine and the
//! resolver (as oras-go's `content/memory`): repositories of blobs, manifests and tags, with
//! every call counted, optional mounts, and failures that can be scripted per digest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use bytes::Bytes;

use super::{
    BlobRead, ByteStream, Destination, FetchedManifest, ManifestHead, Mount, ObjectKind, Source,
    StoreError,
};
use ferry_oci::digest::{Digest, VerifyError};
use ferry_oci::media_types;
use ferry_oci::reference::Reference;

/// One call the store received, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A blob pushed into a repository.
    PushBlob(String, Digest),
    /// A manifest written into a repository, with its tag if any.
    PushManifest(String, Digest, Option<String>),
    /// A mount into a repository from another.
    Mount(String, Digest, String),
    /// A blob opened for reading.
    OpenBlob(Digest),
}

#[derive(Default)]
struct Repo {
    blobs: BTreeSet<Digest>,
    manifests: BTreeSet<Digest>,
    tags: BTreeMap<String, Digest>,
}

#[derive(Default)]
struct State {
    content: BTreeMap<Digest, Bytes>,
    media_types: BTreeMap<Digest, String>,
    repos: BTreeMap<String, Repo>,
    calls: Vec<Call>,
    /// Pushes of these digests fail this many more times.
    failures: BTreeMap<Digest, usize>,
}

/// The store. `mounts` says whether it links blobs across repositories.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    mounts: bool,
}

impl MemoryStore {
    /// An empty store; `mounts` enables cross-repository mounts.
    pub fn new(mounts: bool) -> MemoryStore {
        MemoryStore {
            state: Mutex::default(),
            mounts,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a blob to `repository`; returns its digest.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> Digest {
        let d = Digest::sha256_of(bytes);
        let mut st = self.lock();
        st.content.insert(d.clone(), Bytes::copy_from_slice(bytes));
        st.repos
            .entry(repository.into())
            .or_default()
            .blobs
            .insert(d.clone());
        d
    }

    /// Adds a manifest to `repository` (tagged when `tag` is given); returns its digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Digest {
        let d = Digest::sha256_of(bytes);
        let mut st = self.lock();
        st.content.insert(d.clone(), Bytes::copy_from_slice(bytes));
        st.media_types.insert(d.clone(), media_type.into());
        let repo = st.repos.entry(repository.into()).or_default();
        repo.manifests.insert(d.clone());
        if let Some(t) = tag {
            repo.tags.insert(t.into(), d.clone());
        }
        d
    }

    /// Serves `bytes` for `digest` from now on (a corrupt copy).
    pub fn corrupt(&self, digest: &Digest, bytes: &[u8]) {
        self.lock()
            .content
            .insert(digest.clone(), Bytes::copy_from_slice(bytes));
    }

    /// Makes the next `times` pushes of `digest` fail.
    pub fn fail_pushes(&self, digest: &Digest, times: usize) {
        self.lock().failures.insert(digest.clone(), times);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Whether `repository` holds blob or manifest `digest`.
    pub fn has(&self, repository: &str, digest: &Digest) -> bool {
        let st = self.lock();
        st.repos
            .get(repository)
            .is_some_and(|r| r.blobs.contains(digest) || r.manifests.contains(digest))
    }

    /// The digest `repository:tag` points at.
    pub fn tag(&self, repository: &str, tag: &str) -> Option<Digest> {
        self.lock().repos.get(repository)?.tags.get(tag).cloned()
    }

    /// The stored bytes of `digest`.
    pub fn bytes(&self, digest: &Digest) -> Option<Bytes> {
        self.lock().content.get(digest).cloned()
    }

    fn missing(digest: &Digest) -> StoreError {
        StoreError::Missing {
            what: "blob",
            digest: digest.clone(),
            origin: "memory".into(),
        }
    }
}

impl Source for MemoryStore {
    fn origin(&self, _image: &Reference) -> String {
        "memory".into()
    }

    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, StoreError> {
        let st = self.lock();
        let Some(d) = st
            .repos
            .get(image.repository())
            .and_then(|r| r.tags.get(image.tag().unwrap_or("latest")))
        else {
            return Ok(None);
        };
        Ok(Some(ManifestHead {
            digest: Some(d.clone()),
            media_type: st.media_types.get(d).cloned().unwrap_or_default(),
            size: st.content.get(d).map(|b| b.len() as u64),
        }))
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, StoreError> {
        let d = super::resolve::manifest_digest(self, image, digest).await?;
        let st = self.lock();
        let Some(bytes) = st.content.get(&d).cloned() else {
            return Err(super::resolve::missing_manifest(d, "memory".into()));
        };
        Ok(FetchedManifest {
            media_type: st
                .media_types
                .get(&d)
                .cloned()
                .unwrap_or_else(|| media_types::OCI_MANIFEST.into()),
            bytes,
            digest: d,
        })
    }

    fn open_blob(
        &self,
        _image: &Reference,
        digest: &Digest,
        _size: u64,
        offset: u64,
    ) -> ByteStream {
        let mut st = self.lock();
        st.calls.push(Call::OpenBlob(digest.clone()));
        let item = match st.content.get(digest) {
            Some(b) => Ok(b.slice(usize::try_from(offset).unwrap_or(usize::MAX).min(b.len())..)),
            None => Err(Self::missing(digest).into_io()),
        };
        Box::pin(futures_util::stream::iter([item]))
    }

    async fn blob_size(
        &self,
        _image: &Reference,
        digest: &Digest,
        _size: u64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().content.get(digest).map(|b| b.len() as u64))
    }
}

impl Destination for MemoryStore {
    type Session = ();

    fn origin(&self, _image: &Reference) -> String {
        "memory".into()
    }

    fn scope(&self, image: &Reference) -> String {
        image.repository().to_string()
    }

    async fn tag_digest(&self, image: &Reference) -> Result<Option<Digest>, StoreError> {
        Ok(self.tag(image.repository(), image.tag().unwrap_or("latest")))
    }

    async fn exists(
        &self,
        image: &Reference,
        digest: &Digest,
        _size: u64,
        kind: ObjectKind,
    ) -> Result<bool, StoreError> {
        let st = self.lock();
        Ok(st
            .repos
            .get(image.repository())
            .is_some_and(|r| match kind {
                ObjectKind::Blob => r.blobs.contains(digest),
                ObjectKind::Manifest => r.manifests.contains(digest),
            }))
    }

    async fn push_blob(
        &self,
        image: &Reference,
        digest: &Digest,
        size: u64,
        from: &dyn BlobRead,
        _session: Option<()>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        {
            let mut st = self.lock();
            st.calls
                .push(Call::PushBlob(image.repository().into(), digest.clone()));
            if let Some(n) = st.failures.get_mut(digest)
                && *n > 0
            {
                *n -= 1;
                return Err(StoreError::Io {
                    what: format!("pushing {digest}"),
                    source: std::io::Error::other("scripted failure"),
                });
            }
        }
        let bytes =
            super::stream::collect_verified(from.open(0), digest, size, &from.origin()).await?;
        progress(size);
        let mut st = self.lock();
        st.content.insert(digest.clone(), bytes);
        st.repos
            .entry(image.repository().into())
            .or_default()
            .blobs
            .insert(digest.clone());
        Ok(())
    }

    async fn push_manifest(
        &self,
        image: &Reference,
        manifest: &FetchedManifest,
        tag: Option<&str>,
    ) -> Result<(), StoreError> {
        if ferry_oci::digest::Digest::sha256_of(&manifest.bytes) != manifest.digest {
            return Err(StoreError::Corrupt {
                what: "manifest",
                digest: manifest.digest.clone(),
                origin: "memory".into(),
                source: VerifyError::SizeMismatch {
                    expected: 0,
                    actual: 0,
                },
            });
        }
        let mut st = self.lock();
        st.calls.push(Call::PushManifest(
            image.repository().into(),
            manifest.digest.clone(),
            tag.map(String::from),
        ));
        // Like a registry: every child and blob must already be in the repository.
        if let Ok(m) = ferry_oci::manifest::Manifest::parse(
            &manifest.bytes,
            &manifest.media_type,
            &manifest.digest,
        ) {
            let repo = st.repos.entry(image.repository().into()).or_default();
            for b in m.blobs() {
                if !repo.blobs.contains(&b.digest) {
                    return Err(Self::missing(&b.digest));
                }
            }
            for c in m.children() {
                if !repo.manifests.contains(&c.digest) {
                    return Err(Self::missing(&c.digest));
                }
            }
        }
        st.content
            .insert(manifest.digest.clone(), manifest.bytes.clone());
        st.media_types
            .insert(manifest.digest.clone(), manifest.media_type.clone());
        let repo = st.repos.entry(image.repository().into()).or_default();
        repo.manifests.insert(manifest.digest.clone());
        if let Some(t) = tag {
            repo.tags.insert(t.into(), manifest.digest.clone());
        }
        Ok(())
    }

    async fn mount(
        &self,
        image: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<Mount<()>, StoreError> {
        if !self.mounts {
            return Ok(Mount::Unsupported);
        }
        let mut st = self.lock();
        st.calls.push(Call::Mount(
            image.repository().into(),
            digest.clone(),
            from.repository().into(),
        ));
        let there = st
            .repos
            .get(from.repository())
            .is_some_and(|r| r.blobs.contains(digest));
        if !there {
            return Ok(Mount::NotMounted(None));
        }
        st.repos
            .entry(image.repository().into())
            .or_default()
            .blobs
            .insert(digest.clone());
        Ok(Mount::Mounted)
    }
}
