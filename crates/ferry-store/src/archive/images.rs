//! The images of a scanned archive ([`contents`]): from `manifest.json` for `docker save` and
//! `podman save` archives (the legacy layout of Docker 20.10 and podman, and Docker 25's OCI
//! layout plus `manifest.json`), from `index.json` for OCI archives. Every layer is checked
//! against its image config's `rootfs.diff_ids` (the only integrity a docker archive has) and
//! every content-addressed file against its name. An image whose layers were compressed here
//! gets a new manifest (Docker schema 2 when every layer is gzip, else OCI); an OCI archive's
//! image whose layers are pushed as they are keeps its manifest, byte for byte.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ArchiveError;
use super::scan::{Blob, Scanned};
use crate::FetchedManifest;
use ferry_oci::digest::Digest;
use ferry_oci::manifest::Manifest;
use ferry_oci::media_types;
use ferry_oci::reference::Reference;

/// Which kind of archive it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `manifest.json` with `<id>/layer.tar` or `<digest>.tar` layers: Docker before 25, and
    /// `podman save` (also `--multi-image-archive`).
    DockerLegacy,
    /// `manifest.json` over an OCI layout: Docker 25 and later.
    DockerOci,
    /// An OCI image layout (`podman save --format oci-archive`, `skopeo copy … oci-archive:`).
    Oci,
}

impl Format {
    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            Format::DockerLegacy => "a docker-save archive (legacy layout, Docker < 25 or podman)",
            Format::DockerOci => "a docker-save archive (OCI layout, Docker 25+)",
            Format::Oci => "an OCI archive",
        }
    }
}

/// One image of the archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The names it is pushed under.
    pub names: Vec<Reference>,
    /// Its top-level manifest.
    pub top: Digest,
}

/// Everything the archive holds, ready to push.
#[derive(Debug, Default)]
pub struct Contents {
    /// The images.
    pub images: Vec<ArchiveImage>,
    /// Every manifest (made here or the archive's own), by digest.
    pub manifests: HashMap<Digest, FetchedManifest>,
    /// Configs, by digest.
    pub configs: HashMap<Digest, Bytes>,
    /// Layers, by the digest they are pushed with.
    pub layers: HashMap<Digest, Arc<Blob>>,
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigRootFs {
    rootfs: Option<RootFs>,
}

/// What is derived from a metadata file, by its (resolved) entry name, made once however
/// many `manifest.json` or `index.json` entries name it: 2,000 entries naming one 15 MiB
/// config must not hash and parse it 2,000 times.
#[derive(Default)]
struct Memo {
    /// The digest of a file checked against the one its name claims.
    checked: HashMap<String, Digest>,
    /// A config's `rootfs.diff_ids`.
    diff_ids: HashMap<String, Arc<Vec<String>>>,
    /// An OCI layout's image manifest made pushable, by digest and media type.
    images: HashMap<(Digest, String), FetchedManifest>,
    /// What an `index.json` entry's manifest or index became, by digest and media type.
    tops: HashMap<(Digest, String), FetchedManifest>,
}

/// The archive's kind and images.
pub fn contents(s: &Scanned) -> Result<(Format, Contents), ArchiveError> {
    if let Some(m) = s.file("manifest.json")? {
        let format = if s.files.contains_key("oci-layout") {
            Format::DockerOci
        } else {
            Format::DockerLegacy
        };
        return Ok((format, docker(s, m)?));
    }
    if let Some(index) = s.file("index.json")? {
        return Ok((Format::Oci, oci(s, index)?));
    }
    let what = if s.files.contains_key("images.lock") {
        "it looks like a ferry bundle that was compressed; decompress it and import the .tar"
            .to_string()
    } else {
        "it has neither manifest.json (docker save, podman save) nor index.json (OCI)".to_string()
    };
    Err(ArchiveError::NotAnArchive {
        path: s.path.clone(),
        what,
    })
}

fn bad_json(s: &Scanned, entry: &str, detail: impl ToString) -> ArchiveError {
    ArchiveError::BadJson {
        path: s.path.clone(),
        entry: entry.to_string(),
        detail: detail.to_string(),
    }
}

fn missing(s: &Scanned, entry: &str, image: &str) -> ArchiveError {
    ArchiveError::Missing {
        path: s.path.clone(),
        entry: entry.to_string(),
        image: image.to_string(),
    }
}

/// The digest a content-addressed name claims: `<hex>.json`, `<hex>.tar`,
/// `blobs/sha256/<hex>`.
fn named_digest(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base
        .strip_suffix(".json")
        .or_else(|| base.strip_suffix(".tar"))
        .unwrap_or(base);
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// Checks a metadata file's bytes against the digest its name claims (when it claims one);
/// once per file.
fn check_named(
    s: &Scanned,
    memo: &mut Memo,
    name: &str,
    bytes: &[u8],
) -> Result<Digest, ArchiveError> {
    let key = s.resolve(name)?;
    if let Some(d) = memo.checked.get(&key) {
        return Ok(d.clone());
    }
    let got = Digest::sha256_of(bytes);
    match named_digest(name) {
        Some(want) if want != got => Err(ArchiveError::Corrupt {
            path: s.path.clone(),
            entry: name.to_string(),
            got,
        }),
        _ => {
            memo.checked.insert(key, got.clone());
            Ok(got)
        }
    }
}

/// A config's `rootfs.diff_ids`, parsed once per file.
fn diff_ids(
    s: &Scanned,
    memo: &mut Memo,
    config_name: &str,
    config: &[u8],
) -> Result<Arc<Vec<String>>, ArchiveError> {
    let key = s.resolve(config_name)?;
    if let Some(ids) = memo.diff_ids.get(&key) {
        return Ok(ids.clone());
    }
    let parsed: ConfigRootFs =
        serde_json::from_slice(config).map_err(|e| bad_json(s, config_name, e))?;
    let ids = Arc::new(parsed.rootfs.map(|r| r.diff_ids).unwrap_or_default());
    memo.diff_ids.insert(key, ids.clone());
    Ok(ids)
}

/// Checks an image's layers against its config's diff_ids.
fn check_diff_ids(
    s: &Scanned,
    memo: &mut Memo,
    image: &str,
    config_name: &str,
    config: &[u8],
    layers: &[(&str, &Arc<Blob>)],
) -> Result<(), ArchiveError> {
    let diff_ids = diff_ids(s, memo, config_name, config)?;
    if diff_ids.len() != layers.len() {
        return Err(bad_json(
            s,
            config_name,
            format!(
                "the config of {image} lists {} layers (rootfs.diff_ids), the archive {}",
                diff_ids.len(),
                layers.len()
            ),
        ));
    }
    for ((name, blob), want) in layers.iter().zip(diff_ids.iter()) {
        if blob.diff_id.as_str() != want {
            return Err(ArchiveError::DiffId {
                path: s.path.clone(),
                image: image.to_string(),
                layer: name.to_string(),
                want: want.clone(),
                got: blob.diff_id.clone(),
            });
        }
    }
    Ok(())
}

/// A manifest made here for a config and its (pushable) layers.
fn make_manifest(config: &Digest, config_size: usize, layers: &[&Arc<Blob>]) -> FetchedManifest {
    let docker = layers.iter().all(|l| l.gzip);
    let (mt, config_mt) = if docker {
        (media_types::DOCKER_MANIFEST, media_types::DOCKER_CONFIG)
    } else {
        (media_types::OCI_MANIFEST, media_types::OCI_CONFIG)
    };
    let layer_values: Vec<Value> = layers
        .iter()
        .map(|l| {
            let lmt = match (docker, l.gzip) {
                (true, _) => media_types::DOCKER_LAYER_GZIP,
                (false, true) => media_types::OCI_LAYER_GZIP,
                (false, false) => media_types::OCI_LAYER,
            };
            json!({"mediaType": lmt, "size": l.size, "digest": l.digest.as_str()})
        })
        .collect();
    let v = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "size": config_size, "digest": config.as_str()},
        "layers": layer_values,
    });
    let bytes = Bytes::from(v.to_string());
    FetchedManifest {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type: mt.to_string(),
    }
}

fn parse_name(s: &Scanned, name: &str, config: &str) -> Result<Reference, ArchiveError> {
    Reference::parse(name).map_err(|e| {
        bad_json(
            s,
            "manifest.json",
            format!("the name {name:?} of image {config} is not an image reference: {e}"),
        )
    })
}

fn docker(s: &Scanned, manifest_json: &Bytes) -> Result<Contents, ArchiveError> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(manifest_json).map_err(|e| bad_json(s, "manifest.json", e))?;
    if entries.is_empty() {
        return Err(bad_json(s, "manifest.json", "it lists no image"));
    }
    let mut out = Contents::default();
    let mut memo = Memo::default();
    for e in entries {
        let tags = e.repo_tags.unwrap_or_default();
        let Some(first) = tags.first() else {
            return Err(ArchiveError::NoName {
                path: s.path.clone(),
                config: e.config.clone(),
            });
        };
        let config = s
            .file(&e.config)?
            .ok_or_else(|| missing(s, &e.config, first))?
            .clone();
        let config_digest = check_named(s, &mut memo, &e.config, &config)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let blob = s.blob(l)?.ok_or_else(|| missing(s, l, first))?;
            layers.push((l.as_str(), blob));
        }
        check_diff_ids(s, &mut memo, first, &e.config, &config, &layers)?;
        let blobs: Vec<&Arc<Blob>> = layers.iter().map(|(_, b)| *b).collect();
        let m = make_manifest(&config_digest, config.len(), &blobs);
        for b in blobs {
            out.layers.insert(b.digest.clone(), b.clone());
        }
        out.configs.insert(config_digest, config);
        let names = tags
            .iter()
            .map(|t| parse_name(s, t, &e.config))
            .collect::<Result<Vec<_>, _>>()?;
        out.images.push(ArchiveImage {
            names,
            top: m.digest.clone(),
        });
        out.manifests.insert(m.digest.clone(), m);
    }
    Ok(out)
}

/// The name an OCI index entry gives its image: the containerd annotation, else the OCI
/// one when it is a full reference (a bare tag names nothing).
fn oci_name(s: &Scanned, entry: &Value) -> Result<Reference, ArchiveError> {
    let ann = &entry["annotations"];
    let name = ann["io.containerd.image.name"]
        .as_str()
        .or_else(|| ann["org.opencontainers.image.ref.name"].as_str())
        .unwrap_or("");
    if (name.contains('/') || name.contains(':'))
        && let Ok(r) = Reference::parse(name)
    {
        return Ok(r);
    }
    Err(ArchiveError::NoName {
        path: s.path.clone(),
        config: format!(
            "{} (index.json names it {name:?}, not a full image reference)",
            entry["digest"].as_str().unwrap_or("?")
        ),
    })
}

/// A content-addressed metadata file of an OCI layout, checked.
fn oci_file(
    s: &Scanned,
    memo: &mut Memo,
    digest: &str,
    image: &str,
) -> Result<(String, Bytes, Digest), ArchiveError> {
    let d = Digest::parse(digest).map_err(|e| bad_json(s, "index.json", e))?;
    let name = d.blob_path();
    let bytes = s
        .file(&name)?
        .ok_or_else(|| missing(s, &name, image))?
        .clone();
    let got = check_named(s, memo, &name, &bytes)?;
    Ok((name, bytes, got))
}

/// One image manifest of an OCI layout: its layers checked and made pushable; the manifest
/// kept when nothing changed, else rewritten.
fn oci_image(
    s: &Scanned,
    memo: &mut Memo,
    out: &mut Contents,
    (bytes, digest): (Bytes, Digest),
    media_type: &str,
    image: &str,
) -> Result<FetchedManifest, ArchiveError> {
    let key = (digest, media_type.to_string());
    if let Some(m) = memo.images.get(&key) {
        return Ok(m.clone());
    }
    let m = oci_image_once(s, memo, out, bytes, media_type, image, &key.0)?;
    memo.images.insert(key, m.clone());
    Ok(m)
}

/// [`oci_image`] the first time.
fn oci_image_once(
    s: &Scanned,
    memo: &mut Memo,
    out: &mut Contents,
    bytes: Bytes,
    media_type: &str,
    image: &str,
    digest: &Digest,
) -> Result<FetchedManifest, ArchiveError> {
    let digest = digest.clone();
    let Ok(Manifest::Image { config, layers }) = Manifest::parse(&bytes, media_type, &digest)
    else {
        return Err(bad_json(
            s,
            &digest.blob_path(),
            format!("{image}: not an image manifest"),
        ));
    };
    let (config_name, config_bytes, _) = oci_file(s, memo, config.digest.as_str(), image)?;
    let mut found = Vec::new();
    for l in &layers {
        let name = l.digest.blob_path();
        let blob = s.blob(&name)?.ok_or_else(|| missing(s, &name, image))?;
        if blob.raw != l.digest {
            return Err(ArchiveError::Corrupt {
                path: s.path.clone(),
                entry: name,
                got: blob.raw.clone(),
            });
        }
        found.push((name, blob));
    }
    let named: Vec<(&str, &Arc<Blob>)> = found.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    check_diff_ids(s, memo, image, &config_name, &config_bytes, &named)?;
    out.configs.insert(config.digest.clone(), config_bytes);
    for (_, b) in &found {
        out.layers.insert(b.digest.clone(), (*b).clone());
    }
    if found.iter().all(|(_, b)| b.digest == b.raw) {
        return Ok(FetchedManifest {
            bytes,
            media_type: media_type.to_string(),
            digest,
        });
    }
    // Some layers were compressed here: the same manifest with their new descriptors.
    let mut v: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad_json(s, &digest.blob_path(), e))?;
    if let Some(arr) = v["layers"].as_array_mut() {
        for (d, (_, b)) in arr.iter_mut().zip(&found) {
            d["digest"] = json!(b.digest.as_str());
            d["size"] = json!(b.size);
            if b.gzip {
                d["mediaType"] = json!(media_types::OCI_LAYER_GZIP);
            }
        }
    }
    let bytes = Bytes::from(v.to_string());
    Ok(FetchedManifest {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type: media_type.to_string(),
    })
}

fn oci(s: &Scanned, index_bytes: &Bytes) -> Result<Contents, ArchiveError> {
    let index: Value =
        serde_json::from_slice(index_bytes).map_err(|e| bad_json(s, "index.json", e))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return Err(bad_json(s, "index.json", "it lists no image"));
    }
    let mut out = Contents::default();
    let mut memo = Memo::default();
    for e in &entries {
        let name = oci_name(s, e)?;
        let shown = name.to_string();
        let mt = e["mediaType"]
            .as_str()
            .unwrap_or(media_types::OCI_MANIFEST)
            .to_string();
        let (_, bytes, digest) =
            oci_file(s, &mut memo, e["digest"].as_str().unwrap_or(""), &shown)?;
        let key = (digest, mt.clone());
        let top = match memo.tops.get(&key) {
            Some(top) => top.clone(),
            None => {
                let top = oci_top(s, &mut memo, &mut out, (bytes, key.0.clone()), mt, &shown)?;
                memo.tops.insert(key, top.clone());
                top
            }
        };
        out.images.push(ArchiveImage {
            names: vec![name],
            top: top.digest.clone(),
        });
        out.manifests.insert(top.digest.clone(), top);
    }
    Ok(out)
}

/// What one `index.json` entry points at, made pushable: an image manifest, or an index
/// whose children are.
fn oci_top(
    s: &Scanned,
    memo: &mut Memo,
    out: &mut Contents,
    (bytes, digest): (Bytes, Digest),
    mt: String,
    shown: &str,
) -> Result<FetchedManifest, ArchiveError> {
    Ok(
        if mt == media_types::OCI_INDEX || mt == media_types::DOCKER_MANIFEST_LIST {
            let mut v: Value =
                serde_json::from_slice(&bytes).map_err(|err| bad_json(s, "index", err))?;
            let mut changed = false;
            if let Some(children) = v["manifests"].as_array_mut() {
                for c in children.iter_mut() {
                    let cmt = c["mediaType"]
                        .as_str()
                        .unwrap_or(media_types::OCI_MANIFEST)
                        .to_string();
                    let (_, cbytes, cdigest) =
                        oci_file(s, memo, c["digest"].as_str().unwrap_or(""), shown)?;
                    let m = oci_image(s, memo, out, (cbytes, cdigest), &cmt, shown)?;
                    if c["digest"].as_str() != Some(m.digest.as_str()) {
                        c["digest"] = json!(m.digest.as_str());
                        c["size"] = json!(m.bytes.len());
                        changed = true;
                    }
                    out.manifests.insert(m.digest.clone(), m);
                }
            }
            let (bytes, digest) = if changed {
                let bytes = Bytes::from(v.to_string());
                (bytes.clone(), Digest::sha256_of(&bytes))
            } else {
                (bytes, digest)
            };
            FetchedManifest {
                digest,
                bytes,
                media_type: mt,
            }
        } else {
            oci_image(s, memo, out, (bytes, digest), &mt, shown)?
        },
    )
}
