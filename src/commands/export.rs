//! `ferry export`: resolve (or read the lock), plan the bundle, fill it with the copy engine
//! from the upstream registries, finish it atomically.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::common;
use super::render::BarReporter;
use crate::cli::ExportArgs;
use crate::copy::{Engine, Transfer};
use crate::error::Exit;
use crate::oci::digest::Digest;
use crate::oci::manifest::{Descriptor, Manifest};
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::plan::resolve::{ResolvedImage, Resolver};
use crate::plan::{LockFile, LockedImage};
use crate::store::bundle::index::{
    DockerEntry, docker_manifest_json, index_json, oci_layout_bytes,
};
use crate::store::bundle::layout::Plan;
use crate::store::bundle::writer::BundleWriter;
use crate::store::registry::{CredentialSource, Registries};
use crate::store::{BlobSink, FetchedManifest};

/// Moves blobs from the upstream registries into the bundle's planned slots.
struct ToBundle<'a> {
    writer: &'a BundleWriter,
    registries: &'a Registries,
}

impl Transfer for ToBundle<'_> {
    fn scope(&self, _image: &ResolvedImage) -> String {
        String::new()
    }

    async fn has_blob(
        &self,
        _image: &ResolvedImage,
        digest: &Digest,
        _size: u64,
    ) -> Result<bool, String> {
        Ok(self.writer.is_done(digest))
    }

    async fn copy_blob(
        &self,
        image: &ResolvedImage,
        digest: &Digest,
        size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), String> {
        let reg = self
            .registries
            .get(image.reference.registry())
            .map_err(|e| e.to_string())?;
        let sink = self.writer.blob_sink(digest).map_err(|e| e.to_string())?;
        reg.download_blob(
            image.reference.repository(),
            digest,
            Some(size),
            sink,
            progress,
        )
        .await
        .map_err(|e| crate::error::flatten(&e))?;
        Ok(())
    }

    async fn put_manifest(
        &self,
        _image: &ResolvedImage,
        manifest: &FetchedManifest,
        _top: bool,
    ) -> Result<(), String> {
        if self.writer.is_done(&manifest.digest) {
            return Ok(());
        }
        let mut sink = self
            .writer
            .blob_sink(&manifest.digest)
            .map_err(|e| e.to_string())?;
        let bytes = manifest.bytes.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            sink.reset()?;
            sink.append(&bytes)?;
            sink.commit()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot write manifest {} into the bundle: {e}",
                manifest.digest
            )
        })
    }
}

#[derive(Serialize, Default)]
struct Summary {
    bundle: String,
    images: usize,
    exported: usize,
    platforms: usize,
    blobs: usize,
    bytes: u64,
    bundle_size: u64,
    bytes_saved_by_dedup: u64,
    blobs_downloaded: u64,
    blobs_already_present: u64,
    seconds: f64,
    megabytes_per_second: f64,
    resumed: bool,
    failed: Vec<Failure>,
    docker_load_images: usize,
}

#[derive(Serialize)]
struct Failure {
    name: String,
    error: String,
}

#[derive(Serialize)]
struct DryRun {
    images: usize,
    platforms: usize,
    blobs: Option<usize>,
    bytes: u64,
    manifest_gets: usize,
    rate_limited_manifest_gets: usize,
    failed: Vec<Failure>,
}

/// The docker-archive view of one image for `platform`, if it has that platform.
fn docker_entry(image: &ResolvedImage, platform: &Platform) -> Option<DockerEntry> {
    let by_digest: BTreeMap<&Digest, &Arc<FetchedManifest>> =
        image.manifests.iter().map(|m| (&m.digest, m)).collect();
    let chosen = image
        .locked
        .platforms
        .iter()
        .find(|p| Platform::parse(&p.platform).is_ok_and(|pp| pp.matches(platform)))?;
    let m = by_digest.get(&chosen.digest)?;
    match Manifest::parse(&m.bytes, &m.media_type, &m.digest).ok()? {
        Manifest::Image { config, layers } => {
            let reference = Reference::parse(&image.locked.source).ok()?;
            let tag = reference.familiar();
            Some(DockerEntry {
                repo_tags: vec![tag],
                config: config.digest,
                layers: layers.into_iter().map(|l| l.digest).collect(),
            })
        }
        Manifest::Index { .. } => None,
    }
}

/// One docker-archive entry per image (config and layers), with every name it has: two names
/// of one image are one image to `docker load`, as `docker save` writes them.
fn merge_docker_entries(entries: impl Iterator<Item = DockerEntry>) -> Vec<DockerEntry> {
    let mut out: Vec<DockerEntry> = Vec::new();
    let mut at: std::collections::HashMap<(Digest, Vec<Digest>), usize> =
        std::collections::HashMap::new();
    for e in entries {
        match at.entry((e.config.clone(), e.layers.clone())) {
            std::collections::hash_map::Entry::Occupied(i) => {
                let merged = &mut out[*i.get()];
                for t in e.repo_tags {
                    if !merged.repo_tags.contains(&t) {
                        merged.repo_tags.push(t);
                    }
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(out.len());
                out.push(e);
            }
        }
    }
    out
}

/// Keeps only the index entries whose platform matches `want` (and the attestations that
/// point at a kept entry), writing a new index. Single-platform images must match.
fn filter_platforms(img: &mut ResolvedImage, want: &[Platform]) -> Result<(), String> {
    let Some(top) = img.manifests.last().cloned() else {
        return Err("no manifest".into());
    };
    let parsed =
        Manifest::parse(&top.bytes, &top.media_type, &top.digest).map_err(|e| e.to_string())?;
    let children = match parsed {
        Manifest::Image { .. } => {
            let p = img
                .locked
                .platforms
                .first()
                .map(|p| p.platform.clone())
                .unwrap_or_default();
            if Platform::parse(&p).is_ok_and(|pp| want.iter().any(|w| pp.matches(w))) {
                return Ok(());
            }
            return Err(format!(
                "its only platform is {p}, which --platform does not select"
            ));
        }
        Manifest::Index { manifests } => manifests,
    };
    let keep_platform: Vec<&Descriptor> = children
        .iter()
        .filter(|c| {
            c.platform
                .as_ref()
                .is_some_and(|p| !p.is_unknown() && want.iter().any(|w| p.matches(w)))
        })
        .collect();
    if keep_platform.is_empty() {
        let have: Vec<String> = children
            .iter()
            .filter_map(|c| c.platform.as_ref().map(|p| p.to_string()))
            .collect();
        return Err(format!(
            "none of its platforms ({}) is selected by --platform",
            have.join(", ")
        ));
    }
    let kept_digests: Vec<&Digest> = keep_platform.iter().map(|c| &c.digest).collect();
    let keep = |c: &Descriptor| {
        kept_digests.contains(&&c.digest)
            || c.annotations
                .get("vnd.docker.reference.digest")
                .is_some_and(|d| kept_digests.iter().any(|k| k.as_str() == d))
    };
    let kept: Vec<Digest> = children
        .iter()
        .filter(|c| keep(c))
        .map(|c| c.digest.clone())
        .collect();
    if kept.len() == children.len() {
        return Ok(());
    }
    let mut doc: serde_json::Value =
        serde_json::from_slice(&top.bytes).map_err(|e| e.to_string())?;
    if let Some(list) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|e| {
            e["digest"]
                .as_str()
                .is_some_and(|d| kept.iter().any(|k| k.as_str() == d))
        });
    }
    let bytes = bytes::Bytes::from(serde_json::to_vec(&doc).map_err(|e| e.to_string())?);
    let digest = Digest::sha256_of(&bytes);
    let new_top = Arc::new(FetchedManifest {
        bytes,
        media_type: top.media_type.clone(),
        digest: digest.clone(),
    });
    // Keep the kept children (and what they reference), then the new top.
    let mut manifests: Vec<Arc<FetchedManifest>> = img
        .manifests
        .iter()
        .filter(|m| kept.contains(&m.digest))
        .cloned()
        .collect();
    let mut blobs = BTreeMap::new();
    for m in &manifests {
        if let Ok(p) = Manifest::parse(&m.bytes, &m.media_type, &m.digest) {
            for b in p.blobs() {
                blobs.insert(b.digest.clone(), b.size);
            }
        }
    }
    manifests.push(new_top.clone());
    let mut objects = blobs.clone();
    for m in &manifests {
        objects.insert(m.digest.clone(), m.bytes.len() as u64);
    }
    img.locked.platforms.retain(|p| kept.contains(&p.digest));
    img.locked.written_digest = Some(digest);
    img.locked.total_size = crate::oci::manifest::sum_sizes(objects.values().copied())
        .ok_or("its sizes add up to more than 16 EiB")?;
    img.manifests = manifests;
    img.blobs = blobs;
    img.objects = objects;
    Ok(())
}

/// Runs `ferry export`.
pub fn run(args: &ExportArgs, credentials: Arc<dyn CredentialSource>) -> anyhow::Result<Exit> {
    let docker_platform = Platform::parse(&args.docker_platform).context("--docker-platform")?;
    let lock_in = match &args.lock {
        Some(p) => Some(LockFile::load(p)?),
        None => None,
    };
    let inputs: Vec<(String, Reference)> = match &lock_in {
        Some(lock) => lock
            .images
            .iter()
            .map(|i| {
                let r = Reference::parse(&i.source)
                    .with_context(|| format!("lock entry {:?} has an invalid source", i.name))?;
                Ok((i.name.clone(), r.with_digest(i.digest.clone())))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(crate::plan::input::dedupe)?,
        None => common::image_list(&args.select, args.images.as_deref())?,
    };
    if args.dry_run
        && let Some(lock) = &lock_in
    {
        return dry_run_from_lock(lock, args.json);
    }
    let registries = common::registries(
        &args.registry,
        common::upstream_endpoints(&args.upstream)?,
        credentials,
    )?;
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let jobs = args.registry.jobs as usize;

    let bar = common::progress_bar(
        inputs.len() as u64,
        args.json,
        "resolving [{bar:30}] {pos}/{len} {wide_msg}",
    );
    let results = runtime.block_on(async {
        Resolver::new(&registries)
            .resolve_all(&inputs, jobs * 2, &|name, _| {
                bar.inc(1);
                bar.set_message(name.to_string());
            })
            .await
    });
    bar.finish_and_clear();
    let mut failed = Vec::new();
    let mut resolved: Vec<ResolvedImage> = Vec::new();
    for r in results {
        match r {
            Ok(mut img) => {
                if let Some(lock) = &lock_in
                    && let Some(entry) = lock.images.iter().find(|e| e.name == img.locked.name)
                {
                    // Keep the lock's own names; the digests were pinned by it.
                    img.locked.source = entry.source.clone();
                }
                resolved.push(img);
            }
            Err(e) => failed.push(Failure {
                name: e.name().to_string(),
                error: e.cause(),
            }),
        }
    }
    if !args.platforms.is_empty() {
        let want = args
            .platforms
            .iter()
            .map(|p| Platform::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .context("--platform")?;
        resolved.retain_mut(|img| match filter_platforms(img, &want) {
            Ok(()) => true,
            Err(why) => {
                failed.push(Failure {
                    name: img.locked.name.clone(),
                    error: why,
                });
                false
            }
        });
    }
    if resolved.is_empty() {
        anyhow::bail!(
            "no image could be resolved, so nothing was exported: {}",
            crate::error::causes_line(failed.iter().map(|f| (f.name.as_str(), f.error.as_str())))
        );
    }
    resolved.sort_by(|a, b| a.locked.source.cmp(&b.locked.source));

    let mut objects: BTreeMap<Digest, u64> = BTreeMap::new();
    for r in &resolved {
        objects.extend(r.objects.iter().map(|(d, s)| (d.clone(), *s)));
    }
    let overflow = || {
        anyhow::anyhow!(
            "the images' sizes add up to more than 16 EiB: a registry sent absurd sizes"
        )
    };
    let unique = crate::oci::manifest::sum_sizes(objects.values().copied()).ok_or_else(overflow)?;
    let per_image = crate::oci::manifest::sum_sizes(resolved.iter().map(|r| r.locked.total_size))
        .ok_or_else(overflow)?;
    if args.dry_run {
        let manifests: std::collections::BTreeSet<&Digest> = resolved
            .iter()
            .flat_map(|r| r.manifests.iter().map(|m| &m.digest))
            .collect();
        let hub: std::collections::BTreeSet<&Digest> = resolved
            .iter()
            .filter(|r| r.reference.is_docker_hub())
            .flat_map(|r| r.manifests.iter().map(|m| &m.digest))
            .collect();
        let d = DryRun {
            images: resolved.len(),
            platforms: resolved.iter().map(|r| r.locked.platforms.len()).sum(),
            blobs: Some(objects.len()),
            bytes: unique,
            manifest_gets: manifests.len(),
            rate_limited_manifest_gets: hub.len(),
            failed,
        };
        return print_dry_run(&d, args.json);
    }

    let lock = LockFile::new(
        resolved
            .iter()
            .map(|r| r.locked.clone())
            .collect::<Vec<LockedImage>>(),
        unique,
    );
    let index_entries: Vec<(String, Descriptor)> = resolved
        .iter()
        .map(|r| {
            // The top-level manifest actually in the bundle: upstream's, or the filtered index.
            let size = r
                .manifests
                .last()
                .map_or(r.locked.size, |m| m.bytes.len() as u64);
            let desc = Descriptor {
                media_type: r.locked.media_type.clone(),
                digest: r.locked.bundle_digest().clone(),
                size,
                platform: None,
                annotations: BTreeMap::new(),
            };
            (r.locked.source.clone(), desc)
        })
        .collect();
    let docker_entries = merge_docker_entries(
        resolved
            .iter()
            .filter_map(|r| docker_entry(r, &docker_platform)),
    );
    let lock_yaml = lock.to_yaml().context("cannot render images.lock")?;
    let plan = Plan::new(
        [
            ("oci-layout", oci_layout_bytes()),
            ("index.json", index_json(&index_entries)),
            ("images.lock", lock_yaml.into_bytes()),
            ("manifest.json", docker_manifest_json(&docker_entries)),
        ],
        objects.iter().map(|(d, s)| (d.clone(), *s)),
    )?;
    let bundle_size = plan.total_size();
    let writer = BundleWriter::create(&args.output, plan)?;
    if writer.resumed() {
        tracing::warn!(
            "resuming the interrupted export into {} ({} of {} blobs still to fetch)",
            args.output.display(),
            writer.missing().len(),
            objects.len()
        );
    }
    let reporter = BarReporter::new("exporting", args.json);
    let transfer = ToBundle {
        writer: &writer,
        registries: &registries,
    };
    let engine = Engine::new(&transfer, &reporter);
    let work: Vec<(String, ResolvedImage)> = resolved
        .iter()
        .map(|r| (r.locked.name.clone(), r.clone()))
        .collect();
    let copied = runtime.block_on(engine.copy_all(&work, jobs));
    reporter.done();
    let copy_failures: Vec<(&str, &str)> = copied
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| (e.name.as_str(), e.detail.as_str()))
        .collect();
    if !copy_failures.is_empty() {
        let partial = format!("{}.partial", args.output.display());
        // Every failed image, those that failed while resolving too.
        let all: Vec<(&str, &str)> = failed
            .iter()
            .map(|f| (f.name.as_str(), f.error.as_str()))
            .chain(copy_failures.iter().copied())
            .collect();
        anyhow::bail!(
            "the bundle is not finished: {} image(s) failed: {}; nothing was written to {} — the verified part is kept in {partial}, and running the same command again resumes from it",
            all.len(),
            crate::error::causes_line(all.iter().copied()),
            args.output.display()
        );
    }
    let resumed = writer.resumed();
    writer.finish()?;

    let seconds = started.elapsed().as_secs_f64();
    let transferred = reporter.transferred.load(Ordering::Relaxed);
    let summary = Summary {
        bundle: args.output.display().to_string(),
        images: inputs.len(),
        exported: resolved.len(),
        platforms: resolved.iter().map(|r| r.locked.platforms.len()).sum(),
        blobs: objects.len(),
        bytes: unique,
        bundle_size,
        bytes_saved_by_dedup: per_image.saturating_sub(unique),
        blobs_downloaded: reporter.moved.load(Ordering::Relaxed),
        blobs_already_present: reporter.present.load(Ordering::Relaxed),
        seconds,
        megabytes_per_second: if seconds > 0.0 {
            transferred as f64 / 1e6 / seconds
        } else {
            0.0
        },
        resumed,
        failed,
        docker_load_images: docker_entries.len(),
    };
    if args.json {
        super::emit(None, &(serde_json::to_string_pretty(&summary)? + "\n"))?;
    } else if tracing::enabled!(tracing::Level::ERROR) {
        // A resumed run that found everything in place moved nothing: no rate to speak of.
        let rate = if summary.blobs_downloaded == 0 {
            "every blob was already in place".to_string()
        } else {
            format!(
                "{}/s",
                common::human_bytes(summary.megabytes_per_second as u64 * 1_000_000)
            )
        };
        eprintln!(
            "exported {} of {} images ({} platforms, {} blobs, {}; {} saved by de-duplication) in {:.1} s ({rate}) -> {}",
            summary.exported,
            summary.images,
            summary.platforms,
            summary.blobs,
            common::human_bytes(summary.bytes),
            common::human_bytes(summary.bytes_saved_by_dedup),
            summary.seconds,
            summary.bundle
        );
    }
    if tracing::enabled!(tracing::Level::ERROR) {
        common::report_failed(
            "exported",
            summary
                .failed
                .iter()
                .map(|f| (f.name.as_str(), f.error.as_str())),
        );
    }
    Ok(Exit::from_problems(!summary.failed.is_empty()))
}

fn dry_run_from_lock(lock: &LockFile, json: bool) -> anyhow::Result<Exit> {
    let mut manifests = std::collections::BTreeSet::new();
    let mut hub = std::collections::BTreeSet::new();
    for i in &lock.images {
        let is_hub = Reference::parse(&i.source).is_ok_and(|r| r.is_docker_hub());
        for d in std::iter::once(&i.digest).chain(i.platforms.iter().map(|p| &p.digest)) {
            manifests.insert(d.clone());
            if is_hub {
                hub.insert(d.clone());
            }
        }
    }
    let d = DryRun {
        images: lock.images.len(),
        platforms: lock.images.iter().map(|i| i.platforms.len()).sum(),
        blobs: None,
        bytes: lock.total_size,
        manifest_gets: manifests.len(),
        rate_limited_manifest_gets: hub.len(),
        failed: Vec::new(),
    };
    print_dry_run(&d, json)
}

fn print_dry_run(d: &DryRun, json: bool) -> anyhow::Result<Exit> {
    if json {
        super::emit(None, &(serde_json::to_string_pretty(d)? + "\n"))?;
    } else {
        let blobs = d.blobs.map_or_else(
            || "blobs known once manifests are read".to_string(),
            |b| format!("{b} blobs"),
        );
        super::emit(
            None,
            &format!(
                "would export {} images ({} platforms, {blobs}, {})\nmanifest GETs: {} ({} against Docker Hub's pull rate limit; tag lookups use HEAD, which is free)\n",
                d.images,
                d.platforms,
                common::human_bytes(d.bytes),
                d.manifest_gets,
                d.rate_limited_manifest_gets
            ),
        )?;
        common::report_failed(
            "exported",
            d.failed.iter().map(|f| (f.name.as_str(), f.error.as_str())),
        );
    }
    Ok(if d.failed.is_empty() {
        Exit::Success
    } else {
        Exit::Problems
    })
}
