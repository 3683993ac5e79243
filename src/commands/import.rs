//! `ferry import`: read the bundle in place, plan every image from its embedded lock, and
//! push through the copy engine into the target registry under the names `rke up` pulls.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::common::{self, Failure};
use super::printer::{Printer, human_bytes};
use super::progress_bar::BarReporter;
use super::target_registry;
use crate::cli::ImportArgs;
use crate::copy::{CopyError, Engine, ImageStats, Job};
use crate::error::{Exit, causes_line};
use crate::store::bundle::source::BundleSource;
use crate::store::bundle::{BundleError, BundleReader};
use crate::store::registry::RegistryDestination;

#[derive(Serialize, Default)]
pub(super) struct Summary {
    pub bundle: String,
    pub target: String,
    pub images: usize,
    pub pushed: usize,
    pub already_present: usize,
    pub failed: Vec<Failure>,
    pub blobs_pushed: u64,
    pub blobs_mounted: u64,
    pub blobs_present: u64,
    pub bytes_pushed: u64,
    pub seconds: f64,
    pub megabytes_per_second: f64,
    /// For an archive: what kind it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// For an archive: bytes kept in the spool directory while importing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spooled_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Planned {
    name: String,
    target: String,
    present: bool,
}

/// The copy's results: the stats of the images pushed and how many they are; each failure
/// goes to `failed`, named.
pub(super) fn tally(
    jobs: &[Job],
    results: &[Result<ImageStats, CopyError>],
    failed: &mut Vec<Failure>,
) -> (ImageStats, usize) {
    let mut stats = ImageStats::default();
    let mut pushed = 0;
    for (job, r) in jobs.iter().zip(results) {
        match r {
            Ok(s) => {
                stats += s;
                pushed += 1;
            }
            Err(e) => failed.push(Failure {
                name: job.name().to_string(),
                error: crate::chain::flatten(e.source.as_ref()),
            }),
        }
    }
    (stats, pushed)
}

/// Runs `ferry import`.
pub async fn run(args: &ImportArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let (Some(target), cluster) = target_registry::target_of(&args.target)? else {
        anyhow::bail!("say where to push: --to HOST[:PORT][/PATH] or --cluster cluster.yml");
    };
    let bundle = open_bundle(&args.bundle)?;
    let registries = target_registry::target_registries(
        &args.registry,
        &args.target,
        &target,
        cluster.as_ref(),
    )?;
    let dest = RegistryDestination::new(registries.get(target.host())?, args.chunk_size);
    let Some(mut source) = bundle else {
        return super::import_archive::run(args, printer, &target, cluster.as_ref(), &dest).await;
    };
    let lock = common::bundle_lock(&source)?;
    // index.json is parsed and images.lock read: the run needs nothing more of the metadata.
    source.release_metadata();
    let jobs = usize::from(args.registry.jobs);

    let images = lock.images.len();
    let (work, mut failed) = jobs_of(&source, lock, &target, jobs).await?;
    let delta = source.delta().map_err(anyhow::Error::msg)?;
    let mounts = match delta {
        Some(d) => super::delta_check::check(&source, d, &work, &dest, &target, jobs).await?,
        None => Vec::new(),
    };
    let reporter = BarReporter::new(printer, "importing");
    let engine = Engine::new(&source, &dest, &reporter);
    for (digest, at) in &mounts {
        engine.knows(digest, at);
    }
    let complete: Vec<bool> = if args.check_all {
        vec![false; work.len()]
    } else {
        engine
            .complete(&work, jobs * 2)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?
    };
    if args.dry_run {
        return print_plan(&work, &complete, &target, printer);
    }
    let already = complete.iter().filter(|c| **c).count();
    let todo: Vec<Job> = work
        .into_iter()
        .zip(complete)
        .filter_map(|(j, done)| (!done).then_some(j))
        .collect();
    // ECR refuses pushes into missing repositories: create them first (--ecr-create-repos).
    let todo =
        super::ecr_repos::prepare(args, &target, cluster.as_ref(), todo, &mut failed, printer)
            .await?;
    let results = engine.copy_all(&todo, jobs).await;
    reporter.done();
    let (stats, pushed) = tally(&todo, &results, &mut failed);
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        bundle: args.bundle.display().to_string(),
        target: target.prefix.to_string(),
        images,
        pushed,
        already_present: already,
        blobs_pushed: stats.blobs_moved,
        blobs_mounted: stats.blobs_mounted,
        blobs_present: stats.blobs_present,
        bytes_pushed: stats.bytes_moved,
        seconds,
        megabytes_per_second: stats.bytes_moved as f64 / 1e6 / seconds.max(1e-9),
        failed,
        ..Summary::default()
    };
    report(&summary, printer)
}

/// The ferry bundle at `path` (a split one too), or `None` when the file is another kind of
/// archive (gzip-compressed, a `docker save` layout, an OCI layout without images.lock).
fn open_bundle(path: &std::path::Path) -> anyhow::Result<Option<BundleSource>> {
    if crate::store::bundle::parts::parts_file_for(path).is_some() {
        return Ok(Some(BundleSource::new(BundleReader::open(path)?)));
    }
    if crate::store::archive::is_gzip(path)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        // rancher-images.tar.gz and the like.
        return Ok(None);
    }
    // A tar with an images.lock is a ferry bundle, read by the strict bundle reader whatever
    // else it holds (a hostile one is refused as a bundle, never read as something else).
    if names_a_lock(path) {
        return Ok(Some(BundleSource::new(BundleReader::open(path)?)));
    }
    match BundleReader::open(path) {
        Ok(r) if r.metadata(crate::store::bundle::IMAGES_LOCK).is_some() => {
            Ok(Some(BundleSource::new(r)))
        }
        Ok(_) => Ok(None),
        // Not a tar at all (empty, an HTML page…): neither a bundle nor an archive.
        Err(e @ (BundleError::NotABundle { .. } | BundleError::Io { .. })) => Err(e.into()),
        Err(e) => {
            tracing::debug!("not a ferry bundle ({e}); reading it as an image archive");
            Ok(None)
        }
    }
}

/// Whether the tar at `path` has an `images.lock` entry (headers only; false when it cannot
/// be read as a tar).
fn names_a_lock(path: &std::path::Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let Ok(entries) = archive.entries_with_seek() else {
        return false;
    };
    entries
        .raw(true)
        .take(100_000)
        .map_while(Result::ok)
        .any(|e| {
            let name = e.path_bytes();
            let name = name.strip_prefix(b"./").unwrap_or(&name);
            name == crate::store::bundle::IMAGES_LOCK.as_bytes()
        })
}

/// Every image of the bundle as a job into `target`, read from the bundle (local and cheap);
/// one the bundle cannot carry whole is named among the failures and nothing of it pushed.
/// The lock goes once its images are listed, the list once they are resolved.
async fn jobs_of(
    source: &BundleSource,
    lock: crate::plan::LockFile,
    target: &crate::target::Target,
    jobs: usize,
) -> anyhow::Result<(Vec<Job>, Vec<Failure>)> {
    let inputs = lock
        .inputs(crate::plan::Pin::Bundle)
        .context("images.lock in the bundle")?;
    drop(lock);
    let (resolved, mut failed) = common::resolve_quietly(source, &inputs, jobs * 2).await;
    drop(inputs);
    let mut work = Vec::new();
    for img in resolved {
        match crate::verify::bundle::image_problem(&img, source) {
            Some(p) => failed.push(Failure {
                name: img.locked.name.clone(),
                error: format!("{}; nothing of this image was pushed", p.detail),
            }),
            None => {
                let to = target.name_for(&img.reference);
                work.push(Job::new(img, to));
            }
        }
    }
    Ok((work, failed))
}

pub(super) fn report(summary: &Summary, printer: &Printer) -> anyhow::Result<Exit> {
    if printer.is_json() {
        printer.json(summary)?;
    } else {
        printer.say(format!(
            "imported {} images into {} ({} already there, {} failed): {} blobs pushed ({}), {} mounted, {} present, in {:.1} s",
            summary.pushed,
            summary.target,
            summary.already_present,
            summary.failed.len(),
            summary.blobs_pushed,
            human_bytes(summary.bytes_pushed),
            summary.blobs_mounted,
            summary.blobs_present,
            summary.seconds
        ));
    }
    printer.failures("imported", common::pairs(&summary.failed));
    if !summary.failed.is_empty() && summary.pushed == 0 && summary.already_present == 0 {
        anyhow::bail!(
            "nothing could be imported into {}: {}",
            summary.target,
            causes_line(common::pairs(&summary.failed))
        );
    }
    Ok(Exit::from_problems(!summary.failed.is_empty()))
}

fn print_plan(
    work: &[Job],
    complete: &[bool],
    target: &crate::target::Target,
    printer: &Printer,
) -> anyhow::Result<Exit> {
    let planned: Vec<Planned> = work
        .iter()
        .zip(complete)
        .map(|(j, c)| Planned {
            name: j.name().to_string(),
            target: j.to.to_string(),
            present: *c,
        })
        .collect();
    if printer.is_json() {
        printer.json(&planned)?;
        return Ok(Exit::Success);
    }
    let mut text: String = planned
        .iter()
        .map(|p| {
            let what = if p.present { "present  " } else { "would push" };
            format!("{what} {}\n", p.target)
        })
        .collect();
    text.push_str(&format!(
        "{} of {} images would be pushed to {}\n",
        planned.iter().filter(|p| !p.present).count(),
        planned.len(),
        target.prefix
    ));
    printer.data(None, &text)?;
    Ok(Exit::Success)
}
