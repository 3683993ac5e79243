//! `ferry export`: resolve (or read the lock), plan the bundle, fill it with the copy engine
//! from the upstream registries, finish it atomically.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::common::{self, Failure};
use super::printer::{Printer, human_bytes};
use super::progress_bar::BarReporter;
use crate::cli::ExportArgs;
use crate::copy::{Engine, ImageStats, Job};
use crate::error::{Exit, causes_line};
use crate::oci::reference::Reference;
use crate::plan::bundle::{BundleContents, contents};
use crate::plan::resolve::ResolvedImage;
use crate::plan::{LockFile, Pin};
use crate::store::bundle::delta::DeltaInfo;
use crate::store::bundle::{BundleWriter, plan};
use crate::store::registry::ratelimit::{self, Need, Quota};
use crate::store::registry::{Registries, Registry};

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

#[derive(Serialize)]
struct Parts {
    file: String,
    parts: Vec<PartSummary>,
}

#[derive(Serialize)]
struct PartSummary {
    name: String,
    size: u64,
    sha256: String,
}

#[derive(Serialize)]
struct DryRun {
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
    fn with_quota(mut self, quota: Option<Quota>) -> DryRun {
        let q = quota.unwrap_or_default();
        self.rate_limit_limit = q.limit;
        self.rate_limit_remaining = q.remaining;
        self.rate_limit_window_seconds = q.window_seconds;
        self
    }
}

/// What the run learnt of Docker Hub's pull rate limit before it read any manifest there.
///
/// The check sits before resolution because resolution is where every rate-limited GET of an
/// export happens: each tag is looked up with a HEAD (free), then every manifest of every
/// image graph is read once by digest; the copy engine writes those very bytes and reads no
/// manifest again, and blob downloads do not count. Resolving is the same for a resumed
/// export, so every manifest counts, whatever the partial bundle holds. Before resolution is
/// therefore the last point where a warning still comes before the pulls are spent. What the
/// run needs is known there exactly with `--lock` (every top-level and platform manifest the
/// lock names, each once: the dry run's own count); from a list of tags only as a floor, one
/// GET per image (a multi-platform image needs one more per platform, known once its index is
/// read; two tags of one digest share theirs), which the warning says ("at least").
struct PullCheck {
    /// The registry Docker Hub's images are read from (`--upstream docker.io=URL` honoured);
    /// `None` when no image comes from Docker Hub.
    hub: Option<Arc<Registry>>,
    /// The quota the HEAD's answer stated.
    quota: Option<Quota>,
    /// A warning was given (one per run).
    warned: bool,
}

impl PullCheck {
    /// The freshest quota known: that of the last Docker Hub answer the request layer
    /// recorded (after a dry run's resolving GETs, what is left for a real export), each part
    /// falling back to what the HEAD stated.
    fn latest(&self) -> Option<Quota> {
        let seen = self
            .hub
            .as_ref()
            .and_then(|r| r.rate_limit())
            .map(|rl| Quota::from_rate_limit(&rl));
        match (seen, self.quota) {
            (Some(s), Some(q)) => Some(Quota {
                limit: s.limit.or(q.limit),
                remaining: s.remaining.or(q.remaining),
                window_seconds: s.window_seconds.or(q.window_seconds),
            }),
            (s, q) => s.or(q),
        }
    }

    /// Warns (once per run) when `need` is more than the quota `quota` holds.
    fn warn_if_short(&mut self, who: &str, need: Need, quota: Option<Quota>, then: &str) {
        let (Some(quota), false) = (quota, self.warned) else {
            return;
        };
        let logged_in = self.hub.as_ref().is_some_and(|r| r.logged_in());
        if let Some(line) = ratelimit::warning(who, need, &quota, logged_in) {
            tracing::warn!("{line}{then}");
            self.warned = true;
        }
    }
}

/// Before any manifest is read from Docker Hub: one HEAD of the first Docker Hub image's
/// manifest, with the run's own client, credentials and endpoint, for the `RateLimit-*`
/// headers of its answer (a HEAD does not count against the limit), and a warning when the
/// run needs more manifest GETs than remain (see [`PullCheck`] for why here). Nothing is done
/// when no image comes from Docker Hub; a HEAD that fails leaves the quota unknown (the run
/// meets the same failure where it used to).
async fn check_pulls(
    args: &ExportArgs,
    registries: &Registries,
    inputs: &[(String, Reference)],
    lock: Option<&LockFile>,
) -> PullCheck {
    let mut check = PullCheck {
        hub: None,
        quota: None,
        warned: false,
    };
    let hub_images: Vec<&Reference> = inputs
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.is_docker_hub())
        .collect();
    let Some(first) = hub_images.first() else {
        return check;
    };
    let Ok(registry) = registries.get(first.registry()) else {
        return check;
    };
    let reference = match (first.digest(), first.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    check.quota = match registry.head_quota(first.repository(), &reference).await {
        Ok(q) => q,
        Err(e) => {
            tracing::debug!(
                "cannot read Docker Hub's pull rate limit ({}); going on without it",
                crate::chain::flatten(&e)
            );
            None
        }
    };
    check.hub = Some(registry);
    match check.quota {
        Some(q) => tracing::debug!(
            "Docker Hub pull quota: limit {:?}, remaining {:?}, window {:?} s",
            q.limit,
            q.remaining,
            q.window_seconds
        ),
        None => tracing::debug!("Docker Hub states no pull rate limit"),
    }
    let need = match lock {
        Some(lock) => Need {
            gets: lock_manifests(lock).1,
            at_least: false,
        },
        None => Need {
            gets: hub_images
                .iter()
                .map(|r| r.to_string())
                .collect::<BTreeSet<_>>()
                .len(),
            at_least: true,
        },
    };
    let (who, then) = match (args.dry_run, lock.is_some()) {
        (false, _) => (
            "this export",
            " ferry goes on: a 429 with a short Retry-After is waited out; an image still refused fails, and running the same command later resumes the export.",
        ),
        (true, true) => ("a real export", ""),
        (true, false) => (
            "this dry run (it reads every manifest to count them; with --lock it reads none)",
            "",
        ),
    };
    let quota = check.quota;
    check.warn_if_short(who, need, quota, then);
    check
}

/// The images to export: the lock's (pinned to their digests), or the list's.
fn inputs(args: &ExportArgs, lock: Option<&LockFile>) -> anyhow::Result<Vec<(String, Reference)>> {
    match lock {
        Some(lock) => Ok(crate::plan::input::dedupe(lock.inputs(Pin::Upstream)?)),
        None => common::image_list(&args.select, args.images.as_deref()),
    }
}

/// Resolves the images (keeping a lock's own names), keeps the `--platform`s asked for, and
/// sorts them by source; those that failed are added to `failed`.
async fn resolve(
    args: &ExportArgs,
    registries: &crate::store::registry::Registries,
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
            }
        }
    }
    if !args.platforms.is_empty() {
        resolved.retain_mut(|img| match img.keep_platforms(&args.platforms) {
            Ok(()) => true,
            Err(error) => {
                failed.push(Failure {
                    name: img.locked.name.clone(),
                    error,
                });
                false
            }
        });
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

/// Plans the bundle and fills it through the engine: what the engine moved, whether an
/// interrupted run was picked up, and the bundle's size. Any image that fails leaves the
/// bundle unfinished (and resumable). Takes the images and the contents: each goes as soon as
/// it has served (the contents once planned, each image's bookkeeping once copied).
async fn write(
    args: &ExportArgs,
    registries: &crate::store::registry::Registries,
    resolved: Vec<ResolvedImage>,
    bundle: BundleContents,
    delta: Option<&DeltaInfo>,
    printer: &Printer,
    failed: &mut Vec<Failure>,
) -> anyhow::Result<(ImageStats, bool, u64, Option<Parts>)> {
    let BundleContents {
        index,
        docker,
        lock_yaml,
        objects,
        ..
    } = bundle;
    let blob_count = objects.len();
    let layout = plan(index, docker, lock_yaml, delta, objects)?;
    let bundle_size = layout.total_size();
    let mut writer = BundleWriter::create_split(&args.output, layout, args.split)?;
    if let Some(d) = delta {
        writer.leave_out(d.digests());
    }
    let resumed = writer.resumed();
    if resumed {
        tracing::warn!(
            "resuming the interrupted export into {} ({} of {} blobs still to fetch)",
            args.output.display(),
            writer.missing().len(),
            blob_count
        );
    }
    let reporter = BarReporter::new(printer, "exporting");
    let engine = Engine::new(registries, &writer, &reporter);
    let work: Vec<Job> = resolved
        .into_iter()
        .map(|r| {
            let to = r.reference.clone();
            Job::new(r, to)
        })
        .collect();
    let copied = engine
        .copy_all(&work, usize::from(args.registry.jobs))
        .await;
    reporter.done();
    let mut stats = ImageStats::default();
    let before = failed.len();
    for (job, r) in work.iter().zip(&copied) {
        match r {
            Ok(s) => stats += s,
            Err(e) => failed.push(Failure {
                name: job.name().to_string(),
                error: crate::chain::flatten(e.source.as_ref()),
            }),
        }
    }
    if failed.len() > before {
        anyhow::bail!(
            "the bundle is not finished: {} image(s) failed: {}; nothing was written to {} — the verified part is kept in {}, and running the same command again resumes from it",
            failed.len(),
            causes_line(common::pairs(failed)),
            args.output.display(),
            match args.split {
                None => format!("{}.partial", args.output.display()),
                Some(_) => format!("{}.NNN.partial", args.output.display()),
            }
        );
    }
    let parts = writer.finish()?.map(|p| Parts {
        file: crate::store::bundle::parts::parts_path(&args.output)
            .display()
            .to_string(),
        parts: p
            .parts
            .iter()
            .map(|e| PartSummary {
                name: e.name.clone(),
                size: e.size,
                sha256: e.sha256.to_string(),
            })
            .collect(),
    });
    Ok((stats, resumed, bundle_size, parts))
}

/// Runs `ferry export`.
pub async fn run(args: &ExportArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let lock_in = args.lock.as_deref().map(LockFile::load).transpose()?;
    let inputs = inputs(args, lock_in.as_ref())?;
    let started = Instant::now();
    let registries = common::upstream_registries(&args.upstream, &args.registry)?;
    // Token registries then grant many repositories' pull scopes per token request.
    registries.expect_pulls(inputs.iter().map(|(_, r)| r));
    let mut pulls = check_pulls(args, &registries, &inputs, lock_in.as_ref()).await;
    if args.dry_run
        && let Some(lock) = &lock_in
    {
        let d = dry_run_from_lock(lock).with_quota(pulls.quota);
        return print_dry_run(&d, printer);
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
        Some(old) => {
            let base = super::since::base_of(
                old,
                &registries,
                usize::from(args.registry.jobs) * 2,
                printer,
            )
            .await?;
            let info = crate::plan::delta::delta_of(&resolved, &base);
            leave_out(&mut bundle, &info);
            Some(info)
        }
        None => None,
    };
    let delta_summary = delta.as_ref().map(|d| DeltaSummary {
        delta_of: d.delta_of.to_string(),
        base: d.base.clone(),
        layers_left_out: d.left_out.len(),
        bytes_left_out: d.bytes(),
        blobs_carried: bundle.objects.len(),
        bytes_carried: bundle.objects.values().sum(),
    });
    if args.dry_run {
        let hub = resolved.iter().filter(|r| r.reference.is_docker_hub());
        let rate_limited = distinct_manifests(hub);
        // This dry run has read the manifests: the exact count is known now, and what
        // remains is what a real export would find.
        let quota = pulls.latest();
        pulls.warn_if_short(
            "a real export",
            Need {
                gets: rate_limited,
                at_least: false,
            },
            quota,
            "",
        );
        let d = DryRun {
            images: resolved.len(),
            platforms: resolved.iter().map(|r| r.locked.platforms.len()).sum(),
            blobs: Some(bundle.objects.len()),
            bytes: bundle.total_size,
            manifest_gets: distinct_manifests(resolved.iter()),
            rate_limited_manifest_gets: rate_limited,
            rate_limit_limit: None,
            rate_limit_remaining: None,
            rate_limit_window_seconds: None,
            failed,
            delta: delta_summary,
        }
        .with_quota(quota);
        return print_dry_run(&d, printer);
    }
    let exported = resolved.len();
    let platforms = resolved.iter().map(|r| r.locked.platforms.len()).sum();
    let blobs = bundle.objects.len();
    let bytes = bundle.total_size;
    let bytes_saved_by_dedup = bundle.per_image.saturating_sub(bytes);
    let docker_load_images = bundle.docker.len();
    let (stats, resumed, bundle_size, parts) = write(
        args,
        &registries,
        resolved,
        bundle,
        delta.as_ref(),
        printer,
        &mut failed,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        bundle: args.output.display().to_string(),
        images,
        exported,
        platforms,
        blobs,
        bytes,
        bundle_size,
        bytes_saved_by_dedup,
        blobs_downloaded: stats.blobs_moved,
        bytes_downloaded: stats.bytes_moved,
        blobs_already_present: stats.blobs_present,
        seconds,
        megabytes_per_second: stats.bytes_moved as f64 / 1e6 / seconds.max(1e-9),
        resumed,
        failed,
        docker_load_images,
        parts,
        delta: delta_summary,
    };
    report(&summary, printer)
}

fn report(summary: &Summary, printer: &Printer) -> anyhow::Result<Exit> {
    if printer.is_json() {
        printer.json(summary)?;
    } else {
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
    printer.failures("exported", common::pairs(&summary.failed));
    Ok(Exit::from_problems(!summary.failed.is_empty()))
}

/// Distinct manifests (each a GET) of these images.
fn distinct_manifests<'a>(
    images: impl Iterator<Item = &'a crate::plan::resolve::ResolvedImage>,
) -> usize {
    images
        .flat_map(|r| r.manifests.iter().map(|m| &m.digest))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The distinct manifests (top-level and platform) a lock names: all of them, and those on
/// Docker Hub (each a GET against its rate limit).
fn lock_manifests(lock: &LockFile) -> (usize, usize) {
    let mut manifests = BTreeSet::new();
    let mut hub = BTreeSet::new();
    for i in &lock.images {
        let is_hub = Reference::parse(&i.source).is_ok_and(|r| r.is_docker_hub());
        for d in std::iter::once(&i.digest).chain(i.platforms.iter().map(|p| &p.digest)) {
            manifests.insert(d);
            if is_hub {
                hub.insert(d);
            }
        }
    }
    (manifests.len(), hub.len())
}

fn dry_run_from_lock(lock: &LockFile) -> DryRun {
    let (manifests, hub) = lock_manifests(lock);
    DryRun {
        images: lock.images.len(),
        platforms: lock.images.iter().map(|i| i.platforms.len()).sum(),
        blobs: None,
        bytes: lock.total_size,
        manifest_gets: manifests,
        rate_limited_manifest_gets: hub,
        rate_limit_limit: None,
        rate_limit_remaining: None,
        rate_limit_window_seconds: None,
        failed: Vec::new(),
        delta: None,
    }
}

fn print_dry_run(d: &DryRun, printer: &Printer) -> anyhow::Result<Exit> {
    let json = printer.is_json();
    if json {
        printer.json(d)?;
    } else {
        let blobs = d.blobs.map_or_else(
            || "blobs known once manifests are read".to_string(),
            |b| format!("{b} blobs"),
        );
        let per = d
            .rate_limit_window_seconds
            .map(|w| format!(" per {}", ratelimit::human_window(w)))
            .unwrap_or_default();
        let quota = match (d.rate_limit_remaining, d.rate_limit_limit) {
            (Some(r), Some(l)) => format!(", {r} of {l}{per} remaining"),
            (Some(r), None) => format!(", {r}{per} remaining"),
            (None, Some(l)) => format!(", limit {l}{per}"),
            (None, None) => String::new(),
        };
        printer.data(
            None,
            &format!(
                "would export {} images ({} platforms, {blobs}, {})\nmanifest GETs: {} ({} against Docker Hub's pull rate limit{quota}; tag lookups use HEAD, which is free)\n",
                d.images,
                d.platforms,
                human_bytes(d.bytes),
                d.manifest_gets,
                d.rate_limited_manifest_gets
            ),
        )?;
    }
    if let (false, Some(delta)) = (json, &d.delta) {
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
    printer.failures("exported", common::pairs(&d.failed));
    Ok(Exit::from_problems(!d.failed.is_empty()))
}

/// Takes a delta's left-out layers out of the bundle's objects; the docker-archive view keeps
/// only images whole in the bundle (`docker load` reads nothing from elsewhere).
fn leave_out(bundle: &mut BundleContents, delta: &DeltaInfo) {
    let gone = delta.digests();
    bundle.objects.retain(|d, _| !gone.contains(d));
    bundle
        .docker
        .retain(|e| !e.layers.iter().chain([&e.config]).any(|d| gone.contains(d)));
}
