//! What `ferry serve` serves ([`Catalog`]): every image of every bundle, resolved once at
//! start (manifests read and checked), as repositories holding tags and the objects their
//! images use. A name is served under `--prefix` + its source path, as `rke up` pulls it
//! from an imported mirror (`HOST:5000/rancher/rke-tools:v0.1.103`). A later bundle's tag wins
//! over an earlier one's; an object is read from whichever bundle holds it.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context as _;

use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;
use ferry_plan::resolve::Resolver;
use ferry_store::bundle::{BundleSet, BundleSource};

/// One repository as served.
#[derive(Debug, Default)]
pub struct Repo {
    /// Tag → top-level manifest digest.
    pub tags: BTreeMap<String, Digest>,
    /// Every manifest and blob an image of this repository uses.
    pub objects: HashSet<Digest>,
    /// Subject → the referrers the bundle carries by digest alone (found through a
    /// registry's referrers API; they have no tag), for the referrers API.
    pub referrers: BTreeMap<Digest, Vec<Digest>>,
}

/// Bytes of manifests kept in memory, read and checked once at start: manifest `GET`s, the
/// requests a pulling node waits on, then need no disk read. An RKE release's manifests
/// take about a megabyte; past this budget, manifests are read from the bundle per request.
pub const MANIFEST_MEMORY: usize = 32 * 1024 * 1024;

/// A served manifest.
#[derive(Debug, Clone)]
pub struct ServedManifest {
    /// Its media type, as stored.
    pub media_type: String,
    /// Its bytes (checked against the digest), when they fit in [`MANIFEST_MEMORY`].
    pub bytes: Option<bytes::Bytes>,
}

/// One image as served, for the status page.
#[derive(Debug, Clone)]
pub struct ServedImage {
    /// `repo:tag`, as pulled (with the prefix).
    pub name: String,
    /// The fully qualified source it was exported from.
    pub source: String,
    /// The top-level manifest (or index) digest served for the tag.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// `os/arch[/variant]` of each platform.
    pub platforms: Vec<String>,
    /// Unique bytes of the image.
    pub size: u64,
    /// Which bundle of the set it is served from (an index into [`BundleSet::bundles`]).
    pub bundle: usize,
}

/// Everything served.
pub struct Catalog {
    /// The bundles, read as one.
    pub set: BundleSet,
    /// Repository name (with the prefix) → repository.
    pub repos: BTreeMap<String, Repo>,
    /// Manifest digest → its media type and, within [`MANIFEST_MEMORY`], its bytes (anything
    /// not here is a blob).
    pub manifests: HashMap<Digest, ServedManifest>,
    /// Object → the images (`repo:tag`) that use it, for messages.
    pub users: HashMap<Digest, Vec<String>>,
    /// Images that could not be resolved, and why (named at start, not served).
    pub skipped: Vec<(String, String)>,
    /// Every image served, by `repo:tag` (a later bundle's wins, as its tag does).
    pub images: BTreeMap<String, ServedImage>,
}

impl Catalog {
    /// Resolves every image of `set`'s bundles (`jobs` at a time) under `prefix`; the images
    /// named in `withdrawn` (by their lock name, with why: `serve --key` refused them) are
    /// not served, and are listed as skipped.
    pub async fn build(
        set: BundleSet,
        prefix: &str,
        jobs: usize,
        withdrawn: &BTreeMap<String, String>,
    ) -> anyhow::Result<Catalog> {
        let mut catalog = Catalog {
            set: set.clone(),
            repos: BTreeMap::new(),
            manifests: HashMap::new(),
            users: HashMap::new(),
            skipped: Vec::new(),
            images: BTreeMap::new(),
        };
        let prefix = prefix.trim_matches('/');
        let mut memory = 0usize;
        for (index, bundle) in set.bundles().iter().enumerate() {
            let mut inputs = images_of(bundle)?;
            inputs.retain(|(name, _)| match withdrawn.get(name) {
                Some(why) => {
                    catalog.skipped.push((name.clone(), why.clone()));
                    false
                }
                None => true,
            });
            let resolved = Resolver::new(&set)
                .resolve_all(&inputs, jobs, &|_, _| {})
                .await;
            for r in resolved {
                let img = match r {
                    Ok(img) => img,
                    Err(e) => {
                        catalog.skipped.push((e.name().to_string(), e.cause()));
                        continue;
                    }
                };
                // Every blob must be in one of the bundles (a delta's left-out layers are in
                // its base, when the base is served too).
                if let Some(d) = img.blobs.keys().find(|d| catalog.set.holding(d).is_none()) {
                    let why = match bundle.delta().ok().flatten() {
                        Some(delta) if delta.by_digest().contains_key(d) => format!(
                            "its layer {d} is left out of the delta {} (a delta of {}); serve it with its base: ferry serve {} {}",
                            bundle.reader().path().display(),
                            delta.base,
                            delta.base,
                            bundle.reader().path().display()
                        ),
                        _ => format!("its blob {d} is in none of the bundles"),
                    };
                    catalog.skipped.push((img.locked.name.clone(), why));
                    continue;
                }
                let path = img.reference.repository();
                let repo = if prefix.is_empty() {
                    path.to_string()
                } else {
                    format!("{prefix}/{path}")
                };
                // A referrer carried by digest alone (its manifest names a subject) has no
                // tag, and must not take `latest`.
                let subject = img
                    .top()
                    .and_then(|m| ferry_oci::referrers::subject_of(&m.bytes));
                let tag = match (img.reference.tag(), subject) {
                    (None, Some(subject)) => Err(subject),
                    (t, _) => Ok(t.unwrap_or("latest").to_string()),
                };
                let name = match &tag {
                    Ok(t) => format!("{repo}:{t}"),
                    Err(_) => format!("{repo}@{}", img.locked.bundle_digest()),
                };
                for d in img.objects.keys() {
                    catalog
                        .users
                        .entry(d.clone())
                        .or_default()
                        .push(name.clone());
                }
                for m in &img.manifests {
                    catalog
                        .manifests
                        .entry(m.digest.clone())
                        .or_insert_with(|| {
                            let keep = memory + m.bytes.len() <= MANIFEST_MEMORY;
                            if keep {
                                memory += m.bytes.len();
                            }
                            ServedManifest {
                                media_type: m.media_type.clone(),
                                bytes: keep.then(|| m.bytes.clone()),
                            }
                        });
                }
                catalog.images.insert(
                    name.clone(),
                    ServedImage {
                        name: name.clone(),
                        source: img.locked.source.clone(),
                        digest: img.locked.bundle_digest().clone(),
                        media_type: img.locked.media_type.clone(),
                        platforms: img
                            .locked
                            .platforms
                            .iter()
                            .map(|p| p.platform.clone())
                            .collect(),
                        size: img.locked.total_size,
                        bundle: index,
                    },
                );
                let entry = catalog.repos.entry(repo).or_default();
                entry.objects.extend(img.objects.keys().cloned());
                match tag {
                    Ok(t) => {
                        entry.tags.insert(t, img.locked.bundle_digest().clone());
                    }
                    Err(subject) => entry
                        .referrers
                        .entry(subject)
                        .or_default()
                        .push(img.locked.bundle_digest().clone()),
                }
            }
        }
        Ok(catalog)
    }

    /// How many images are served.
    pub fn images(&self) -> usize {
        self.repos.values().map(|r| r.tags.len()).sum()
    }

    /// Every blob (not manifest) served, once.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut all: Vec<Digest> = self
            .repos
            .values()
            .flat_map(|r| r.objects.iter())
            .filter(|d| !self.manifests.contains_key(*d))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        all.sort();
        all
    }
}

/// The images a bundle's lock names, each pinned to the digest the bundle holds.
fn images_of(bundle: &BundleSource) -> anyhow::Result<Vec<(String, Reference)>> {
    let reader = bundle.reader();
    let path = reader.path().display();
    let bytes = reader
        .metadata(ferry_store::bundle::IMAGES_LOCK)
        .with_context(|| format!("{path} is not a ferry bundle: it has no images.lock"))?;
    let text = std::str::from_utf8(bytes)
        .with_context(|| format!("images.lock in {path} is not UTF-8"))?;
    let lock = ferry_plan::LockFile::parse(text, &format!("{path} (images.lock)"))?;
    lock.inputs(ferry_plan::Pin::Bundle).map_err(|e| {
        anyhow::Error::new(e.source).context(format!(
            "images.lock in {path}: entry {:?} has an invalid source",
            e.name
        ))
    })
}
