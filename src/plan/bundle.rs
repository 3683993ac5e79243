//! What goes into a bundle for a set of resolved images: each image's top-level descriptor
//! under its full reference (index.json), the docker-archive view of one platform
//! (manifest.json), images.lock, and every object once with its size.

use std::collections::BTreeMap;

use super::image::ResolvedImage;
use super::lockfile::LockFile;
use crate::oci::archive::{self, DockerEntry};
use crate::oci::digest::Digest;
use crate::oci::manifest::{Descriptor, sum_sizes};
use crate::oci::platform::Platform;

/// The contents of a bundle, before its layout is planned.
#[derive(Debug)]
pub struct BundleContents {
    /// index.json: full reference → top-level descriptor (the upstream manifest, or the index
    /// `--platform` wrote).
    pub index: Vec<(String, Descriptor)>,
    /// manifest.json: the images `docker load` sees.
    pub docker: Vec<DockerEntry>,
    /// The lock of exactly these images.
    pub lock: LockFile,
    /// Every manifest and blob, once.
    pub objects: BTreeMap<Digest, u64>,
    /// Bytes the images would have taken without de-duplication.
    pub per_image: u64,
}

/// The contents of a bundle of `images` (sorted by source), with the docker-archive view of
/// `docker_platform`. Fails only when the sizes add up to more than a `u64` holds.
pub fn contents(
    images: &[ResolvedImage],
    docker_platform: &Platform,
) -> Result<BundleContents, String> {
    let overflow =
        || "the images' sizes add up to more than 16 EiB: a registry sent absurd sizes".to_string();
    let mut objects: BTreeMap<Digest, u64> = BTreeMap::new();
    for r in images {
        objects.extend(r.objects.iter().map(|(d, s)| (d.clone(), *s)));
    }
    let unique = sum_sizes(objects.values().copied()).ok_or_else(overflow)?;
    let per_image = sum_sizes(images.iter().map(|r| r.locked.total_size)).ok_or_else(overflow)?;
    let index = images
        .iter()
        .map(|r| {
            let size = r.top().map_or(r.locked.size, |m| m.bytes.len() as u64);
            let desc = Descriptor {
                media_type: r.locked.media_type.clone(),
                digest: r.locked.bundle_digest().clone(),
                size,
                platform: None,
                annotations: BTreeMap::new(),
            };
            (r.locked.source.clone(), desc)
        })
        .collect();
    let docker = archive::merge(
        images
            .iter()
            .filter_map(|r| r.docker_entry(docker_platform)),
    );
    let lock = LockFile::new(images.iter().map(|r| r.locked.clone()).collect(), unique);
    Ok(BundleContents {
        index,
        docker,
        lock,
        objects,
        per_image,
    })
}
