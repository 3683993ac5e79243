//! `ferry import BUNDLE`: read the bundle in place, plan every image from its embedded lock,
//! check a delta's left-out layers are in the target, and push through the copy engine.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::{Push, Summary, push_all, report};
use crate::cli::ImportArgs;
use crate::commands::common::{self, Failure};
use crate::commands::printer::Printer;
use crate::commands::progress_bar::BarReporter;
use crate::error::Exit;
use crate::target::Target;
use ferry_copy::{Engine, Job};
use ferry_plan::{LockFile, Pin};
use ferry_store::bundle::{BundleError, BundleReader, BundleSource, IMAGES_LOCK};

#[derive(Serialize)]
struct Planned {
    name: String,
    target: String,
    present: bool,
}

/// Imports the bundle `source` (the run started at `started`).
pub(super) async fn run(
    args: &ImportArgs,
    printer: &Printer,
    mut source: BundleSource,
    push: &Push<'_>,
    started: Instant,
) -> anyhow::Result<Exit> {
    let mut lock = common::bundle_lock(&source)?;
    // index.json is parsed and images.lock read: the run needs nothing more of the metadata.
    source.release_metadata();
    let jobs = usize::from(args.registry.jobs);
    let images = lock.images.len();
    let unsigned = match crate::commands::policy::from_flags(args.key.as_deref(), &args.keyless)? {
        Some(policy) => gate(&source, &mut lock, &policy).await?,
        None => Vec::new(),
    };
    let (work, mut failed) = jobs_of(&source, lock, push.target, jobs).await?;
    failed.extend(unsigned);
    let delta = source.delta().map_err(anyhow::Error::msg)?;
    let mounts = match delta {
        Some(d) => {
            crate::commands::delta_check::check(&source, d, &work, push.dest, push.target, jobs)
                .await?
        }
        None => Vec::new(),
    };
    let reporter = BarReporter::new(printer, "importing");
    let engine = Engine::new(&source, push.dest, &reporter);
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
        return print_plan(&work, &complete, push.target, printer);
    }
    let already = complete.iter().filter(|c| **c).count();
    let mut present: Vec<Job> = Vec::new();
    let mut todo: Vec<Job> = Vec::new();
    for (job, done) in work.into_iter().zip(complete) {
        if done {
            present.push(job);
        } else {
            todo.push(job);
        }
    }
    let (todo, results, mut done) =
        push_all(args, printer, push, (&engine, &reporter), todo, failed).await?;
    // Referrers that landed (now or before) are listed where a registry without the
    // referrers API keeps them: its tag-schema indexes, merged, never overwritten.
    let landed: Vec<&Job> = present
        .iter()
        .chain(
            todo.iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(j, _)| j),
        )
        .collect();
    for e in engine.index_referrers(&landed, jobs).await {
        done.failed.push(common::Failure {
            name: e.image.clone(),
            error: ferry_base::chain::flatten(e.source.as_ref()),
        });
    }
    let summary = Summary {
        already_present: already,
        ..Summary::new(args, push.target, images, done, started)
    };
    report(&summary, printer)
}

/// `import --key` (or keyless): takes out of `lock` every image without a valid signature (and
/// what is attached to it), so that nothing of it is pushed; each is named as a failure.
async fn gate(
    source: &BundleSource,
    lock: &mut LockFile,
    policy: &ferry_verify::signature::Policy,
) -> anyhow::Result<Vec<Failure>> {
    let flag = crate::commands::policy::flag(policy);
    let problems =
        ferry_verify::signature::check_signed(source, lock, &|r| r.clone(), policy).await;
    let refused: std::collections::HashSet<&str> =
        problems.iter().filter_map(|p| p.image.as_deref()).collect();
    lock.images.retain(|i| {
        let owner = i
            .attached_to
            .as_ref()
            .map_or(i.name.as_str(), |a| a.image.as_str());
        !refused.contains(owner)
    });
    Ok(problems
        .iter()
        .map(|p| Failure {
            name: p.image.clone().unwrap_or_default(),
            error: format!("{}; {flag} kept it out, nothing of it was pushed", p.detail),
        })
        .collect())
}

/// The ferry bundle at `path` (a split one too), or `None` when the file is another kind of
/// archive (gzip-compressed, a `docker save` layout, an OCI layout without images.lock).
pub(super) fn open(path: &std::path::Path) -> anyhow::Result<Option<BundleSource>> {
    if ferry_store::bundle::parts_file_for(path).is_some() {
        return Ok(Some(BundleSource::new(BundleReader::open(path)?)));
    }
    if ferry_store::archive::is_gzip(path)
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
        Ok(r) if r.metadata(IMAGES_LOCK).is_some() => Ok(Some(BundleSource::new(r))),
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
            name == IMAGES_LOCK.as_bytes()
        })
}

/// Every image of the bundle as a job into `target`, read from the bundle (local and cheap);
/// one the bundle cannot carry whole is named among the failures and nothing of it pushed.
/// The lock goes once its images are listed, the list once they are resolved.
async fn jobs_of(
    source: &BundleSource,
    lock: LockFile,
    target: &Target,
    jobs: usize,
) -> anyhow::Result<(Vec<Job>, Vec<Failure>)> {
    let inputs = lock
        .inputs(Pin::Bundle)
        .context("images.lock in the bundle")?;
    drop(lock);
    let (resolved, mut failed) = common::resolve_quietly(source, &inputs, jobs * 2).await;
    drop(inputs);
    let mut work = Vec::new();
    for img in resolved {
        match ferry_verify::bundle::image_problem(&img, source) {
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

fn print_plan(
    work: &[Job],
    complete: &[bool],
    target: &Target,
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
