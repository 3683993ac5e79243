//! `ferry verify`: the lock against a registry, or a bundle offline. The walk is
//! [`crate::verify`]; this file plugs in the concrete stores and prints the report.

use std::collections::BTreeMap;

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;

use super::import::Target;
use crate::cli::VerifyArgs;
use crate::error::Exit;
use crate::oci::digest::Digest;
use crate::oci::manifest::Descriptor;
use crate::oci::reference::Reference;
use crate::plan::LockFile;
use crate::rke::ClusterConfig;
use crate::store::bundle::BundleReader;
use crate::store::bundle::source::{BundleSource, SourceError};
use crate::store::registry::source::SourceError as RegistrySourceError;
use crate::store::registry::{Registries, RegistryError};
use crate::store::{BlobSink, FetchedManifest, ManifestHead, ManifestSource};
use crate::verify::{Check, ImageReport, Kind, Problem, verify_image};

/// Discards bytes (they are verified on the way by the download).
struct NullSink;

impl BlobSink for NullSink {
    fn existing_len(&mut self) -> std::io::Result<u64> {
        Ok(0)
    }
    fn prefix_reader(&mut self) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(std::io::empty()))
    }
    fn append(&mut self, _chunk: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn reset(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn commit(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn abort(&mut self) {}
}

struct RegistryCheck<'a> {
    registries: &'a Registries,
}

impl ManifestSource for RegistryCheck<'_> {
    type Error = RegistrySourceError;
    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, Self::Error> {
        self.registries.head(image).await
    }
    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, Self::Error> {
        self.registries.manifest(image, digest).await
    }
    async fn small_blob(&self, image: &Reference, blob: &Descriptor) -> Result<Bytes, Self::Error> {
        self.registries.small_blob(image, blob).await
    }
}

fn unreachable(e: impl std::error::Error + 'static) -> Problem {
    Problem::new(Kind::Unreachable, crate::error::flatten(&e))
}

impl Check for RegistryCheck<'_> {
    async fn tag_digest(&self, image: &Reference) -> Result<Option<Digest>, Problem> {
        let reg = self.registries.get(image.registry()).map_err(unreachable)?;
        let tag = image.tag().unwrap_or("latest");
        let head = reg
            .head_manifest(image.repository(), tag)
            .await
            .map_err(unreachable)?;
        match head {
            None => Ok(None),
            Some(ManifestHead {
                digest: Some(d), ..
            }) => Ok(Some(d)),
            // No Docker-Content-Digest: the digest is that of the bytes the tag serves.
            Some(_) => reg
                .get_manifest(image.repository(), tag)
                .await
                .map(|m| Some(m.digest))
                .map_err(unreachable),
        }
    }

    async fn check_blob(
        &self,
        image: &Reference,
        blob: &Descriptor,
        deep: bool,
    ) -> Result<(), Problem> {
        let reg = self.registries.get(image.registry()).map_err(unreachable)?;
        if deep {
            return match reg
                .download_blob(
                    image.repository(),
                    &blob.digest,
                    Some(blob.size),
                    NullSink,
                    &|_| {},
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e @ RegistryError::Integrity { .. }) => {
                    Err(Problem::new(Kind::DigestMismatch, e.to_string()))
                }
                Err(e) if e.is_not_found() => Err(Problem::new(
                    Kind::MissingBlob,
                    format!("blob {} is missing", blob.digest),
                )),
                Err(e) => Err(unreachable(e)),
            };
        }
        // The first byte, not a HEAD: a registry can answer HEAD from a cache after the
        // blob's storage is gone, and then every pull fails.
        match reg
            .probe_blob(image.repository(), &blob.digest, blob.size)
            .await
            .map_err(unreachable)?
        {
            None => Err(Problem::new(
                Kind::MissingBlob,
                format!(
                    "blob {} ({} bytes) is missing, or its data cannot be read",
                    blob.digest, blob.size
                ),
            )),
            Some(size) if size != blob.size && size != 0 => Err(Problem::new(
                Kind::DigestMismatch,
                format!(
                    "blob {} is {size} bytes, its manifest says {}",
                    blob.digest, blob.size
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

struct BundleCheck {
    source: BundleSource,
    /// index.json: reference → top-level digest.
    index: BTreeMap<String, Digest>,
    /// Blobs whose content does not match their name.
    corrupt: BTreeMap<Digest, String>,
}

impl ManifestSource for BundleCheck {
    type Error = SourceError;
    async fn head(&self, image: &Reference) -> Result<Option<ManifestHead>, SourceError> {
        self.source.head(image).await
    }
    async fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> Result<FetchedManifest, SourceError> {
        self.source.manifest(image, digest).await
    }
    async fn small_blob(&self, image: &Reference, blob: &Descriptor) -> Result<Bytes, SourceError> {
        self.source.small_blob(image, blob).await
    }
}

impl Check for BundleCheck {
    async fn tag_digest(&self, image: &Reference) -> Result<Option<Digest>, Problem> {
        Ok(self.index.get(&image.to_string()).cloned())
    }

    async fn check_blob(
        &self,
        _image: &Reference,
        blob: &Descriptor,
        _deep: bool,
    ) -> Result<(), Problem> {
        if let Some(why) = self.corrupt.get(&blob.digest) {
            return Err(Problem::new(Kind::DigestMismatch, why.clone()));
        }
        match self.source.reader().blob(&blob.digest) {
            None => Err(Problem::new(
                Kind::MissingBlob,
                format!(
                    "blob {} ({} bytes) is not in the bundle",
                    blob.digest, blob.size
                ),
            )),
            Some(loc) if loc.size != blob.size => Err(Problem::new(
                Kind::DigestMismatch,
                format!(
                    "blob {} is {} bytes in the bundle, its manifest says {}",
                    blob.digest, loc.size, blob.size
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

#[derive(Serialize)]
struct Report {
    complete: bool,
    checked: String,
    images: Vec<ImageReport>,
    problems: usize,
    /// Problems not tied to one image (bundle-level).
    general: Vec<Problem>,
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        return super::emit(None, &(serde_json::to_string_pretty(report)? + "\n"));
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
    super::emit(None, &text)
}

fn finish(report: Report, json: bool) -> anyhow::Result<Exit> {
    print(&report, json)?;
    Ok(if report.complete {
        Exit::Success
    } else {
        Exit::Problems
    })
}

/// Runs `ferry verify`.
pub fn run(args: &VerifyArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let cluster = match &args.cluster {
        Some(p) => Some(ClusterConfig::load(p)?),
        None => None,
    };
    let target = match (&args.to, &cluster) {
        (Some(to), _) => Some(Target::parse(to, args.plain_http)?),
        (None, Some(c)) => Some(Target::from_cluster(c, args.plain_http)?),
        (None, None) => None,
    };
    let reader = match &args.bundle {
        Some(b) => Some(BundleReader::open(b)?),
        None => None,
    };
    let lock = match (&args.lock, &reader) {
        (Some(p), _) => LockFile::load(p)?,
        (None, Some(r)) => {
            let bytes = r.metadata("images.lock").with_context(|| {
                format!(
                    "{} has no images.lock, so there is nothing to verify against; pass --lock",
                    r.path().display()
                )
            })?;
            LockFile::parse(
                std::str::from_utf8(bytes).context("images.lock is not UTF-8")?,
                "images.lock in the bundle",
            )?
        }
        (None, None) => anyhow::bail!(
            "nothing to verify: give a BUNDLE.tar, or --lock images.lock with --cluster or --to"
        ),
    };
    match (target, reader) {
        (Some(target), _) => {
            runtime.block_on(verify_registry(args, &lock, &target, cluster.as_ref()))
        }
        (None, Some(reader)) => runtime.block_on(verify_bundle(args, &lock, reader)),
        (None, None) => anyhow::bail!(
            "--lock needs a registry to check: --cluster cluster.yml or --to HOST[:PORT][/PATH]"
        ),
    }
}

async fn verify_registry(
    args: &VerifyArgs,
    lock: &LockFile,
    target: &Target,
    cluster: Option<&ClusterConfig>,
) -> anyhow::Result<Exit> {
    let registries = super::import::target_registries(
        &args.registry,
        args.username.as_deref(),
        target,
        cluster,
    )?;
    let check = RegistryCheck {
        registries: &registries,
    };
    let mut refs = Vec::new();
    for e in &lock.images {
        let src =
            Reference::parse(&e.source).with_context(|| format!("lock entry {:?}", e.name))?;
        refs.push(target.name_for(&src));
    }
    let reports: Vec<ImageReport> = futures_util::stream::iter(lock.images.iter().zip(&refs))
        .map(|(e, at)| verify_image(&check, e, at, args.deep))
        .buffered(args.registry.jobs as usize)
        .collect()
        .await;
    let unreachable = reports
        .iter()
        .all(|r| r.problems.iter().any(|p| p.kind == Kind::Unreachable))
        && !reports.is_empty();
    if unreachable {
        let first = reports
            .iter()
            .flat_map(|r| &r.problems)
            .next()
            .map(|p| p.detail.clone())
            .unwrap_or_default();
        anyhow::bail!("could not check registry {}: {first}", target.prefix);
    }
    let problems = reports.iter().map(|r| r.problems.len()).sum();
    finish(
        Report {
            complete: problems == 0,
            checked: format!("registry {}", target.prefix),
            images: reports,
            problems,
            general: Vec::new(),
        },
        args.json,
    )
}

async fn verify_bundle(
    args: &VerifyArgs,
    lock: &LockFile,
    reader: BundleReader,
) -> anyhow::Result<Exit> {
    let path = reader.path().display().to_string();
    let mut general = Vec::new();
    // index.json: the top-level descriptors, keyed by reference.
    let mut index = BTreeMap::new();
    match reader
        .metadata("index.json")
        .map(serde_json::from_slice::<serde_json::Value>)
    {
        Some(Ok(v)) => {
            for m in v["manifests"].as_array().into_iter().flatten() {
                let name = m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                match m["digest"].as_str().map(Digest::parse) {
                    Some(Ok(d)) => {
                        index.insert(name, d);
                    }
                    _ => general.push(Problem::new(
                        Kind::Inconsistent,
                        format!("index.json has an entry for {name:?} without a valid digest"),
                    )),
                }
            }
        }
        Some(Err(e)) => general.push(Problem::new(
            Kind::Inconsistent,
            format!("index.json is not valid JSON: {e}"),
        )),
        None => general.push(Problem::new(
            Kind::Inconsistent,
            "the bundle has no index.json",
        )),
    }
    if let Some(t) = reader.truncated() {
        general.push(Problem::new(Kind::MissingBlob, t.to_string()));
    }
    if reader.metadata("oci-layout").is_none() {
        general.push(Problem::new(
            Kind::Inconsistent,
            "the bundle has no oci-layout file",
        ));
    }
    // Re-hash every blob, in parallel.
    let source = BundleSource::new(reader);
    let digests: Vec<Digest> = source.reader().blobs().map(|(d, _)| d.clone()).collect();
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let corrupt: BTreeMap<Digest, String> = futures_util::stream::iter(digests.clone())
        .map(|d| {
            let s = source.clone();
            async move {
                let r = tokio::task::spawn_blocking(move || {
                    s.reader().verify_blob(&d).err().map(|e| (d, e.to_string()))
                })
                .await;
                r.ok().flatten()
            }
        })
        .buffer_unordered(parallel)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    // manifest.json: every path it names must exist.
    if let Some(bytes) = source.reader().metadata("manifest.json") {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => {
                for e in v.as_array().into_iter().flatten() {
                    for p in std::iter::once(&e["Config"])
                        .chain(e["Layers"].as_array().into_iter().flatten())
                    {
                        let p = p.as_str().unwrap_or("");
                        let ok = p
                            .strip_prefix("blobs/sha256/")
                            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
                            .is_some_and(|d| source.reader().blob(&d).is_some());
                        if !ok {
                            general.push(Problem::new(
                                Kind::MissingBlob,
                                format!("manifest.json names {p:?}, which is not in the bundle"),
                            ));
                        }
                    }
                }
            }
            Err(e) => general.push(Problem::new(
                Kind::Inconsistent,
                format!("manifest.json is not valid JSON: {e}"),
            )),
        }
    }
    let check = BundleCheck {
        source: source.clone(),
        index,
        corrupt: corrupt.clone(),
    };
    let mut reports = Vec::new();
    for e in &lock.images {
        let at = Reference::parse(&e.source).with_context(|| format!("lock entry {:?}", e.name))?;
        let r = verify_image(&check, e, &at, true).await;
        reports.push(r);
    }
    // A corrupt blob no image's report mentions (unreferenced, or hidden behind a missing
    // manifest) is still reported.
    for (d, why) in &corrupt {
        if !reports
            .iter()
            .any(|r| r.problems.iter().any(|p| p.detail.contains(d.as_str())))
        {
            general.push(Problem::new(Kind::DigestMismatch, why.clone()));
        }
    }
    let problems = reports.iter().map(|r| r.problems.len()).sum::<usize>() + general.len();
    finish(
        Report {
            complete: problems == 0,
            checked: format!("bundle {path}"),
            images: reports,
            problems,
            general,
        },
        args.json,
    )
}
