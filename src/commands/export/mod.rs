//! `ferry export`: resolve (or read the lock), plan the bundle, fill it with the copy engine
//! from the upstream registries ([`write`]), finish it atomically; or, with `--dry-run`, say
//! what that would take ([`dry_run`]). Docker Hub's pull quota is checked before any
//! manifest is read there ([`PullCheck`]); `--since` makes a delta ([`ferry_plan::delta`]).

use std::time::Instant;

use serde::Serialize;

use super::common::{self, Failure};
use super::printer::{Printer, human_bytes};
use crate::cli::ExportArgs;
use crate::error::{Exit, causes_line};
use ferry_oci::reference::Reference;
use ferry_plan::bundle::{BundleContents, contents};
use ferry_plan::resolve::ResolvedImage;
use ferry_plan::{LockFile, Pin};
use ferry_store::bundle::DeltaInfo;
use ferry_store::registry::{PullCheck, PullRun, Registries};

mod dry_run;
mod write;

use dry_run::DryRun;
use write::{Parts, Written};

#[derive(Serialize)]
struct Summary {
    bundle: String,
    images: usize,
    exported: usize,
    platforms: usize,
    blobs: usize,
    bytes: u64,
    bundle_size: u64,
    bytes_saved_by_dedup: u64,
    blobs_downloaded: u64,
    bytes_downloaded: u64,
    blobs_already_present: u64,
    seconds: f64,
    megabytes_per_second: f64,
    resumed: bool,
    failed: Vec<Failure>,
    docker_load_images: usize,
    /// With --split: the `.parts` file and the parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<Parts>,
    /// With --since: what the delta leaves out.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<DeltaSummary>,
}

#[derive(Serialize, Clone)]
struct DeltaSummary {
    /// SHA-256 of the older set's images.lock.
    delta_of: String,
    /// As given.
    base: String,
    /// Layers left out, and their bytes.
    layers_left_out: usize,
    bytes_left_out: u64,
    /// Blobs and bytes carried.
    blobs_carried: usize,
    bytes_carried: u64,
}

impl DeltaSummary {
    /// What `delta` leaves out of, and carries in, `bundle`.
    fn new(delta: &DeltaInfo, bundle: &BundleContents) -> DeltaSummary {
        DeltaSummary {
            delta_of: delta.delta_of.to_string(),
            base: delta.base.clone(),
            layers_left_out: delta.left_out.len(),
            bytes_left_out: delta.bytes(),
            blobs_carried: bundle.objects.len(),
            bytes_carried: bundle.objects.values().sum(),
        }
    }
}

/// What the bundle holds, counted before it is written (the contents go into the writer).
struct Counts {
    exported: usize,
    platforms: usize,
    blobs: usize,
    bytes: u64,
    bytes_saved_by_dedup: u64,
    docker_load_images: usize,
}

impl Counts {
    fn of(resolved: &[ResolvedImage], bundle: &BundleContents) -> Counts {
        Counts {
            exported: resolved.len(),
            platforms: resolved.iter().map(|r| r.locked.platforms.len()).sum(),
            blobs: bundle.objects.len(),
            bytes: bundle.total_size,
            bytes_saved_by_dedup: bundle.per_image.saturating_sub(bundle.total_size),
            docker_load_images: bundle.docker.len(),
        }
    }
}

/// Runs `ferry export`.
pub async fn run(args: &ExportArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let lock_in = args.lock.as_deref().map(LockFile::load).transpose()?;
    let inputs = inputs(args, lock_in.as_ref(), printer)?;
    let started = Instant::now();
    let registries = common::upstream_registries(&args.upstream, &args.registry)?;
    // Token registries then grant many repositories' pull scopes per token request.
    registries.expect_pulls(inputs.iter().map(|(_, r)| r));
    let mut pulls = PullCheck::before_reading(
        &registries,
        inputs.iter().map(|(_, r)| r),
        lock_in.as_ref().map(|l| l.manifest_counts().docker_hub),
        if args.dry_run {
            PullRun::DryRun
        } else {
            PullRun::Export
        },
    )
    .await;
    if args.dry_run
        && let Some(lock) = &lock_in
    {
        return dry_run::print(&DryRun::from_lock(lock, pulls.quota()), printer);
    }
    let mut failed = Vec::new();
    let mut resolved = resolve(
        args,
        &registries,
        &inputs,
        lock_in.as_ref(),
        printer,
        &mut failed,
    )
    .await?;
    // The list and the lock have served: the resolved images carry what is left to do.
    let images = inputs.len();
    drop((inputs, lock_in));
    let mut bundle = contents(&mut resolved, &args.docker_platform).map_err(anyhow::Error::msg)?;
    let delta = match &args.since {
        Some(old) => Some(since(args, old, &registries, &resolved, &mut bundle, printer).await?),
        None => None,
    };
    let delta_summary = delta.as_ref().map(|d| DeltaSummary::new(d, &bundle));
    if args.dry_run {
        // This dry run has read the manifests: the exact count is known now, and what
        // remains is what a real export would find.
        let quota = pulls.after_dry_run(dry_run::docker_hub_manifests(&resolved));
        let d = DryRun::from_resolved(&resolved, &bundle, quota, failed, delta_summary);
        return dry_run::print(&d, printer);
    }
    let counts = Counts::of(&resolved, &bundle);
    let written = write::write(
        args,
        &registries,
        resolved,
        bundle,
        delta.as_ref(),
        printer,
        &mut failed,
    )
    .await?;
    let summary = summary(
        args,
        images,
        counts,
        written,
        failed,
        delta_summary,
        started,
    );
    report(&summary, printer)
}

/// `--since OLD`: the delta against the older set, its left-out layers taken out of `bundle`.
async fn since(
    args: &ExportArgs,
    old: &std::path::Path,
    registries: &Registries,
    resolved: &[ResolvedImage],
    bundle: &mut BundleContents,
    printer: &Printer,
) -> anyhow::Result<DeltaInfo> {
    let jobs = usize::from(args.registry.jobs) * 2;
    let base = super::since::base_of(old, registries, jobs, printer).await?;
    Ok(ferry_plan::delta::select(resolved, &base, bundle))
}

/// The images to export: the lock's (pinned to their digests), or the list's.
fn inputs(
    args: &ExportArgs,
    lock: Option<&LockFile>,
    printer: &Printer,
) -> anyhow::Result<Vec<(String, Reference)>> {
    match lock {
        Some(lock) => Ok(ferry_plan::input::dedupe(lock.inputs(Pin::Upstream)?)),
        None => common::image_list(&args.select, args.images.as_deref(), printer),
    }
}

/// Resolves the images (keeping a lock's own names), keeps the `--platform`s asked for, and
/// sorts them by source; those that failed are added to `failed`.
async fn resolve(
    args: &ExportArgs,
    registries: &Registries,
    inputs: &[(String, Reference)],
    lock: Option<&LockFile>,
    printer: &Printer,
    failed: &mut Vec<Failure>,
) -> anyhow::Result<Vec<ResolvedImage>> {
    let jobs = usize::from(args.registry.jobs) * 2;
    let (mut resolved, unresolved) = common::resolve(registries, inputs, jobs, printer).await;
    failed.extend(unresolved);
    if let Some(lock) = lock {
        // Keep the lock's own names; the digests were pinned by it.
        for img in &mut resolved {
            if let Some(e) = lock.images.iter().find(|e| e.name == img.locked.name) {
                img.locked.source = e.source.clone();
                img.locked.attached_to = e.attached_to.clone();
            }
        }
    }
    if !args.platforms.is_empty() {
        resolved.retain_mut(|img| {
            // Attachments (from a lock) have no platform: they follow their subject below.
            if img.locked.attached_to.is_some() {
                return true;
            }
            match img.keep_platforms(&args.platforms) {
                Ok(()) => true,
                Err(error) => {
                    failed.push(Failure {
                        name: img.locked.name.clone(),
                        error: error.to_string(),
                    });
                    false
                }
            }
        });
        ferry_plan::attached::keep_reachable(&mut resolved);
    }
    // After the platform filter: the attachments of dropped platforms are not looked for.
    // From a lock no tag is looked up: the lock lists the attachments `ferry lock` found.
    if lock.is_none() {
        failed
            .extend(common::attach(registries, &args.upstream, &mut resolved, jobs, printer).await);
    }
    if resolved.is_empty() {
        anyhow::bail!(
            "no image could be resolved, so nothing was exported: {}",
            causes_line(common::pairs(failed))
        );
    }
    resolved.sort_by(|a, b| a.locked.source.cmp(&b.locked.source));
    Ok(resolved)
}

/// The summary of a finished export of `images` listed images.
fn summary(
    args: &ExportArgs,
    images: usize,
    counts: Counts,
    written: Written,
    failed: Vec<Failure>,
    delta: Option<DeltaSummary>,
    started: Instant,
) -> Summary {
    let seconds = started.elapsed().as_secs_f64();
    let stats = written.stats;
    Summary {
        bundle: args.output.display().to_string(),
        images,
        exported: counts.exported,
        platforms: counts.platforms,
        blobs: counts.blobs,
        bytes: counts.bytes,
        bundle_size: written.bundle_size,
        bytes_saved_by_dedup: counts.bytes_saved_by_dedup,
        blobs_downloaded: stats.blobs_moved,
        bytes_downloaded: stats.bytes_moved,
        blobs_already_present: stats.blobs_present,
        seconds,
        megabytes_per_second: stats.bytes_moved as f64 / 1e6 / seconds.max(1e-9),
        resumed: written.resumed,
        failed,
        docker_load_images: counts.docker_load_images,
        parts: written.parts,
        delta,
    }
}

fn report(summary: &Summary, printer: &Printer) -> anyhow::Result<Exit> {
    if printer.is_json() {
        printer.json(summary)?;
    } else {
        say_summary(summary, printer);
    }
    printer.failures("exported", common::pairs(&summary.failed));
    Ok(Exit::from_problems(!summary.failed.is_empty()))
}

/// The summary for people, on stderr.
fn say_summary(summary: &Summary, printer: &Printer) {
    // A resumed run that found everything in place moved nothing: no rate to speak of.
    let rate = if summary.blobs_downloaded == 0 {
        "every blob was already in place".to_string()
    } else {
        format!(
            "{}/s",
            human_bytes(summary.megabytes_per_second as u64 * 1_000_000)
        )
    };
    printer.say(format!(
        "exported {} of {} images ({} platforms, {} blobs, {}; {} saved by de-duplication) in {:.1} s ({rate}) -> {}",
        summary.exported,
        summary.images,
        summary.platforms,
        summary.blobs,
        human_bytes(summary.bytes),
        human_bytes(summary.bytes_saved_by_dedup),
        summary.seconds,
        summary.parts.as_ref().map_or(&summary.bundle, |p| &p.file)
    ));
    if let Some(d) = &summary.delta {
        printer.say(format!(
            "a delta of {} ({}): {} layers ({}) left out, {} blobs ({}) carried; import it where the older set is",
            d.base,
            d.delta_of,
            d.layers_left_out,
            human_bytes(d.bytes_left_out),
            d.blobs_carried,
            human_bytes(d.bytes_carried)
        ));
    }
    if let Some(p) = &summary.parts {
        printer.say(format!(
            "split into {} parts: {}; check them anywhere with `sha256sum -c {}`",
            p.parts.len(),
            p.parts
                .iter()
                .map(|e| format!("{} ({})", e.name, human_bytes(e.size)))
                .collect::<Vec<_>>()
                .join(", "),
            p.file
        ));
    }
}
