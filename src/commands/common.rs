//! Wiring shared by the commands that talk to registries: the registry pool from the flags,
//! the image list (the RKE selection or a file), resolving with a progress bar, and the
//! failure records every summary carries.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::printer::Printer;
use crate::cli::{RegistryArgs, SelectArgs, UpstreamArgs};
use ferry_oci::reference::Reference;
use ferry_plan::input;
use ferry_plan::resolve::{ResolvedImage, Resolver};
use ferry_rke::Selection;
use ferry_store::Source;
use ferry_store::registry::{ClientOptions, CredentialChain, CredentialSource, Registries, config};

/// An image a command could not handle, and why (without the image's name).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The image as listed.
    pub name: String,
    /// Why.
    pub error: String,
}

/// (name, cause) pairs of `failures`, for grouping.
pub fn pairs(failures: &[Failure]) -> impl Iterator<Item = (&str, &str)> {
    failures.iter().map(|f| (f.name.as_str(), f.error.as_str()))
}

/// The registry pool for a run: `endpoints` say where registries are reached (`--upstream`,
/// or the target of an import).
pub fn registry_pool(
    args: &RegistryArgs,
    endpoints: Vec<(String, url::Url)>,
    credentials: Arc<dyn CredentialSource>,
) -> anyhow::Result<Registries> {
    if !args.tls_verify {
        tracing::warn!(
            "--tls-verify=false: TLS certificates are not checked; use this only with test registries"
        );
    }
    let opts = ClientOptions {
        endpoints,
        tls_verify: args.tls_verify,
        ca_files: args.ca_file.clone(),
        jobs: args.jobs as usize,
        per_host: args.per_host as usize,
        attempts: args.retries,
        stall_timeout: Duration::from_secs(args.stall_timeout),
        http1_only: args.http != crate::cli::HttpVersion::Http2,
        ..ClientOptions::default()
    };
    Ok(Registries::new(opts, credentials)?)
}

/// The pool of the upstream registries (`lock`, `export`): `--upstream` endpoints, and
/// credentials from docker login's config.json (and its helpers), else anonymous.
pub fn upstream_registries(
    upstream: &UpstreamArgs,
    args: &RegistryArgs,
) -> anyhow::Result<Registries> {
    let endpoints = upstream
        .upstream
        .iter()
        .map(|u| config::parse_upstream(u).with_context(|| format!("--upstream {u:?}")))
        .collect::<anyhow::Result<_>>()?;
    registry_pool(
        args,
        endpoints,
        Arc::new(CredentialChain::builder().build()),
    )
}

/// The images to work on: `--images FILE`, or the RKE selection (its unique union, as the
/// catalog names them, with cluster.yml overrides; never rewritten onto a private registry,
/// since these are the images to fetch from upstream).
pub fn image_list(
    select: &SelectArgs,
    images_file: Option<&std::path::Path>,
    printer: &Printer,
) -> anyhow::Result<Vec<(String, Reference)>> {
    if let Some(path) = images_file {
        return Ok(input::read_image_list(path)?);
    }
    selection(select, printer)?.images_to_fetch()
}

/// The RKE selection, with a spinner while a `--metadata` URL is downloaded.
pub fn selection(select: &SelectArgs, printer: &Printer) -> anyhow::Result<Selection> {
    let s = select.select();
    let fetching = s
        .metadata
        .filter(|m| ferry_rke::remote::is_url(m) && !s.offline)
        .map(|m| {
            printer.spinner(format!(
                "fetching the metadata {}",
                ferry_rke::remote::redact_text(m)
            ))
        });
    let resolved = Selection::resolve(&s);
    if let Some(bar) = fetching {
        bar.finish_and_clear();
    }
    resolved
}

/// Resolves `images` against `source` (`jobs` at a time, with the printer's progress bar);
/// the images resolved, in input order, and those that failed.
pub async fn resolve<S: Source>(
    source: &S,
    images: &[(String, Reference)],
    jobs: usize,
    printer: &Printer,
) -> (Vec<ResolvedImage>, Vec<Failure>) {
    let bar = printer.bar(
        images.len() as u64,
        "{spinner} resolving [{bar:30}] {pos}/{len} {wide_msg}",
    );
    resolve_with(source, images, jobs, bar).await
}

/// [`resolve`] with no progress bar (reading a bundle: local and quick).
pub async fn resolve_quietly<S: Source>(
    source: &S,
    images: &[(String, Reference)],
    jobs: usize,
) -> (Vec<ResolvedImage>, Vec<Failure>) {
    resolve_with(source, images, jobs, indicatif::ProgressBar::hidden()).await
}

async fn resolve_with<S: Source>(
    source: &S,
    images: &[(String, Reference)],
    jobs: usize,
    bar: indicatif::ProgressBar,
) -> (Vec<ResolvedImage>, Vec<Failure>) {
    let results = Resolver::new(source)
        .resolve_all(images, jobs, &|name, _ok| {
            bar.inc(1);
            bar.set_message(name.to_string());
        })
        .await;
    bar.finish_and_clear();
    let mut failed = Vec::new();
    // Collected in place, in the results' own allocation.
    let resolved = results
        .into_iter()
        .filter_map(|r| match r {
            Ok(img) => Some(img),
            Err(e) => {
                failed.push(Failure {
                    name: e.name().to_string(),
                    error: e.cause(),
                });
                None
            }
        })
        .collect();
    (resolved, failed)
}

/// Adds to `resolved` what cosign attached to its images (unless `--remove-signatures`),
/// found in `source`; an attachment that exists but cannot be resolved is a failure.
pub async fn attach<S: Source>(
    source: &S,
    upstream: &UpstreamArgs,
    resolved: &mut Vec<ResolvedImage>,
    jobs: usize,
    printer: &Printer,
) -> Vec<Failure> {
    if upstream.remove_signatures {
        return Vec::new();
    }
    let bar = printer.bar(
        0,
        "{spinner} looking for signatures, attestations and SBOMs",
    );
    let known = resolved.iter().map(|r| r.locked.source.clone()).collect();
    let (found, failed) = ferry_plan::attached::discover(source, resolved, &known, jobs).await;
    bar.finish_and_clear();
    if !found.is_empty() {
        tracing::info!(
            "carrying {} signatures, attestations and SBOMs attached to the images",
            found.len()
        );
    }
    resolved.extend(found);
    failed
        .into_iter()
        .map(|e| Failure {
            name: e.name().to_string(),
            error: e.cause(),
        })
        .collect()
}

/// The lock a bundle carries.
pub fn bundle_lock(
    source: &ferry_store::bundle::BundleSource,
) -> anyhow::Result<ferry_plan::LockFile> {
    let reader = source.reader();
    let bytes = reader
        .metadata(ferry_store::bundle::IMAGES_LOCK)
        .with_context(|| {
            format!(
                "{} is not a ferry bundle: it has no images.lock; write bundles with `ferry export`",
                reader.path().display()
            )
        })?;
    let text = std::str::from_utf8(bytes)
        .with_context(|| format!("images.lock in {} is not UTF-8", reader.path().display()))?;
    Ok(ferry_plan::LockFile::parse(
        text,
        &format!("{} (images.lock)", reader.path().display()),
    )?)
}
