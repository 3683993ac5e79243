//! `ferry import`: read the bundle in place, plan every image from its embedded lock, and
//! push through the copy engine into the target registry under the names `rke up` pulls.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::common::{self, Failure};
use super::printer::{Printer, human_bytes};
use super::render::BarReporter;
use super::target;
use crate::cli::ImportArgs;
use crate::copy::{Engine, ImageStats, Job};
use crate::error::{Exit, causes_line};
use crate::store::bundle::BundleReader;
use crate::store::bundle::source::BundleSource;
use crate::store::registry::RegistryDestination;

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
}

#[derive(Serialize)]
struct Planned {
    name: String,
    target: String,
    present: bool,
}

/// Runs `ferry import`.
pub async fn run(args: &ImportArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let (Some(target), cluster) = target::target_of(&args.target)? else {
        anyhow::bail!("say where to push: --to HOST[:PORT][/PATH] or --cluster cluster.yml");
    };
    let source = BundleSource::new(BundleReader::open(&args.bundle)?);
    let lock = common::bundle_lock(&source)?;
    let registries = target::registries(&args.registry, &args.target, &target, cluster.as_ref())?;
    let dest = RegistryDestination::new(registries.get(target.host())?, args.chunk_size);
    let jobs = usize::from(args.registry.jobs);

    let (work, mut failed) = jobs_of(&source, &lock, &target, printer, jobs).await?;
    let delta = source.delta().map_err(anyhow::Error::msg)?;
    let mounts = match delta {
        Some(d) => super::delta_check::check(&source, d, &work, &dest, &target, jobs).await?,
        None => Vec::new(),
    };
    let reporter = BarReporter::new(printer, "importing", args.json);
    let engine = Engine::new(&source, &dest, &reporter);
    for (digest, at) in &mounts {
        engine.knows(digest, at);
    }
    let complete: Vec<bool> = if args.check_all {
        vec![false; work.len()]
    } else {
        engine
            .complete(&work)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?
    };
    if args.dry_run {
        return print_plan(&work, &complete, &target, args.json, printer);
    }
    let already = complete.iter().filter(|c| **c).count();
    let todo: Vec<Job> = work
        .into_iter()
        .zip(complete)
        .filter_map(|(j, done)| (!done).then_some(j))
        .collect();
    let results = engine.copy_all(&todo, jobs).await;
    reporter.done();
    let mut stats = ImageStats::default();
    let mut pushed = 0;
    for (job, r) in todo.iter().zip(&results) {
        match r {
            Ok(s) => {
                stats += s;
                pushed += 1;
            }
            Err(e) => failed.push(Failure {
                name: job.name.clone(),
                error: crate::error::flatten(e.source.as_ref()),
            }),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        bundle: args.bundle.display().to_string(),
        target: target.prefix.to_string(),
        images: lock.images.len(),
        pushed,
        already_present: already,
        blobs_pushed: stats.blobs_moved,
        blobs_mounted: stats.blobs_mounted,
        blobs_present: stats.blobs_present,
        bytes_pushed: stats.bytes_moved,
        seconds,
        megabytes_per_second: stats.bytes_moved as f64 / 1e6 / seconds.max(1e-9),
        failed,
    };
    report(&summary, args.json, printer)
}

/// Every image of the bundle as a job into `target`, read from the bundle (local and cheap);
/// one the bundle cannot carry whole is named among the failures and nothing of it pushed.
async fn jobs_of(
    source: &BundleSource,
    lock: &crate::plan::LockFile,
    target: &crate::target::Target,
    printer: &Printer,
    jobs: usize,
) -> anyhow::Result<(Vec<Job>, Vec<Failure>)> {
    let inputs = common::lock_inputs(lock).context("images.lock in the bundle")?;
    let (resolved, mut failed) = common::resolve(source, &inputs, jobs * 2, printer, true).await;
    let mut work = Vec::new();
    for img in resolved {
        match crate::verify::bundle::image_problem(&img, source) {
            Some(p) => failed.push(Failure {
                name: img.locked.name.clone(),
                error: format!("{}; nothing of this image was pushed", p.detail),
            }),
            None => work.push(Job {
                name: img.locked.name.clone(),
                to: target.name_for(&img.reference),
                from: img.reference.clone(),
                image: img,
            }),
        }
    }
    Ok((work, failed))
}

fn report(summary: &Summary, json: bool, printer: &Printer) -> anyhow::Result<Exit> {
    if json {
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
    json: bool,
    printer: &Printer,
) -> anyhow::Result<Exit> {
    let planned: Vec<Planned> = work
        .iter()
        .zip(complete)
        .map(|(j, c)| Planned {
            name: j.name.clone(),
            target: j.to.to_string(),
            present: *c,
        })
        .collect();
    if json {
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
