//! A bundle as a source: manifests and configs for planning an import (a [`ManifestSource`]),
//! and blob byte streams for uploads — read with positioned reads from the one tar file, so
//! many blobs stream concurrently, each hashed while it streams. The last chunk of a blob is
//! held back until its digest checks out, so a corrupt blob can never complete an upload.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

use super::BundleReader;
use super::error::BundleError;
use crate::oci::digest::{Digest, Verifier};
use crate::oci::manifest::{Descriptor, MAX_MANIFEST_SIZE};
use crate::oci::media_types;
use crate::oci::reference::Reference;
use crate::store::stream::ByteStream;
use crate::store::{FetchedManifest, ManifestHead, ManifestSource};

/// Size of the chunks streamed out of the bundle.
const CHUNK: usize = 256 * 1024;

/// A bundle opened for reading, shareable across tasks.
#[derive(Clone)]
pub struct BundleSource {
    reader: Arc<BundleReader>,
}

/// Why something could not be read from the bundle.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The bundle's own error.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The blob is absent.
    #[error("bundle {path} has no blob {digest} (truncated or incomplete bundle); export it again")]
    Missing {
        /// The bundle.
        path: String,
        /// The blob.
        digest: Digest,
    },
    /// The blob is larger than a manifest or config may be.
    #[error(
        "blob {digest} in bundle {path} is {size} bytes, larger than a manifest or config may be"
    )]
    TooLarge {
        /// The bundle.
        path: String,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Content does not match its digest.
    #[error("blob {digest} in bundle {path} is corrupt: {detail}; export the bundle again")]
    Corrupt {
        /// The bundle.
        path: String,
        /// The blob.
        digest: Digest,
        /// The verification failure.
        detail: String,
    },
    /// The reading thread failed.
    #[error("reading bundle {path} failed: {detail}")]
    Io {
        /// The bundle.
        path: String,
        /// What happened.
        detail: String,
    },
}

/// The media type a manifest declares in its body; indexes without `mediaType` are
/// recognised by their `manifests` array.
pub fn sniff_media_type(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(m),
            ..
        }) => m,
        Ok(Probe {
            manifests: Some(_), ..
        }) => media_types::OCI_INDEX.to_string(),
        _ => media_types::OCI_MANIFEST.to_string(),
    }
}

impl BundleSource {
    /// Wraps an opened bundle.
    pub fn new(reader: BundleReader) -> BundleSource {
        BundleSource {
            reader: Arc::new(reader),
        }
    }

    /// The reader.
    pub fn reader(&self) -> &BundleReader {
        &self.reader
    }

    fn path(&self) -> String {
        self.reader.path().display().to_string()
    }

    /// Reads a small blob whole, verified.
    pub async fn read_small(&self, digest: &Digest, limit: u64) -> Result<Bytes, SourceError> {
        let loc = self
            .reader
            .blob(digest)
            .ok_or_else(|| SourceError::Missing {
                path: self.path(),
                digest: digest.clone(),
            })?;
        if loc.size > limit {
            return Err(SourceError::TooLarge {
                path: self.path(),
                digest: digest.clone(),
                size: loc.size,
            });
        }
        let me = self.clone();
        let d = digest.clone();
        tokio::task::spawn_blocking(move || -> Result<Bytes, SourceError> {
            let mut r = me.reader.open_blob(&d)?;
            let mut buf = Vec::with_capacity(usize::try_from(loc.size).unwrap_or(0));
            r.read_to_end(&mut buf).map_err(|e| SourceError::Io {
                path: me.path(),
                detail: e.to_string(),
            })?;
            let mut v = Verifier::new(d.clone(), Some(loc.size));
            v.update(&buf)
                .and_then(|_| v.finish())
                .map_err(|e| SourceError::Corrupt {
                    path: me.path(),
                    digest: d.clone(),
                    detail: e.to_string(),
                })?;
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(|e| SourceError::Io {
            path: self.path(),
            detail: e.to_string(),
        })?
    }

    /// `len` bytes of the blob from `offset`, as a stream of chunks read with positioned
    /// reads (no reading and discarding up to the offset). Not verified: a whole blob goes
    /// through [`crate::store::stream::verified`] on its way out.
    pub fn range(&self, digest: &Digest, offset: u64, len: u64) -> ByteStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let reader = self.reader.clone();
        let digest = digest.clone();
        let path = self.path();
        tokio::task::spawn_blocking(move || {
            let send_err = |detail: String| {
                let _ = tx.blocking_send(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    detail,
                )));
            };
            let Some(loc) = reader.blob(&digest) else {
                return send_err(format!("bundle {path} has no blob {digest}"));
            };
            let Some(end) = offset.checked_add(len).filter(|e| *e <= loc.size) else {
                return send_err(format!(
                    "bytes {offset}+{len} are past the end of blob {digest} ({} bytes) in bundle {path}",
                    loc.size
                ));
            };
            let mut r = reader.read_at(loc, offset, end - offset);
            loop {
                let want = usize::try_from(r.remaining()).unwrap_or(CHUNK).min(CHUNK);
                if want == 0 {
                    break;
                }
                let mut buf = bytes::BytesMut::zeroed(want);
                if let Err(e) = r.read_exact(&mut buf) {
                    return send_err(format!("reading blob {digest} of bundle {path}: {e}"));
                }
                if tx.blocking_send(Ok(buf.freeze())).is_err() {
                    return;
                }
            }
        });
        Box::pin(tokio_stream_of(rx))
    }
}

/// The items of `rx` as a stream that may be polled again after it ended.
fn tokio_stream_of(
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    use futures_util::StreamExt as _;
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .fuse()
}

impl ManifestSource for BundleSource {
    type Error = SourceError;

    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, SourceError> {
        // Bundle images are always addressed by digest (from the lock); a tag lookup means
        // the image is not in this bundle.
        let _ = image;
        Ok(None)
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, SourceError> {
        let Some(d) = digest.or(image.digest()) else {
            return Err(SourceError::Io {
                path: self.path(),
                detail: format!("{image} is not pinned to a digest"),
            });
        };
        let bytes = self.read_small(d, MAX_MANIFEST_SIZE).await?;
        let media_type = sniff_media_type(&bytes);
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest: d.clone(),
        })
    }

    async fn small_blob(
        &self,
        _image: &Reference,
        blob: &Descriptor,
    ) -> Result<Bytes, SourceError> {
        self.read_small(&blob.digest, crate::store::MAX_SMALL_BLOB)
            .await
    }
}
