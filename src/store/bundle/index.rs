//! Builders for the bundle's metadata files: `oci-layout`, the OCI `index.json` (one
//! descriptor per image, pointing at the original top-level manifest or index with its true
//! media type) and the docker-archive `manifest.json` (one chosen platform per image, for
//! classic `docker load`). Output is compact JSON with a fixed field order, so the same
//! inputs give the same bytes.
//!
//! The JSON is assembled as a `serde_json::Value` (whose `Display` cannot fail) from
//! exhaustively destructured structs, so a new field in the model is a compile error here
//! rather than silently dropped.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::oci::digest::Digest;
use crate::oci::manifest::Descriptor;
use crate::oci::media_types::{OCI_INDEX, OCI_LAYOUT_VERSION};
use crate::oci::platform::Platform;

/// The annotation containerd (and `docker load` on the containerd store) names images by.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation skopeo, umoci and ctr address images by.
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

pub use crate::oci::archive::DockerEntry;

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
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(reference, descriptor)| {
            let mut annotations = descriptor.annotations.clone();
            annotations.insert(OCI_REF_NAME.to_owned(), reference.clone());
            annotations.insert(CONTAINERD_NAME.to_owned(), reference.clone());
            descriptor_value(descriptor, &annotations)
        })
        .collect();
    let mut index = Map::new();
    index.insert("schemaVersion".into(), json!(2));
    index.insert("mediaType".into(), json!(OCI_INDEX));
    index.insert("manifests".into(), Value::Array(manifests));
    if !annotations.is_empty() {
        index.insert("annotations".into(), json!(annotations));
    }
    Value::Object(index).to_string().into_bytes()
}

/// The planned layout of a bundle: `oci-layout`, the `index.json` of `index`, `lock_yaml` as
/// `images.lock`, the docker-archive `manifest.json` of `docker`, for a delta bundle
/// `ferry-delta.json` (and the index annotated), then every object.
pub fn plan(
    index: &[(String, Descriptor)],
    docker: &[DockerEntry],
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
    let mut files = vec![
        (super::OCI_LAYOUT, oci_layout_bytes()),
        (super::INDEX_JSON, index_json_annotated(index, &annotations)),
        (super::IMAGES_LOCK, lock_yaml.into_bytes()),
        (super::MANIFEST_JSON, docker_manifest_json(docker)),
    ];
    if let Some(d) = delta {
        files.push((super::delta::DELTA_JSON, d.to_bytes()));
    }
    super::Plan::new(files, objects)
}

/// The docker-archive `manifest.json`: `[{"Config": …, "RepoTags": […], "Layers": […]}]`
/// with blob paths `blobs/sha256/<hex>`.
pub fn docker_manifest_json(entries: &[DockerEntry]) -> Vec<u8> {
    let images: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let DockerEntry {
                repo_tags,
                config,
                layers,
            } = entry;
            let mut image = Map::new();
            image.insert("Config".into(), json!(config.blob_path()));
            image.insert("RepoTags".into(), json!(repo_tags));
            let layers: Vec<String> = layers.iter().map(Digest::blob_path).collect();
            image.insert("Layers".into(), json!(layers));
            Value::Object(image)
        })
        .collect();
    Value::Array(images).to_string().into_bytes()
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

fn descriptor_value(descriptor: &Descriptor, annotations: &BTreeMap<String, String>) -> Value {
    let Descriptor {
        media_type,
        digest,
        size,
        platform,
        annotations: _,
    } = descriptor;
    let mut out = Map::new();
    out.insert("mediaType".into(), json!(media_type));
    out.insert("digest".into(), json!(digest.as_str()));
    out.insert("size".into(), json!(size));
    if let Some(platform) = platform {
        out.insert("platform".into(), platform_value(platform));
    }
    if !annotations.is_empty() {
        out.insert("annotations".into(), json!(annotations));
    }
    Value::Object(out)
}

fn platform_value(platform: &Platform) -> Value {
    let Platform {
        os,
        architecture,
        variant,
        os_version,
    } = platform;
    let mut out = Map::new();
    out.insert("architecture".into(), json!(architecture));
    out.insert("os".into(), json!(os));
    if let Some(v) = os_version {
        out.insert("os.version".into(), json!(v));
    }
    if let Some(v) = variant {
        out.insert("variant".into(), json!(v));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
