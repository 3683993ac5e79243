//! Deterministic synthetic images named like RKE system images, with exact bytes (a few KB each).
//!
//! | reference | top-level media type | shape |
//! | --- | --- | --- |
//! | `rancher/rke-tools:v0.1.103` | OCI index | linux/amd64, linux/arm64, linux/arm/v7 + attestation (`unknown/unknown`) |
//! | `rancher/hyperkube:v1.30.5-rancher1` | Docker manifest list | linux/amd64, linux/arm64, windows/amd64 (`os.version` 10.0.17763.1234) |
//! | `rancher/mirrored-pause:3.7` | Docker schema2 | single linux/amd64 |
//! | `rancher/mirrored-coreos-etcd:v3.5.12` | OCI manifest | single linux/amd64 |
//! | `rancher/mirrored-coredns-coredns:1.11.1` | Docker schema2 | single linux/amd64, with Docker's 32-byte empty layer |
//!
//! Every linux/amd64 manifest starts with the same base layer (shared by all five images) and
//! every linux/arm64 one with another (rke-tools and hyperkube). Layers are real `tar+gzip` (see
//! `blobs.rs`) and configs carry correct `rootfs.diff_ids`. Manifest bytes are serialized once
//! here and never again: some pretty-printed with Docker's 3-space indent, some compact, so a
//! tool that re-serializes changes a digest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::blobs::{self, Layer};
use super::sha256_digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

pub const RKE_TOOLS: &str = "rancher/rke-tools:v0.1.103";
pub const HYPERKUBE: &str = "rancher/hyperkube:v1.30.5-rancher1";
pub const PAUSE: &str = "rancher/mirrored-pause:3.7";
pub const ETCD: &str = "rancher/mirrored-coreos-etcd:v3.5.12";
pub const COREDNS: &str = "rancher/mirrored-coredns-coredns:1.11.1";

pub use super::blobs::{EMPTY_LAYER, EMPTY_LAYER_DIFF_ID, EMPTY_LAYER_DIGEST};

const CREATED: &str = "2024-05-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Config,
    Layer,
}

/// A config or layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureBlob {
    pub digest: String,
    /// Media type in the first manifest that references it.
    pub media_type: String,
    pub kind: BlobKind,
    pub bytes: Vec<u8>,
}

/// A child manifest of an index or list (platform manifests and the attestation manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureManifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// One entry of an index / list (or, for a single-arch image, the image itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixturePlatform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    /// Manifest digest (for a single-arch image: the image's own digest).
    pub digest: String,
    pub media_type: String,
    /// The `unknown/unknown` attestation entry of a BuildKit index.
    pub attestation: bool,
}

impl FixturePlatform {
    /// `os/arch` or `os/arch/variant`.
    pub fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A fixture image with every byte it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureImage {
    pub repository: String,
    pub tag: String,
    /// Media type of the top-level manifest.
    pub media_type: String,
    /// Exact top-level manifest bytes.
    pub manifest: Vec<u8>,
    /// `sha256:…` of `manifest`.
    pub digest: String,
    /// Index entries in index order (attestations included, flagged); one entry for single-arch.
    pub platforms: Vec<FixturePlatform>,
    /// Child manifests in index order (empty for single-arch).
    pub children: Vec<FixtureManifest>,
    /// Configs and layers of all platforms, unique by digest, in order of first reference.
    pub blobs: Vec<FixtureBlob>,
}

impl FixtureImage {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
    /// `repository@digest`.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
    pub fn is_multi_arch(&self) -> bool {
        !self.children.is_empty()
    }
    /// Top-level manifest followed by the children.
    pub fn all_manifests(&self) -> Vec<FixtureManifest> {
        let mut v = vec![FixtureManifest {
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            bytes: self.manifest.clone(),
        }];
        v.extend(self.children.iter().cloned());
        v
    }
    /// Non-attestation platforms.
    pub fn real_platforms(&self) -> Vec<&FixturePlatform> {
        self.platforms.iter().filter(|p| !p.attestation).collect()
    }
    /// The platform entry named `os/arch` or `os/arch/variant`.
    pub fn platform(&self, name: &str) -> Option<&FixturePlatform> {
        self.platforms.iter().find(|p| p.name() == name)
    }
    pub fn child(&self, digest: &str) -> Option<&FixtureManifest> {
        self.children.iter().find(|c| c.digest == digest)
    }
    pub fn blob(&self, digest: &str) -> Option<&FixtureBlob> {
        self.blobs.iter().find(|b| b.digest == digest)
    }
    /// Sum of the sizes of this image's unique configs and layers.
    pub fn unique_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.bytes.len() as u64).sum()
    }
}

/// Every fixture image (same bytes on every call and in every run).
pub fn fixtures() -> Vec<FixtureImage> {
    static ALL: OnceLock<Vec<FixtureImage>> = OnceLock::new();
    ALL.get_or_init(build_all).clone()
}

/// The fixture named `repository:tag` (panics if there is none).
pub fn fixture(reference: &str) -> FixtureImage {
    fixtures()
        .into_iter()
        .find(|f| f.reference() == reference)
        .unwrap_or_else(|| panic!("no fixture image {reference:?}"))
}

/// The fixtures named by these references, in that order.
pub fn fixtures_named(references: &[&str]) -> Vec<FixtureImage> {
    references.iter().map(|r| fixture(r)).collect()
}

/// Unique configs and layers across `images`, by digest.
pub fn unique_blobs(images: &[FixtureImage]) -> BTreeMap<String, FixtureBlob> {
    let mut m = BTreeMap::new();
    for b in images.iter().flat_map(|i| &i.blobs) {
        m.entry(b.digest.clone()).or_insert_with(|| b.clone());
    }
    m
}

/// Sum of the sizes of the unique configs and layers across `images` (manifests excluded).
pub fn total_unique_blob_bytes(images: &[FixtureImage]) -> u64 {
    unique_blobs(images)
        .values()
        .map(|b| b.bytes.len() as u64)
        .sum()
}

/// Like [`total_unique_blob_bytes`] plus every unique manifest (top-level and children).
pub fn total_unique_bytes(images: &[FixtureImage]) -> u64 {
    let mut seen = BTreeSet::new();
    let manifests: u64 = images
        .iter()
        .flat_map(|i| i.all_manifests())
        .filter(|m| seen.insert(m.digest.clone()))
        .map(|m| m.bytes.len() as u64)
        .sum();
    manifests + total_unique_blob_bytes(images)
}

// ---- construction -------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub(super) struct Plat {
    os: &'static str,
    arch: &'static str,
    variant: Option<&'static str>,
    os_version: Option<&'static str>,
}

pub(super) const AMD64: Plat = Plat {
    os: "linux",
    arch: "amd64",
    variant: None,
    os_version: None,
};
pub(super) const ARM64: Plat = Plat {
    os: "linux",
    arch: "arm64",
    variant: None,
    os_version: None,
};
pub(super) const ARMV7: Plat = Plat {
    os: "linux",
    arch: "arm",
    variant: Some("v7"),
    os_version: None,
};
pub(super) const WINDOWS: Plat = Plat {
    os: "windows",
    arch: "amd64",
    variant: None,
    os_version: Some("10.0.17763.1234"),
};

impl Plat {
    fn key(&self) -> String {
        format!(
            "{}/{}{}",
            self.os,
            self.arch,
            self.variant.map(|v| format!("/{v}")).unwrap_or_default()
        )
    }
    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("architecture".into(), json!(self.arch));
        m.insert("os".into(), json!(self.os));
        if let Some(v) = self.os_version {
            m.insert("os.version".into(), json!(v));
        }
        if let Some(v) = self.variant {
            m.insert("variant".into(), json!(v));
        }
        Value::Object(m)
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Style {
    /// Docker schema2 media types, pretty-printed with 3 spaces (as Docker writes them).
    Docker,
    /// OCI media types, compact.
    Oci,
    /// OCI media types, pretty-printed with 2 spaces.
    OciPretty,
}

pub(super) fn to_bytes(v: &Value, style: Style) -> Vec<u8> {
    use serde::Serialize;
    match style {
        Style::Oci => serde_json::to_vec(v).expect("serialize"),
        Style::OciPretty => serde_json::to_vec_pretty(v).expect("serialize"),
        Style::Docker => {
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            v.serialize(&mut ser).expect("serialize");
            out
        }
    }
}

/// Accumulates the blobs of one image.
#[derive(Default)]
struct Blobs(Vec<FixtureBlob>);

impl Blobs {
    fn add(&mut self, bytes: &[u8], media_type: &str, kind: BlobKind) -> Value {
        let digest = sha256_digest(bytes);
        if !self.0.iter().any(|b| b.digest == digest) {
            self.0.push(FixtureBlob {
                digest: digest.clone(),
                media_type: media_type.to_string(),
                kind,
                bytes: bytes.to_vec(),
            });
        }
        json!({"mediaType": media_type, "size": bytes.len(), "digest": digest})
    }
}

fn base_layer(p: Plat) -> Layer {
    let key = p.key();
    if p.os == "windows" {
        blobs::layer(
            &format!("base/{key}"),
            &[
                ("Files/Windows/System32/ntdll.dll", 5000),
                ("Files/License.txt", 300),
            ],
        )
    } else {
        blobs::layer(
            &format!("base/{key}"),
            &[("etc/os-release", 180), ("bin/busybox", 5000)],
        )
    }
}

fn app_layer(reference: &str, p: Plat, binary: &str) -> Layer {
    blobs::layer(
        &format!("app/{reference}/{}", p.key()),
        &[
            (&format!("usr/local/bin/{binary}") as &str, 2500),
            (&format!("etc/{binary}/VERSION") as &str, 24),
        ],
    )
}

/// A config blob for `p` with these layers.
fn config(reference: &str, binary: &str, p: Plat, layers: &[&Layer]) -> Vec<u8> {
    let mut m = p.json().as_object().cloned().expect("object");
    m.insert(
        "config".into(),
        json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": [format!("/usr/local/bin/{binary}")],
            "Labels": {"io.ferry.fixture": reference},
        }),
    );
    m.insert("created".into(), json!(CREATED));
    let history: Vec<Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| json!({"created": CREATED, "created_by": format!("fixture layer {i}")}))
        .collect();
    m.insert("history".into(), Value::Array(history));
    m.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()}),
    );
    serde_json::to_vec(&Value::Object(m)).expect("serialize config")
}

/// A single-platform manifest; returns its bytes.
fn platform_manifest(
    blobs: &mut Blobs,
    style: Style,
    reference: &str,
    binary: &str,
    p: Plat,
    layers: &[&Layer],
) -> Vec<u8> {
    let (mt, cfg_mt, layer_mt) = match style {
        Style::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP),
        _ => (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP),
    };
    let cfg = blobs.add(
        &config(reference, binary, p, layers),
        cfg_mt,
        BlobKind::Config,
    );
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| blobs.add(&l.gz, layer_mt, BlobKind::Layer))
        .collect();
    to_bytes(
        &json!({"schemaVersion": 2, "mediaType": mt, "config": cfg, "layers": layer_descs}),
        style,
    )
}

pub(super) fn single(
    reference: &str,
    binary: &str,
    style: Style,
    extra: &[&Layer],
) -> FixtureImage {
    let (repository, tag) = reference.rsplit_once(':').expect("repo:tag");
    let mut blobs = Blobs::default();
    let base = base_layer(AMD64);
    let app = app_layer(reference, AMD64, binary);
    let mut layers = vec![&base];
    layers.extend_from_slice(extra);
    layers.push(&app);
    let manifest = platform_manifest(&mut blobs, style, reference, binary, AMD64, &layers);
    let digest = sha256_digest(&manifest);
    let media_type = if style == Style::Docker {
        DOCKER_MANIFEST
    } else {
        OCI_MANIFEST
    };
    FixtureImage {
        repository: repository.into(),
        tag: tag.into(),
        media_type: media_type.into(),
        platforms: vec![platform_entry(AMD64, &digest, media_type, false)],
        manifest,
        digest,
        children: Vec::new(),
        blobs: blobs.0,
    }
}

fn platform_entry(p: Plat, digest: &str, media_type: &str, attestation: bool) -> FixturePlatform {
    FixturePlatform {
        os: p.os.into(),
        architecture: p.arch.into(),
        variant: p.variant.map(Into::into),
        os_version: p.os_version.map(Into::into),
        digest: digest.into(),
        media_type: media_type.into(),
        attestation,
    }
}

/// A multi-platform image: OCI index (`Style::Oci`) or Docker list (`Style::Docker`).
pub(super) fn multi(
    reference: &str,
    binary: &str,
    style: Style,
    plats: &[Plat],
    attest: bool,
) -> FixtureImage {
    let (repository, tag) = reference.rsplit_once(':').expect("repo:tag");
    let child_mt = if style == Style::Docker {
        DOCKER_MANIFEST
    } else {
        OCI_MANIFEST
    };
    let mut blobs = Blobs::default();
    let mut children = Vec::new();
    let mut entries = Vec::new();
    let mut platforms = Vec::new();
    for &p in plats {
        let base = base_layer(p);
        let app = app_layer(reference, p, binary);
        let bytes = platform_manifest(&mut blobs, style, reference, binary, p, &[&base, &app]);
        let digest = sha256_digest(&bytes);
        entries.push(json!({"mediaType": child_mt, "size": bytes.len(), "digest": digest, "platform": p.json()}));
        platforms.push(platform_entry(p, &digest, child_mt, false));
        children.push(FixtureManifest {
            digest,
            media_type: child_mt.into(),
            bytes,
        });
    }
    if attest {
        // BuildKit-style attestation for the first platform.
        let subject = children[0].digest.clone();
        let statement = serde_json::to_vec(&json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{
                "name": format!("pkg:docker/{reference}?platform=linux%2Famd64"),
                "digest": {"sha256": subject.trim_start_matches("sha256:")},
            }],
            "predicate": {"spdxVersion": "SPDX-2.3", "name": format!("sbom-{binary}")},
        }))
        .expect("serialize statement");
        let statement_digest = sha256_digest(&statement);
        let cfg = serde_json::to_vec(&json!({
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [statement_digest]},
        }))
        .expect("serialize attestation config");
        let cfg_desc = blobs.add(&cfg, OCI_CONFIG, BlobKind::Config);
        let mut layer_desc = blobs.add(&statement, IN_TOTO, BlobKind::Layer);
        layer_desc["annotations"] =
            json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
        let bytes = to_bytes(
            &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg_desc, "layers": [layer_desc]}),
            Style::Oci,
        );
        let digest = sha256_digest(&bytes);
        entries.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": bytes.len(),
            "annotations": {
                "vnd.docker.reference.digest": subject,
                "vnd.docker.reference.type": "attestation-manifest",
            },
            "platform": {"architecture": "unknown", "os": "unknown"},
        }));
        let unknown = Plat {
            os: "unknown",
            arch: "unknown",
            variant: None,
            os_version: None,
        };
        platforms.push(platform_entry(unknown, &digest, OCI_MANIFEST, true));
        children.push(FixtureManifest {
            digest,
            media_type: OCI_MANIFEST.into(),
            bytes,
        });
    }
    let media_type = if style == Style::Docker {
        DOCKER_LIST
    } else {
        OCI_INDEX
    };
    let manifest = to_bytes(
        &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}),
        style,
    );
    FixtureImage {
        repository: repository.into(),
        tag: tag.into(),
        media_type: media_type.into(),
        digest: sha256_digest(&manifest),
        manifest,
        platforms,
        children,
        blobs: blobs.0,
    }
}

fn build_all() -> Vec<FixtureImage> {
    let empty = blobs::empty_layer();
    vec![
        multi(
            RKE_TOOLS,
            "rke-tools",
            Style::Oci,
            &[AMD64, ARM64, ARMV7],
            true,
        ),
        multi(
            HYPERKUBE,
            "hyperkube",
            Style::Docker,
            &[AMD64, ARM64, WINDOWS],
            false,
        ),
        single(PAUSE, "pause", Style::Docker, &[]),
        single(ETCD, "etcd", Style::OciPretty, &[]),
        single(COREDNS, "coredns", Style::Docker, &[&empty]),
    ]
}

/// A small single-platform image for any `repository:tag` (an RKE list name, say): Docker
/// schema 2, the shared base layer plus a layer of its own. Same bytes for the same name.
pub fn synthetic(reference: &str) -> FixtureImage {
    let binary = reference
        .rsplit_once(':')
        .map(|(repo, _)| repo.rsplit('/').next().unwrap_or(repo))
        .unwrap_or("app");
    single(reference, binary, Style::Docker, &[])
}

/// Like [`synthetic`], with one more layer holding a file of `size` pseudo-random bytes (the
/// layer is stored, not compressed, so the blob is a little over `size`).
pub fn sized(reference: &str, size: usize) -> FixtureImage {
    let big = blobs::layer(&format!("sized/{reference}"), &[("data/blob", size)]);
    single(reference, "sized", Style::Docker, &[&big])
}
