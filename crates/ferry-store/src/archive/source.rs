//! An archive as a [`Source`] ([`ArchiveSource`]): its images by name, the manifests made or
//! kept for them, configs from memory, layers from the spool or in place in a plain archive.

use std::collections::HashMap;
use std::path::PathBuf;

use futures_util::StreamExt as _;

use super::images::Contents;
use super::scan::Where;
use crate::resolve;
use crate::{ByteStream, FetchedManifest, ManifestHead, Source, StoreError};
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;

/// Bytes read from a file per chunk.
const CHUNK: usize = 256 * 1024;

/// The images of one archive, ready to push.
pub struct ArchiveSource {
    path: PathBuf,
    contents: Contents,
    /// Name (without digest) → top-level manifest.
    names: HashMap<String, Digest>,
}

impl ArchiveSource {
    /// The contents of the archive at `path`.
    pub fn new(path: PathBuf, contents: Contents) -> ArchiveSource {
        let names = contents
            .images
            .iter()
            .flat_map(|i| {
                i.names
                    .iter()
                    .map(|n| (n.without_digest().to_string(), i.top.clone()))
            })
            .collect();
        ArchiveSource {
            path,
            contents,
            names,
        }
    }

    /// What it holds.
    pub fn contents(&self) -> &Contents {
        &self.contents
    }

    fn missing(&self, what: &'static str, digest: &Digest) -> StoreError {
        StoreError::Missing {
            what,
            digest: digest.clone(),
            origin: format!("archive {}", self.path.display()),
        }
    }
}

/// `len` bytes of `path` from `start`, in chunks.
fn file_range(path: PathBuf, start: u64, len: u64) -> ByteStream {
    let stream = futures_util::stream::once(async move {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let mut f = tokio::fs::File::open(&path).await?;
        f.seek(std::io::SeekFrom::Start(start)).await?;
        Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
            f.take(len),
            CHUNK,
        ))
    })
    .map(|opened| match opened {
        Ok(s) => s.boxed(),
        Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
    })
    .flatten();
    Box::pin(stream)
}

impl Source for ArchiveSource {
    fn origin(&self, _image: &Reference) -> String {
        format!("archive {}", self.path.display())
    }

    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, StoreError> {
        Ok(self
            .names
            .get(&image.without_digest().to_string())
            .and_then(|d| self.contents.manifests.get(d))
            .map(|m| ManifestHead {
                digest: Some(m.digest.clone()),
                media_type: m.media_type.clone(),
                size: Some(m.bytes.len() as u64),
            }))
    }

    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, StoreError> {
        let d = resolve::manifest_digest(self, image, digest).await?;
        match self.contents.manifests.get(&d) {
            Some(m) => Ok(m.clone()),
            None => Err(resolve::missing_manifest(d, self.origin(image))),
        }
    }

    fn open_blob(
        &self,
        _image: &Reference,
        digest: &Digest,
        _size: u64,
        offset: u64,
    ) -> ByteStream {
        if let Some(c) = self.contents.configs.get(digest) {
            let rest = c.slice(usize::try_from(offset).unwrap_or(c.len()).min(c.len())..);
            return Box::pin(futures_util::stream::once(async move { Ok(rest) }));
        }
        match self.contents.layers.get(digest) {
            Some(l) => {
                let offset = offset.min(l.size);
                match &l.at {
                    Where::InPlace(at) => {
                        file_range(self.path.clone(), at + offset, l.size - offset)
                    }
                    Where::Spooled(p) => file_range(p.to_path_buf(), offset, l.size - offset),
                }
            }
            None => {
                let e = self.missing("blob", digest).into_io();
                Box::pin(futures_util::stream::once(async move { Err(e) }))
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
            .contents
            .configs
            .get(digest)
            .map(|c| c.len() as u64)
            .or_else(|| self.contents.layers.get(digest).map(|l| l.size)))
    }
}
