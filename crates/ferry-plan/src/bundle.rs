//! What goes into a bundle for a set of resolved images: each image's top-level descriptor
//! under its full reference (index.json), the docker-archive view of one platform
//! (manifest.json), images.lock, and every object once with its size.

use std::collections::BTreeMap;

use super::image::ResolvedImage;
use super::lockfile::LockFile;
use ferry_oci::archive::{self, DockerEntry};
use ferry_oci::digest::Digest;
use ferry_oci::manifest::{Descriptor, sum_sizes};
use ferry_oci::platform::Platform;

/// The index.json annotation of a cosign signature, attestation or SBOM: the digest it is
/// attached to.
pub const SUBJECT_ANNOTATION: &str = "io.github.ferry.attached-to";

/// The contents of a bundle, before its layout is planned.
#[derive(Debug)]
pub struct BundleContents {
    /// index.json: full reference → top-level descriptor (the upstream manifest, or the index
    /// `--platform` wrote).
    pub index: Vec<(String, Descriptor)>,
    /// manifest.json: the images `docker load` sees.
    pub docker: Vec<DockerEntry>,
    /// The lock of exactly these images, as YAML (rendered from the images themselves, not
    /// from copies of them).
    pub lock_yaml: String,
    /// Unique bytes of every manifest and blob, counted once (the lock's `total_size`).
    pub total_size: u64,
    /// Every manifest and blob, once.
    pub objects: BTreeMap<Digest, u64>,
    /// Bytes the images would have taken without de-duplication.
    pub per_image: u64,
}

/// Why the contents of a bundle cannot be put together.
#[derive(Debug, thiserror::Error)]
pub enum ContentsError {
    /// The sizes overflow a `u64`.
    #[error("the images' sizes add up to more than 16 EiB: a registry sent absurd sizes")]
    SizeOverflow,
    /// The lock cannot be written as YAML.
    #[error("cannot render images.lock: {0}")]
    Lock(#[from] serde_saphyr::ser::Error),
}

/// The contents of a bundle of `images` (sorted by source), with the docker-archive view of
/// `docker_platform`. Each image's `objects` map moves into the bundle's (its digests are
/// not copied; the images keep their manifests and blobs, all a copy needs). Fails only when
/// the sizes add up to more than a `u64` holds (or the lock cannot be rendered).
pub fn contents(
    images: &mut [ResolvedImage],
    docker_platform: &Platform,
) -> Result<BundleContents, ContentsError> {
    let per_image =
        sum_sizes(images.iter().map(|r| r.locked.total_size)).ok_or(ContentsError::SizeOverflow)?;
    let mut objects: BTreeMap<Digest, u64> = BTreeMap::new();
    for r in images.iter_mut() {
        objects.extend(std::mem::take(&mut r.objects));
    }
    let images: &[ResolvedImage] = images;
    let unique = sum_sizes(objects.values().copied()).ok_or(ContentsError::SizeOverflow)?;
    // The lock before the index and the docker view exist: it is the largest of the three.
    let lock_yaml = LockFile::yaml_of(images.iter().map(|r| &r.locked), unique)?;
    let index = images
        .iter()
        .map(|r| {
            let size = r.top().map_or(r.locked.size, |m| m.bytes.len() as u64);
            let mut annotations = BTreeMap::new();
            if let Some(a) = &r.locked.attached_to {
                annotations.insert(SUBJECT_ANNOTATION.to_string(), a.subject.to_string());
            }
            let desc = Descriptor {
                media_type: r.locked.media_type.clone(),
                digest: r.locked.bundle_digest().clone(),
                size,
                platform: None,
                annotations,
            };
            (r.locked.source.clone(), desc)
        })
        .collect();
    let docker = archive::merge(
        images
            .iter()
            .filter(|r| r.locked.attached_to.is_none())
            .filter_map(|r| r.docker_entry(docker_platform)),
    );
    Ok(BundleContents {
        index,
        docker,
        lock_yaml,
        total_size: unique,
        objects,
        per_image,
    })
}
