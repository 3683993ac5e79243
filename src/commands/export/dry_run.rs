//! `ferry export --dry-run`: what an export would do (images, platforms, blobs, bytes,
//! manifest GETs, Docker Hub's pull quota), from the lock alone (nothing read) or after
//! resolving (every manifest read), written nowhere.

use serde::Serialize;

use super::DeltaSummary;
use crate::commands::common::{self, Failure};
use crate::commands::printer::{Printer, human_bytes};
use crate::error::Exit;
use ferry_plan::LockFile;
use ferry_plan::bundle::BundleContents;
use ferry_plan::resolve::ResolvedImage;
use ferry_store::registry::{Quota, human_window};

#[derive(Serialize)]
pub(super) struct DryRun {
    images: usize,
    platforms: usize,
    blobs: Option<usize>,
    bytes: u64,
    manifest_gets: usize,
    rate_limited_manifest_gets: usize,
    /// Docker Hub's pull quota, each part `null` when unknown (no Docker Hub image, or an
    /// answer without the headers: a paid account, a mirror): `RateLimit-Limit`,
    rate_limit_limit: Option<u64>,
    /// `RateLimit-Remaining` (after a dry run without --lock: what its own GETs left),
    rate_limit_remaining: Option<u64>,
    /// and their `w=` window.
    rate_limit_window_seconds: Option<u64>,
    failed: Vec<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<DeltaSummary>,
}

impl DryRun {
    /// The dry run of a lock, read from the lock alone, with the quota the HEAD stated.
    pub(super) fn from_lock(lock: &LockFile, quota: Option<Quota>) -> DryRun {
        let counts = lock.manifest_counts();
        DryRun {
            images: lock.images.len(),
            platforms: lock.images.iter().map(|i| i.platforms.len()).sum(),
            blobs: None,
            bytes: lock.total_size,
            manifest_gets: counts.all,
            rate_limited_manifest_gets: counts.docker_hub,
            rate_limit_limit: None,
            rate_limit_remaining: None,
            rate_limit_window_seconds: None,
            failed: Vec::new(),
            delta: None,
        }
        .with_quota(quota)
    }

    /// The dry run of the images resolved, in `bundle`, with the quota that remains.
    pub(super) fn from_resolved(
        resolved: &[ResolvedImage],
        bundle: &BundleContents,
        quota: Option<Quota>,
        failed: Vec<Failure>,
        delta: Option<DeltaSummary>,
    ) -> DryRun {
        DryRun {
            images: resolved.len(),
            platforms: resolved.iter().map(|r| r.locked.platforms.len()).sum(),
            blobs: Some(bundle.objects.len()),
            bytes: bundle.total_size,
            manifest_gets: distinct_manifests(resolved.iter()),
            rate_limited_manifest_gets: docker_hub_manifests(resolved),
            rate_limit_limit: None,
            rate_limit_remaining: None,
            rate_limit_window_seconds: None,
            failed,
            delta,
        }
        .with_quota(quota)
    }

    fn with_quota(mut self, quota: Option<Quota>) -> DryRun {
        let q = quota.unwrap_or_default();
        self.rate_limit_limit = q.limit;
        self.rate_limit_remaining = q.remaining;
        self.rate_limit_window_seconds = q.window_seconds;
        self
    }
}

/// Distinct manifests (each a GET) of the images on Docker Hub: those its rate limit counts.
pub(super) fn docker_hub_manifests(resolved: &[ResolvedImage]) -> usize {
    distinct_manifests(resolved.iter().filter(|r| r.reference.is_docker_hub()))
}

/// Distinct manifests (each a GET) of these images.
fn distinct_manifests<'a>(images: impl Iterator<Item = &'a ResolvedImage>) -> usize {
    images
        .flat_map(|r| r.manifests.iter().map(|m| &m.digest))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Prints the dry run: JSON, or lines on stdout; failures on stderr.
pub(super) fn print(d: &DryRun, printer: &Printer) -> anyhow::Result<Exit> {
    if printer.is_json() {
        printer.json(d)?;
    } else {
        printer.data(None, &lines(d))?;
        if let Some(delta) = &d.delta {
            printer.data(
                None,
                &format!(
                    "delta of {} ({}): {} layers ({}) left out, {} blobs ({}) to carry\n",
                    delta.base,
                    delta.delta_of,
                    delta.layers_left_out,
                    human_bytes(delta.bytes_left_out),
                    delta.blobs_carried,
                    human_bytes(delta.bytes_carried)
                ),
            )?;
        }
    }
    printer.failures("exported", common::pairs(&d.failed));
    Ok(Exit::from_problems(!d.failed.is_empty()))
}

/// The two lines for people: what would be exported, and the manifest GETs.
fn lines(d: &DryRun) -> String {
    let blobs = d.blobs.map_or_else(
        || "blobs known once manifests are read".to_string(),
        |b| format!("{b} blobs"),
    );
    let per = d
        .rate_limit_window_seconds
        .map(|w| format!(" per {}", human_window(w)))
        .unwrap_or_default();
    let quota = match (d.rate_limit_remaining, d.rate_limit_limit) {
        (Some(r), Some(l)) => format!(", {r} of {l}{per} remaining"),
        (Some(r), None) => format!(", {r}{per} remaining"),
        (None, Some(l)) => format!(", limit {l}{per}"),
        (None, None) => String::new(),
    };
    format!(
        "would export {} images ({} platforms, {blobs}, {})\nmanifest GETs: {} ({} against Docker Hub's pull rate limit{quota}; tag lookups use HEAD, which is free)\n",
        d.images,
        d.platforms,
        human_bytes(d.bytes),
        d.manifest_gets,
        d.rate_limited_manifest_gets
    )
}
