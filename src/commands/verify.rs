//! `ferry verify`: the lock against a registry, or a bundle offline. The walk is
//! [`ferry_verify`]; this file picks the store and prints the report.

use anyhow::Context;
use futures_util::StreamExt as _;
use serde::Serialize;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::printer::Printer;
use super::progress_bar::counting;
use super::{common, target_registry};
use crate::cli::VerifyArgs;
use crate::error::Exit;
use crate::target::Target;
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;
use ferry_plan::LockFile;
use ferry_store::Source;
use ferry_store::bundle::{BundleReader, BundleSet, BundleSource, DeltaInfo, parts_file_for};
use ferry_store::registry::Registries;
use ferry_verify::signature::{Policy, check_attested, check_signed};
use ferry_verify::{Depth, ImageReport, Kind, Problem, bundle, verify_image};

#[derive(Serialize)]
struct Report {
    complete: bool,
    checked: String,
    images: Vec<ImageReport>,
    problems: usize,
    /// Problems not tied to one image (bundle-level).
    general: Vec<Problem>,
    /// For a delta bundle: what it leaves out, and whether that was checked (--base).
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<DeltaReport>,
}

#[derive(Serialize)]
struct DeltaReport {
    delta_of: String,
    base: String,
    layers_left_out: usize,
    bytes_left_out: u64,
    checked_in_bases: bool,
}

/// Runs `ferry verify`.
pub async fn run(args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let (target, cluster) = target_registry::target_of(&args.target)?;
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    // A split bundle checked offline: every part against its sum first, so a bad part is
    // named even when it keeps the bundle from being opened at all.
    let mut part_problems = Vec::new();
    if target.is_none()
        && let Some(parts_path) = args.bundle.as_deref().and_then(parts_file_for)
    {
        let total = ferry_store::bundle::PartsFile::read(&parts_path)
            .map_or(0, |l| l.parts.iter().map(|p| p.size).sum());
        let hashed = Arc::new(AtomicU64::new(0));
        let (problems, usable) = counting(
            printer,
            "hashing parts",
            total,
            &hashed,
            bundle::parts(&parts_path, parallel, &hashed),
        )
        .await?;
        if !usable {
            let checked = format!("split bundle {}", parts_path.display());
            print(&report(checked, Vec::new(), problems), printer)?;
            return Ok(Exit::from_problems(true));
        }
        part_problems = problems;
    }
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
    let report = match (target, source) {
        (Some(target), _) => {
            let registries = target_registry::target_registries(
                &args.registry,
                &args.target,
                &target,
                cluster.as_ref(),
            )?;
            online(args, &registries, &target, &lock, printer).await?
        }
        (None, Some(source)) => {
            offline(args, source, &lock, part_problems, parallel, printer).await?
        }
        (None, None) => anyhow::bail!(
            "--lock needs a registry to check: --cluster cluster.yml or --to HOST[:PORT][/PATH]"
        ),
    };
    print(&report, printer)?;
    Ok(Exit::from_problems(!report.complete))
}

/// The lock checked against the target registry. When no image could be asked at all, that is
/// an error (the registry is down or refuses us), not a list of missing images.
async fn online(
    args: &VerifyArgs,
    registries: &Registries,
    target: &Target,
    lock: &LockFile,
    printer: &Printer,
) -> anyhow::Result<Report> {
    let policy = super::policy::from_flags(args.key.as_deref(), &args.keyless)?;
    let depth = if args.deep {
        Depth::Rehash
    } else {
        Depth::Present
    };
    let at = |src: &Reference| target.name_for(src);
    let jobs = usize::from(args.registry.jobs);
    let bar = printer.bar(
        lock.images.len() as u64,
        "{spinner} verifying [{bar:30}] {pos}/{len} images {elapsed} {wide_msg}",
    );
    let how = How {
        depth,
        corrupt: &Default::default(),
        parallel: jobs,
        policy: policy.as_ref(),
        attestations: args.attestations,
        bar: &bar,
    };
    let images = check(registries, lock, &at, &how).await?;
    bar.finish_and_clear();
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
    Ok(report(
        format!("registry {}", target.prefix),
        images,
        Vec::new(),
    ))
}

/// A bundle checked offline: its structure, every blob re-hashed, every image of `lock`
/// complete. A delta bundle's left-out layers are looked up (and re-hashed) in the `--base`
/// bundles; without them they are listed as not checked.
async fn offline(
    args: &VerifyArgs,
    source: BundleSource,
    lock: &LockFile,
    mut general: Vec<Problem>,
    parallel: usize,
    printer: &Printer,
) -> anyhow::Result<Report> {
    let policy = super::policy::from_flags(args.key.as_deref(), &args.keyless)?;
    general.extend(bundle::structure(&source));
    let total = source.reader().blobs().map(|(_, l)| l.size).sum();
    let hashed = Arc::new(AtomicU64::new(0));
    let mut corrupt = counting(
        printer,
        "re-hashing blobs",
        total,
        &hashed,
        bundle::rehash(&source, parallel, &hashed),
    )
    .await;
    let delta = source.delta().ok().flatten().cloned();
    let bases = args
        .bases
        .iter()
        .map(|p| BundleReader::open(p).map(BundleSource::new))
        .collect::<Result<Vec<_>, _>>()?;
    if delta.is_none() && !bases.is_empty() {
        anyhow::bail!(
            "--base is for delta bundles, and {} is not one (it carries every layer)",
            source.reader().path().display()
        );
    }
    let mut unchecked = Vec::new();
    let checked_in = format!("bundle {}", source.reader().path().display());
    let set = BundleSet::new(bases.iter().cloned().chain([source.clone()]).collect());
    let hidden = indicatif::ProgressBar::hidden();
    let mut images = if let Some(d) = &delta {
        if bases.is_empty() {
            unchecked = d.left_out.iter().map(|l| l.digest.clone()).collect();
        } else {
            let spinner = printer.spinner(format!(
                "re-hashing {} left-out layers in the base bundles",
                d.left_out.len()
            ));
            left_out_in_bases(&set, d, parallel, &mut corrupt, &mut general).await;
            spinner.finish_and_clear();
        }
        let how = How {
            depth: Depth::Present,
            corrupt: &corrupt,
            parallel,
            policy: policy.as_ref(),
            attestations: args.attestations,
            bar: &hidden,
        };
        check(&set, lock, &|r| r.clone(), &how).await?
    } else {
        let how = How {
            depth: Depth::Present,
            corrupt: &corrupt,
            parallel,
            policy: policy.as_ref(),
            attestations: args.attestations,
            bar: &hidden,
        };
        check(&source, lock, &|r| r.clone(), &how).await?
    };
    // Without a base, a left-out layer is not a missing one.
    for r in &mut images {
        r.problems.retain(|p| {
            !(p.kind == Kind::MissingBlob
                && p.digest.as_ref().is_some_and(|d| unchecked.contains(d)))
        });
    }
    // A corrupt blob no image's report is about (unreferenced, or hidden behind a missing
    // manifest) is still reported.
    for (d, why) in &corrupt {
        if !images
            .iter()
            .any(|r| r.problems.iter().any(|p| p.digest.as_ref() == Some(d)))
        {
            general.push(Problem::new(Kind::DigestMismatch, why.clone()).at(d));
        }
    }
    let mut r = report(checked_in, images, general);
    if let Some(d) = &delta {
        r.delta = Some(DeltaReport {
            delta_of: d.delta_of.to_string(),
            base: d.base.clone(),
            layers_left_out: d.left_out.len(),
            bytes_left_out: d.bytes(),
            checked_in_bases: !bases.is_empty(),
        });
    }
    Ok(r)
}

/// Each layer a delta leaves out, looked up in the `--base` bundles of `set` and re-hashed
/// there: a corrupt one joins `corrupt`, one held by no base is a problem.
async fn left_out_in_bases(
    set: &BundleSet,
    delta: &DeltaInfo,
    parallel: usize,
    corrupt: &mut std::collections::BTreeMap<Digest, String>,
    general: &mut Vec<Problem>,
) {
    let layers: Vec<Digest> = delta.left_out.iter().map(|l| l.digest.clone()).collect();
    let found = futures_util::stream::iter(layers)
        .map(|digest| {
            let holder = set.holding(&digest).cloned();
            async move {
                let Some(b) = holder else {
                    return Some((digest, None));
                };
                let d = digest.clone();
                let why = tokio::task::spawn_blocking(move || {
                    b.reader().verify_blob(&d).err().map(|e| e.to_string())
                })
                .await
                .ok()
                .flatten();
                why.map(|w| (digest, Some(w)))
            }
        })
        .buffer_unordered(parallel.max(1))
        .filter_map(|x| async move { x })
        .collect::<Vec<_>>()
        .await;
    for (digest, why) in found {
        match why {
            Some(why) => {
                corrupt.insert(digest, why);
            }
            None => general.push(
                Problem::new(
                    Kind::MissingBlob,
                    format!(
                        "layer {digest}, left out of the delta, is in none of the --base bundles"
                    ),
                )
                .at(&digest),
            ),
        }
    }
}

/// How [`check`] verifies.
struct How<'a> {
    depth: Depth,
    /// Blobs already known to be corrupt, with why.
    corrupt: &'a std::collections::BTreeMap<Digest, String>,
    /// Images checked at once.
    parallel: usize,
    /// `--key` or keyless: also require a valid signature.
    policy: Option<&'a Policy>,
    /// `--attestations`: also require a valid attestation by the key.
    attestations: bool,
    /// Counts the images as they finish.
    bar: &'a indicatif::ProgressBar,
}

/// Verifies every image of `lock` in `store`, found at `at(source)`, `how.parallel` at a time.
async fn check<S: Source>(
    store: &S,
    lock: &LockFile,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    how: &How<'_>,
) -> anyhow::Result<Vec<ImageReport>> {
    let How {
        depth,
        corrupt,
        parallel,
        policy,
        attestations,
        bar,
    } = *how;
    let mut refs = Vec::new();
    for e in &lock.images {
        let src =
            Reference::parse(&e.source).with_context(|| format!("lock entry {:?}", e.name))?;
        refs.push(at(&src));
    }
    let mut reports: Vec<ImageReport> = futures_util::stream::iter(lock.images.iter().zip(&refs))
        .map(|(e, r)| async move {
            let report = verify_image(store, e, r, depth, corrupt).await;
            bar.inc(1);
            bar.set_message(e.name.clone());
            report
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    if let Some(policy) = policy {
        let mut problems = check_signed(store, lock, at, policy).await;
        if let (true, Policy::Key(key)) = (attestations, policy) {
            problems.extend(check_attested(store, lock, at, key).await);
        }
        for p in problems {
            if let Some(r) = reports
                .iter_mut()
                .find(|r| Some(&r.name) == p.image.as_ref())
            {
                r.problems.push(p);
            }
        }
    }
    Ok(reports)
}

fn report(checked: String, images: Vec<ImageReport>, general: Vec<Problem>) -> Report {
    let problems = images.iter().map(|r| r.problems.len()).sum::<usize>() + general.len();
    Report {
        complete: problems == 0,
        checked,
        images,
        problems,
        general,
        delta: None,
    }
}

fn print(report: &Report, printer: &Printer) -> anyhow::Result<()> {
    if printer.is_json() {
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
    if let Some(d) = &report.delta {
        text.push_str(&if d.checked_in_bases {
            format!(
                "delta of {} ({}): its {} left-out layers ({}) were found and re-hashed in the --base bundles\n",
                d.base,
                d.delta_of,
                d.layers_left_out,
                super::printer::human_bytes(d.bytes_left_out)
            )
        } else {
            format!(
                "delta of {} ({}): {} layers ({}) are left out and were not checked; check them with --base {}\n",
                d.base,
                d.delta_of,
                d.layers_left_out,
                super::printer::human_bytes(d.bytes_left_out),
                d.base
            )
        });
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
