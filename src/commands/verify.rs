//! `ferry verify`: the lock against a registry, or a bundle offline. The walk is
//! [`crate::verify`]; this file picks the store and prints the report.

use anyhow::Context;
use futures_util::StreamExt as _;
use serde::Serialize;

use super::printer::Printer;
use super::{common, target};
use crate::cli::VerifyArgs;
use crate::error::Exit;
use crate::oci::reference::Reference;
use crate::plan::LockFile;
use crate::store::Source;
use crate::store::bundle::BundleReader;
use crate::store::bundle::source::BundleSource;
use crate::verify::{Depth, ImageReport, Kind, Problem, bundle, verify_image};

#[derive(Serialize)]
struct Report {
    complete: bool,
    checked: String,
    images: Vec<ImageReport>,
    problems: usize,
    /// Problems not tied to one image (bundle-level).
    general: Vec<Problem>,
}

/// Runs `ferry verify`.
pub async fn run(args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let (target, cluster) = target::target_of(&args.target)?;
    let source = args
        .bundle
        .as_deref()
        .map(BundleReader::open)
        .transpose()?
        .map(BundleSource::new);
    let lock = match (&args.lock, &source) {
        (Some(p), _) => LockFile::load(p)?,
        (None, Some(s)) => common::bundle_lock(s)?,
        (None, None) => anyhow::bail!(
            "nothing to verify: give a BUNDLE.tar, or --lock images.lock with --cluster or --to"
        ),
    };
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let report = match (target, source) {
        (Some(target), _) => {
            let registries =
                target::registries(&args.registry, &args.target, &target, cluster.as_ref())?;
            let depth = if args.deep {
                Depth::Rehash
            } else {
                Depth::Present
            };
            let at = |src: &Reference| target.name_for(src);
            let images = check(
                &registries,
                &lock,
                &at,
                depth,
                &Default::default(),
                usize::from(args.registry.jobs),
            )
            .await?;
            if !images.is_empty()
                && images
                    .iter()
                    .all(|r| r.problems.iter().any(|p| p.kind == Kind::Unreachable))
            {
                let first = images.iter().flat_map(|r| &r.problems).next();
                anyhow::bail!(
                    "could not check registry {}: {}",
                    target.prefix,
                    first.map(|p| p.detail.as_str()).unwrap_or("")
                );
            }
            report(format!("registry {}", target.prefix), images, Vec::new())
        }
        (None, Some(source)) => {
            let mut general = bundle::structure(&source);
            let corrupt = bundle::rehash(&source, parallel).await;
            let images = check(
                &source,
                &lock,
                &|r| r.clone(),
                Depth::Present,
                &corrupt,
                parallel,
            )
            .await?;
            // A corrupt blob no image's report mentions (unreferenced, or hidden behind a
            // missing manifest) is still reported.
            for (d, why) in &corrupt {
                if !images
                    .iter()
                    .any(|r| r.problems.iter().any(|p| p.detail.contains(d.as_str())))
                {
                    general.push(Problem::new(Kind::DigestMismatch, why.clone()));
                }
            }
            report(
                format!("bundle {}", source.reader().path().display()),
                images,
                general,
            )
        }
        (None, None) => anyhow::bail!(
            "--lock needs a registry to check: --cluster cluster.yml or --to HOST[:PORT][/PATH]"
        ),
    };
    print(&report, args.json, printer)?;
    Ok(Exit::from_problems(!report.complete))
}

/// Verifies every image of `lock` in `store`, found at `at(source)`, `parallel` at a time.
async fn check<S: Source>(
    store: &S,
    lock: &LockFile,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    depth: Depth,
    corrupt: &std::collections::BTreeMap<crate::oci::digest::Digest, String>,
    parallel: usize,
) -> anyhow::Result<Vec<ImageReport>> {
    let mut refs = Vec::new();
    for e in &lock.images {
        let src =
            Reference::parse(&e.source).with_context(|| format!("lock entry {:?}", e.name))?;
        refs.push(at(&src));
    }
    Ok(futures_util::stream::iter(lock.images.iter().zip(&refs))
        .map(|(e, r)| verify_image(store, e, r, depth, corrupt))
        .buffered(parallel.max(1))
        .collect()
        .await)
}

fn report(checked: String, images: Vec<ImageReport>, general: Vec<Problem>) -> Report {
    let problems = images.iter().map(|r| r.problems.len()).sum::<usize>() + general.len();
    Report {
        complete: problems == 0,
        checked,
        images,
        problems,
        general,
    }
}

fn print(report: &Report, json: bool, printer: &Printer) -> anyhow::Result<()> {
    if json {
        return printer.json(report);
    }
    let width = report
        .images
        .iter()
        .map(|i| i.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut text = format!(
        "{:<width$}  {:<8}  {:>9}  {:>5}  DETAIL\n",
        "IMAGE", "STATUS", "PLATFORMS", "BLOBS"
    );
    for i in &report.images {
        let status = if i.problems.is_empty() {
            "ok"
        } else {
            "PROBLEM"
        };
        let first = i.problems.first().map(|p| p.detail.as_str()).unwrap_or("");
        text.push_str(&format!(
            "{:<width$}  {status:<8}  {:>9}  {:>5}  {first}\n",
            i.name, i.platforms, i.blobs
        ));
        for p in i.problems.iter().skip(1) {
            text.push_str(&format!(
                "{:<width$}  {:<8}  {:>9}  {:>5}  {}\n",
                "", "", "", "", p.detail
            ));
        }
    }
    for p in &report.general {
        text.push_str(&format!("bundle: {}\n", p.detail));
    }
    text.push_str(&if report.complete {
        format!(
            "complete: {} images verified in {}\n",
            report.images.len(),
            report.checked
        )
    } else {
        format!(
            "INCOMPLETE: {} problem(s) in {}\n",
            report.problems, report.checked
        )
    });
    printer.data(None, &text)
}
