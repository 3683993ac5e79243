//! `ferry diff OLD NEW`: two image sets (locks or bundles, in any mix) compared by their
//! locks ([`ferry_plan::diff::LockDiff`]), and the bytes the new set needs beyond the old
//! one, counted by the very selection `export --since OLD` makes ([`ferry_plan::delta::select`]
//! over the same bundle contents, with the older set read by [`super::since::base_of`]).
//! Exit 0 when the sets are identical, 1 when they differ, as diff(1).

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::printer::{Printer, human_bytes};
use super::{common, since};
use crate::cli::DiffArgs;
use crate::error::Exit;
use ferry_oci::platform::Platform;
use ferry_plan::diff::LockDiff;
use ferry_plan::{LockFile, Pin};
use ferry_store::bundle::{BundleError, BundleReader, BundleSource};

/// One side of the comparison.
struct Side {
    lock: LockFile,
    /// Its bundle, when it is one (its manifests are then at hand).
    bundle: Option<BundleSource>,
}

fn side(path: &Path) -> anyhow::Result<Side> {
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: give an images.lock or a bundle (.tar, .parts)",
            path.display()
        );
    }
    match BundleReader::open(path) {
        Ok(reader) => {
            let source = BundleSource::new(reader);
            Ok(Side {
                lock: common::bundle_lock(&source)?,
                bundle: Some(source),
            })
        }
        Err(BundleError::NotABundle { .. }) => Ok(Side {
            lock: LockFile::load(path).with_context(|| {
                format!(
                    "{} is neither a ferry bundle nor an images.lock",
                    path.display()
                )
            })?,
            bundle: None,
        }),
        Err(e) => Err(e.into()),
    }
}

/// What the new set needs beyond the old one.
#[derive(Debug, Serialize)]
struct Needed {
    /// Bytes of every object a delta against OLD carries.
    bytes: u64,
    /// Objects (manifests, configs, layers) it carries.
    objects: usize,
    /// Layers of the new set the old one has (left out).
    layers_left_out: usize,
    /// Their bytes.
    bytes_left_out: u64,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    identical: bool,
    old: String,
    new: String,
    #[serde(flatten)]
    diff: &'a LockDiff,
    /// Exactly what `export --since OLD` would carry, when both sets' manifests are known.
    bytes_needed: Option<&'a Needed>,
    /// An upper bound from the locks alone: the added and changed images whole.
    bytes_at_most: u64,
}

/// Runs `ferry diff`.
pub async fn run(args: &DiffArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let old = side(&args.old)?;
    let new = side(&args.new)?;
    let diff = LockDiff::of(&old.lock, &new.lock);
    let needed = if args.resolve || (old.bundle.is_some() && new.bundle.is_some()) {
        Some(needed(args, &new, printer).await?)
    } else {
        None
    };
    let report = Report {
        identical: diff.is_empty(),
        old: args.old.display().to_string(),
        new: args.new.display().to_string(),
        diff: &diff,
        bytes_needed: needed.as_ref(),
        bytes_at_most: diff.bytes_at_most(),
    };
    if printer.is_json() {
        printer.json(&report)?;
    } else {
        printer.data(None, &render(&report, args))?;
    }
    Ok(Exit::from_problems(!report.identical))
}

/// The bytes `export --since OLD` of the new set would carry: the new set's bundle contents,
/// less what [`ferry_plan::delta::select`] leaves out.
async fn needed(args: &DiffArgs, new: &Side, printer: &Printer) -> anyhow::Result<Needed> {
    let jobs = usize::from(args.registry.jobs);
    let registries = common::upstream_registries(&args.upstream, &args.registry)?;
    let base = since::base_of(&args.old, &registries, jobs, printer).await?;
    let (mut resolved, failed) = match &new.bundle {
        Some(source) => common::resolve_quietly(source, &new.lock.inputs(Pin::Bundle)?, jobs).await,
        None => common::resolve(&registries, &new.lock.inputs(Pin::Upstream)?, jobs, printer).await,
    };
    if !failed.is_empty() {
        anyhow::bail!(
            "cannot count the bytes {} needs: {} of its image(s) could not be read: {}",
            args.new.display(),
            failed.len(),
            crate::error::causes_line(common::pairs(&failed))
        );
    }
    // The docker-archive view does not change what is carried; export's default platform.
    let platform = Platform::parse("linux/amd64").context("the default platform")?;
    let mut contents =
        ferry_plan::bundle::contents(&mut resolved, &platform).map_err(anyhow::Error::msg)?;
    let delta = ferry_plan::delta::select(&resolved, &base, &mut contents);
    Ok(Needed {
        bytes: contents
            .objects
            .values()
            .fold(0u64, |a, &b| a.saturating_add(b)),
        objects: contents.objects.len(),
        layers_left_out: delta.left_out.len(),
        bytes_left_out: delta.bytes(),
    })
}

fn render(r: &Report<'_>, args: &DiffArgs) -> String {
    let d = r.diff;
    let mut out = format!("--- {}\n+++ {}\n", r.old, r.new);
    let width = d
        .added
        .iter()
        .map(|a| a.name.len())
        .chain(d.removed.iter().map(|a| a.name.len()))
        .chain(d.changed.iter().map(|a| a.name.len()))
        .max()
        .unwrap_or(0);
    let short = super::inspect::short_digest;
    for a in &d.added {
        out.push_str(&format!(
            "added    {:<width$}  {}  {}\n",
            a.name,
            short(&a.digest),
            a.platforms.join(",")
        ));
    }
    for a in &d.removed {
        out.push_str(&format!(
            "removed  {:<width$}  {}  {}\n",
            a.name,
            short(&a.digest),
            a.platforms.join(",")
        ));
    }
    for c in &d.changed {
        let plats: Vec<String> = c
            .platforms_added
            .iter()
            .map(|p| format!("+{p}"))
            .chain(c.platforms_removed.iter().map(|p| format!("-{p}")))
            .collect();
        let line = format!(
            "changed  {:<width$}  {} -> {}  {}",
            c.name,
            short(&c.old_digest),
            short(&c.new_digest),
            plats.join(" ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} added, {} removed, {} changed, {} unchanged\n",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    ));
    out.push_str(&match r.bytes_needed {
        Some(n) => format!(
            "bytes needed: {} ({} bytes, {} objects): what `ferry export --since {}` carries; {} layers ({}) are in the old set\n",
            human_bytes(n.bytes),
            n.bytes,
            n.objects,
            args.old.display(),
            n.layers_left_out,
            human_bytes(n.bytes_left_out)
        ),
        None => format!(
            "bytes needed: at most {} (the added and changed images whole); --resolve fetches the locks' manifests to count them exactly\n",
            human_bytes(r.bytes_at_most)
        ),
    });
    out
}
