//! One registry as a [`Destination`]: the target of an import. Objects are checked with
//! HEADs under push access (one token serves the whole push), blobs go up monolithic or in
//! chunks, manifests by digest or by tag, and a blob one repository has can be mounted into
//! another.

use std::sync::Arc;

use url::Url;

use super::Registry;
use super::upload::Mount as RegistryMount;
use crate::{BlobRead, Destination, FetchedManifest, Mount, ObjectKind, StoreError};
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;

/// Pushes into one registry.
pub struct RegistryDestination {
    registry: Arc<Registry>,
    chunk_size: Option<u64>,
}

impl RegistryDestination {
    /// Pushes into `registry`; blobs in chunks of `chunk_size` bytes when given, else one
    /// streaming PUT each.
    pub fn new(registry: Arc<Registry>, chunk_size: Option<u64>) -> RegistryDestination {
        RegistryDestination {
            registry,
            chunk_size,
        }
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
        let tag = image.tag().unwrap_or("latest");
        Ok(self
            .registry
            .manifest_digest_for_push(image.repository(), tag)
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
        let reference = tag.unwrap_or(manifest.digest.as_str());
        Ok(self
            .registry
            .put_manifest(
                image.repository(),
                reference,
                &manifest.media_type,
                &manifest.digest,
                manifest.bytes.clone(),
            )
            .await?)
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
