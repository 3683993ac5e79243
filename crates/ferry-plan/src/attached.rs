//! What is attached to each image, found so that it travels with the image: for the image's
//! top-level digest and every platform manifest's digest, cosign's tags `sha256-<hex>.sig`,
//! `.att` and `.sbom`, and the OCI 1.1 referrers tag schema `sha256-<hex>` (an index of the
//! referrers, which the resolver walks like any index, so every referrer comes along by
//! digest), in the same repository; then the same for what was found (a signature of an
//! SBOM), up to [`MAX_LEVELS`] levels. A referrers index of more than `MAX_IMAGE_OBJECTS`
//! objects, or one nested too deep, is refused by the resolver's own bounds and named.
//!
//! Where the source lists a repository's tags whole in one answer (a registry's
//! `tags/list`, one page), that list is read once per repository and only the tags it names
//! are looked up: a repository without attachments then costs one request in all. Elsewhere
//! each lookup is one `HEAD` (nothing is fetched for a tag that does not exist), they run
//! `jobs` at a time, and each digest is a subject once: a registry that answers every tag with
//! the same manifest, or with one whose own tags name it again, ends after one round. An
//! image gets at most [`MAX_PER_IMAGE`] attachments; past that the rest are left out with a
//! warning. What is found is an ordinary tagged manifest, resolved like an image and
//! recorded in the lock with [`AttachedTo`], so that export, import, verify and serve carry
//! it byte for byte without knowing what it is.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt as _;

use super::image::ResolvedImage;
use super::lockfile::AttachedTo;
use super::resolve::{ResolveError, Resolver};
use ferry_oci::cosign::Attachment;
use ferry_oci::digest::Digest;
use ferry_store::Source;

/// How many levels of attachments of attachments are followed (signature → signature of it).
pub const MAX_LEVELS: usize = 3;

/// The most attachments one image may bring.
pub const MAX_PER_IMAGE: usize = 64;

/// One lookup: a cosign tag of `subject`, for the image at `owner` in the input.
struct Probe {
    owner: usize,
    subject: Digest,
    kind: Attachment,
}

/// The listed name with its tag (or digest) replaced by `tag`: `rancher/x:v1` and
/// `rancher/x@sha256:…` become `rancher/x:<tag>`.
pub fn retag_name(name: &str, tag: &str) -> String {
    let base = name.split('@').next().unwrap_or(name);
    let repo = match base.rfind(':') {
        Some(i) if !base[i..].contains('/') => &base[..i],
        _ => base,
    };
    format!("{repo}:{tag}")
}

/// The subjects of an image: its top-level digest and each real platform's manifest.
fn subjects(image: &ResolvedImage) -> Vec<Digest> {
    let mut out = vec![image.locked.digest.clone()];
    for p in &image.locked.platforms {
        if p.platform != "unknown/unknown" && !out.contains(&p.digest) {
            out.push(p.digest.clone());
        }
    }
    out
}

/// Where an image's attachments live: its registry and repository.
fn repository_of(image: &ResolvedImage) -> String {
    format!(
        "{}/{}",
        image.reference.registry(),
        image.reference.repository()
    )
}

/// The whole tag list of each repository of `images` whose source gives one (one request per
/// repository, `jobs` at a time); repositories without one are left out, and are asked tag
/// by tag.
async fn listed_tags<S: Source>(
    source: &S,
    images: &[ResolvedImage],
    jobs: usize,
) -> HashMap<String, HashSet<String>> {
    let mut repositories: HashMap<String, &ResolvedImage> = HashMap::new();
    for img in images.iter().filter(|i| i.locked.attached_to.is_none()) {
        repositories.entry(repository_of(img)).or_insert(img);
    }
    futures_util::stream::iter(repositories)
        .map(|(key, img)| async move {
            let tags = source.all_tags(&img.reference).await?;
            Some((key, tags.into_iter().collect::<HashSet<String>>()))
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Finds and resolves what is attached to `images` (which are not changed). The images
/// found come back with [`AttachedTo`] set, each once; `known` are sources already in the
/// set (an export from a lock that lists its signatures), which are not resolved again.
/// Failures to resolve a tag that exists are returned; a tag that does not exist is not one.
pub async fn discover<S: Source>(
    source: &S,
    images: &[ResolvedImage],
    known: &HashSet<String>,
    jobs: usize,
) -> (Vec<ResolvedImage>, Vec<ResolveError>) {
    let resolver = Resolver::new(source);
    let mut seen_subjects: HashSet<Digest> = HashSet::new();
    let mut seen_sources: HashSet<String> = known.clone();
    let mut per_image = vec![0usize; images.len()];
    let mut found: Vec<ResolvedImage> = Vec::new();
    let mut failed = Vec::new();
    let mut frontier: Vec<(usize, Digest)> = Vec::new();
    for (i, img) in images.iter().enumerate() {
        if img.locked.attached_to.is_some() {
            continue;
        }
        for s in subjects(img) {
            if seen_subjects.insert(s.clone()) {
                frontier.push((i, s));
            }
        }
    }
    let listed = listed_tags(source, images, jobs).await;
    for _level in 0..MAX_LEVELS {
        if frontier.is_empty() {
            break;
        }
        let probes: Vec<Probe> = frontier
            .drain(..)
            .flat_map(|(owner, subject)| {
                Attachment::ALL.into_iter().map(move |kind| Probe {
                    owner,
                    subject: subject.clone(),
                    kind,
                })
            })
            // A tag the repository's whole list does not name is not asked for.
            .filter(|p| {
                listed
                    .get(&repository_of(&images[p.owner]))
                    .is_none_or(|tags| tags.contains(&p.kind.tag_for(&p.subject)))
            })
            .collect();
        let results: Vec<(Probe, Option<Result<ResolvedImage, ResolveError>>)> =
            futures_util::stream::iter(probes)
                .map(|p| {
                    let resolver = &resolver;
                    let owner = &images[p.owner];
                    async move {
                        let tag = p.kind.tag_for(&p.subject);
                        let Ok(reference) = owner.reference.without_digest().with_tag(&tag) else {
                            return (p, None);
                        };
                        let name = retag_name(&owner.locked.name, &tag);
                        // The resolver HEADs the tag first: one that does not exist costs
                        // one HEAD and is not a failure.
                        match resolver.resolve(&name, &reference).await {
                            Err(ResolveError::NotFound { .. }) => (p, None),
                            res => (p, Some(res)),
                        }
                    }
                })
                .buffer_unordered(jobs.max(1))
                .collect()
                .await;
        for (p, res) in results {
            match res {
                None => {}
                Some(Err(e)) => failed.push(e),
                Some(Ok(mut img)) => {
                    if !seen_sources.insert(img.locked.source.clone()) {
                        continue;
                    }
                    if per_image[p.owner] >= MAX_PER_IMAGE {
                        tracing::warn!(
                            "{} has more than {MAX_PER_IMAGE} signatures, attestations and SBOMs; the rest are left out",
                            images[p.owner].locked.name
                        );
                        continue;
                    }
                    per_image[p.owner] += 1;
                    img.locked.attached_to = Some(AttachedTo {
                        image: images[p.owner].locked.name.clone(),
                        subject: p.subject.clone(),
                        kind: p.kind,
                    });
                    let d = img.locked.digest.clone();
                    if seen_subjects.insert(d.clone()) {
                        frontier.push((p.owner, d));
                    }
                    found.push(img);
                }
            }
        }
    }
    found.sort_by(|a, b| a.locked.source.cmp(&b.locked.source));
    (found, failed)
}

/// Drops the attachments (from a lock) whose subject is no longer in `images`: those of
/// platforms `--platform` dropped, and those attached to them in turn.
pub fn keep_reachable(images: &mut Vec<ResolvedImage>) {
    let mut reachable: HashSet<Digest> = images
        .iter()
        .filter(|i| i.locked.attached_to.is_none())
        .flat_map(subjects)
        .collect();
    // Each round keeps at least one more attachment, or stops.
    loop {
        let before = reachable.len();
        for i in images.iter() {
            if let Some(a) = &i.locked.attached_to
                && reachable.contains(&a.subject)
            {
                reachable.insert(i.locked.digest.clone());
            }
        }
        if reachable.len() == before {
            break;
        }
    }
    images.retain(|i| match &i.locked.attached_to {
        None => true,
        Some(a) => reachable.contains(&a.subject),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_repository() {
        assert_eq!(retag_name("rancher/x:v1", "t"), "rancher/x:t");
        assert_eq!(retag_name("rancher/x", "t"), "rancher/x:t");
        assert_eq!(
            retag_name("host:5000/rancher/x", "t"),
            "host:5000/rancher/x:t"
        );
        assert_eq!(
            retag_name("host:5000/rancher/x@sha256:abc", "t"),
            "host:5000/rancher/x:t"
        );
    }
}
