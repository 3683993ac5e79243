//! [`StoreError`]: what any store can answer instead of content. Each backend keeps its own
//! detailed error ([`RegistryError`], [`BundleError`]); this enum carries them, typed, up to
//! the engine and the commands, plus the content-level failures every store shares.

use ferry_oci::digest::{Digest, VerifyError};

use super::bundle::BundleError;
use super::registry::{ClientError, RegistryError};

/// Why a store could not give or take some content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A registry request failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A registry client could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The bundle could not be read or written.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Content that does not match its digest or size, detected while it streamed; nothing
    /// of it was kept or committed.
    #[error(
        "{what} {digest} from {origin} is corrupt: {source}; nothing of it was kept{}",
        hint(origin)
    )]
    Corrupt {
        /// "blob" or "manifest".
        what: &'static str,
        /// The digest it should have.
        digest: Digest,
        /// Where it came from ("bundle b.tar", "registry docker.io").
        origin: String,
        /// What the check found.
        source: VerifyError,
    },
    /// The store does not have it.
    #[error("{origin} has no {what} {digest}{}", hint(origin))]
    Missing {
        /// "blob" or "manifest".
        what: &'static str,
        /// What was asked for.
        digest: Digest,
        /// The store.
        origin: String,
    },
    /// A blob is too large to be read into memory as a manifest or config.
    #[error(
        "{what} {digest} in {origin} is {size} bytes, larger than the {limit} bytes a {what} may be"
    )]
    TooLarge {
        /// "manifest" or "config".
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The store.
        origin: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An image asked for by tag where the store only knows digests.
    #[error("{origin} has no image {image}")]
    UnknownImage {
        /// The image.
        image: String,
        /// The store.
        origin: String,
    },
    /// A local read or write failed (the disk, a worker thread).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// What to do about content that came from a bundle.
fn hint(origin: &str) -> &'static str {
    if origin.starts_with("bundle ") {
        " (copy the bundle again, or export it again if the copy is good)"
    } else {
        ""
    }
}

impl StoreError {
    /// The typed error a stream of content carried inside an `io::Error`, or an I/O error
    /// about `what`.
    pub fn from_stream(e: std::io::Error, what: impl FnOnce() -> String) -> StoreError {
        if e.get_ref().is_some_and(|i| i.is::<StoreError>()) {
            if let Some(inner) = e.into_inner()
                && let Ok(store) = inner.downcast::<StoreError>()
            {
                return *store;
            }
            return StoreError::Io {
                what: what(),
                source: std::io::Error::other("a stream failed"),
            };
        }
        StoreError::Io {
            what: what(),
            source: e,
        }
    }

    /// Wraps this error for a stream of content (see [`StoreError::from_stream`]).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// True when the content simply is not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::Missing { .. } | StoreError::UnknownImage { .. } => true,
            StoreError::Registry(e) => e.is_not_found(),
            StoreError::Bundle(BundleError::MissingBlob { .. }) => true,
            _ => false,
        }
    }

    /// True when the content was there but wrong.
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. }
                | StoreError::Registry(RegistryError::Integrity { .. })
                | StoreError::Registry(RegistryError::DigestHeader { .. })
                | StoreError::Bundle(BundleError::CorruptBlob { .. })
        )
    }
}

#[cfg(test)]
mod tests;
