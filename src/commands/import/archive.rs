//! `ferry import ARCHIVE`: an image archive people already have (`rancher-images.tar.gz`
//! from `rancher-save-images.sh`, any `docker save` / `podman save` output, an OCI archive)
//! pushed under the RKE names, without a Docker daemon: read once, every layer checked
//! against its config's `diff_ids`, uncompressed layers gzipped on the way, then the same
//! copy engine as a bundle import.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Push, Pushed, Summary, push_all, report};
use crate::cli::ImportArgs;
use crate::commands::common::{self, Failure};
use crate::commands::printer::{Printer, human_bytes};
use crate::commands::progress_bar::BarReporter;
use crate::error::Exit;
use crate::target::Target;
use ferry_copy::{CopyError, Engine, ImageStats, Job};
use ferry_oci::reference::Reference;
use ferry_plan::LockFile;
use ferry_store::archive::SpoolDir;
use ferry_store::archive::{self, ArchiveSource, Options};

/// Free space kept in the spool directory's file system by default.
const SPOOL_MARGIN: u64 = 1 << 30;

/// The default spool limit: what the file system holding `dir` has free, less a margin.
fn free_space(dir: &Path) -> u64 {
    rustix::fs::statvfs(dir)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(u64::MAX)
        .saturating_sub(SPOOL_MARGIN)
}

/// Runs `ferry import` of an archive into the target.
pub(super) async fn run(
    args: &ImportArgs,
    printer: &Printer,
    push: &Push<'_>,
) -> anyhow::Result<Exit> {
    let started = Instant::now();
    // Removed with its files when this returns, also on an error; on a panic, by the hook.
    let (_spool, opts) = spool(args, printer)?;
    let scanned = scan(args, printer, opts).await?;
    let spooled = scanned.spooled;
    let (format, contents) = archive::images::contents(&scanned)?;
    printer.say(format!(
        "read {} ({}) in {:.1} s: {} images, {} layers{}",
        args.bundle.display(),
        format.describe(),
        started.elapsed().as_secs_f64(),
        contents.images.len(),
        contents.layers.len(),
        if spooled > 0 {
            format!(", {} spooled", human_bytes(spooled))
        } else {
            String::new()
        }
    ));
    let source = ArchiveSource::new(args.bundle.clone(), contents);
    let inputs = inputs(&source);
    tracing::info!(
        "{}: {} ({} names); {} spooled",
        args.bundle.display(),
        format.describe(),
        inputs.len(),
        human_bytes(spooled)
    );
    let jobs = usize::from(args.registry.jobs);
    let (resolved, failed) = common::resolve(&source, &inputs, jobs * 2, printer).await;
    let work: Vec<Job> = resolved
        .into_iter()
        .map(|img| {
            let to = push.target.name_for(&img.reference);
            Job::new(img, to)
        })
        .collect();
    let reporter = BarReporter::new(printer, "importing");
    let engine = Engine::new(&source, push.dest, &reporter);
    if args.dry_run {
        reporter.done();
        return print_plan(&work, &failed, printer);
    }
    let (work, results, done) =
        push_all(args, printer, push, (&engine, &reporter), work, failed).await?;
    if let Some(out) = &args.lock_out {
        write_lock(out, &work, &results, &done, push.target, printer)?;
    }
    let summary = Summary {
        archive: Some(format.describe().to_string()),
        spooled_bytes: Some(spooled),
        ..Summary::new(args, push.target, inputs.len(), done, started)
    };
    report(&summary, printer)
}

/// The spool directory the archive's layers are kept in while the images are not known,
/// and the reader's options; says so for a gzip-compressed archive (read as one stream).
fn spool(args: &ImportArgs, printer: &Printer) -> anyhow::Result<(SpoolDir, Options)> {
    let gzip = archive::is_gzip(&args.bundle)
        .with_context(|| format!("cannot read {}", args.bundle.display()))?;
    let base = args.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
    let spool = SpoolDir::new_in(&base)
        .with_context(|| format!("cannot create a spool directory in {}", base.display()))?;
    let limit = args.spool_limit.unwrap_or_else(|| free_space(spool.path()));
    let compress =
        (args.layer_compression == crate::cli::LayerCompression::Gzip).then_some(args.gzip_level);
    if gzip {
        printer.say(format!(
            "{} is gzip-compressed, so it is read once as a stream and its layers are kept{} in {} until the images are known (at most {}; --spool-dir, --spool-limit)",
            args.bundle.display(),
            if compress.is_some() { ", gzipped," } else { "" },
            spool.path().display(),
            human_bytes(limit)
        ));
    }
    let opts = Options {
        compress,
        spool_dir: spool.path().to_path_buf(),
        spool_limit: limit,
        parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
        progress: Arc::new(AtomicU64::new(0)),
    };
    Ok((spool, opts))
}

/// Reads the archive, with a progress bar over its bytes.
async fn scan(
    args: &ImportArgs,
    printer: &Printer,
    opts: Options,
) -> anyhow::Result<archive::Scanned> {
    let size = std::fs::metadata(&args.bundle)
        .with_context(|| format!("cannot read {}", args.bundle.display()))?
        .len();
    let bar = printer.bar(
        size,
        "{spinner} reading [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} eta {eta} {wide_msg}",
    );
    let progress = opts.progress.clone();
    let path = args.bundle.clone();
    let mut task = tokio::task::spawn_blocking(move || archive::scan::scan(&path, &opts));
    let scanned = loop {
        tokio::select! {
            done = &mut task => break done,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                bar.set_position(progress.load(Ordering::Relaxed));
            }
        }
    };
    bar.finish_and_clear();
    Ok(scanned.context("the archive reader stopped")??)
}

/// Every name of every image in the archive, once.
fn inputs(source: &ArchiveSource) -> Vec<(String, Reference)> {
    let inputs: Vec<(String, Reference)> = source
        .contents()
        .images
        .iter()
        .flat_map(|i| i.names.iter().map(|n| (n.familiar(), n.clone())))
        .collect();
    ferry_plan::input::dedupe(inputs)
}

/// `--dry-run`: what would be pushed, and the images that could not be read.
fn print_plan(work: &[Job], failed: &[Failure], printer: &Printer) -> anyhow::Result<Exit> {
    let text: String = work
        .iter()
        .map(|j| format!("would push {}\n", j.to))
        .collect();
    printer.data(None, &text)?;
    // An image that cannot be read from the archive would not be pushed either: say so.
    for f in failed {
        printer.say(format!("error: {}: {}", f.name, f.error));
    }
    Ok(Exit::from_problems(!failed.is_empty()))
}

/// `--lock-out FILE`: the lock of the images pushed, at the digests as pushed.
fn write_lock(
    out: &Path,
    work: &[Job],
    results: &[Result<ImageStats, CopyError>],
    done: &Pushed,
    target: &Target,
    printer: &Printer,
) -> anyhow::Result<()> {
    let images: Vec<_> = work
        .iter()
        .zip(results)
        .filter(|(_, r)| r.is_ok())
        .map(|(job, _)| job.image.locked.clone())
        .collect();
    let total =
        ferry_oci::manifest::sum_sizes(images.iter().map(|l| l.total_size)).unwrap_or(u64::MAX);
    let yaml = LockFile::new(images, total)
        .to_yaml()
        .context("cannot render the lock")?;
    ferry_base::fsutil::write_atomic(out, yaml.as_bytes())?;
    printer.say(format!(
        "wrote {} ({} image(s), the digests as pushed): check the registry with `ferry verify --lock {} --to {}`",
        out.display(),
        done.pushed,
        out.display(),
        target.prefix
    ));
    Ok(())
}
