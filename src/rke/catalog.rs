//! The RKE system-image catalog: which images each Kubernetes version uses, which versions an
//! RKE release accepts, which are "current" and which is the default.
//!
//! Two input shapes, one model: the catalog embedded in ferry (`data/system-images.json`,
//! extracted from KDM release-v2.9, the data RKE v1.6.3 ships) and KDM's own generated
//! `data.json` (what RKE embeds and what `RANCHER_METADATA_URL` points at). Both are read into
//! [`RawMetadata`], and [`Catalog::derive`] applies RKE's rules (`metadata/metadata.go`,
//! `initK8sRKESystemImages`) to it for a given RKE version.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fields::{FIELDS, Field};
use super::goversion;
use super::remote::{RemoteError, RemoteOptions};

/// The embedded catalog (KDM release-v2.9 @ 14e0dc43, the data of RKE v1.6.3).
pub const EMBEDDED_CATALOG: &str = include_str!("../../data/system-images.json");

/// Where the catalog came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataSource {
    /// The catalog compiled into ferry.
    Embedded,
    /// A KDM `data.json` (or a file in the embedded catalog's shape) read from disk.
    File(PathBuf),
    /// A KDM `data.json` downloaded (or taken from the cache): the URL without credentials.
    Url(String),
}

impl std::fmt::Display for MetadataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetadataSource::Embedded => {
                f.write_str("the embedded catalog (KDM release-v2.9, RKE v1.6.3)")
            }
            MetadataSource::File(p) => write!(f, "metadata file {}", p.display()),
            MetadataSource::Url(u) => write!(f, "metadata from {u}"),
        }
    }
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The file could not be read.
    #[error(
        "cannot read metadata file {path}: {source}; check the path given to --metadata or RANCHER_METADATA_URL"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `RANCHER_METADATA_URL` (or `--metadata`) names a URL that could not be used.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Not JSON, or not the expected shape.
    #[error(
        "{path} is not an RKE metadata file: {detail}; pass KDM's data.json (with K8sVersionRKESystemImages and RKEDefaultK8sVersions) or a file in ferry's catalog format"
    )]
    Shape {
        /// The file.
        path: String,
        /// What is wrong, with line and column when JSON parsing failed.
        detail: String,
    },
    /// The default version named by the data is not among the versions it lists.
    #[error(
        "{source_name} names {version} as the default Kubernetes version for RKE {rke}, but has no usable image list for it; pass --kubernetes-version explicitly"
    )]
    NoDefault {
        /// Where the data came from.
        source_name: String,
        /// The missing default.
        version: String,
        /// The RKE version emulated.
        rke: String,
    },
    /// The RKE version given with --rke-version is malformed.
    #[error("invalid RKE version {0:?}: expected a release such as v1.6.3")]
    BadRkeVersion(String),
}

/// Per-version limits from KDM's `K8sVersionInfo` (only the RKE ones matter here).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VersionInfo {
    /// Versions before this RKE release do not know the entry.
    #[serde(rename = "minRKEVersion", default)]
    pub min_rke_version: String,
    /// Minor-level cap: the minor is not "current" after this RKE release.
    #[serde(rename = "maxRKEVersion", default)]
    pub max_rke_version: String,
    /// From this RKE release on, the version is "bad" and not accepted.
    #[serde(rename = "deprecateRKEVersion", default)]
    pub deprecate_rke_version: String,
}

/// The part of either metadata shape that ferry reads; every other key is ignored.
#[derive(Debug, Deserialize)]
pub struct RawMetadata {
    /// Kubernetes version → data.json field key → image.
    #[serde(
        rename = "K8sVersionRKESystemImages",
        alias = "k8s_version_rke_system_images"
    )]
    pub images: BTreeMap<String, BTreeMap<String, String>>,
    /// Version limits keyed by exact version or by `vX.Y` minor.
    #[serde(rename = "K8sVersionInfo", alias = "k8s_version_info", default)]
    pub version_info: BTreeMap<String, VersionInfo>,
    /// RKE release (without `v`) → default Kubernetes version, plus a `default` key.
    #[serde(rename = "RKEDefaultK8sVersions", alias = "rke_default_k8s_versions")]
    pub default_versions: BTreeMap<String, String>,
}

impl RawMetadata {
    /// Parses either shape from JSON text; `name` is used in errors.
    pub fn from_json(text: &str, name: &str) -> Result<RawMetadata, MetadataError> {
        serde_json::from_str(text).map_err(|e| MetadataError::Shape {
            path: name.to_string(),
            detail: e.to_string(),
        })
    }
}

/// The system images of one Kubernetes version, in RKE's struct order.
#[derive(Debug, Clone)]
pub struct VersionImages {
    values: Vec<(&'static Field, String)>,
}

impl VersionImages {
    /// The non-empty fields and their images, in struct order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Field, &str)> {
        self.values.iter().map(|(f, v)| (*f, v.as_str()))
    }

    /// The image of one field, if set.
    pub fn get(&self, field: &Field) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| f.go == field.go)
            .map(|(_, v)| v.as_str())
    }
}

/// The catalog as one RKE release sees it.
#[derive(Debug, Clone)]
pub struct Catalog {
    source: MetadataSource,
    rke_version: String,
    default_version: String,
    /// Accepted versions, ascending (go-version order).
    available: Vec<String>,
    /// Newest patch of each allowed minor, ascending.
    current: Vec<String>,
    /// Versions deprecated for this RKE release.
    bad: Vec<String>,
    images: BTreeMap<String, VersionImages>,
    /// data.json keys ferry does not know (a newer RKE struct); reported as a warning.
    unknown_keys: Vec<String>,
}

/// Sorts Kubernetes versions ascending the way RKE compares them.
pub fn sort_versions(versions: &mut [String]) {
    // Each version normalized once, not once per comparison (was a third of `ferry images`).
    let mut keyed: Vec<(Vec<String>, String)> = versions
        .iter_mut()
        .map(|v| (goversion::sort_key(v), std::mem::take(v)))
        .collect();
    keyed.sort_by(|(ka, a), (kb, b)| goversion::compare_prepared(ka, kb).then_with(|| a.cmp(b)));
    for (slot, (_, v)) in versions.iter_mut().zip(keyed) {
        *slot = v;
    }
}

fn minor_of(version: &str) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() < 2 {
        String::new()
    } else {
        parts[..2].join(".")
    }
}

impl Catalog {
    /// Loads the catalog from `location` (a local file, or an `http(s)://` URL fetched with
    /// the default [`RemoteOptions`]) or, when `None`, the embedded one, and derives it for
    /// `rke_version`.
    pub fn load(location: Option<&str>, rke_version: &str) -> Result<Catalog, MetadataError> {
        Catalog::load_with(location, rke_version, &RemoteOptions::default())
    }

    /// [`Catalog::load`], fetching a URL as `remote` says (CA files, `--offline`, cache).
    /// Like RKE, a location starting with `http://` or `https://` is a URL, anything else a
    /// file (`file://` is accepted and stripped).
    pub fn load_with(
        location: Option<&str>,
        rke_version: &str,
        remote: &RemoteOptions,
    ) -> Result<Catalog, MetadataError> {
        match location {
            None => {
                let raw = RawMetadata::from_json(EMBEDDED_CATALOG, "embedded catalog")?;
                Catalog::derive(raw, MetadataSource::Embedded, rke_version)
            }
            Some(url) if super::remote::is_url(url) => {
                let shown = super::remote::redact_text(url);
                let (raw, shown) = super::remote::load(url, remote, |text| {
                    RawMetadata::from_json(text, &shown).map_err(|e| match e {
                        MetadataError::Shape { detail, .. } => detail,
                        other => other.to_string(),
                    })
                })?;
                Catalog::derive(raw, MetadataSource::Url(shown), rke_version)
            }
            Some(p) => {
                let p = p.strip_prefix("file://").unwrap_or(p);
                let path = Path::new(p);
                let text = std::fs::read_to_string(path).map_err(|source| MetadataError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let raw = RawMetadata::from_json(&text, &path.display().to_string())?;
                Catalog::derive(raw, MetadataSource::File(path.to_path_buf()), rke_version)
            }
        }
    }

    /// Applies RKE's rules for release `rke_version` (e.g. `v1.6.3`) to raw metadata.
    pub fn derive(
        raw: RawMetadata,
        source: MetadataSource,
        rke_version: &str,
    ) -> Result<Catalog, MetadataError> {
        let rke = rke_version.trim();
        let bare = rke.strip_prefix('v').unwrap_or(rke);
        if bare.is_empty() || !bare.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return Err(MetadataError::BadRkeVersion(rke_version.to_string()));
        }
        let rke = format!("v{bare}");
        if raw.images.is_empty() {
            return Err(MetadataError::Shape {
                path: source.to_string(),
                detail: "K8sVersionRKESystemImages is empty".into(),
            });
        }
        let default_version = raw
            .default_versions
            .get(bare)
            .or_else(|| raw.default_versions.get("default"))
            .cloned()
            .ok_or_else(|| MetadataError::Shape {
                path: source.to_string(),
                detail: "RKEDefaultK8sVersions has no \"default\" entry".into(),
            })?;

        let mut available = Vec::new();
        let mut bad = Vec::new();
        let mut newest_per_minor: BTreeMap<String, String> = BTreeMap::new();
        let mut images = BTreeMap::new();
        let mut unknown_keys = std::collections::BTreeSet::new();
        for (version, fields) in &raw.images {
            if let Some(info) = raw.version_info.get(version) {
                if !info.deprecate_rke_version.is_empty()
                    && goversion::compare(&rke, &info.deprecate_rke_version) != Ordering::Less
                {
                    bad.push(version.clone());
                    continue;
                }
                if !info.min_rke_version.is_empty()
                    && goversion::compare(&rke, &info.min_rke_version) == Ordering::Less
                {
                    continue;
                }
            }
            available.push(version.clone());
            let mut values = Vec::new();
            for field in FIELDS.iter() {
                if let Some(v) = fields.get(field.json).filter(|v| !v.is_empty()) {
                    values.push((field, v.clone()));
                }
            }
            for key in fields.keys() {
                if Field::by_json(key).is_none() {
                    unknown_keys.insert(key.clone());
                }
            }
            images.insert(version.clone(), VersionImages { values });

            let minor = minor_of(version);
            if let Some(max) = raw.version_info.get(&minor)
                && !max.max_rke_version.is_empty()
                && goversion::compare(&rke, &max.max_rke_version) == Ordering::Greater
            {
                continue;
            }
            let replace = match newest_per_minor.get(&minor) {
                None => true,
                Some(curr) => goversion::compare(version, curr) == Ordering::Greater,
            };
            if replace {
                newest_per_minor.insert(minor, version.clone());
            }
        }
        let mut current: Vec<String> = newest_per_minor.into_values().collect();
        sort_versions(&mut available);
        sort_versions(&mut current);
        sort_versions(&mut bad);
        if !images.contains_key(&default_version) {
            return Err(MetadataError::NoDefault {
                source_name: source.to_string(),
                version: default_version,
                rke,
            });
        }
        Ok(Catalog {
            source,
            rke_version: rke,
            default_version,
            available,
            current,
            bad,
            images,
            unknown_keys: unknown_keys.into_iter().collect(),
        })
    }

    /// Where the data came from.
    pub fn source(&self) -> &MetadataSource {
        &self.source
    }

    /// The RKE release whose rules were applied, with a leading `v`.
    pub fn rke_version(&self) -> &str {
        &self.rke_version
    }

    /// The version `rke config --system-images` lists without `--version`.
    pub fn default_version(&self) -> &str {
        &self.default_version
    }

    /// Every version `--version` accepts, ascending.
    pub fn available(&self) -> &[String] {
        &self.available
    }

    /// The newest patch of each supported minor, ascending: what `--all` walks.
    pub fn current(&self) -> &[String] {
        &self.current
    }

    /// Versions deprecated for this RKE release (rejected like unknown ones).
    pub fn bad(&self) -> &[String] {
        &self.bad
    }

    /// data.json field keys this ferry does not know.
    pub fn unknown_keys(&self) -> &[String] {
        &self.unknown_keys
    }

    /// The images of an accepted version.
    pub fn images(&self, version: &str) -> Option<&VersionImages> {
        self.images.get(version)
    }

    /// Accepted versions that share `version`'s `vX.Y` minor: suggestions for a typo.
    pub fn near(&self, version: &str) -> Vec<&str> {
        let v = if version.starts_with('v') {
            version.to_string()
        } else {
            format!("v{version}")
        };
        let minor = minor_of(&v);
        self.available
            .iter()
            .filter(|a| !minor.is_empty() && minor_of(a) == minor)
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests;
