//! [`Registries`] as a [`Source`]: each image goes to its own registry (and repository).

use super::Registries;
use crate::resolve::Wanted;
use crate::{ByteStream, FetchedManifest, ManifestHead, Source, StoreError};
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;

impl Source for Registries {
    fn origin(&self, image: &Reference) -> String {
        format!("registry {}", image.registry())
    }

    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, StoreError> {
        let reg = self.get(image.registry())?;
        // A reference known only by digest (a referrer) is looked up by that digest.
        let reference = match (image.tag(), image.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".to_string(),
        };
        Ok(reg.head_manifest(image.repository(), &reference).await?)
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, StoreError> {
        let reg = self.get(image.registry())?;
        // The registry resolves a tag itself, in the same GET.
        let reference = Wanted::of(image, digest).to_string();
        Ok(reg.get_manifest(image.repository(), &reference).await?)
    }

    fn open_blob(&self, image: &Reference, digest: &Digest, size: u64, offset: u64) -> ByteStream {
        match self.get(image.registry()) {
            Ok(reg) => reg.blob_stream(image.repository(), digest, size, offset),
            Err(e) => Box::pin(futures_util::stream::once(async move {
                Err(StoreError::Client(e).into_io())
            })),
        }
    }

    async fn all_tags(&self, image: &Reference) -> Option<Vec<String>> {
        let reg = self.get(image.registry()).ok()?;
        reg.all_tags(image.repository()).await
    }

    async fn blob_size(
        &self,
        image: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<u64>, StoreError> {
        let reg = self.get(image.registry())?;
        Ok(reg.probe_blob(image.repository(), digest, size).await?)
    }

    async fn referrers(
        &self,
        image: &Reference,
        subject: &Digest,
    ) -> Result<Option<Vec<ferry_oci::referrers::Entry>>, StoreError> {
        let reg = self.get(image.registry())?;
        Ok(reg.get_referrers(image.repository(), subject).await?)
    }
}
