//! Several bundles read as one [`Source`] ([`BundleSet`]): a name resolves in the last bundle
//! whose index.json has it (an upgrade bundle given after the one it updates wins), and a blob
//! or manifest is read from whichever bundle holds it, so an image may draw on several (a delta
//! bundle's images need the blobs of the bundle it is a delta of).

use super::source::BundleSource;
use crate::resolve;
use crate::{ByteStream, FetchedManifest, ManifestHead, Source, StoreError};
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;

/// Bundles read as one.
#[derive(Clone)]
pub struct BundleSet {
    bundles: Vec<BundleSource>,
}

impl BundleSet {
    /// The bundles, in the order given.
    pub fn new(bundles: Vec<BundleSource>) -> BundleSet {
        BundleSet { bundles }
    }

    /// The bundles, in the order given.
    pub fn bundles(&self) -> &[BundleSource] {
        &self.bundles
    }

    /// The first bundle holding blob `digest`.
    pub fn holding(&self, digest: &Digest) -> Option<&BundleSource> {
        self.bundles
            .iter()
            .find(|b| b.reader().blob(digest).is_some())
    }

    fn names(&self) -> String {
        let names: Vec<String> = self
            .bundles
            .iter()
            .map(|b| b.reader().path().display().to_string())
            .collect();
        format!("bundle {}", names.join(", "))
    }
}

impl Source for BundleSet {
    fn origin(&self, image: &Reference) -> String {
        match image.digest().and_then(|d| self.holding(d)) {
            Some(b) => b.origin(image),
            None => self.names(),
        }
    }

    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, StoreError> {
        for b in self.bundles.iter().rev() {
            if let Some(h) = b.head(image).await? {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, StoreError> {
        let d = resolve::manifest_digest(self, image, digest).await?;
        match self.holding(&d) {
            Some(b) => b.manifest(image, Some(&d)).await,
            None => Err(resolve::missing_manifest(d, self.names())),
        }
    }

    fn open_blob(&self, image: &Reference, digest: &Digest, size: u64, offset: u64) -> ByteStream {
        match self.holding(digest) {
            Some(b) => b.open_blob(image, digest, size, offset),
            None => {
                let e = StoreError::Missing {
                    what: "blob",
                    digest: digest.clone(),
                    origin: self.names(),
                };
                Box::pin(futures_util::stream::once(async move { Err(e.into_io()) }))
            }
        }
    }

    async fn blob_size(
        &self,
        _image: &Reference,
        digest: &Digest,
        _size: u64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .holding(digest)
            .and_then(|b| b.reader().blob(digest))
            .map(|l| l.size))
    }
}
