//! A bundle as a [`Source`]: the images its index.json names, manifests (verified) and
//! configs for planning an import, and blob bytes from any offset for uploads — read with
//! positioned reads from the one tar file, so many blobs stream concurrently. The destination
//! hashes what it receives, so a corrupt blob never completes an upload.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use super::BundleReader;
use super::index::read_index;
use crate::resolve;
use crate::stream::{ByteStream, collect_verified};
use crate::{FetchedManifest, ManifestHead, Source, StoreError};
use ferry_oci::digest::Digest;
use ferry_oci::manifest::{Descriptor, MAX_MANIFEST_SIZE};
use ferry_oci::media_types;
use ferry_oci::reference::Reference;

/// Size of the chunks streamed out of the bundle.
const CHUNK: usize = 256 * 1024;

/// A bundle opened for reading, shareable across tasks.
#[derive(Clone)]
pub struct BundleSource {
    reader: Arc<BundleReader>,
    /// index.json: full reference → top-level descriptor (empty when unreadable).
    names: Arc<BTreeMap<String, Descriptor>>,
    /// A delta bundle's `ferry-delta.json` (or why it cannot be read).
    delta: Arc<Result<Option<super::delta::DeltaInfo>, super::delta::DeltaError>>,
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
    /// Wraps an opened bundle (reading its index.json for the names it holds).
    pub fn new(reader: BundleReader) -> BundleSource {
        let names = reader
            .metadata(super::INDEX_JSON)
            .and_then(|b| read_index(b).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                let descriptor = e.descriptor.ok()?;
                // The annotations name the image, which is the key already; nothing reads
                // them here, and they are most of an entry's size.
                let descriptor = Descriptor {
                    annotations: BTreeMap::new(),
                    ..descriptor
                };
                Some((e.name?, descriptor))
            })
            .collect();
        let delta = reader
            .metadata(super::delta::DELTA_JSON)
            .map(|b| super::delta::DeltaInfo::parse(b, reader.path()))
            .transpose();
        BundleSource {
            reader: Arc::new(reader),
            names: Arc::new(names),
            delta: Arc::new(delta),
        }
    }

    /// What a delta bundle leaves out (`None` for a bundle that carries everything); an
    /// error when its `ferry-delta.json` cannot be read.
    pub fn delta(&self) -> Result<Option<&super::delta::DeltaInfo>, super::delta::DeltaError> {
        match self.delta.as_ref() {
            Ok(d) => Ok(d.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The top-level descriptor index.json names `image` with.
    pub fn indexed(&self, image: &Reference) -> Option<&Descriptor> {
        // A referrer known by digest alone is named by it (it has no tag).
        if image.tag().is_none() && image.digest().is_some() {
            return self.names.get(&image.to_string());
        }
        self.names.get(&image.without_digest().to_string())
    }

    /// Lets the reader's metadata files go (index.json is parsed already), for a caller that
    /// has read what it needs of them, as [`BundleReader::release_metadata`]; only while
    /// this source is not shared (no clone of it exists yet), else nothing changes.
    pub fn release_metadata(&mut self) {
        if let Some(reader) = Arc::get_mut(&mut self.reader) {
            reader.release_metadata();
        }
    }

    /// The reader.
    pub fn reader(&self) -> &BundleReader {
        &self.reader
    }

    fn path(&self) -> String {
        self.reader.path().display().to_string()
    }

    fn missing(&self, digest: &Digest) -> StoreError {
        StoreError::Missing {
            what: "blob",
            digest: digest.clone(),
            origin: format!("bundle {}", self.path()),
        }
    }

    /// `len` bytes of the blob from `offset`, as a stream of chunks read with positioned
    /// reads (no reading and discarding up to the offset). Not verified: a whole blob goes
    /// through [`crate::stream::verified`] on its way out.
    pub fn range(&self, digest: &Digest, offset: u64, len: u64) -> ByteStream {
        self.range_with(digest, offset, len, CHUNK, 4)
    }

    /// [`BundleSource::range`] in chunks of `chunk` bytes, `ahead` of them read in advance.
    ///
    /// Each chunk is read straight from the page cache when it is there (no thread hand-off:
    /// [`crate::bundle::volume::Volume::read_cached_at`]), else with one positioned
    /// read on the blocking pool; no thread is held between chunks, so a client that stops
    /// reading holds at most `ahead` chunks of memory and no thread (a server with a
    /// thousand slow clients still has threads for the rest).
    pub fn range_with(
        &self,
        digest: &Digest,
        offset: u64,
        len: u64,
        chunk: usize,
        ahead: usize,
    ) -> ByteStream {
        use futures_util::StreamExt as _;
        let path = self.path();
        let Some(loc) = self.reader.blob(digest) else {
            let missing = StoreError::Missing {
                what: "blob",
                digest: digest.clone(),
                origin: format!("bundle {path}"),
            };
            return Box::pin(futures_util::stream::once(
                async move { Err(missing.into_io()) },
            ));
        };
        let Some(end) = offset.checked_add(len).filter(|e| *e <= loc.size) else {
            let detail = format!(
                "bytes {offset}+{len} are past the end of blob {digest} ({} bytes) in bundle {path}",
                loc.size
            );
            return Box::pin(futures_util::stream::once(async move {
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, detail))
            }));
        };
        let chunk = chunk.max(1) as u64;
        let reader = self.reader.clone();
        let digest = digest.clone();
        let starts = futures_util::stream::iter(
            std::iter::successors(Some(offset), move |at| Some(at + chunk))
                .take_while(move |at| *at < end),
        );
        let chunks = starts
            .map(move |at| {
                let reader = reader.clone();
                let n = chunk.min(end - at);
                let what = format!("reading blob {digest} of bundle {path}");
                async move {
                    let mut buf = bytes::BytesMut::zeroed(usize::try_from(n).unwrap_or(0));
                    let cached = cached_prefix(&reader, loc.offset + at, &mut buf)
                        .map_err(|e| std::io::Error::new(e.kind(), format!("{what}: {e}")))?;
                    if cached == buf.len() {
                        return Ok(buf.freeze());
                    }
                    tokio::task::spawn_blocking(move || {
                        let got = cached as u64;
                        reader
                            .read_at(loc, at + got, n - got)
                            .read_exact(&mut buf[cached..])?;
                        Ok::<_, std::io::Error>(buf.freeze())
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{what}: {e}")))
                }
            })
            .buffered(ahead.max(1));
        // Nothing after the first error.
        Box::pin(
            chunks
                .scan(false, |failed, item| {
                    let out = (!*failed).then(|| {
                        *failed = item.is_err();
                        item
                    });
                    std::future::ready(out)
                })
                .fuse(),
        )
    }
}

/// Fills as much of `buf` as the page cache holds, from byte `offset` of the bundle.
fn cached_prefix(reader: &BundleReader, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader
            .volume()
            .read_cached_at(&mut buf[got..], offset + got as u64)?
        {
            Some(0) | None => break,
            Some(n) => got += n,
        }
    }
    Ok(got)
}

impl Source for BundleSource {
    fn origin(&self, _image: &Reference) -> String {
        format!("bundle {}", self.path())
    }

    /// The image's entry in index.json (a bundle's only tags).
    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, StoreError> {
        Ok(self.indexed(image).map(|d| ManifestHead {
            digest: Some(d.digest.clone()),
            media_type: d.media_type.clone(),
            size: Some(d.size),
        }))
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, StoreError> {
        let d = resolve::manifest_digest(self, image, digest).await?;
        let Some(loc) = self.reader.blob(&d) else {
            return Err(resolve::missing_manifest(d, self.origin(image)));
        };
        if loc.size > MAX_MANIFEST_SIZE {
            return Err(StoreError::TooLarge {
                what: "manifest",
                digest: d,
                origin: self.origin(image),
                size: loc.size,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let bytes = collect_verified(
            self.range(&d, 0, loc.size),
            &d,
            loc.size,
            &self.origin(image),
        )
        .await
        .map_err(|e| match e {
            StoreError::Corrupt {
                digest,
                origin,
                source,
                ..
            } => StoreError::Corrupt {
                what: "manifest",
                digest,
                origin,
                source,
            },
            other => other,
        })?;
        let media_type = sniff_media_type(&bytes);
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest: d,
        })
    }

    fn open_blob(&self, _image: &Reference, digest: &Digest, size: u64, offset: u64) -> ByteStream {
        match self.reader.blob(digest) {
            Some(loc) => self.range(digest, offset, loc.size.min(size).saturating_sub(offset)),
            None => {
                let e = self.missing(digest);
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
        Ok(self.reader.blob(digest).map(|l| l.size))
    }
}

#[cfg(test)]
mod tests;
