//! `ferry lock`: resolve the image list against the upstream registries and write
//! `images.lock` (see [`crate::plan`]).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::common;
use crate::cli::LockArgs;
use crate::error::Exit;
use crate::plan::LockFile;
use crate::plan::resolve::{Resolver, total_unique};
use crate::store::registry::{CredentialSource, RateLimit};

#[derive(Serialize)]
struct Failure {
    name: String,
    error: String,
}

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
pub fn run(args: &LockArgs, credentials: Arc<dyn CredentialSource>) -> anyhow::Result<Exit> {
    let images = common::image_list(&args.select, args.images.as_deref())?;
    let registries = common::registries(
        &args.registry,
        common::upstream_endpoints(&args.upstream)?,
        credentials,
    )?;
    let started = Instant::now();
    let bar = common::progress_bar(
        images.len() as u64,
        args.json,
        "{spinner} resolving [{bar:30}] {pos}/{len} {wide_msg}",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let jobs = args.registry.jobs as usize;
    let results = runtime.block_on(async {
        let resolver = Resolver::new(&registries);
        resolver
            .resolve_all(&images, jobs * 2, &|name, _ok| {
                bar.inc(1);
                bar.set_message(name.to_string());
            })
            .await
    });
    bar.finish_and_clear();

    let mut failed = Vec::new();
    let mut resolved = Vec::new();
    for r in results {
        match r {
            Ok(img) => resolved.push(img),
            Err(e) => failed.push(Failure {
                name: e.name().to_string(),
                error: e.cause(),
            }),
        }
    }
    if resolved.is_empty() {
        anyhow::bail!(
            "no image could be resolved, so no lock file was written: {}",
            crate::error::causes_line(failed.iter().map(|f| (f.name.as_str(), f.error.as_str())))
        );
    }
    let total = total_unique(&resolved.iter().collect::<Vec<_>>())
        .context("the images' sizes add up to more than 16 EiB: a registry sent absurd sizes")?;
    let platforms = resolved.iter().map(|r| r.locked.platforms.len()).sum();
    let lock = LockFile::new(resolved.into_iter().map(|r| r.locked).collect(), total);
    let yaml = lock.to_yaml().context("cannot render the lock file")?;
    crate::fsutil::write_atomic(&args.output, yaml.as_bytes())?;

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
    if args.json {
        super::emit(None, &(serde_json::to_string_pretty(&summary)? + "\n"))?;
    }
    if tracing::enabled!(tracing::Level::ERROR) && !args.json {
        eprintln!(
            "locked {} of {} images ({} platforms, {} unique) in {:.1} s -> {}",
            summary.locked,
            summary.images,
            summary.platforms,
            common::human_bytes(summary.total_size),
            summary.seconds,
            summary.lock_file
        );
        for rl in &summary.rate_limits {
            if let Some(rem) = rl.limit.remaining {
                eprintln!(
                    "{} rate limit: {rem} of {} pulls left",
                    rl.registry, rl.limit.limit
                );
            }
        }
    }
    if tracing::enabled!(tracing::Level::ERROR) {
        common::report_failed(
            "locked",
            summary
                .failed
                .iter()
                .map(|f| (f.name.as_str(), f.error.as_str())),
        );
    }
    Ok(Exit::from_problems(!summary.failed.is_empty()))
}
