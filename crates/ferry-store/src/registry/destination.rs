//! One registry as a [`Destination`]: the target of an import. Objects are checked with
//! HEADs under push access (one token serves the whole push), blobs go up monolithic or in
//! chunks, manifests by digest or by tag, and a blob one repository has can be mounted into
//! another.
//!
//! Referrers (OCI 1.1): a manifest with a `subject` goes up by digest like any child. A
//! registry that answers it with `OCI-Subject` indexes it itself; one that does not (it has
//! no referrers API: distribution 2.8) gets the referrers tag-schema index `sha256-<hex>` of
//! the subject kept up to date ([`Destination::index_referrers`]): what is there is read
//! (capped), every entry is kept as written and in its order, ours that are missing are
//! appended, and nothing is written when none is missing. A tag-schema index pushed under its
//! tag (one a bundle carries) is merged the same way, never put over the target's: that tag
//! is a list others write to as well. Entries are read and written one subject at a time; a
//! client that writes the same tag in between can still lose its entry (the tag schema has no
//! compare-and-swap), which is the schema's own limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use url::Url;

use super::Registry;
use super::error::RegistryError;
use super::upload::Mount as RegistryMount;
use crate::{BlobRead, Destination, FetchedManifest, Mount, ObjectKind, StoreError};
use ferry_oci::cosign::Attachment;
use ferry_oci::digest::Digest;
use ferry_oci::media_types::{self, ManifestKind, OCI_INDEX};
use ferry_oci::reference::Reference;
use ferry_oci::referrers::{self as oci_referrers, Merged};

/// Not yet known whether the registry has the referrers API.
const API_UNKNOWN: u8 = 0;
/// It has: it answered a manifest with a subject with `OCI-Subject`, or its API answered.
const API_YES: u8 = 1;
/// It has not: it answered such a manifest without `OCI-Subject`, or its API is a 404.
const API_NO: u8 = 2;

/// Pushes into one registry.
pub struct RegistryDestination {
    registry: Arc<Registry>,
    chunk_size: Option<u64>,
    /// Whether the registry has the referrers API ([`API_UNKNOWN`], [`API_YES`], [`API_NO`]).
    referrers_api: AtomicU8,
    /// One lock per referrers tag being merged (repository, subject): two merges of the same
    /// tag in this run never read the same old list.
    merging: Mutex<HashMap<(String, Digest), Gate>>,
}

/// Held while one referrers tag is read, merged and written.
type Gate = Arc<tokio::sync::Mutex<()>>;

impl RegistryDestination {
    /// Pushes into `registry`; blobs in chunks of `chunk_size` bytes when given, else one
    /// streaming PUT each.
    pub fn new(registry: Arc<Registry>, chunk_size: Option<u64>) -> RegistryDestination {
        RegistryDestination {
            registry,
            chunk_size,
            referrers_api: AtomicU8::new(API_UNKNOWN),
            merging: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the registry indexes referrers itself: learned from the manifests with a
    /// subject pushed in this run, else asked once of its referrers API.
    async fn has_referrers_api(&self, repository: &str, subject: &Digest) -> bool {
        match self.referrers_api.load(Ordering::SeqCst) {
            API_YES => true,
            API_NO => false,
            _ => {
                // An answer that is no list (refused, unreadable) is no API to rely on: the
                // tag schema is kept, which a registry with the API does not mind.
                let yes = match self.registry.get_referrers(repository, subject).await {
                    Ok(list) => list.is_some(),
                    Err(e) => {
                        tracing::debug!(
                            "the referrers API of {} gave no list ({e}); keeping the referrers tag schema",
                            self.registry.name()
                        );
                        false
                    }
                };
                self.referrers_api
                    .store(if yes { API_YES } else { API_NO }, Ordering::SeqCst);
                yes
            }
        }
    }

    /// Merges `ours` (referrer descriptors) into the referrers tag-schema index of `subject`
    /// in `repository`. `as_is` is an index to write byte for byte when the target has none
    /// (the bundle's own, so that its digest travels unchanged). Says whether it wrote.
    async fn merge_referrers(
        &self,
        repository: &str,
        subject: &Digest,
        ours: &[serde_json::Value],
        as_is: Option<&FetchedManifest>,
    ) -> Result<bool, RegistryError> {
        let gate = {
            let mut m = self.merging.lock().unwrap_or_else(|e| e.into_inner());
            m.entry((repository.to_string(), subject.clone()))
                .or_default()
                .clone()
        };
        let _held = gate.lock().await;
        let tag = Attachment::Referrers.tag_for(subject);
        let protocol = |detail: String| RegistryError::Protocol {
            registry: self.registry.name().to_string(),
            what: format!("referrers tag {repository}:{tag}"),
            detail,
        };
        let theirs = self.registry.get_tag_for_push(repository, &tag).await?;
        if let Some((media_type, _)) = &theirs
            && media_types::manifest_kind(media_type) != Some(ManifestKind::Index)
        {
            return Err(protocol(format!(
                "it holds a {media_type}, not a referrers index; it was left as it is, and the referrers of {subject} are not listed there"
            )));
        }
        let (bytes, media_type) = match (&theirs, as_is) {
            (None, Some(m)) => (m.bytes.clone(), m.media_type.clone()),
            _ => match oci_referrers::merge(theirs.as_ref().map(|(_, b)| &b[..]), ours)
                .map_err(|e| protocol(e.to_string()))?
            {
                Merged::Unchanged => return Ok(false),
                Merged::Write(b) => (bytes::Bytes::from(b), OCI_INDEX.to_string()),
            },
        };
        let digest = Digest::sha256_of(&bytes);
        self.registry
            .put_manifest(repository, &tag, &media_type, &digest, bytes)
            .await?;
        Ok(true)
    }
}

impl Destination for RegistryDestination {
    type Session = Url;

    fn origin(&self, _image: &Reference) -> String {
        format!("registry {}", self.registry.name())
    }

    fn scope(&self, image: &Reference) -> String {
        image.repository().to_string()
    }

    async fn tag_digest(&self, image: &Reference) -> Result<Option<Digest>, StoreError> {
        // A reference known only by digest (a referrer, which has no tag) is looked up by it.
        let reference = match (image.tag(), image.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".to_string(),
        };
        Ok(self
            .registry
            .manifest_digest_for_push(image.repository(), &reference)
            .await?)
    }

    async fn exists(
        &self,
        image: &Reference,
        digest: &Digest,
        _size: u64,
        kind: ObjectKind,
    ) -> Result<bool, StoreError> {
        let repo = image.repository();
        Ok(match kind {
            ObjectKind::Blob => self.registry.blob_exists_for_push(repo, digest).await?,
            ObjectKind::Manifest => self
                .registry
                .manifest_digest_for_push(repo, digest.as_str())
                .await?
                .is_some(),
        })
    }

    async fn push_blob(
        &self,
        image: &Reference,
        digest: &Digest,
        size: u64,
        from: &dyn BlobRead,
        session: Option<Url>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        self.registry
            .upload_blob(
                image.repository(),
                digest,
                size,
                from,
                self.chunk_size,
                session,
            )
            .await?;
        // Counted per finished blob: a retried upload sends its bytes again.
        progress(size);
        Ok(())
    }

    async fn push_manifest(
        &self,
        image: &Reference,
        manifest: &FetchedManifest,
        tag: Option<&str>,
    ) -> Result<(), StoreError> {
        let repo = image.repository();
        if let Some((Attachment::Referrers, subject)) = tag.and_then(Attachment::parse_tag)
            && media_types::manifest_kind(&manifest.media_type) == Some(ManifestKind::Index)
        {
            // A referrers tag-schema index: merged into the target's, never put over it; not
            // kept at all where the registry indexes referrers itself.
            if self.has_referrers_api(repo, &subject).await {
                return Ok(());
            }
            let ours = oci_referrers::descriptors(&manifest.bytes).map_err(|e| {
                RegistryError::Protocol {
                    registry: self.registry.name().to_string(),
                    what: format!("referrers index {}", manifest.digest),
                    detail: e.to_string(),
                }
            })?;
            self.merge_referrers(repo, &subject, &ours, Some(manifest))
                .await?;
            return Ok(());
        }
        let reference = tag.unwrap_or(manifest.digest.as_str());
        let answer = self
            .registry
            .put_manifest(
                repo,
                reference,
                &manifest.media_type,
                &manifest.digest,
                manifest.bytes.clone(),
            )
            .await?;
        if oci_referrers::subject_of(&manifest.bytes).is_some() {
            let api = if answer.oci_subject { API_YES } else { API_NO };
            self.referrers_api.store(api, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn index_referrers(
        &self,
        image: &Reference,
        subject: &Digest,
        referrers: &[&FetchedManifest],
    ) -> Result<bool, StoreError> {
        let repo = image.repository();
        if referrers.is_empty() || self.has_referrers_api(repo, subject).await {
            return Ok(false);
        }
        let ours: Vec<serde_json::Value> = referrers
            .iter()
            .map(|m| oci_referrers::descriptor_for(&m.bytes, &m.media_type, &m.digest))
            .collect();
        Ok(self.merge_referrers(repo, subject, &ours, None).await?)
    }

    async fn mount(
        &self,
        image: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<Mount<Url>, StoreError> {
        Ok(
            match self
                .registry
                .mount_blob(image.repository(), digest, from.repository())
                .await?
            {
                RegistryMount::Mounted => Mount::Mounted,
                RegistryMount::Session(url) => Mount::NotMounted(Some(url)),
            },
        )
    }
}
