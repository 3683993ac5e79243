//! `ferry import`: push a ferry bundle ([`bundle`]) or an image archive people already have
//! ([`archive`]) into the target registry, under the names `rke up` pulls. This module
//! finds out which of the two the file is, sets up the target, and holds what both share:
//! the push through the copy engine, the summary and its report. [`bundle`] and [`archive`]
//! use only this module, never each other.

use std::time::Instant;

use serde::Serialize;

use super::common::{self, Failure};
use super::printer::{Printer, human_bytes};
use super::progress_bar::BarReporter;
use super::target_registry;
use crate::cli::ImportArgs;
use crate::error::{Exit, causes_line};
use crate::target::Target;
use ferry_copy::{CopyError, Engine, ImageStats, Job};
use ferry_rke::ClusterConfig;
use ferry_store::Source;
use ferry_store::registry::RegistryDestination;

mod archive;
mod bundle;

/// Where an import pushes: the target, the cluster.yml it came from, the registry.
pub(super) struct Push<'a> {
    /// The target (`--to` or the cluster.yml's default private registry).
    pub target: &'a Target,
    /// The cluster.yml, when given.
    pub cluster: Option<&'a ClusterConfig>,
    /// The target registry.
    pub dest: &'a RegistryDestination,
}

/// Runs `ferry import`.
pub async fn run(args: &ImportArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let (Some(target), cluster) = target_registry::target_of(&args.target)? else {
        anyhow::bail!("say where to push: --to HOST[:PORT][/PATH] or --cluster cluster.yml");
    };
    let bundle = bundle::open(&args.bundle)?;
    let registries = target_registry::target_registries(
        &args.registry,
        &args.target,
        &target,
        cluster.as_ref(),
    )?;
    let dest = RegistryDestination::new(registries.get(target.host())?, args.chunk_size);
    let push = Push {
        target: &target,
        cluster: cluster.as_ref(),
        dest: &dest,
    };
    match bundle {
        Some(source) => bundle::run(args, printer, source, &push, started).await,
        None if args.key.is_some() || args.keyless.trusted_root.is_some() => anyhow::bail!(
            "{} is not a ferry bundle, and --key (or --trusted-root) checks the signatures a bundle carries: a docker or podman archive has none. Export the images with `ferry export` (which carries their cosign signatures), or import without --key/--trusted-root",
            args.bundle.display()
        ),
        None => archive::run(args, printer, &push).await,
    }
}

#[derive(Serialize, Default)]
struct Summary {
    bundle: String,
    target: String,
    images: usize,
    pushed: usize,
    already_present: usize,
    failed: Vec<Failure>,
    blobs_pushed: u64,
    blobs_mounted: u64,
    blobs_present: u64,
    bytes_pushed: u64,
    seconds: f64,
    megabytes_per_second: f64,
    /// For an archive: what kind it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<String>,
    /// For an archive: bytes kept in the spool directory while importing.
    #[serde(skip_serializing_if = "Option::is_none")]
    spooled_bytes: Option<u64>,
}

/// What a push did: the stats of the images pushed, how many they are, what failed.
struct Pushed {
    stats: ImageStats,
    pushed: usize,
    failed: Vec<Failure>,
}

impl Summary {
    /// The summary of an import of `images` images from `args.bundle` that started at
    /// `started` and did `done` (nothing already present, no archive: set those after).
    fn new(
        args: &ImportArgs,
        target: &Target,
        images: usize,
        done: Pushed,
        started: Instant,
    ) -> Summary {
        let seconds = started.elapsed().as_secs_f64();
        let stats = done.stats;
        Summary {
            bundle: args.bundle.display().to_string(),
            target: target.prefix.to_string(),
            images,
            pushed: done.pushed,
            blobs_pushed: stats.blobs_moved,
            blobs_mounted: stats.blobs_mounted,
            blobs_present: stats.blobs_present,
            bytes_pushed: stats.bytes_moved,
            seconds,
            megabytes_per_second: stats.bytes_moved as f64 / 1e6 / seconds.max(1e-9),
            failed: done.failed,
            ..Summary::default()
        }
    }
}

/// Pushes `todo` through `engine` (`jobs` at a time), creating missing ECR repositories
/// first (ECR refuses pushes into them; `--ecr-create-repos`); the jobs pushed (those left
/// after the ECR step) and, from [`tally`], what happened. `failed` already holds the run's
/// earlier failures.
async fn push_all<S: Source>(
    args: &ImportArgs,
    printer: &Printer,
    push: &Push<'_>,
    (engine, reporter): (&Engine<'_, S, RegistryDestination>, &BarReporter),
    todo: Vec<Job>,
    mut failed: Vec<Failure>,
) -> anyhow::Result<(Vec<Job>, Vec<Result<ImageStats, CopyError>>, Pushed)> {
    let jobs = usize::from(args.registry.jobs);
    let todo =
        super::ecr_repos::prepare(args, push.target, push.cluster, todo, &mut failed, printer)
            .await?;
    let results = engine.copy_all(&todo, jobs).await;
    reporter.done();
    let (stats, pushed) = tally(&todo, &results, &mut failed);
    Ok((
        todo,
        results,
        Pushed {
            stats,
            pushed,
            failed,
        },
    ))
}

/// The copy's results: the stats of the images pushed and how many they are; each failure
/// goes to `failed`, named.
fn tally(
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
                error: ferry_base::chain::flatten(e.source.as_ref()),
            }),
        }
    }
    (stats, pushed)
}

fn report(summary: &Summary, printer: &Printer) -> anyhow::Result<Exit> {
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
