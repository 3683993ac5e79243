//! `ferry lock`: resolve the image list against the upstream registries and write
//! `images.lock` (see [`ferry_plan`]).

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::common::{self, Failure};
use super::printer::{Printer, human_bytes};
use crate::cli::LockArgs;
use crate::error::{Exit, causes_line};
use ferry_plan::LockFile;
use ferry_plan::resolve::total_unique;
use ferry_store::registry::RateLimit;

#[derive(Serialize)]
struct RegistryLimit {
    registry: String,
    #[serde(flatten)]
    limit: RateLimit,
}

#[derive(Serialize)]
struct Summary {
    lock_file: String,
    images: usize,
    locked: usize,
    platforms: usize,
    total_size: u64,
    seconds: f64,
    failed: Vec<Failure>,
    rate_limits: Vec<RegistryLimit>,
}

/// Runs `ferry lock`.
pub async fn run(args: &LockArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let images = common::image_list(&args.select, args.images.as_deref(), printer)?;
    let registries = common::upstream_registries(&args.upstream, &args.registry)?;
    // Token registries then grant many repositories' pull scopes per token request.
    registries.expect_pulls(images.iter().map(|(_, r)| r));
    let started = Instant::now();
    let jobs = usize::from(args.registry.jobs) * 2;
    let (mut resolved, mut failed) = common::resolve(&registries, &images, jobs, printer).await;
    failed.extend(common::attach(&registries, &args.upstream, &mut resolved, jobs, printer).await);
    if resolved.is_empty() {
        anyhow::bail!(
            "no image could be resolved, so no lock file was written: {}",
            causes_line(common::pairs(&failed))
        );
    }
    let total = total_unique(&resolved.iter().collect::<Vec<_>>())
        .context("the images' sizes add up to more than 16 EiB: a registry sent absurd sizes")?;
    let platforms = resolved.iter().map(|r| r.locked.platforms.len()).sum();
    let lock = LockFile::new(resolved.into_iter().map(|r| r.locked).collect(), total);
    let yaml = lock.to_yaml().context("cannot render the lock file")?;
    ferry_base::fsutil::write_atomic(&args.output, yaml.as_bytes())?;

    let mut rate_limits: Vec<RegistryLimit> = registries
        .used()
        .iter()
        .filter_map(|r| {
            r.rate_limit().map(|limit| RegistryLimit {
                registry: r.name().to_string(),
                limit,
            })
        })
        .collect();
    rate_limits.sort_by(|a, b| a.registry.cmp(&b.registry));
    let summary = Summary {
        lock_file: args.output.display().to_string(),
        images: images.len(),
        locked: lock.images.len(),
        platforms,
        total_size: total,
        seconds: started.elapsed().as_secs_f64(),
        failed,
        rate_limits,
    };
    if printer.is_json() {
        printer.json(&summary)?;
    } else {
        printer.say(format!(
            "locked {} of {} images ({} platforms, {} unique) in {:.1} s -> {}",
            summary.locked,
            summary.images,
            summary.platforms,
            human_bytes(summary.total_size),
            summary.seconds,
            summary.lock_file
        ));
        for rl in &summary.rate_limits {
            if let Some(rem) = rl.limit.remaining {
                printer.say(format!(
                    "{} rate limit: {rem} of {} pulls left",
                    rl.registry, rl.limit.limit
                ));
            }
        }
    }
    printer.failures("locked", common::pairs(&summary.failed));
    Ok(Exit::from_problems(!summary.failed.is_empty()))
}
