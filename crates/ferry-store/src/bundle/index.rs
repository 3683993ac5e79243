//! Builders for the bundle's metadata files: `oci-layout`, the OCI `index.json` (one
//! descriptor per image, pointing at the original top-level manifest or index with its true
//! media type) and the docker-archive `manifest.json` (one chosen platform per image, for
//! classic `docker load`). Output is compact JSON with a fixed field order, so the same
//! inputs give the same bytes.
//!
//! The JSON is written straight into its buffer (no `serde_json::Value` tree first: for
//! thousands of images that tree was several times the size of the file) from exhaustively
//! destructured structs, so a new field in the model is a compile error here rather than
//! silently dropped. The bytes are those serde_json's compact form of the same document
//! gives; strings are escaped as serde_json escapes them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use ferry_oci::digest::Digest;
use ferry_oci::manifest::Descriptor;
use ferry_oci::media_types::{OCI_INDEX, OCI_LAYOUT_VERSION};
use ferry_oci::platform::Platform;

/// The annotation containerd (and `docker load` on the containerd store) names images by.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation skopeo, umoci and ctr address images by.
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

pub use ferry_oci::archive::DockerEntry;

/// The `oci-layout` file: `{"imageLayoutVersion":"1.0.0"}`.
pub fn oci_layout_bytes() -> Vec<u8> {
    json!({ "imageLayoutVersion": OCI_LAYOUT_VERSION })
        .to_string()
        .into_bytes()
}

/// The OCI `index.json`: for each `(full normalised reference, top-level descriptor)`, in the
/// order given, the descriptor (media type, digest, size, platform and annotations as given)
/// with both [`OCI_REF_NAME`] and [`CONTAINERD_NAME`] set to the reference, e.g.
/// `docker.io/rancher/rke-tools:v0.1.103`.
pub fn index_json(entries: &[(String, Descriptor)]) -> Vec<u8> {
    index_json_annotated(entries, &BTreeMap::new())
}

/// Like [`index_json`], with these annotations on the index itself (none: the same bytes as
/// [`index_json`]).
pub fn index_json_annotated(
    entries: &[(String, Descriptor)],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut out = Json::default();
    out.open_object();
    out.key("schemaVersion");
    out.raw("2");
    out.key("mediaType");
    out.string(OCI_INDEX);
    out.key("manifests");
    out.open_array();
    for (reference, descriptor) in entries {
        let mut names: BTreeMap<&str, &str> = descriptor
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        names.insert(OCI_REF_NAME, reference);
        names.insert(CONTAINERD_NAME, reference);
        out.value();
        descriptor_json(&mut out, descriptor, &names);
    }
    out.close_array();
    if !annotations.is_empty() {
        out.key("annotations");
        out.string_map(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    out.close_object();
    out.into_bytes()
}

/// The planned layout of a bundle: `oci-layout`, the `index.json` of `index`, `lock_yaml` as
/// `images.lock`, the docker-archive `manifest.json` of `docker`, for a delta bundle
/// `ferry-delta.json` (and the index annotated), then every object. Each input goes as soon
/// as its file is rendered.
pub fn plan(
    index: Vec<(String, Descriptor)>,
    docker: Vec<DockerEntry>,
    lock_yaml: String,
    delta: Option<&super::delta::DeltaInfo>,
    objects: impl IntoIterator<Item = (Digest, u64)>,
) -> Result<super::Plan, super::BundleError> {
    let mut annotations = BTreeMap::new();
    if let Some(d) = delta {
        annotations.insert(
            super::delta::DELTA_ANNOTATION.to_string(),
            d.delta_of.to_string(),
        );
    }
    let index_bytes = index_json_annotated(&index, &annotations);
    drop(index);
    let docker_bytes = docker_manifest_json(&docker);
    drop(docker);
    let mut files = vec![
        (super::OCI_LAYOUT, oci_layout_bytes()),
        (super::INDEX_JSON, index_bytes),
        (super::IMAGES_LOCK, lock_yaml.into_bytes()),
        (super::MANIFEST_JSON, docker_bytes),
    ];
    if let Some(d) = delta {
        files.push((super::delta::DELTA_JSON, d.to_bytes()));
    }
    super::Plan::new(files, objects)
}

/// The docker-archive `manifest.json`: `[{"Config": …, "RepoTags": […], "Layers": […]}]`
/// with blob paths `blobs/sha256/<hex>`.
pub fn docker_manifest_json(entries: &[DockerEntry]) -> Vec<u8> {
    let mut out = Json::default();
    out.open_array();
    for entry in entries {
        let DockerEntry {
            repo_tags,
            config,
            layers,
        } = entry;
        out.value();
        out.open_object();
        out.key("Config");
        out.string(&config.blob_path());
        out.key("RepoTags");
        out.open_array();
        for tag in repo_tags {
            out.value();
            out.string(tag);
        }
        out.close_array();
        out.key("Layers");
        out.open_array();
        for layer in layers {
            out.value();
            out.string(&layer.blob_path());
        }
        out.close_array();
        out.close_object();
    }
    out.close_array();
    out.into_bytes()
}

/// Why an `index.json`, or one of its entries, cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Not JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// JSON without the array of descriptors.
    #[error("it has no \"manifests\" array")]
    NoManifests,
    /// An entry that is not a descriptor.
    #[error("index.json has an entry for {name:?} that is not a valid descriptor: {source}")]
    Entry {
        /// The reference the entry names ("" when none).
        name: String,
        /// The parser's error.
        source: serde_json::Error,
    },
}

/// One entry of a bundle's `index.json`, as read back: the reference it names (from
/// [`OCI_REF_NAME`], else [`CONTAINERD_NAME`]) and its descriptor, or why the entry is not one.
#[derive(Debug)]
pub struct IndexEntry {
    /// The full reference the entry names, if it names one.
    pub name: Option<String>,
    /// The descriptor, or what is wrong with it.
    pub descriptor: Result<Descriptor, IndexError>,
}

/// Reads an `index.json` (the reader of what [`index_json`] writes). Fails only when it is
/// not a JSON object with a `manifests` array; a broken entry is kept, with its error.
pub fn read_index(bytes: &[u8]) -> Result<Vec<IndexEntry>, IndexError> {
    let v: Value = serde_json::from_slice(bytes)?;
    let manifests = v
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or(IndexError::NoManifests)?;
    Ok(manifests
        .iter()
        .map(|m| {
            let name = [OCI_REF_NAME, CONTAINERD_NAME]
                .iter()
                .find_map(|k| m["annotations"][*k].as_str())
                .map(String::from);
            let descriptor = serde_json::from_value::<Descriptor>(m.clone()).map_err(|source| {
                IndexError::Entry {
                    name: name.clone().unwrap_or_default(),
                    source,
                }
            });
            IndexEntry { name, descriptor }
        })
        .collect())
}

fn descriptor_json(out: &mut Json, descriptor: &Descriptor, annotations: &BTreeMap<&str, &str>) {
    let Descriptor {
        media_type,
        digest,
        size,
        platform,
        annotations: _,
    } = descriptor;
    out.open_object();
    out.key("mediaType");
    out.string(media_type);
    out.key("digest");
    out.string(digest.as_str());
    out.key("size");
    out.raw(&size.to_string());
    if let Some(platform) = platform {
        out.key("platform");
        platform_json(out, platform);
    }
    if !annotations.is_empty() {
        out.key("annotations");
        out.string_map(annotations.iter().map(|(k, v)| (*k, *v)));
    }
    out.close_object();
}

fn platform_json(out: &mut Json, platform: &Platform) {
    let Platform {
        os,
        architecture,
        variant,
        os_version,
    } = platform;
    out.open_object();
    out.key("architecture");
    out.string(architecture);
    out.key("os");
    out.string(os);
    if let Some(v) = os_version {
        out.key("os.version");
        out.string(v);
    }
    if let Some(v) = variant {
        out.key("variant");
        out.string(v);
    }
    out.close_object();
}

/// Compact JSON written into a buffer: objects and arrays opened and closed by the caller,
/// commas placed here.
#[derive(Default)]
struct Json {
    out: Vec<u8>,
    /// Per open object or array: whether it has a member yet.
    open: Vec<bool>,
}

impl Json {
    fn raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// A comma before every member of the innermost object or array but its first.
    fn separate(&mut self) {
        if let Some(has) = self.open.last_mut() {
            if *has {
                self.out.push(b',');
            }
            *has = true;
        }
    }

    fn open_object(&mut self) {
        self.out.push(b'{');
        self.open.push(false);
    }

    fn close_object(&mut self) {
        self.open.pop();
        self.out.push(b'}');
    }

    fn open_array(&mut self) {
        self.out.push(b'[');
        self.open.push(false);
    }

    fn close_array(&mut self) {
        self.open.pop();
        self.out.push(b']');
    }

    /// Starts an object member: `"key":`.
    fn key(&mut self, key: &str) {
        self.separate();
        escape_into(&mut self.out, key);
        self.out.push(b':');
    }

    /// Starts an array element.
    fn value(&mut self) {
        self.separate();
    }

    fn string(&mut self, s: &str) {
        escape_into(&mut self.out, s);
    }

    /// An object of string values, in the order given.
    fn string_map<'a>(&mut self, members: impl Iterator<Item = (&'a str, &'a str)>) {
        self.open_object();
        for (k, v) in members {
            self.key(k);
            self.string(v);
        }
        self.close_object();
    }

    fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\`,
/// the short forms `\b \t \n \f \r`, every other control character as `\u00xx`
/// (lowercase hex), and nothing else.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests;
