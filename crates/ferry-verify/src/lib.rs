//! Verification: walk `images.lock` against any [`Source`] and list every problem, not just
//! the first. The walk is written once: the tag (a HEAD, or the digest of what the tag serves
//! when the store names none), every manifest of the graph once, every blob proven servable
//! (`Source::blob_size`: a registry reads its first byte, a bundle looks into its offset
//! table) or, `deep`, read and re-hashed. [`bundle`] adds what only a bundle file has: its
//! structure, every blob re-hashed against its name, the lock against index.json. Each
//! [`Problem`] says the image (the lock's name) and the digest of the object at fault, so a
//! caller matches on those rather than on its text.

#![deny(missing_docs)]

use std::collections::BTreeSet;

use serde::Serialize;

use ferry_oci::digest::Digest;
use ferry_oci::manifest::{Descriptor, MAX_IMAGE_OBJECTS, Manifest};
use ferry_oci::reference::Reference;
use ferry_plan::LockedImage;
use ferry_store::{FetchedManifest, Source, StoreError};

pub mod bundle;
pub mod signature;

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The image (its tag, or its top-level manifest) is not there.
    MissingImage,
    /// The tag points at another digest than the lock's.
    TagMismatch,
    /// A platform's (or any child) manifest is missing or unreadable.
    MissingPlatform,
    /// A config or layer is missing.
    MissingBlob,
    /// Content does not match its digest or size.
    DigestMismatch,
    /// The lock, the index and the manifests disagree.
    Inconsistent,
    /// The store could not be asked (network, auth).
    Unreachable,
    /// A part of a split bundle is missing, of the wrong size, or does not match its sum.
    BadPart,
    /// `--key`: the image has no cosign signature at all.
    Unsigned,
    /// `--key`: the image has signatures, and none of them is valid for the key.
    BadSignature,
    /// `--attestations`: the image has no cosign attestation at all.
    Unattested,
    /// `--attestations`: the image has attestations, and none is valid for the key and about
    /// the image.
    BadAttestation,
}

/// One problem: its kind, the image and the object it concerns, and a sentence for people.
/// In JSON `image` and `digest` (the string form) are left out when not known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Its kind.
    pub kind: Kind,
    /// What exactly, naming digests.
    pub detail: String,
    /// The image it concerns, by its name in the lock; `None` for the bundle as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The object at fault (manifest or blob), when one is; `None` for a tag, a file of the
    /// bundle or a part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

impl Problem {
    /// A problem of `kind`, of no image and no object yet.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
            image: None,
            digest: None,
        }
    }

    /// The same problem, at the object `digest`.
    pub fn at(mut self, digest: &Digest) -> Problem {
        self.digest = Some(digest.clone());
        self
    }

    /// The same problem, of the image named `name` in the lock.
    pub fn of(mut self, name: &str) -> Problem {
        self.image = Some(name.to_owned());
        self
    }
}

/// The verdict for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// As listed in the lock.
    pub name: String,
    /// Where it was checked.
    pub location: String,
    /// Platforms checked.
    pub platforms: usize,
    /// Blobs checked.
    pub blobs: usize,
    /// Everything wrong; empty when complete.
    pub problems: Vec<Problem>,
}

/// How blobs are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Servable, with the right size.
    Present,
    /// Read whole and re-hashed.
    Rehash,
}

/// A store's failure as a problem: not found, corrupt, or could not ask.
fn problem(kind_if_missing: Kind, what: String, e: &StoreError) -> Problem {
    let detail = format!("{what}: {}", ferry_base::chain::flatten(e));
    if e.is_not_found() {
        Problem::new(kind_if_missing, detail)
    } else if e.is_corrupt() {
        Problem::new(Kind::DigestMismatch, detail)
    } else {
        Problem::new(Kind::Unreachable, detail)
    }
}

/// The digest `image`'s tag points at: the store's answer, or the digest of the bytes the tag
/// serves when the store names none (older registries send no `Docker-Content-Digest`).
async fn tag_digest<S: Source>(store: &S, image: &Reference) -> Result<Option<Digest>, StoreError> {
    match store.head(image).await? {
        None => Ok(None),
        Some(h) => match h.digest {
            Some(d) => Ok(Some(d)),
            None => Ok(Some(store.manifest(image, None).await?.digest)),
        },
    }
}

/// Checks one blob: servable with its size, or (`Rehash`) read whole against its digest.
/// `known` are blobs already found corrupt (a bundle re-hashes them all up front).
async fn check_blob<S: Source>(
    store: &S,
    image: &Reference,
    blob: &Descriptor,
    depth: Depth,
    known: &std::collections::BTreeMap<Digest, String>,
) -> Result<(), Problem> {
    if let Some(why) = known.get(&blob.digest) {
        return Err(Problem::new(Kind::DigestMismatch, why.clone()).at(&blob.digest));
    }
    if depth == Depth::Rehash {
        let s = store.open_blob(image, &blob.digest, blob.size, 0);
        return ferry_store::stream::collect_hash(s, &blob.digest, blob.size, &store.origin(image))
            .await
            .map_err(|e| {
                problem(Kind::MissingBlob, format!("blob {}", blob.digest), &e).at(&blob.digest)
            });
    }
    match store.blob_size(image, &blob.digest, blob.size).await {
        Ok(None) => Err(Problem::new(
            Kind::MissingBlob,
            format!(
                "blob {} ({} bytes) is missing, or its data cannot be read",
                blob.digest, blob.size
            ),
        )
        .at(&blob.digest)),
        Ok(Some(size)) if size != blob.size && size != 0 => Err(Problem::new(
            Kind::DigestMismatch,
            format!(
                "blob {} is {size} bytes in {}, its manifest says {}",
                blob.digest,
                store.origin(image),
                blob.size
            ),
        )
        .at(&blob.digest)),
        Ok(Some(_)) => Ok(()),
        Err(e) => {
            Err(problem(Kind::MissingBlob, format!("blob {}", blob.digest), &e).at(&blob.digest))
        }
    }
}

/// Fetches every manifest below `top` once, however many entries name it (reporting the
/// ones that are missing or lie about their size), and returns every blob of the graph once.
async fn walk<S: Source>(
    store: &S,
    pinned: &Reference,
    top: FetchedManifest,
    report: &mut ImageReport,
) -> Vec<Descriptor> {
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    let mut walked: BTreeSet<Digest> = BTreeSet::from([top.digest.clone()]);
    let mut manifests = vec![top];
    while let Some(m) = manifests.pop() {
        let parsed = match Manifest::parse(&m.bytes, &m.media_type, &m.digest) {
            Ok(p) => p,
            Err(e) => {
                report
                    .problems
                    .push(Problem::new(Kind::Inconsistent, e.to_string()).at(&m.digest));
                continue;
            }
        };
        for b in parsed.blobs() {
            if seen.insert(b.digest.clone()) {
                blobs.push(b.clone());
            }
        }
        let mut named: BTreeSet<&Digest> = BTreeSet::new();
        for child in parsed.children() {
            if !named.insert(&child.digest) || !walked.insert(child.digest.clone()) {
                continue;
            }
            if walked.len() + seen.len() > MAX_IMAGE_OBJECTS {
                report.problems.push(Problem::new(
                    Kind::Inconsistent,
                    format!(
                        "manifest {} brings the image to more than {MAX_IMAGE_OBJECTS} distinct manifests and blobs; not checked further",
                        m.digest
                    ),
                ).at(&m.digest));
                return blobs;
            }
            let platform = child
                .platform
                .as_ref()
                .map_or_else(|| "unknown".to_string(), |p| p.to_string());
            report.platforms += 1;
            match store.manifest(pinned, Some(&child.digest)).await {
                Ok(c) if c.bytes.len() as u64 != child.size => report.problems.push(
                    Problem::new(
                        Kind::DigestMismatch,
                        format!(
                            "platform {platform} manifest {} is {} bytes, its index says {}",
                            child.digest,
                            c.bytes.len(),
                            child.size
                        ),
                    )
                    .at(&child.digest),
                ),
                Ok(c) => manifests.push(c),
                Err(e) => report.problems.push(
                    Problem::new(
                        Kind::MissingPlatform,
                        format!(
                            "platform {platform} manifest {}: {}",
                            child.digest,
                            ferry_base::chain::flatten(&e)
                        ),
                    )
                    .at(&child.digest),
                ),
            }
        }
    }
    blobs
}

/// Whether `entry` is a referrers tag-schema index found at its tag `sha256-<hex>`: a list
/// that others append to, compared as a set (the target's may hold more).
fn is_referrers_tag(entry: &LockedImage, at: &Reference) -> bool {
    entry
        .attached_to
        .as_ref()
        .is_some_and(|a| a.kind == ferry_oci::cosign::Attachment::Referrers)
        && at
            .tag()
            .and_then(ferry_oci::cosign::Attachment::parse_tag)
            .map(|(k, _)| k)
            == Some(ferry_oci::cosign::Attachment::Referrers)
        && ferry_oci::media_types::manifest_kind(&entry.media_type)
            == Some(ferry_oci::media_types::ManifestKind::Index)
}

/// A referrers tag-schema index that the store has under another digest (`actual`, merged
/// with entries others wrote): every referrer the lock lists must be in it, and each is walked
/// and checked as any manifest is.
async fn check_referrers_index<S: Source>(
    store: &S,
    entry: &LockedImage,
    at: &Reference,
    actual: &Digest,
    depth: Depth,
    known: &std::collections::BTreeMap<Digest, String>,
    report: &mut ImageReport,
) {
    let listed: BTreeSet<Digest> = match store
        .manifest(&at.with_digest(actual.clone()), Some(actual))
        .await
    {
        Ok(m) => match ferry_oci::referrers::entries(&m.bytes) {
            Ok(e) => e.into_iter().map(|e| e.digest).collect(),
            Err(e) => {
                report
                    .problems
                    .push(Problem::new(Kind::Inconsistent, format!("{at}: {e}")).at(actual));
                return;
            }
        },
        Err(e) => {
            report
                .problems
                .push(problem(Kind::MissingImage, format!("{at} ({actual})"), &e).at(actual));
            return;
        }
    };
    let mut blobs = Vec::new();
    for p in &entry.platforms {
        if !listed.contains(&p.digest) {
            report.problems.push(
                Problem::new(
                    Kind::Inconsistent,
                    format!(
                        "the referrers index {at} ({actual}) does not list referrer {}, which the lock's index {} does",
                        p.digest,
                        entry.bundle_digest()
                    ),
                )
                .at(&p.digest),
            );
            continue;
        }
        let pinned = at.with_digest(p.digest.clone());
        match store.manifest(&pinned, Some(&p.digest)).await {
            Ok(m) => {
                report.platforms += 1;
                blobs.extend(walk(store, &pinned, m, report).await);
            }
            Err(e) => report.problems.push(
                problem(
                    Kind::MissingPlatform,
                    format!("referrer {} of {at}", p.digest),
                    &e,
                )
                .at(&p.digest),
            ),
        }
    }
    let pinned = at.with_digest(actual.clone());
    report.blobs = blobs.len();
    for r in futures_util::future::join_all(
        blobs
            .iter()
            .map(|b| check_blob(store, &pinned, b, depth, known)),
    )
    .await
    {
        if let Err(p) = r {
            report.problems.push(p);
        }
    }
}

/// Verifies one lock entry, found at `at` (its tag form), in `store`; blobs in `known` are
/// already known to be corrupt.
pub async fn verify_image<S: Source>(
    store: &S,
    entry: &LockedImage,
    at: &Reference,
    depth: Depth,
    known: &std::collections::BTreeMap<Digest, String>,
) -> ImageReport {
    let mut report = ImageReport {
        name: entry.name.clone(),
        location: at.to_string(),
        platforms: 0,
        blobs: 0,
        problems: Vec::new(),
    };
    check_image(store, entry, at, depth, known, &mut report).await;
    for p in &mut report.problems {
        p.image = Some(entry.name.clone());
    }
    report
}

/// [`verify_image`]'s walk, adding to `report`; a tag or top-level manifest that is not
/// there ends it early.
async fn check_image<S: Source>(
    store: &S,
    entry: &LockedImage,
    at: &Reference,
    depth: Depth,
    known: &std::collections::BTreeMap<Digest, String>,
    report: &mut ImageReport,
) {
    let want = entry.bundle_digest();
    match tag_digest(store, at).await {
        Ok(None) => {
            report.problems.push(Problem::new(
                Kind::MissingImage,
                format!("{at} does not exist"),
            ));
            return;
        }
        // The target keeps its own referrers tag-schema index, merged with ours: it passes
        // when it lists every referrer ours does, each of them checked byte for byte.
        Ok(Some(d)) if &d != want && is_referrers_tag(entry, at) => {
            return check_referrers_index(store, entry, at, &d, depth, known, report).await;
        }
        // The object at fault is what the tag serves instead.
        Ok(Some(d)) if &d != want => report.problems.push(
            Problem::new(
                Kind::TagMismatch,
                format!("{at} points at {d}, the lock says {}", want),
            )
            .at(&d),
        ),
        Ok(Some(_)) => {}
        Err(e) => {
            report
                .problems
                .push(problem(Kind::MissingImage, at.to_string(), &e));
            return;
        }
    }
    let pinned = at.with_digest(want.clone());
    let top = match store.manifest(&pinned, Some(want)).await {
        Ok(m) => m,
        Err(e) => {
            report.problems.push(
                Problem::new(
                    Kind::MissingImage,
                    format!(
                        "manifest {} of {at}: {}",
                        want,
                        ferry_base::chain::flatten(&e)
                    ),
                )
                .at(want),
            );
            return;
        }
    };
    if top.media_type != entry.media_type {
        report.problems.push(
            Problem::new(
                Kind::Inconsistent,
                format!(
                    "manifest {} is {} but the lock says {}",
                    want, top.media_type, entry.media_type
                ),
            )
            .at(want),
        );
    }
    let top_children: Option<BTreeSet<Digest>> =
        Manifest::parse(&top.bytes, &top.media_type, &top.digest)
            .ok()
            .map(|p| p.children().iter().map(|c| c.digest.clone()).collect());
    let blobs = walk(store, &pinned, top, report).await;
    if report.platforms == 0 {
        report.platforms = 1;
    }
    let locked: BTreeSet<&Digest> = entry.platforms.iter().map(|p| &p.digest).collect();
    if entry.platforms.len() > 1 || entry.platforms.first().is_some_and(|p| &p.digest != want) {
        // The lock's platforms must be the index's children.
        if let Some(actual) = &top_children {
            for missing in locked.iter().filter(|d| !actual.contains(**d)) {
                report.problems.push(Problem::new(Kind::Inconsistent, format!("the lock lists platform manifest {missing}, which index {} does not reference", want)).at(missing));
            }
        }
    }
    report.blobs = blobs.len();
    let checks = futures_util::future::join_all(
        blobs
            .iter()
            .map(|b| check_blob(store, &pinned, b, depth, known)),
    )
    .await;
    for r in checks {
        if let Err(p) = r {
            report.problems.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_in_json_adds_image_and_digest_only_when_known() {
        let bare = Problem::new(Kind::Inconsistent, "the bundle has no oci-layout file");
        assert_eq!(
            serde_json::to_string(&bare).expect("json"),
            r#"{"kind":"inconsistent","detail":"the bundle has no oci-layout file"}"#,
            "as before Problem had an image and a digest"
        );
        let d = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).expect("digest");
        let full = Problem::new(Kind::MissingBlob, format!("blob {d} is missing"))
            .at(&d)
            .of("rancher/pause:3.7");
        assert_eq!(full.digest.as_ref(), Some(&d));
        assert_eq!(
            serde_json::to_value(&full).expect("json"),
            serde_json::json!({
                "kind": "missing_blob",
                "detail": format!("blob {d} is missing"),
                "image": "rancher/pause:3.7",
                "digest": d.as_str(),
            })
        );
    }
}
