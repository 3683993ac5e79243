//! Before a delta bundle is imported: every layer it leaves out must already be in the target,
//! in the image's own repository or in a repository of the older set (it is then mounted
//! from there). Nothing is pushed when one is missing, and the images it would break are
//! named.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt as _;

use crate::target::Target;
use ferry_copy::Job;
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;
use ferry_store::bundle::{BundleSource, DeltaInfo};
use ferry_store::{Destination, ObjectKind};

/// Where each left-out layer the jobs need is found in the target: `(layer, repository that
/// holds it)` for the ones to mount from another repository. Fails, naming the images and
/// layers, when one is nowhere.
pub async fn check<D: Destination>(
    source: &BundleSource,
    delta: &DeltaInfo,
    work: &[Job],
    dest: &D,
    target: &Target,
    parallel: usize,
) -> anyhow::Result<Vec<(Digest, Reference)>> {
    let left_out = delta.by_digest();
    // (layer, where the job puts it) for every left-out layer a job needs.
    let mut needs: BTreeMap<&Digest, Vec<&Job>> = BTreeMap::new();
    for job in work {
        for d in job.image.blobs.keys() {
            if source.reader().blob(d).is_none() && left_out.contains_key(d) {
                needs.entry(d).or_default().push(job);
            }
        }
    }
    let probes = needs.iter().map(|(digest, jobs)| {
        let l = left_out[*digest];
        let candidates = candidates(jobs, &l.repositories, target);
        async move {
            for (at, elsewhere) in candidates {
                match dest.exists(&at, digest, l.size, ObjectKind::Blob).await {
                    Ok(true) => return Ok((*digest, Some((at, elsewhere)))),
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok((*digest, None))
        }
    });
    let found: Vec<_> = futures_util::stream::iter(probes)
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut mounts = Vec::new();
    let mut missing: BTreeSet<&Digest> = BTreeSet::new();
    for f in found {
        match f? {
            (d, Some((at, true))) => mounts.push((d.clone(), at)),
            (_, Some((_, false))) => {}
            (d, None) => {
                missing.insert(d);
            }
        }
    }
    if missing.is_empty() {
        return Ok(mounts);
    }
    Err(broken(source, delta, &needs, &missing, target))
}

/// Where a left-out layer may be in the target: the jobs' own repositories first (nothing to
/// mount, `false`), then the older set's `repositories` under the target (`true`).
fn candidates(jobs: &[&Job], repositories: &[String], target: &Target) -> Vec<(Reference, bool)> {
    let mut candidates: Vec<(Reference, bool)> = Vec::new();
    let mut seen = BTreeSet::new();
    for job in jobs {
        if seen.insert(job.to.repository().to_string()) {
            candidates.push((job.to.clone(), false));
        }
    }
    for repo in repositories {
        if let Ok(r) = Reference::parse(repo) {
            let at = target.name_for(&r);
            if seen.insert(at.repository().to_string()) {
                candidates.push((at, true));
            }
        }
    }
    candidates
}

/// The error for layers `missing` from the target: the images they would break, the fix.
fn broken(
    source: &BundleSource,
    delta: &DeltaInfo,
    needs: &BTreeMap<&Digest, Vec<&Job>>,
    missing: &BTreeSet<&Digest>,
    target: &Target,
) -> anyhow::Error {
    let mut broken: BTreeMap<&str, Vec<&Digest>> = BTreeMap::new();
    for (d, jobs) in needs {
        if missing.contains(d) {
            for j in jobs {
                broken.entry(j.name()).or_default().push(d);
            }
        }
    }
    let examples: Vec<String> = broken
        .iter()
        .take(5)
        .map(|(name, ds)| format!("{name} needs {}", ds[0]))
        .collect();
    anyhow::anyhow!(
        "cannot import {}: it is a delta of {} (images.lock {}) and {} of the layers it leaves out are not in {}, so {} image(s) would break ({}{}); nothing was pushed. Import the older set into {} first (ferry import {} --to …), or carry a full bundle (ferry export without --since)",
        source.reader().path().display(),
        delta.base,
        delta.delta_of,
        missing.len(),
        target.prefix,
        broken.len(),
        examples.join("; "),
        if broken.len() > examples.len() {
            "; …"
        } else {
            ""
        },
        target.prefix,
        delta.base
    )
}
