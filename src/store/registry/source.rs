//! [`Registries`] as a [`ManifestSource`]: each reference goes to its own registry.

use bytes::Bytes;

use super::{ClientError, Registries, RegistryError};
use crate::oci::digest::Digest;
use crate::oci::manifest::Descriptor;
use crate::oci::reference::Reference;
use crate::store::{FetchedManifest, ManifestHead, ManifestSource, MemorySink};

pub use crate::store::MAX_SMALL_BLOB;

/// An error of the registry source: the client could not be set up, or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Client setup.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A request.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl ManifestSource for Registries {
    type Error = SourceError;

    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, SourceError> {
        let reg = self.get(image.registry())?;
        let reference = image.tag().unwrap_or("latest");
        Ok(reg.head_manifest(image.repository(), reference).await?)
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, SourceError> {
        let reg = self.get(image.registry())?;
        let reference = match digest {
            Some(d) => d.to_string(),
            None => image.tag().unwrap_or("latest").to_string(),
        };
        Ok(reg.get_manifest(image.repository(), &reference).await?)
    }

    async fn small_blob(&self, image: &Reference, blob: &Descriptor) -> Result<Bytes, SourceError> {
        let reg = self.get(image.registry())?;
        if blob.size > MAX_SMALL_BLOB {
            return Err(RegistryError::TooLarge {
                registry: reg.name().to_string(),
                what: format!("config {}", blob.digest),
                limit: MAX_SMALL_BLOB,
            }
            .into());
        }
        let sink = reg
            .download_blob(
                image.repository(),
                &blob.digest,
                Some(blob.size),
                MemorySink::default(),
                &|_| {},
            )
            .await?;
        Ok(Bytes::from(sink.bytes))
    }
}
