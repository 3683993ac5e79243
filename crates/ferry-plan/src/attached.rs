//! What is attached to each image, found so that it travels with the image: for the image's
//! top-level digest and every platform manifest's digest, cosign's tags `sha256-<hex>.sig`,
//! `.att` and `.sbom`, the OCI 1.1 referrers tag schema `sha256-<hex>` (an index of the
//! referrers, which the resolver walks like any index, so every referrer comes along by
//! digest), and the referrers the registry's referrers API lists (`GET
//! /v2/<name>/referrers/<digest>`), each resolved by digest, in the same repository; then the
//! same for what was found (a signature of an SBOM), up to [`MAX_LEVELS`] levels. A referrers
//! index of more than `MAX_IMAGE_OBJECTS` objects, or one nested too deep, is refused by the
//! resolver's own bounds and named.
//!
//! Where the source lists a repository's tags whole in one answer (a registry's
//! `tags/list`, one page), that list is read once per repository and only the tags it names
//! are looked up: a repository without attachments then costs one request in all. Elsewhere
//! each lookup is one `HEAD` (nothing is fetched for a tag that does not exist), they run
//! `jobs` at a time, and each digest is a subject once: a registry that answers every tag with
//! the same manifest, or with one whose own tags name it again, ends after one round. The
//! referrers API is asked once per registry first; a registry that answers 404 (it has no such
//! API: distribution 2.8) is not asked again in the run. Its answer is untrusted: read up to
//! `ferry_oci::referrers::MAX_LIST_SIZE` bytes, only manifests kept, at most [`MAX_PER_IMAGE`]
//! of them, none that is already a subject (a list naming itself, a cycle), and none whose own
//! `subject` is not the digest asked about. An image gets at most [`MAX_PER_IMAGE`]
//! attachments; past that the rest are left out with a warning. What is found is an ordinary
//! manifest, resolved like an image and recorded in the lock with [`AttachedTo`] (a referrer
//! from the API by digest alone, `repo@sha256:…`: it has no tag), so that export, import,
//! verify and serve carry it byte for byte without knowing what it is.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt as _;

use super::image::ResolvedImage;
use super::lockfile::AttachedTo;
use super::resolve::{ResolveError, Resolver};
use ferry_oci::cosign::Attachment;
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;
use ferry_oci::referrers::{Entry, subject_of};
use ferry_store::Source;

/// How many levels of attachments of attachments are followed (signature → signature of it).
pub const MAX_LEVELS: usize = 3;

/// The most attachments one image may bring.
pub const MAX_PER_IMAGE: usize = 64;

/// One lookup, for the image at `owner` in the input: a tag of `subject` (a cosign tag or the
/// referrers tag schema, by `kind`), or a referrer of it the referrers API listed.
struct Probe {
    owner: usize,
    subject: Digest,
    kind: Attachment,
    /// The referrer's digest, when the referrers API named it; `None`: the tag of `kind`.
    listed: Option<Digest>,
}

/// The listed name with its tag (or digest) replaced by `tag`: `rancher/x:v1` and
/// `rancher/x@sha256:…` become `rancher/x:<tag>`.
pub fn retag_name(name: &str, tag: &str) -> String {
    format!("{}:{tag}", repository_of(name))
}

/// The listed name pinned to `digest` alone: `rancher/x:v1` becomes `rancher/x@<digest>`
/// (a referrer the API found has no tag).
pub fn pin_name(name: &str, digest: &Digest) -> String {
    format!("{}@{digest}", repository_of(name))
}

fn repository_of(name: &str) -> &str {
    let base = name.split('@').next().unwrap_or(name);
    match base.rfind(':') {
        Some(i) if !base[i..].contains('/') => &base[..i],
        _ => base,
    }
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
fn repository_key(image: &ResolvedImage) -> String {
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
        repositories.entry(repository_key(img)).or_insert(img);
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

/// What the referrers API of each registry said in this run: absent until asked, then
/// whether it has the API. A registry without it is asked once per run, not once per image.
type ApiState = HashMap<String, bool>;

/// The referrers the API lists for each of `frontier` (owner, subject, entries): a registry
/// not asked yet is asked once first, alone, and asked no more when it has no API; the rest
/// `jobs` at a time. An answer that cannot be used (too large, not an index) is a warning
/// naming the image, and that registry's API is not asked again in this run.
async fn listed<S: Source>(
    source: &S,
    images: &[ResolvedImage],
    frontier: &[(usize, Digest)],
    api: &mut ApiState,
    jobs: usize,
) -> Vec<(usize, Digest, Vec<Entry>)> {
    let registry = |owner: usize| images[owner].reference.registry().to_string();
    let mut out = Vec::new();
    let mut rest = Vec::new();
    let note = |api: &mut ApiState, owner: usize, subject: &Digest, r| match r {
        Ok(None) => {
            api.insert(registry(owner), false);
            None
        }
        Ok(Some(list)) => {
            api.entry(registry(owner)).or_insert(true);
            Some(list)
        }
        Err(e) => {
            tracing::warn!(
                "{}: the referrers API of registry {} gave no usable list of the referrers of {subject} ({}); the referrers tag schema is used instead, for the rest of the run",
                images[owner].locked.name,
                images[owner].reference.registry(),
                ferry_base::chain::flatten(&e)
            );
            api.insert(registry(owner), false);
            None
        }
    };
    for (owner, subject) in frontier {
        match api.get(&registry(*owner)) {
            Some(false) => {}
            Some(true) => rest.push((*owner, subject.clone())),
            None => {
                let r = source.referrers(&images[*owner].reference, subject).await;
                if let Some(list) = note(api, *owner, subject, r) {
                    out.push((*owner, subject.clone(), list));
                }
            }
        }
    }
    let answers: Vec<_> = futures_util::stream::iter(rest)
        .map(|(owner, subject)| async move {
            let r = source.referrers(&images[owner].reference, &subject).await;
            (owner, subject, r)
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    for (owner, subject, r) in answers {
        if let Some(list) = note(api, owner, &subject, r) {
            out.push((owner, subject, list));
        }
    }
    out
}

/// Finds and resolves what is attached to `images` (which are not changed). The images
/// found come back with [`AttachedTo`] set, each once; `known` are sources already in the
/// set (an export from a lock that lists its signatures), which are not resolved again.
/// Failures to resolve a tag that exists (or a referrer the API listed) are returned; a tag
/// that does not exist is not one.
pub async fn discover<S: Source>(
    source: &S,
    images: &[ResolvedImage],
    known: &HashSet<String>,
    jobs: usize,
) -> (Vec<ResolvedImage>, Vec<ResolveError>) {
    let resolver = Resolver::new(source);
    let mut api = ApiState::new();
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
    let tag_lists = listed_tags(source, images, jobs).await;
    for _level in 0..MAX_LEVELS {
        if frontier.is_empty() {
            break;
        }
        let lists = listed(source, images, &frontier, &mut api, jobs).await;
        let mut probes: Vec<Probe> = frontier
            .drain(..)
            .flat_map(|(owner, subject)| {
                Attachment::ALL.into_iter().map(move |kind| Probe {
                    owner,
                    subject: subject.clone(),
                    kind,
                    listed: None,
                })
            })
            // A tag the repository's whole list does not name is not asked for.
            .filter(|p| {
                tag_lists
                    .get(&repository_key(&images[p.owner]))
                    .is_none_or(|tags| tags.contains(&p.kind.tag_for(&p.subject)))
            })
            .collect();
        for (owner, subject, mut list) in lists {
            if list.len() > MAX_PER_IMAGE {
                tracing::warn!(
                    "{}: the referrers API lists {} referrers of {subject}; only the first {MAX_PER_IMAGE} are carried",
                    images[owner].locked.name,
                    list.len()
                );
                list.truncate(MAX_PER_IMAGE);
            }
            // A list that names its own subject, or a manifest already a subject (a cycle),
            // brings nothing new.
            for e in list {
                if e.digest == subject || seen_subjects.contains(&e.digest) {
                    continue;
                }
                probes.push(Probe {
                    owner,
                    subject: subject.clone(),
                    kind: Attachment::Referrers,
                    listed: Some(e.digest),
                });
            }
        }
        let results: Vec<(Probe, Option<Result<ResolvedImage, ResolveError>>)> =
            futures_util::stream::iter(probes)
                .map(|p| {
                    let resolver = &resolver;
                    let owner = &images[p.owner];
                    async move {
                        let (name, reference) = match &p.listed {
                            Some(d) => (
                                pin_name(&owner.locked.name, d),
                                Reference::parse(&format!("{}@{d}", owner.reference.name())),
                            ),
                            None => {
                                let tag = p.kind.tag_for(&p.subject);
                                (
                                    retag_name(&owner.locked.name, &tag),
                                    owner.reference.without_digest().with_tag(&tag),
                                )
                            }
                        };
                        let Ok(reference) = reference else {
                            return (p, None);
                        };
                        // The resolver HEADs a tag first: one that does not exist costs one
                        // HEAD and is not a failure.
                        match resolver.resolve(&name, &reference).await {
                            Err(ResolveError::NotFound { .. }) if p.listed.is_none() => (p, None),
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
                    if p.listed.is_some()
                        && img.top().and_then(|m| subject_of(&m.bytes)).as_ref() != Some(&p.subject)
                    {
                        tracing::warn!(
                            "{}: the referrers API lists {} as a referrer of {}, but its subject is not that; it is left out",
                            images[p.owner].locked.name,
                            img.locked.digest,
                            p.subject
                        );
                        continue;
                    }
                    if !seen_sources.insert(img.locked.source.clone()) {
                        continue;
                    }
                    if per_image[p.owner] >= MAX_PER_IMAGE {
                        tracing::warn!(
                            "{} has more than {MAX_PER_IMAGE} signatures, attestations, SBOMs and referrers; the rest are left out",
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
        let d = Digest::sha256_of(b"r");
        assert_eq!(pin_name("rancher/x:v1", &d), format!("rancher/x@{d}"));
        assert_eq!(
            pin_name("host:5000/rancher/x@sha256:abc", &d),
            format!("host:5000/rancher/x@{d}")
        );
    }
}
