//! The scale workload (`generate --scale-images N`): N small images in N repositories, for the
//! `scale` phase of scripts/bench.sh — what matters there is the count of images, repositories
//! and requests, not bytes.
//!
//! Image `i` is `scale/app-NNNNN:v1` (0-based, five digits): single-arch linux/amd64, a config
//! and its own layer of 2–100 KiB of pseudo-random bytes (seeded by the repository name, so
//! every generation writes the same bytes); the even ones also have one shared base layer of
//! 64 KiB below it (the same blob in N/2 repositories). Half the images are Docker schema2
//! (3-space JSON), half OCI (compact JSON), mixed across the base-sharing ones.
//!
//! Written once as distribution storage, like the main workload, with the same files:
//! `storage/`, `images.txt`, `blobs.txt` (`REPOSITORY DIGEST SIZE` per unique blob),
//! `workload.json` (counts and bytes, including `manifest_bytes`: what the manifests of all
//! images weigh, the yardstick of a client's memory per image) and the `done` marker.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::workload::{Paths, print_summary, to_bytes, write_atomic};
use ferry_test_support::blobs::{self, Layer};
use ferry_test_support::fixtures::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
};
use ferry_test_support::seed::Storage;

/// Bump when the bytes of the scale workload change.
const FORMAT_VERSION: u32 = 1;
/// The most images (five-digit names, and a sane bound for one registry on one disk).
pub const MAX_IMAGES: usize = 99_999;
const BASE_SIZE: usize = 64 * 1024;
const APP_MIN: u64 = 2 * 1024;
const APP_MAX: u64 = 100 * 1024;
const CREATED: &str = "2024-05-01T00:00:00Z";

/// The parameters of one generation (the `done` marker).
#[derive(serde::Serialize)]
struct Params {
    format: u32,
    scale_images: usize,
}

/// `scale/app-00042:v1`.
pub fn reference(i: usize) -> String {
    format!("{}:v1", repository(i))
}

fn repository(i: usize) -> String {
    format!("scale/app-{i:05}")
}

/// Size of image `i`'s own layer content, 2–100 KiB.
fn app_size(i: usize) -> usize {
    let mut p = blobs::Prng::new(&format!("scale-size/{i}"));
    (APP_MIN + p.next_u64() % (APP_MAX - APP_MIN + 1)) as usize
}

/// What storing one image produced.
struct Stored {
    repository: String,
    /// Config and layers: (digest, size).
    blobs: Vec<(String, u64)>,
    manifest_bytes: u64,
}

fn store_image(storage: &Storage, base: &Layer, i: usize) -> Stored {
    let repository = repository(i);
    let shares_base = i.is_multiple_of(2);
    let docker = (i / 2).is_multiple_of(2);
    let (manifest_mt, config_mt, layer_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    };
    let app = blobs::layer(&repository, &[("opt/app/payload.bin", app_size(i))]);
    let mut layers: Vec<&Layer> = Vec::new();
    if shares_base {
        storage.link_blob(&repository, &base.digest);
        layers.push(base);
    }
    storage.put_blob(&repository, &app.gz);
    layers.push(&app);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": [format!("/usr/local/bin/app-{i:05}")],
            "Labels": {"io.ferry.bench": reference(i)},
        },
        "created": CREATED,
        "history": layers.iter().map(|l| json!({"created": CREATED, "created_by": format!("bench layer {}", &l.digest[7..19])})).collect::<Vec<_>>(),
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).expect("serialize");
    let config_digest = storage.put_blob(&repository, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_mt,
        "config": {"mediaType": config_mt, "size": config.len(), "digest": config_digest},
        "layers": layers.iter().map(|l| json!({"mediaType": layer_mt, "size": l.gz.len(), "digest": l.digest})).collect::<Vec<_>>(),
    });
    let bytes = to_bytes(&manifest, docker, false);
    let digest = storage.put_manifest(&repository, &bytes);
    storage.tag(&repository, "v1", &digest);
    let mut blobs = vec![(config_digest, config.len() as u64)];
    blobs.extend(layers.iter().map(|l| (l.digest.clone(), l.gz.len() as u64)));
    Stored {
        repository,
        blobs,
        manifest_bytes: bytes.len() as u64,
    }
}

/// Generates the scale workload of `n` images into `dir` unless its `done` marker already
/// names it; `threads` images are written at once.
pub fn generate(dir: &Path, n: usize, threads: usize) -> Result<()> {
    if n == 0 || n > MAX_IMAGES {
        bail!("--scale-images must be between 1 and {MAX_IMAGES}");
    }
    let paths = Paths {
        dir: dir.to_path_buf(),
    };
    fs::create_dir_all(&paths.dir).with_context(|| format!("create {}", dir.display()))?;
    let marker = paths.dir.join("done");
    let want = serde_json::to_string(&Params {
        format: FORMAT_VERSION,
        scale_images: n,
    })?;
    if fs::read_to_string(&marker).is_ok_and(|have| have.trim() == want) {
        eprintln!(
            "bench_env: workload in {} is up to date ({want})",
            dir.display()
        );
        return print_summary(&paths);
    }
    let _ = fs::remove_file(&marker);
    // Small enough to rewrite whole: no blob or tag of another generation remains.
    if paths.storage().exists() {
        fs::remove_dir_all(paths.storage())?;
    }
    let start = Instant::now();
    eprintln!("bench_env: generating {n} scale images ({threads} threads)");
    let storage = Storage::new(&paths.storage());
    let base = blobs::layer("scale/base", &[("usr/lib/base.bin", BASE_SIZE)]);
    storage.put_blob_data(&base.gz);

    let stored: Mutex<Vec<Option<Stored>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for t in 0..threads.max(1) {
            let (storage, base, stored) = (&storage, &base, &stored);
            scope.spawn(move || {
                for i in (t..n).step_by(threads.max(1)) {
                    let s = store_image(storage, base, i);
                    stored.lock().unwrap()[i] = Some(s);
                }
            });
        }
    });
    let stored: Vec<Stored> = stored
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|s| s.expect("every image stored"))
        .collect();

    let mut images_txt = String::new();
    for i in 0..n {
        images_txt.push_str(&reference(i));
        images_txt.push('\n');
    }
    write_atomic(&paths.dir.join("images.txt"), images_txt.as_bytes())?;
    let mut unique: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    let mut per_image_sum = 0u64;
    for s in &stored {
        for (digest, size) in &s.blobs {
            per_image_sum += size;
            unique.entry(digest).or_insert((&s.repository, *size));
        }
    }
    let mut blobs_txt = String::new();
    for (digest, (repo, size)) in &unique {
        blobs_txt.push_str(&format!("{repo} {digest} {size}\n"));
    }
    write_atomic(&paths.dir.join("blobs.txt"), blobs_txt.as_bytes())?;
    let manifest_bytes: u64 = stored.iter().map(|s| s.manifest_bytes).sum();
    let summary: Value = json!({
        "scale": "scale",
        "images": n,
        "repositories": n,
        "images_file": paths.dir.join("images.txt"),
        "blobs_file": paths.dir.join("blobs.txt"),
        "manifests": n,
        "manifest_bytes": manifest_bytes,
        "unique_blobs": unique.len(),
        "unique_bytes": unique.values().map(|(_, s)| s).sum::<u64>(),
        "bytes_without_dedup": per_image_sum,
        "largest_blob": unique.values().map(|(_, s)| *s).max().unwrap_or(0),
        "storage": paths.storage(),
    });
    write_atomic(
        &paths.dir.join("workload.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    write_atomic(&marker, want.as_bytes())?;
    eprintln!(
        "bench_env: scale workload of {n} images ready in {} ({:.1} s)",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    print_summary(&paths)
}
