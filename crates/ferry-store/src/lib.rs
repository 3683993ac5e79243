//! Where images live: registries and bundles, behind one content-level API. A [`Source`]
//! gives manifests and blob bytes (from any offset), a [`Destination`] takes them (and may
//! link a blob from another of its repositories: a mount). Each store implements them where
//! it lives (`registry`, `bundle`); the copy engine, the resolver and the verifier speak only
//! these traits, and only `commands` picks a concrete store.
//!
//! Blob bytes travel as a [`stream::ByteStream`] that the source does not verify: the
//! destination hashes what it receives and keeps or commits nothing that does not match.

#![deny(missing_docs)]

use std::future::Future;

use bytes::Bytes;

pub mod archive;
pub mod bundle;
pub mod error;
#[cfg(any(test, feature = "testutil"))]
pub mod memory;
pub mod registry;
pub mod resolve;
pub mod stream;
pub mod tar_header;

pub use error::StoreError;
/// Amazon ECR's own API (its login token and repository calls), beside the registry client
/// that uses it.
#[cfg(feature = "ecr")]
pub use registry::ecr;
pub use stream::ByteStream;

use ferry_oci::digest::Digest;
use ferry_oci::manifest::Descriptor;
use ferry_oci::reference::Reference;

/// Configs larger than this are not read into memory.
pub const MAX_SMALL_BLOB: u64 = 4 * 1024 * 1024;

/// What a HEAD tells about a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, when the store says it.
    pub digest: Option<Digest>,
    /// Media type without parameters.
    pub media_type: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
}

/// A manifest as fetched: exact bytes, media type, verified digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes, untouched.
    pub bytes: Bytes,
    /// Media type.
    pub media_type: String,
    /// Digest of the bytes (verified against the one asked for).
    pub digest: Digest,
}

/// What an object is: registries keep manifests and blobs (configs, layers) apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// An image manifest or index.
    Manifest,
    /// A config or layer.
    Blob,
}

/// Content to read, addressed by image (its registry and repository; a bundle needs only
/// digests) and descriptor.
pub trait Source: Send + Sync {
    /// The store, for messages: "registry docker.io", "bundle rke-images.tar".
    fn origin(&self, image: &Reference) -> String;

    /// Resolves the image's tag without reading the manifest; `None` when it does not exist.
    fn head(
        &self,
        image: &Reference,
    ) -> impl Future<Output = Result<Option<ManifestHead>, StoreError>> + Send;

    /// A manifest of the image's repository by digest, or by the image's own tag when
    /// `digest` is `None`: the exact bytes, checked against the digest.
    fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> impl Future<Output = Result<FetchedManifest, StoreError>> + Send;

    /// The bytes of blob `digest` (`size` bytes in all) from `offset` to its end. Reading
    /// starts when the stream is first polled; a failure ends it with an `io::Error` that
    /// carries a [`StoreError`]. Not verified: whoever consumes it hashes what it gets.
    fn open_blob(&self, image: &Reference, digest: &Digest, size: u64, offset: u64) -> ByteStream;

    /// Every tag of the image's repository, when the store can list them all in one cheap
    /// answer; `None` when it cannot (the caller then asks tag by tag). A hint only: a tag
    /// it lists is still looked up, and an error is `None`.
    fn all_tags(&self, image: &Reference) -> impl Future<Output = Option<Vec<String>>> + Send {
        let _ = image;
        async { None }
    }

    /// Whether the blob can be served, at about the cost of a HEAD, and its size; `None`
    /// when it cannot.
    fn blob_size(
        &self,
        image: &Reference,
        digest: &Digest,
        size: u64,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// The referrers of `subject` in the image's repository, as the store's OCI 1.1 referrers
    /// API lists them (manifests only, each once); `None` when the store has no such API (a
    /// registry that answers 404, as distribution 2.8 does; a bundle, an archive: their
    /// referrers are under the tag schema). The answer is read up to
    /// [`ferry_oci::referrers::MAX_LIST_SIZE`] bytes.
    fn referrers(
        &self,
        image: &Reference,
        subject: &Digest,
    ) -> impl Future<Output = Result<Option<Vec<ferry_oci::referrers::Entry>>, StoreError>> + Send
    {
        let _ = (image, subject);
        async { Ok(None) }
    }
}

/// A blob to push: its source, opened at any offset (once per attempt).
pub trait BlobRead: Sync {
    /// The bytes from `offset` to the end of the blob.
    fn open(&self, offset: u64) -> ByteStream;
    /// Where they come from, for messages.
    fn origin(&self) -> String;
}

/// One blob of a [`Source`], as a [`BlobRead`].
pub struct SourceBlob<'a, S: Source> {
    /// The source.
    pub source: &'a S,
    /// The image it is read for (registry and repository).
    pub image: &'a Reference,
    /// The blob.
    pub digest: &'a Digest,
    /// Its size.
    pub size: u64,
}

impl<S: Source> BlobRead for SourceBlob<'_, S> {
    fn open(&self, offset: u64) -> ByteStream {
        self.source
            .open_blob(self.image, self.digest, self.size, offset)
    }

    fn origin(&self) -> String {
        self.source.origin(self.image)
    }
}

/// What a cross-repository mount did.
#[derive(Debug)]
pub enum Mount<S> {
    /// The blob is now in the repository: nothing to push.
    Mounted,
    /// Not mounted; the store may have opened an upload session the push should use.
    NotMounted(Option<S>),
    /// The store has no such operation (a bundle has one namespace).
    Unsupported,
}

/// Content to write, addressed by the image's name in this store (its repository and tag; a
/// bundle needs only digests).
pub trait Destination: Send + Sync {
    /// Upload state a failed mount can hand to the next push (a registry's 202 session).
    type Session: Send;

    /// The store, for messages.
    fn origin(&self, image: &Reference) -> String;

    /// The namespace in which an object, once present, need not be pushed again: a
    /// registry's repository; one for a whole bundle.
    fn scope(&self, image: &Reference) -> String;

    /// The digest the image's tag points at here, when the store has tags.
    fn tag_digest(
        &self,
        image: &Reference,
    ) -> impl Future<Output = Result<Option<Digest>, StoreError>> + Send;

    /// Whether the object is already here (for the image's repository).
    fn exists(
        &self,
        image: &Reference,
        digest: &Digest,
        size: u64,
        kind: ObjectKind,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Pushes blob `digest` of `size` bytes read from `from`, checking it against its digest
    /// while it streams; nothing that does not match is kept. `progress` gets byte counts.
    fn push_blob(
        &self,
        image: &Reference,
        digest: &Digest,
        size: u64,
        from: &dyn BlobRead,
        session: Option<Self::Session>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes a manifest, exact bytes, under `tag` when given (else by digest).
    fn push_manifest(
        &self,
        image: &Reference,
        manifest: &FetchedManifest,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lists `referrers` (manifests whose `subject` is `subject`, already pushed) where the
    /// store's readers find them when it does not index referrers itself: a registry
    /// without the referrers API gets them in its referrers tag-schema index, merged with what
    /// is there (nothing anyone wrote is dropped). Says whether it wrote anything. Stores that
    /// need nothing of the kind (a bundle) do nothing.
    fn index_referrers(
        &self,
        image: &Reference,
        subject: &Digest,
        referrers: &[&FetchedManifest],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (image, subject, referrers);
        async { Ok(false) }
    }

    /// Links blob `digest` into the image's repository from repository `from` of this store.
    fn mount(
        &self,
        image: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> impl Future<Output = Result<Mount<Self::Session>, StoreError>> + Send {
        let _ = (image, digest, from);
        async { Ok(Mount::Unsupported) }
    }
}

/// Reads a small blob (a config) of `source` whole, checked against its descriptor; refuses
/// one larger than `limit`.
pub async fn read_small<S: Source>(
    source: &S,
    image: &Reference,
    blob: &Descriptor,
    limit: u64,
) -> Result<Bytes, StoreError> {
    if blob.size > limit {
        return Err(StoreError::TooLarge {
            what: "config",
            digest: blob.digest.clone(),
            origin: source.origin(image),
            size: blob.size,
            limit,
        });
    }
    stream::collect_verified(
        source.open_blob(image, &blob.digest, blob.size, 0),
        &blob.digest,
        blob.size,
        &source.origin(image),
    )
    .await
}
