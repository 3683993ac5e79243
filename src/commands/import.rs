//! `ferry import`: read the bundle in place, plan every image from its embedded lock, and
//! push through the copy engine into the target registry under the names `rke up` pulls.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::common;
use super::render::BarReporter;
use crate::cli::{ImportArgs, RegistryArgs};
use crate::copy::{Engine, Transfer};
use crate::error::Exit;
use crate::oci::digest::Digest;
use crate::oci::reference::{Reference, RegistryPrefix};
use crate::plan::LockFile;
use crate::plan::resolve::{ResolvedImage, Resolver};
use crate::rke::ClusterConfig;
use crate::secret::Secret;
use crate::store::FetchedManifest;
use crate::store::bundle::BundleReader;
use crate::store::bundle::source::BundleSource;
use crate::store::registry::credentials::CredentialChain;
use crate::store::registry::upload::Mount;
use crate::store::registry::{CredentialSource, Registries, Registry, config};

/// The target: where images go and how they are named there.
pub struct Target {
    /// `host[:port][/path]` as RKE writes it.
    pub prefix: RegistryPrefix,
    /// The endpoint URL (scheme, host, port).
    pub endpoint: url::Url,
}

impl Target {
    /// Parses `--to`: `[http://|https://]HOST[:PORT][/PATH]`.
    pub fn parse(value: &str, plain_http: bool) -> anyhow::Result<Target> {
        let (scheme, rest) = match value.split_once("://") {
            Some((s, r)) if s == "http" || s == "https" => (s, r),
            Some(_) => anyhow::bail!("--to {value:?}: the scheme must be http:// or https://"),
            None => (if plain_http { "http" } else { "https" }, value),
        };
        let rest = rest.trim_end_matches('/');
        let prefix = RegistryPrefix::parse(rest).with_context(|| format!("--to {value:?} is not a registry: write HOST[:PORT][/PATH], e.g. registry.example.com:5000/artifactory"))?;
        let endpoint = config::parse_endpoint(&format!("{scheme}://{}", prefix.host()))?;
        Ok(Target { prefix, endpoint })
    }

    /// The target of the cluster.yml's default private registry.
    pub fn from_cluster(c: &ClusterConfig, plain_http: bool) -> anyhow::Result<Target> {
        match c.default_prefix()? {
            Some(p) => Target::parse(p.as_str(), plain_http),
            None => anyhow::bail!(
                "{} has no private_registries entry with is_default: true and a url, so there is nowhere to push; add one (url: host[:port][/path]) or use --to",
                c.path.display()
            ),
        }
    }

    /// The registry name (host[:port]).
    pub fn host(&self) -> &str {
        self.prefix.host()
    }

    /// Where an image lands: `prefix/path` of the source, its tag kept.
    pub fn name_for(&self, source: &Reference) -> Reference {
        source.without_digest().rebase(&self.prefix)
    }
}

/// Pushes bundle blobs and manifests into the target registry.
struct ToRegistry<'a> {
    registry: Arc<Registry>,
    bundle: &'a BundleSource,
    target: &'a Target,
    chunk_size: Option<u64>,
    /// Which repository of the target already holds a blob (for mounts), and a lock per
    /// blob so that two repositories needing it do not both upload it.
    holders: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<Option<String>>>>>,
    /// Every repository of this import whose image uses a blob (complete ones first).
    users: HashMap<Digest, Vec<String>>,
    mounted: AtomicU64,
    mounted_bytes: AtomicU64,
}

impl ToRegistry<'_> {
    fn repo(&self, image: &ResolvedImage) -> String {
        self.target
            .name_for(&image.reference)
            .repository()
            .to_string()
    }

    fn holder(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<Option<String>>> {
        let mut m = self
            .holders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(digest.clone()).or_default().clone()
    }
}

impl Transfer for ToRegistry<'_> {
    fn scope(&self, image: &ResolvedImage) -> String {
        self.repo(image)
    }

    async fn has_blob(
        &self,
        image: &ResolvedImage,
        digest: &Digest,
        _size: u64,
    ) -> Result<bool, String> {
        let repo = self.repo(image);
        let present = self
            .registry
            .blob_exists_for_push(&repo, digest)
            .await
            .map_err(|e| e.to_string())?;
        if present {
            let h = self.holder(digest);
            let mut g = h.lock().await;
            if g.is_none() {
                *g = Some(repo);
            }
        }
        Ok(present)
    }

    async fn copy_blob(
        &self,
        image: &ResolvedImage,
        digest: &Digest,
        size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), String> {
        let repo = self.repo(image);
        let h = self.holder(digest);
        let mut holder = h.lock().await;
        let mut session = None;
        // Mount from the repository that got the blob in this run, else from another
        // repository of this import that uses it (an earlier, interrupted import may have
        // put it there). A registry that does not have it there answers 202 with an upload
        // session, which the upload then uses: a failed mount costs nothing.
        let from = holder.clone().filter(|f| *f != repo).or_else(|| {
            self.users
                .get(digest)
                .and_then(|u| u.iter().find(|r| **r != repo).cloned())
        });
        if let Some(from) = from {
            match self.registry.mount_blob(&repo, digest, &from).await {
                Ok(Mount::Mounted) => {
                    self.mounted.fetch_add(1, Ordering::Relaxed);
                    self.mounted_bytes.fetch_add(size, Ordering::Relaxed);
                    progress(size);
                    *holder = Some(repo);
                    return Ok(());
                }
                Ok(Mount::Session(loc)) => session = Some(loc),
                // Not allowed to read the other repository (e.g. another Harbor project):
                // upload instead.
                Err(e) => tracing::debug!(
                    "mounting {digest} from {from} into {repo} failed ({e}); uploading it"
                ),
            }
        }
        // Progress is counted per finished blob: the upload body must be a 'static stream.
        let bundle = self.bundle;
        self.registry
            .upload_blob(
                &repo,
                digest,
                size,
                &|offset, len| bundle.range(digest, offset, len),
                self.chunk_size,
                session,
            )
            .await
            .map_err(|e| crate::error::flatten(&e))?;
        progress(size);
        *holder = Some(repo);
        Ok(())
    }

    async fn put_manifest(
        &self,
        image: &ResolvedImage,
        manifest: &FetchedManifest,
        top: bool,
    ) -> Result<(), String> {
        let target = self.target.name_for(&image.reference);
        let reference = match (top, target.tag()) {
            (true, Some(tag)) => tag.to_string(),
            _ => manifest.digest.to_string(),
        };
        self.registry
            .put_manifest(
                target.repository(),
                &reference,
                &manifest.media_type,
                &manifest.digest,
                manifest.bytes.clone(),
            )
            .await
            .map_err(|e| e.to_string())
    }
}

#[derive(Serialize, Default)]
struct Summary {
    bundle: String,
    target: String,
    images: usize,
    pushed: usize,
    already_present: usize,
    failed: Vec<Failure>,
    blobs_pushed: u64,
    blobs_mounted: u64,
    blobs_present: u64,
    bytes_pushed: u64,
    seconds: f64,
    megabytes_per_second: f64,
}

#[derive(Serialize)]
struct Failure {
    name: String,
    target: String,
    error: String,
}

#[derive(Serialize)]
struct Planned {
    name: String,
    target: String,
    present: bool,
}

/// The registry pool for a target: its endpoint, and credentials, first match wins: `--username` with
/// `--password-stdin`, `FERRY_USERNAME`/`FERRY_PASSWORD`, the cluster.yml entries, the docker
/// config, ECR. Shared by `import` and `verify`.
pub fn target_registries(
    registry: &RegistryArgs,
    username: Option<&str>,
    target: &Target,
    cluster: Option<&ClusterConfig>,
) -> anyhow::Result<Registries> {
    let mut b = CredentialChain::builder().target(target.host());
    if let Some(user) = username {
        let mut pw = String::new();
        std::io::stdin()
            .read_to_string(&mut pw)
            .context("cannot read the password from standard input")?;
        let pw = pw.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            anyhow::bail!(
                "--password-stdin: standard input was empty; pipe the password in, e.g. `echo \"$PASS\" | ferry import …`"
            );
        }
        b = b.explicit(target.host(), user, Secret::new(pw));
    }
    if let Some(c) = cluster {
        for r in &c.private_registries {
            b = b.cluster_registry(r.url(), r.user.as_deref().unwrap_or(""), r.password.clone());
        }
    }
    let chain: Arc<dyn CredentialSource> = Arc::new(b.build());
    common::registries(
        registry,
        vec![(target.host().to_string(), target.endpoint.clone())],
        with_ecr(chain, cluster),
    )
}

/// Adds ECR's GetAuthorizationToken for ECR registries nothing else has credentials for:
/// keys from cluster.yml's `ecr_credential_plugin` (RKE's rule: only with both keys), else
/// the `AWS_*` environment.
#[cfg(feature = "ecr")]
fn with_ecr(
    chain: Arc<dyn CredentialSource>,
    cluster: Option<&ClusterConfig>,
) -> Arc<dyn CredentialSource> {
    use crate::store::registry::ecr::{AwsKeys, EcrCredentialSource};
    let keys: Vec<(String, AwsKeys)> = cluster
        .map(|c| {
            c.private_registries
                .iter()
                .filter_map(|r| {
                    let p = r
                        .ecr_credential_plugin
                        .as_ref()
                        .or(r.ecr_credential_plugin_camel.as_ref())?;
                    AwsKeys::from_plugin(
                        p.aws_access_key_id.as_deref(),
                        &p.aws_secret_access_key,
                        &p.aws_session_token,
                    )
                    .map(|k| (r.url().to_string(), k))
                })
                .collect()
        })
        .unwrap_or_default();
    Arc::new(EcrCredentialSource::new(chain, keys, |k| {
        std::env::var(k).ok()
    }))
}

#[cfg(not(feature = "ecr"))]
fn with_ecr(
    chain: Arc<dyn CredentialSource>,
    _cluster: Option<&ClusterConfig>,
) -> Arc<dyn CredentialSource> {
    chain
}

/// index.json of a bundle: full reference → top-level digest (empty when unreadable; the
/// per-image check then names the image).
fn index_digests(reader: &BundleReader) -> HashMap<String, Digest> {
    let Some(Ok(v)) = reader
        .metadata("index.json")
        .map(serde_json::from_slice::<serde_json::Value>)
    else {
        return HashMap::new();
    };
    v["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let name = m["annotations"]["org.opencontainers.image.ref.name"].as_str()?;
            let digest = Digest::parse(m["digest"].as_str()?).ok()?;
            Some((name.to_string(), digest))
        })
        .collect()
}

/// Why an image of the bundle must not be pushed, if it must not: its lock entry disagrees
/// with index.json, or a blob is missing or has another size than its manifest says.
fn bundle_problem(
    img: &ResolvedImage,
    source: &BundleSource,
    index: &HashMap<String, Digest>,
) -> Option<String> {
    let want = img.locked.bundle_digest();
    match index.get(&img.reference.without_digest().to_string()) {
        None => {
            return Some(format!(
                "images.lock lists it at {want}, but the bundle's index.json has no entry for {}; the bundle is inconsistent, nothing of this image was pushed",
                img.reference.without_digest()
            ));
        }
        Some(d) if d != want => {
            return Some(format!(
                "images.lock says {want} but the bundle's index.json says {d}; the bundle is inconsistent, nothing of this image was pushed"
            ));
        }
        Some(_) => {}
    }
    for (digest, size) in &img.blobs {
        match source.reader().blob(digest) {
            None => {
                return Some(format!(
                    "blob {digest} is not in the bundle (truncated or incomplete bundle); nothing of this image was pushed"
                ));
            }
            Some(loc) if loc.size != *size => {
                return Some(format!(
                    "blob {digest} is {} bytes in the bundle, its manifest says {size}; the bundle is corrupt, nothing of this image was pushed",
                    loc.size
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Runs `ferry import`.
pub fn run(args: &ImportArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let cluster = match &args.cluster {
        Some(p) => Some(ClusterConfig::load(p)?),
        None => None,
    };
    let target = match (&args.to, &cluster) {
        (Some(to), _) => Target::parse(to, args.plain_http)?,
        (None, Some(c)) => Target::from_cluster(c, args.plain_http)?,
        (None, None) => {
            anyhow::bail!("say where to push: --to HOST[:PORT][/PATH] or --cluster cluster.yml")
        }
    };
    let chunk_size = args
        .chunk_size
        .as_deref()
        .map(common::parse_size)
        .transpose()
        .context("--chunk-size")?;
    let reader = BundleReader::open(&args.bundle)?;
    let lock_bytes = reader.metadata("images.lock").with_context(|| {
        format!(
            "{} is not a ferry bundle: it has no images.lock; write bundles with `ferry export`",
            args.bundle.display()
        )
    })?;
    let lock_text = std::str::from_utf8(lock_bytes)
        .with_context(|| format!("images.lock in {} is not UTF-8", args.bundle.display()))?;
    let lock = LockFile::parse(
        lock_text,
        &format!("{} (images.lock)", args.bundle.display()),
    )?;
    let index = index_digests(&reader);
    let source = BundleSource::new(reader);

    let registries = target_registries(
        &args.registry,
        args.username.as_deref(),
        &target,
        cluster.as_ref(),
    )?;
    let registry = registries.get(target.host())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let jobs = args.registry.jobs as usize;

    let inputs: Vec<(String, Reference)> = lock
        .images
        .iter()
        .map(|i| {
            let r = Reference::parse(&i.source)
                .with_context(|| format!("images.lock entry {:?} has an invalid source", i.name))?;
            Ok((i.name.clone(), r.with_digest(i.bundle_digest().clone())))
        })
        .collect::<anyhow::Result<_>>()?;

    // Fast path: an image whose tag already points at the lock's digest, and whose every
    // platform manifest is there, counts as complete (a registry refuses a manifest whose
    // blobs or children are missing), so a re-import costs one HEAD per manifest. Blobs lost
    // later are only found by --check-all (or `ferry verify`).
    let present: Vec<bool> = if args.check_all {
        vec![false; inputs.len()]
    } else {
        runtime.block_on(async {
            let checks = inputs.iter().zip(&lock.images).map(|((_, r), entry)| {
                let t = target.name_for(r);
                let registry = registry.clone();
                async move {
                    let tag = t.tag().unwrap_or("latest").to_string();
                    let top = entry.bundle_digest();
                    if registry
                        .manifest_digest_for_push(t.repository(), &tag)
                        .await?
                        .as_ref()
                        != Some(top)
                    {
                        return Ok(false);
                    }
                    let children: std::collections::BTreeSet<&Digest> = entry
                        .platforms
                        .iter()
                        .map(|p| &p.digest)
                        .filter(|d| *d != top)
                        .collect();
                    for child in children {
                        let at = registry
                            .manifest_digest_for_push(t.repository(), child.as_str())
                            .await?;
                        if at.is_none() {
                            tracing::info!(
                                "{t}: the tag is in place but platform manifest {child} is missing; pushing the image again"
                            );
                            return Ok(false);
                        }
                    }
                    Ok::<bool, crate::store::registry::RegistryError>(true)
                }
            });
            futures_util::future::join_all(checks)
                .await
                .into_iter()
                .collect::<Result<Vec<bool>, _>>()
        })?
    };

    if args.dry_run {
        let planned: Vec<Planned> = inputs
            .iter()
            .zip(&present)
            .map(|((n, r), p)| Planned {
                name: n.clone(),
                target: target.name_for(r).to_string(),
                present: *p,
            })
            .collect();
        if args.json {
            super::emit(None, &(serde_json::to_string_pretty(&planned)? + "\n"))?;
        } else {
            let mut text = String::new();
            for p in &planned {
                text.push_str(&format!(
                    "{} {}\n",
                    if p.present { "present  " } else { "would push" },
                    p.target
                ));
            }
            text.push_str(&format!(
                "{} of {} images would be pushed to {}\n",
                planned.iter().filter(|p| !p.present).count(),
                planned.len(),
                target.prefix
            ));
            super::emit(None, &text)?;
        }
        return Ok(Exit::Success);
    }

    let todo: Vec<(String, Reference)> = inputs
        .iter()
        .zip(&present)
        .filter(|(_, p)| !**p)
        .map(|(i, _)| i.clone())
        .collect();
    let mut failed = Vec::new();
    let mut work: Vec<(String, ResolvedImage)> = Vec::new();
    // Which repositories of the target hold (or will hold) each blob: candidates to mount
    // from. Images already complete there are read from the bundle too (locally, cheap).
    let mut users: HashMap<Digest, Vec<String>> = HashMap::new();
    let done: Vec<(String, Reference)> = inputs
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p)
        .map(|(i, _)| i.clone())
        .collect();
    if !done.is_empty() && !todo.is_empty() {
        for img in runtime
            .block_on(Resolver::new(&source).resolve_all(&done, jobs * 2, &|_, _| {}))
            .into_iter()
            .flatten()
        {
            let repo = target.name_for(&img.reference).repository().to_string();
            for d in img.blobs.keys() {
                users.entry(d.clone()).or_default().push(repo.clone());
            }
        }
    }
    if !todo.is_empty() {
        let resolved =
            runtime.block_on(Resolver::new(&source).resolve_all(&todo, jobs * 2, &|_, _| {}));
        for (r, (name, reference)) in resolved.into_iter().zip(&todo) {
            let lock_entry = lock.images.iter().find(|e| &e.name == name);
            match r {
                Ok(img) if lock_entry.is_some_and(|e| e.media_type != img.locked.media_type) => failed.push(Failure {
                    name: name.clone(),
                    target: target.name_for(reference).to_string(),
                    error: format!("the bundle's manifest is {} but images.lock says {}; the bundle is inconsistent", img.locked.media_type, lock_entry.map(|e| e.media_type.as_str()).unwrap_or("")),
                }),
                Ok(img) => match bundle_problem(&img, &source, &index) {
                    Some(error) => failed.push(Failure { name: name.clone(), target: target.name_for(reference).to_string(), error }),
                    None => work.push((name.clone(), img)),
                },
                Err(e) => failed.push(Failure { name: name.clone(), target: target.name_for(reference).to_string(), error: e.to_string() }),
            }
        }
    }
    for (_, img) in &work {
        let repo = target.name_for(&img.reference).repository().to_string();
        for d in img.blobs.keys() {
            users.entry(d.clone()).or_default().push(repo.clone());
        }
    }
    let reporter = BarReporter::new("importing", args.json);
    let transfer = ToRegistry {
        registry: registry.clone(),
        bundle: &source,
        target: &target,
        chunk_size,
        holders: Mutex::new(HashMap::new()),
        users,
        mounted: AtomicU64::new(0),
        mounted_bytes: AtomicU64::new(0),
    };
    let engine = Engine::new(&transfer, &reporter);
    let results = runtime.block_on(engine.copy_all(&work, jobs));
    reporter.done();
    let mut pushed = 0;
    for ((name, img), r) in work.iter().zip(results) {
        match r {
            Ok(_) => pushed += 1,
            Err(e) => failed.push(Failure {
                name: name.clone(),
                target: target.name_for(&img.reference).to_string(),
                error: e.detail,
            }),
        }
    }
    if tracing::enabled!(tracing::Level::ERROR) {
        common::report_failed(
            "imported",
            failed.iter().map(|f| (f.name.as_str(), f.error.as_str())),
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let mounted = transfer.mounted.load(Ordering::Relaxed);
    let moved = reporter.moved.load(Ordering::Relaxed);
    let bytes_pushed = reporter
        .moved_bytes
        .load(Ordering::Relaxed)
        .saturating_sub(transfer.mounted_bytes.load(Ordering::Relaxed));
    let summary = Summary {
        bundle: args.bundle.display().to_string(),
        target: target.prefix.to_string(),
        images: inputs.len(),
        pushed,
        already_present: present.iter().filter(|p| **p).count(),
        blobs_pushed: moved.saturating_sub(mounted),
        blobs_mounted: mounted,
        blobs_present: reporter.present.load(Ordering::Relaxed),
        bytes_pushed,
        seconds,
        megabytes_per_second: if seconds > 0.0 {
            bytes_pushed as f64 / 1e6 / seconds
        } else {
            0.0
        },
        failed,
    };
    if args.json {
        super::emit(None, &(serde_json::to_string_pretty(&summary)? + "\n"))?;
    } else if tracing::enabled!(tracing::Level::ERROR) {
        eprintln!(
            "imported {} images into {} ({} already there, {} failed): {} blobs pushed ({}), {} mounted, {} present, in {:.1} s",
            summary.pushed,
            summary.target,
            summary.already_present,
            summary.failed.len(),
            summary.blobs_pushed,
            common::human_bytes(summary.bytes_pushed),
            summary.blobs_mounted,
            summary.blobs_present,
            summary.seconds
        );
    }
    if !summary.failed.is_empty() && summary.pushed == 0 && summary.already_present == 0 {
        anyhow::bail!(
            "nothing could be imported into {}: {}",
            summary.target,
            crate::error::causes_line(
                summary
                    .failed
                    .iter()
                    .map(|f| (f.name.as_str(), f.error.as_str()))
            )
        );
    }
    Ok(if summary.failed.is_empty() {
        Exit::Success
    } else {
        Exit::Problems
    })
}
