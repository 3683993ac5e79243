//! Writing the bundle: plan its layout, fill it through the copy engine from the upstream
//! registries, finish it atomically (or leave it resumable).

use serde::Serialize;

use crate::cli::ExportArgs;
use crate::commands::common::{self, Failure};
use crate::commands::printer::Printer;
use crate::commands::progress_bar::BarReporter;
use crate::error::causes_line;
use ferry_copy::{Engine, ImageStats, Job};
use ferry_plan::bundle::BundleContents;
use ferry_plan::resolve::ResolvedImage;
use ferry_store::bundle::{BundleWriter, DeltaInfo, parts_path, plan};
use ferry_store::registry::Registries;

/// With --split: the `.parts` file and the parts.
#[derive(Serialize)]
pub(super) struct Parts {
    pub file: String,
    pub parts: Vec<PartSummary>,
}

#[derive(Serialize)]
pub(super) struct PartSummary {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// What writing the bundle did.
pub(super) struct Written {
    /// What the engine moved.
    pub stats: ImageStats,
    /// An interrupted run was picked up.
    pub resumed: bool,
    /// The bundle's size.
    pub bundle_size: u64,
    /// With --split: the parts.
    pub parts: Option<Parts>,
}

/// Plans the bundle and fills it through the engine. Any image that fails leaves the bundle
/// unfinished (and resumable). Takes the images and the contents: each goes as soon as it has
/// served (the contents once planned, each image's bookkeeping once copied).
pub(super) async fn write(
    args: &ExportArgs,
    registries: &Registries,
    resolved: Vec<ResolvedImage>,
    bundle: BundleContents,
    delta: Option<&DeltaInfo>,
    printer: &Printer,
    failed: &mut Vec<Failure>,
) -> anyhow::Result<Written> {
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
    let stats = copy(args, registries, resolved, &writer, printer, failed).await?;
    let parts = writer.finish()?.map(|p| Parts {
        file: parts_path(&args.output).display().to_string(),
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
    Ok(Written {
        stats,
        resumed,
        bundle_size,
        parts,
    })
}

/// Copies every image into `writer`; fails, naming the images and where the verified part is
/// kept, when one failed.
async fn copy(
    args: &ExportArgs,
    registries: &Registries,
    resolved: Vec<ResolvedImage>,
    writer: &BundleWriter,
    printer: &Printer,
    failed: &mut Vec<Failure>,
) -> anyhow::Result<ImageStats> {
    let reporter = BarReporter::new(printer, "exporting");
    let engine = Engine::new(registries, writer, &reporter);
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
                error: ferry_base::chain::flatten(e.source.as_ref()),
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
    Ok(stats)
}
