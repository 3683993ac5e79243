//! What an upgrade must carry: the layers of a new image set that an older set does not
//! have. The older set ([`Base`]) is given as its `images.lock` (its manifests are then
//! fetched by digest from upstream: a few KB each, no layer) or as its bundle (read in place,
//! a delta bundle included: what counts is the layers its images name, not a chain of
//! files). [`delta_of`] turns the two into the bundle's `ferry-delta.json`, and [`select`]
//! also takes what the delta leaves out out of the bundle's contents.

use std::collections::{BTreeMap, BTreeSet};

use super::bundle::BundleContents;
use super::image::ResolvedImage;
use ferry_oci::digest::Digest;
use ferry_oci::manifest::Manifest;
use ferry_store::bundle::{DELTA_FORMAT, DeltaInfo, LeftOut};

/// The older image set of a delta.
#[derive(Debug, Clone)]
pub struct Base {
    /// SHA-256 of its `images.lock` bytes.
    pub lock_digest: Digest,
    /// What it was given as (file name), for messages and the delta's record.
    pub name: String,
    /// How many images it has.
    pub images: usize,
    /// Every layer of its images → the repositories (full source names) that hold it.
    pub layers: BTreeMap<Digest, BTreeSet<String>>,
}

impl Base {
    /// The base of `images` (resolved), whose lock file had these bytes.
    pub fn new(name: String, lock_bytes: &[u8], images: &[ResolvedImage]) -> Base {
        let mut layers: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
        for img in images {
            let repo = img.reference.name();
            for d in layers_of(img).into_keys() {
                layers.entry(d).or_default().insert(repo.clone());
            }
        }
        Base {
            lock_digest: Digest::sha256_of(lock_bytes),
            name,
            images: images.len(),
            layers,
        }
    }
}

/// The layers (not configs, not manifests) of an image, with their sizes.
pub fn layers_of(img: &ResolvedImage) -> BTreeMap<Digest, u64> {
    let mut out = BTreeMap::new();
    for m in &img.manifests {
        if let Ok(Manifest::Image { layers, .. }) =
            Manifest::parse(&m.bytes, &m.media_type, &m.digest)
        {
            for l in layers {
                out.insert(l.digest, l.size);
            }
        }
    }
    out
}

/// The record of a delta of `images` against `base`: every layer of the new images that the
/// base has, with the base repositories holding it.
pub fn delta_of(images: &[ResolvedImage], base: &Base) -> DeltaInfo {
    let mut left_out: BTreeMap<Digest, LeftOut> = BTreeMap::new();
    for img in images {
        for (d, size) in layers_of(img) {
            if let Some(repos) = base.layers.get(&d) {
                left_out.entry(d.clone()).or_insert_with(|| LeftOut {
                    digest: d,
                    size,
                    repositories: repos.iter().cloned().collect(),
                });
            }
        }
    }
    DeltaInfo {
        format: DELTA_FORMAT,
        delta_of: base.lock_digest.clone(),
        base: base.name.clone(),
        left_out: left_out.into_values().collect(),
    }
}

/// The delta of `images` against `base` ([`delta_of`]), its left-out layers taken out of
/// `bundle` ([`leave_out`]).
pub fn select(images: &[ResolvedImage], base: &Base, bundle: &mut BundleContents) -> DeltaInfo {
    let info = delta_of(images, base);
    leave_out(bundle, &info);
    info
}

/// Takes a delta's left-out layers out of the bundle's objects; the docker-archive view keeps
/// only images whole in the bundle (`docker load` reads nothing from elsewhere).
pub fn leave_out(bundle: &mut BundleContents, delta: &DeltaInfo) {
    let gone = delta.digests();
    bundle.objects.retain(|d, _| !gone.contains(d));
    bundle
        .docker
        .retain(|e| !e.layers.iter().chain([&e.config]).any(|d| gone.contains(d)));
}
