//! The benchmark workload: ~30 RKE-named images (OCI indexes and Docker manifest lists with
//! linux/amd64 + linux/arm64, single-arch Docker and OCI manifests), sharing base layers, with
//! big layers of 200–400 MB, written once as distribution storage so a registry serves exact
//! bytes.
//!
//! Files under the workload dir:
//!
//! ```text
//! storage/            the registry's rootdirectory (blobs, repositories)
//! images.txt          the image list (`rancher/rke-tools:v0.1.103`, …), input of every tool
//! blobs.txt           `REPOSITORY DIGEST SIZE` per unique config and layer (the curl floor)
//! images-big.txt      with --big-layer-gb: the one image with the huge layer
//! blobs-big.txt       …and its blobs
//! workload.json       sizes and counts (unique bytes, bytes without de-duplication, …)
//! layers.json         cache: layer key → digest/diff_id/size, so a rerun skips existing layers
//! done                the parameters of the completed generation (the "skip" marker)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::layer::{self, LayerInfo};
use ferry_test_support::blobs;
use ferry_test_support::fixtures::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use ferry_test_support::seed::Storage;

const MIB: f64 = 1024.0 * 1024.0;
const CREATED: &str = "2024-05-01T00:00:00Z";
/// Bump when the bytes of the workload change, so old `done` markers no longer match.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// ~100 MB unique: a quick self-check.
    Small,
    /// ~2.8 GB unique, layers of 200–400 MB.
    Full,
}

impl Scale {
    /// Sizes below are for `full`; `small` divides them by this.
    fn divisor(self) -> f64 {
        match self {
            Scale::Small => 25.0,
            Scale::Full => 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// OCI index of OCI manifests, linux/amd64 + linux/arm64, compact JSON.
    OciIndex,
    /// Docker manifest list of schema2 manifests, linux/amd64 + linux/arm64, 3-space JSON.
    DockerList,
    /// Single-arch Docker schema2 (linux/amd64).
    Docker,
    /// Single-arch OCI manifest (linux/amd64), pretty JSON.
    Oci,
}

impl Shape {
    fn docker(self) -> bool {
        matches!(self, Shape::DockerList | Shape::Docker)
    }
    fn arches(self) -> &'static [&'static str] {
        match self {
            Shape::OciIndex | Shape::DockerList => &["amd64", "arm64"],
            Shape::Docker | Shape::Oci => &["amd64"],
        }
    }
}

/// Layers shared between images: name, MiB for amd64, MiB for arm64.
const SHARED: &[(&str, f64, f64)] = &[
    ("base", 28.0, 26.0),
    ("k8s-common", 330.0, 300.0),
    ("rke-tools-common", 230.0, 215.0),
];

struct ImageSpec {
    reference: &'static str,
    shape: Shape,
    /// Shared layers first (bottom of the stack), from [`SHARED`].
    shared: &'static [&'static str],
    /// The image's own top layer, MiB for amd64 and arm64.
    app: (f64, f64),
}

const fn img(
    reference: &'static str,
    shape: Shape,
    shared: &'static [&'static str],
    app: (f64, f64),
) -> ImageSpec {
    ImageSpec {
        reference,
        shape,
        shared,
        app,
    }
}

use Shape::{Docker, DockerList, Oci, OciIndex};
const B: &[&str] = &["base"];

/// 28 images; names and tags as in RKE's system-image catalog. At `full`: about 2.84 GB unique,
/// 10 layers of 200–350 MB, 5.1 GB when every image is counted on its own.
const IMAGES: &[ImageSpec] = &[
    img(
        "rancher/rke-tools:v0.1.103",
        OciIndex,
        &["base", "rke-tools-common"],
        (10.0, 9.0),
    ),
    img(
        "rancher/rke-tools:v0.1.100",
        OciIndex,
        &["base", "rke-tools-common"],
        (9.0, 8.0),
    ),
    img(
        "rancher/hyperkube:v1.30.5-rancher1",
        DockerList,
        &["base", "k8s-common"],
        (200.0, 195.0),
    ),
    img(
        "rancher/hyperkube:v1.29.9-rancher1",
        DockerList,
        &["base", "k8s-common"],
        (195.0, 192.0),
    ),
    img(
        "rancher/mirrored-coreos-etcd:v3.5.12",
        OciIndex,
        B,
        (250.0, 225.0),
    ),
    img("rancher/mirrored-pause:3.7", DockerList, &[], (0.3, 0.3)),
    img("rancher/mirrored-pause:3.6", Docker, &[], (0.3, 0.0)),
    img(
        "rancher/mirrored-coredns-coredns:1.11.1",
        DockerList,
        B,
        (8.0, 7.0),
    ),
    img(
        "rancher/mirrored-cluster-proportional-autoscaler:v1.8.9",
        OciIndex,
        B,
        (6.0, 5.0),
    ),
    img(
        "rancher/mirrored-k8s-dns-node-cache:1.22.28",
        DockerList,
        B,
        (15.0, 14.0),
    ),
    img(
        "rancher/mirrored-k8s-dns-kube-dns:1.22.28",
        Docker,
        B,
        (9.0, 0.0),
    ),
    img(
        "rancher/mirrored-k8s-dns-dnsmasq-nanny:1.22.28",
        Docker,
        B,
        (7.0, 0.0),
    ),
    img(
        "rancher/mirrored-k8s-dns-sidecar:1.22.28",
        Docker,
        B,
        (6.0, 0.0),
    ),
    img(
        "rancher/mirrored-flannel-flannel:v0.25.1",
        OciIndex,
        B,
        (5.0, 5.0),
    ),
    img(
        "rancher/flannel-cni:v1.4.0-rancher1",
        DockerList,
        B,
        (4.0, 4.0),
    ),
    img(
        "rancher/mirrored-calico-node:v3.27.3",
        OciIndex,
        B,
        (20.0, 19.0),
    ),
    img(
        "rancher/mirrored-calico-cni:v3.27.3",
        OciIndex,
        B,
        (15.0, 14.0),
    ),
    img(
        "rancher/mirrored-calico-kube-controllers:v3.27.3",
        OciIndex,
        B,
        (6.0, 5.0),
    ),
    img("rancher/mirrored-calico-ctl:v3.27.2", Oci, B, (10.0, 0.0)),
    img(
        "rancher/mirrored-calico-pod2daemon-flexvol:v3.27.3",
        Oci,
        B,
        (1.5, 0.0),
    ),
    img(
        "rancher/nginx-ingress-controller:nginx-1.10.4-rancher1",
        DockerList,
        B,
        (22.0, 21.0),
    ),
    img(
        "rancher/mirrored-ingress-nginx-kube-webhook-certgen:v1.4.1",
        DockerList,
        B,
        (4.0, 4.0),
    ),
    img(
        "rancher/mirrored-nginx-ingress-controller-defaultbackend:1.5-rancher1",
        Docker,
        B,
        (1.0, 0.0),
    ),
    img(
        "rancher/mirrored-metrics-server:v0.7.1",
        OciIndex,
        B,
        (5.0, 5.0),
    ),
    img("rancher/kube-api-auth:v0.2.2", DockerList, B, (3.0, 3.0)),
    img("rancher/kubelet-pause:v0.1.6", Docker, &[], (0.5, 0.0)),
    img("noiro/cnideploy:6.0.4.2.81c2369", Docker, B, (12.0, 0.0)),
    img(
        "noiro/aci-containers-controller:6.0.4.2.81c2369",
        Docker,
        B,
        (17.0, 0.0),
    ),
];

/// The image carrying the huge layer (`--big-layer-gb`), listed in `images-big.txt` only.
const BIG_IMAGE: &str = "rancher/mirrored-bench-big-layer:v1.0.0";

/// The parameters of one generation (the content of the `done` marker).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Params {
    pub format: u32,
    pub scale: Scale,
    pub big_layer_gb: f64,
}

impl Params {
    pub fn new(scale: Scale, big_layer_gb: f64) -> Params {
        Params {
            format: FORMAT_VERSION,
            scale,
            big_layer_gb,
        }
    }
}

/// One unique layer to generate.
#[derive(Debug, Clone)]
struct LayerSpec {
    /// Also the PRNG seed: `shared/base/amd64`, `app/rancher/x:tag/arm64`, `big/…`.
    key: String,
    content_len: u64,
}

fn mib_to_bytes(mib: f64, scale: Scale) -> u64 {
    // At least 64 KiB so even `small` layers span several deflate blocks.
    ((mib * MIB / scale.divisor()).round() as u64).max(64 * 1024)
}

fn shared_key(name: &str, arch: &str) -> String {
    format!("shared/{name}/{arch}")
}
fn app_key(reference: &str, arch: &str) -> String {
    format!("app/{reference}/{arch}")
}
fn big_key(gb: f64) -> String {
    format!("big/{gb}GiB")
}

/// Every unique layer of the workload, in a stable order.
fn layer_specs(p: &Params) -> Vec<LayerSpec> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |key: String, content_len: u64| {
        if seen.insert(key.clone()) {
            out.push(LayerSpec { key, content_len });
        }
    };
    for image in IMAGES {
        for (i, arch) in image.shape.arches().iter().enumerate() {
            for name in image.shared {
                let (_, amd, arm) = SHARED.iter().find(|s| s.0 == *name).expect("shared layer");
                add(
                    shared_key(name, arch),
                    mib_to_bytes(if i == 0 { *amd } else { *arm }, p.scale),
                );
            }
            let mib = if i == 0 { image.app.0 } else { image.app.1 };
            add(app_key(image.reference, arch), mib_to_bytes(mib, p.scale));
        }
    }
    if p.big_layer_gb > 0.0 {
        add(
            shared_key("base", "amd64"),
            mib_to_bytes(SHARED[0].1, p.scale),
        );
        // Not scaled: the point is one layer far bigger than any buffer.
        add(
            big_key(p.big_layer_gb),
            (p.big_layer_gb * 1024.0 * MIB).round() as u64,
        );
    }
    out
}

/// Paths of the workload dir.
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }
    fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Writes `bytes` to `path` via a temp file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Generates every layer that the cache does not already hold on disk, `threads` at a time.
fn generate_layers(
    paths: &Paths,
    storage: &Storage,
    specs: &[LayerSpec],
    threads: usize,
) -> Result<BTreeMap<String, LayerInfo>> {
    let cache_path = paths.file("layers.json");
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Cached {
        content_len: u64,
        #[serde(flatten)]
        info: LayerInfo,
    }
    let cache: BTreeMap<String, Cached> = fs::read(&cache_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();

    let mut done: BTreeMap<String, LayerInfo> = BTreeMap::new();
    let mut todo: Vec<LayerSpec> = Vec::new();
    for s in specs {
        match cache.get(&s.key) {
            Some(c)
                if c.content_len == s.content_len
                    && fs::metadata(storage.blob_path(&c.info.digest))
                        .is_ok_and(|m| m.len() == c.info.size) =>
            {
                done.insert(s.key.clone(), c.info.clone());
            }
            _ => todo.push(s.clone()),
        }
    }
    // Biggest first, so the threads finish together.
    todo.sort_by(|a, b| b.content_len.cmp(&a.content_len).then(a.key.cmp(&b.key)));
    let total: u64 = todo.iter().map(|s| s.content_len).sum();
    if todo.is_empty() {
        eprintln!("bench_env: all {} layers already generated", specs.len());
    } else {
        eprintln!(
            "bench_env: generating {} layers ({:.2} GB, {} threads; {} reused)",
            todo.len(),
            total as f64 / 1e9,
            threads,
            done.len()
        );
    }

    fs::create_dir_all(paths.tmp())?;
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, LayerInfo)>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = todo.get(i) else { break };
                    if first_error.lock().unwrap().is_some() {
                        break;
                    }
                    match generate_one(paths, storage, spec) {
                        Ok(info) => results.lock().unwrap().push((spec.key.clone(), info)),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let _ = fs::remove_dir(paths.tmp());
    done.extend(results.into_inner().unwrap());
    if total > 0 {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "bench_env: generated {:.2} GB in {secs:.1} s ({:.0} MB/s)",
            total as f64 / 1e9,
            total as f64 / 1e6 / secs
        );
    }

    let cache: BTreeMap<&String, Cached> = specs
        .iter()
        .map(|s| {
            (
                &s.key,
                Cached {
                    content_len: s.content_len,
                    info: done[&s.key].clone(),
                },
            )
        })
        .collect();
    write_atomic(&cache_path, &serde_json::to_vec_pretty(&cache)?)?;
    Ok(done)
}

fn generate_one(paths: &Paths, storage: &Storage, spec: &LayerSpec) -> Result<LayerInfo> {
    let t = Instant::now();
    let tmp = paths
        .tmp()
        .join(format!("{}.tar.gz", spec.key.replace(['/', ':'], "_")));
    let file_path = format!(
        "opt/bench/{}.bin",
        spec.key.replace(':', "_").trim_start_matches('/')
    );
    let info = layer::write_layer(&tmp, &spec.key, &file_path, spec.content_len)
        .with_context(|| format!("write layer {}", spec.key))?;
    // Small layers: read back and check the gzip framing and both digests with the harness.
    if info.size <= 16 << 20 {
        let gz = fs::read(&tmp)?;
        let tar = blobs::gunzip_stored(&gz).context("generated layer is not valid gzip")?;
        if sha256_digest(&gz) != info.digest || sha256_digest(&tar) != info.diff_id {
            bail!("self-check of layer {} failed", spec.key);
        }
    }
    let dest = storage.blob_path(&info.digest);
    fs::create_dir_all(dest.parent().expect("blob dir"))?;
    fs::rename(&tmp, &dest).with_context(|| format!("move layer to {}", dest.display()))?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "  {:<72} {:>8.1} MB  {:>5.1} s  {}",
        spec.key,
        info.size as f64 / 1e6,
        secs,
        &info.digest[..19]
    );
    Ok(info)
}

/// Serializes a manifest the way its kind of tool would (Docker: 3-space indent; OCI: compact
/// or 2-space), so a tool that re-serializes changes the digest.
pub fn to_bytes(v: &Value, docker: bool, pretty: bool) -> Vec<u8> {
    use serde::Serialize;
    if docker {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        v.serialize(&mut ser).expect("serialize");
        out
    } else if pretty {
        serde_json::to_vec_pretty(v).expect("serialize")
    } else {
        serde_json::to_vec(v).expect("serialize")
    }
}

/// One blob of an image as it is referenced.
struct Blob {
    digest: String,
    size: u64,
}

/// What storing an image produced.
struct Stored {
    repository: String,
    /// Configs and layers, unique within the image.
    blobs: Vec<Blob>,
    manifests: usize,
}

/// Stores one image (configs, manifests, links, tag) given its layer keys per arch.
fn store_image(
    storage: &Storage,
    layers: &BTreeMap<String, LayerInfo>,
    reference: &str,
    shape: Shape,
    keys_per_arch: &[(&str, Vec<String>)],
) -> Result<Stored> {
    let (repository, tag) = reference.rsplit_once(':').context("repo:tag")?;
    let binary = repository.rsplit('/').next().unwrap_or(repository);
    let docker = shape.docker();
    let (manifest_mt, config_mt, layer_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    };
    let mut blobs: Vec<Blob> = Vec::new();
    let mut children = Vec::new();
    for (arch, keys) in keys_per_arch {
        let infos: Vec<&LayerInfo> = keys.iter().map(|k| &layers[k]).collect();
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Entrypoint": [format!("/usr/local/bin/{binary}")],
                "Labels": {"io.ferry.bench": reference},
            },
            "created": CREATED,
            "history": keys.iter().map(|k| json!({"created": CREATED, "created_by": format!("bench layer {k}")})).collect::<Vec<_>>(),
            "rootfs": {"type": "layers", "diff_ids": infos.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
        });
        let config = serde_json::to_vec(&config)?;
        let config_digest = storage.put_blob(repository, &config);
        let mut push = |digest: &str, size: u64| {
            if !blobs.iter().any(|b| b.digest == digest) {
                blobs.push(Blob {
                    digest: digest.to_string(),
                    size,
                });
            }
        };
        push(&config_digest, config.len() as u64);
        for l in &infos {
            storage.link_blob(repository, &l.digest);
            push(&l.digest, l.size);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_mt,
            "config": {"mediaType": config_mt, "size": config.len(), "digest": config_digest},
            "layers": infos.iter().map(|l| json!({"mediaType": layer_mt, "size": l.size, "digest": l.digest})).collect::<Vec<_>>(),
        });
        let bytes = to_bytes(&manifest, docker, shape == Shape::Oci);
        let digest = storage.put_manifest(repository, &bytes);
        children.push((arch.to_string(), digest, bytes.len()));
    }
    let top = match shape {
        Shape::Docker | Shape::Oci => children[0].1.clone(),
        Shape::OciIndex | Shape::DockerList => {
            let list_mt = if docker { DOCKER_LIST } else { OCI_INDEX };
            let entries: Vec<Value> = children
                .iter()
                .map(|(arch, digest, size)| {
                    json!({"mediaType": manifest_mt, "size": size, "digest": digest,
                           "platform": {"architecture": arch, "os": "linux"}})
                })
                .collect();
            let list = json!({"schemaVersion": 2, "mediaType": list_mt, "manifests": entries});
            storage.put_manifest(repository, &to_bytes(&list, docker, false))
        }
    };
    storage.tag(repository, tag, &top);
    let manifests =
        children.len() + usize::from(matches!(shape, Shape::OciIndex | Shape::DockerList));
    Ok(Stored {
        repository: repository.to_string(),
        blobs,
        manifests,
    })
}

/// Summary of a set of images, and the files that list them.
fn write_lists(
    paths: &Paths,
    images_file: &str,
    blobs_file: &str,
    references: &[&str],
    stored: &[Stored],
) -> Result<Value> {
    let mut images_txt = String::new();
    for r in references {
        images_txt.push_str(r);
        images_txt.push('\n');
    }
    write_atomic(&paths.file(images_file), images_txt.as_bytes())?;
    let mut unique: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    let mut per_image_sum = 0u64;
    let mut manifests = 0usize;
    for s in stored {
        manifests += s.manifests;
        for b in &s.blobs {
            per_image_sum += b.size;
            unique.entry(&b.digest).or_insert((&s.repository, b.size));
        }
    }
    let mut blobs_txt = String::new();
    for (digest, (repo, size)) in &unique {
        blobs_txt.push_str(&format!("{repo} {digest} {size}\n"));
    }
    write_atomic(&paths.file(blobs_file), blobs_txt.as_bytes())?;
    let unique_bytes: u64 = unique.values().map(|(_, s)| s).sum();
    let largest = unique.values().map(|(_, s)| *s).max().unwrap_or(0);
    Ok(json!({
        "images": references.len(),
        "images_file": paths.file(images_file),
        "blobs_file": paths.file(blobs_file),
        "manifests": manifests,
        "unique_blobs": unique.len(),
        "unique_bytes": unique_bytes,
        "bytes_without_dedup": per_image_sum,
        "largest_blob": largest,
    }))
}

/// Generates the workload into `dir` unless its `done` marker already names these parameters.
pub fn generate(dir: &Path, params: &Params, threads: usize) -> Result<()> {
    let paths = Paths {
        dir: dir.to_path_buf(),
    };
    fs::create_dir_all(&paths.dir).with_context(|| format!("create {}", dir.display()))?;
    let marker = paths.file("done");
    let want = serde_json::to_string(params)?;
    if fs::read_to_string(&marker).is_ok_and(|have| have.trim() == want) {
        eprintln!(
            "bench_env: workload in {} is up to date ({want})",
            dir.display()
        );
        print_summary(&paths)?;
        return Ok(());
    }
    let _ = fs::remove_file(&marker);
    let start = Instant::now();
    let storage = Storage::new(&paths.storage());
    let layers = generate_layers(&paths, &storage, &layer_specs(params), threads)?;

    // Repositories are cheap to rewrite: start clean so no tag of another generation remains.
    let repos = paths.storage().join("docker/registry/v2/repositories");
    if repos.exists() {
        fs::remove_dir_all(&repos)?;
    }
    let mut stored = Vec::new();
    for image in IMAGES {
        let keys: Vec<(&str, Vec<String>)> = image
            .shape
            .arches()
            .iter()
            .map(|arch| {
                let mut keys: Vec<String> =
                    image.shared.iter().map(|n| shared_key(n, arch)).collect();
                keys.push(app_key(image.reference, arch));
                (*arch, keys)
            })
            .collect();
        stored.push(store_image(
            &storage,
            &layers,
            image.reference,
            image.shape,
            &keys,
        )?);
    }
    let refs: Vec<&str> = IMAGES.iter().map(|i| i.reference).collect();
    let mut summary = write_lists(&paths, "images.txt", "blobs.txt", &refs, &stored)?;
    summary["scale"] = json!(params.scale);
    summary["storage"] = json!(paths.storage());
    let big_layer_bytes = |gb: f64| layers[&big_key(gb)].size;
    if params.big_layer_gb > 0.0 {
        let keys = vec![(
            "amd64",
            vec![shared_key("base", "amd64"), big_key(params.big_layer_gb)],
        )];
        let s = store_image(&storage, &layers, BIG_IMAGE, Shape::Docker, &keys)?;
        let mut big = write_lists(
            &paths,
            "images-big.txt",
            "blobs-big.txt",
            &[BIG_IMAGE],
            &[s],
        )?;
        big["big_layer_bytes"] = json!(big_layer_bytes(params.big_layer_gb));
        summary["big"] = big;
    } else {
        let _ = fs::remove_file(paths.file("images-big.txt"));
        let _ = fs::remove_file(paths.file("blobs-big.txt"));
    }
    write_atomic(
        &paths.file("workload.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    write_atomic(&marker, want.as_bytes())?;
    eprintln!(
        "bench_env: workload ready in {} ({:.1} s)",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    print_summary(&paths)
}

/// Prints `workload.json` as one line on stdout.
pub fn print_summary(paths: &Paths) -> Result<()> {
    let text = fs::read_to_string(paths.file("workload.json")).context("read workload.json")?;
    let v: Value = serde_json::from_str(&text)?;
    println!("{}", serde_json::to_string(&v)?);
    Ok(())
}
