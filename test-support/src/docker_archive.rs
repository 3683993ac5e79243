//! `docker save` archives built byte by byte, in the two layouts Docker writes — the legacy
//! one (Docker < 25: `<id>/layer.tar`, `<hex>.json` configs, `manifest.json`, `repositories`,
//! with a symlink for a layer two images share) and Docker 25's (an OCI layout plus
//! `manifest.json`) — for tests of archive import that need no Docker Engine, and for
//! damaged variants (a wrong diff_id, a missing name).

use serde_json::json;

use super::blobs;
use super::sha256_digest;

/// One image to save: its name(s) and the uncompressed tars of its layers.
#[derive(Debug, Clone)]
pub struct SavedImage {
    pub repo_tags: Vec<String>,
    pub layers: Vec<Vec<u8>>,
}

impl SavedImage {
    /// An image named `name` with layers of pseudo-random files (seeded by `name`), `sizes`
    /// bytes each; `shared` layer tars go first.
    pub fn new(name: &str, shared: &[Vec<u8>], sizes: &[usize]) -> SavedImage {
        let mut layers = shared.to_vec();
        for (i, n) in sizes.iter().enumerate() {
            layers.push(layer_tar(&format!("{name}/{i}"), *n));
        }
        SavedImage {
            repo_tags: vec![name.to_string()],
            layers,
        }
    }

    /// Its config: `rootfs.diff_ids` from the layers (or `diff_ids` if given).
    pub fn config(&self, diff_ids: Option<Vec<String>>) -> Vec<u8> {
        let ids =
            diff_ids.unwrap_or_else(|| self.layers.iter().map(|l| sha256_digest(l)).collect());
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Labels": {"io.ferry.saved": self.repo_tags.first()}},
            "rootfs": {"type": "layers", "diff_ids": ids},
            "history": self.layers.iter().map(|_| json!({"created_by": "saved"})).collect::<Vec<_>>(),
        }))
        .expect("config")
    }
}

/// The tar of one layer: a file of `size` pseudo-random bytes.
pub fn layer_tar(seed: &str, size: usize) -> Vec<u8> {
    blobs::tar_of(&[(
        format!("data/{}", seed.replace('/', "_")),
        blobs::pseudo_random(seed, size),
    )])
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("path");
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).expect("append");
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// The legacy layout (Docker 20.10). A layer two images share is written once; the second
/// `<id>/layer.tar` is a symlink to the first, as Docker does. `configs` overrides the config
/// of an image (by index) to make damaged archives.
pub fn legacy(images: &[SavedImage], configs: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut written: Vec<(String, String)> = Vec::new(); // diff_id → entry name
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    for (n, img) in images.iter().enumerate() {
        let config = configs
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| img.config(None));
        let config_name = format!("{}.json", hex(&sha256_digest(&config)));
        append(&mut b, &config_name, &config);
        let mut layers = Vec::new();
        for (i, l) in img.layers.iter().enumerate() {
            let diff_id = sha256_digest(l);
            // The v1 ID: anything unique per (image, position) does.
            let id = hex(&sha256_digest(format!("{n}/{i}/{diff_id}").as_bytes())).to_string();
            let name = format!("{id}/layer.tar");
            append(&mut b, &format!("{id}/VERSION"), b"1.0");
            append(
                &mut b,
                &format!("{id}/json"),
                format!("{{\"id\":\"{id}\"}}").as_bytes(),
            );
            match written.iter().find(|(d, _)| *d == diff_id) {
                Some((_, first)) => {
                    let mut h = tar::Header::new_ustar();
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_path(&name).expect("path");
                    h.set_link_name(format!("../{first}")).expect("link");
                    h.set_size(0);
                    h.set_mode(0o777);
                    h.set_cksum();
                    b.append(&h, std::io::empty()).expect("symlink");
                }
                None => {
                    append(&mut b, &name, l);
                    written.push((diff_id, name.clone()));
                }
            }
            layers.push(name);
        }
        let tags: Option<Vec<&String>> =
            (!img.repo_tags.is_empty()).then(|| img.repo_tags.iter().collect());
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layers}));
        for t in &img.repo_tags {
            if let Some((repo, tag)) = t.rsplit_once(':') {
                let entry = repositories
                    .entry(repo.to_string())
                    .or_insert_with(|| json!({}));
                entry[tag] = json!(hex(&sha256_digest(
                    layers.last().expect("a layer").as_bytes()
                )));
            }
        }
    }
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    append(
        &mut b,
        "repositories",
        &serde_json::to_vec(&repositories).expect("json"),
    );
    b.into_inner().expect("tar")
}

/// Docker 25's layout: `blobs/sha256/` (configs, uncompressed layers, OCI manifests),
/// `index.json`, `oci-layout`, and `manifest.json` pointing into `blobs/`.
pub fn docker25(images: &[SavedImage]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    let mut blob = |b: &mut tar::Builder<Vec<u8>>, data: &[u8]| -> String {
        let d = sha256_digest(data);
        if seen.insert(d.clone()) {
            append(b, &format!("blobs/sha256/{}", hex(&d)), data);
        }
        d
    };
    let mut manifest = Vec::new();
    let mut index = Vec::new();
    for img in images {
        let config = img.config(None);
        let cd = blob(&mut b, &config);
        let mut layers = Vec::new();
        let mut descs = Vec::new();
        for l in &img.layers {
            let d = blob(&mut b, l);
            layers.push(format!("blobs/sha256/{}", hex(&d)));
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": l.len(), "digest": d}));
        }
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": cd},
            "layers": descs,
        }))
        .expect("manifest");
        let md = blob(&mut b, &m);
        manifest.push(json!({"Config": format!("blobs/sha256/{}", hex(&cd)), "RepoTags": img.repo_tags, "Layers": layers}));
        for t in &img.repo_tags {
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md,
                "size": m.len(),
                "annotations": {"io.containerd.image.name": format!("docker.io/{t}"), "org.opencontainers.image.ref.name": t.rsplit_once(':').map_or("latest", |x| x.1)},
            }));
        }
    }
    append(&mut b, "index.json", &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})).expect("json"));
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    b.into_inner().expect("tar")
}

/// `data` gzip-compressed (real deflate, as `gzip` writes it).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}
