//! The RKE system-image catalog: which images each Kubernetes version uses, which versions an
//! RKE release accepts, which are "current" and which is the default.
//!
//! Two input shapes, one model: the catalog embedded in ferry (`data/system-images.json`,
//! extracted from KDM release-v2.9, the data RKE v1.6.3 ships) and KDM's own generated
//! `data.json` (what RKE embeds and what `RANCHER_METADATA_URL` points at). Both are read into
//! [`RawMetadata`] from bytes, in one bounded pass ([`parse`]: version and field caps, unknown
//! fields counted, not stored), and [`Catalog::derive`] applies RKE's rules
//! (`metadata/metadata.go`, `initK8sRKESystemImages`) to it for a given RKE version. A local
//! file is read under the same size cap as a download ([`super::remote::MAX_BYTES`]).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::addons::{AddonTemplates, RawTemplates};
use super::fields::Field;
use super::goversion;
use super::remote::{MAX_BYTES, RemoteError, RemoteOptions};
use ferry_base::bounded;

pub mod parse;

pub use parse::{Limit, MAX_IMAGE_FIELDS, MAX_VERSIONS, ParseError, UnknownFields};

/// The embedded catalog (KDM release-v2.9 @ 14e0dc43, the data of RKE v1.6.3).
pub const EMBEDDED_CATALOG: &str = include_str!("../data/system-images.json");

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
    /// The file is larger than [`MAX_BYTES`].
    #[error(
        "metadata file {path} is larger than {} ({size}), ferry's limit for metadata (KDM's data.json is a few MiB); check that --metadata or RANCHER_METADATA_URL names a data.json",
        bounded::size_text(*cap)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, as text (`67108865 bytes`, or `more` when it grew while read).
        size: String,
        /// The cap.
        cap: u64,
    },
    /// The data goes past one of the catalog's caps.
    #[error(
        "{source_name} has more than {} {}, ferry's limit (real KDM data has a few hundred versions and about 10,000 image fields); check that --metadata or RANCHER_METADATA_URL names KDM's data.json",
        super::thousands(limit.cap as u64),
        limit.what
    )]
    Limit {
        /// Where the data came from.
        source_name: String,
        /// The cap passed.
        limit: Limit,
    },
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

/// The part of either metadata shape that ferry reads; every other key is ignored. Keys:
/// `K8sVersionRKESystemImages`, `K8sVersionInfo` (optional), `RKEDefaultK8sVersions`, or the
/// embedded catalog's snake_case spellings.
#[derive(Debug)]
pub struct RawMetadata {
    /// Kubernetes version → its non-empty known image fields, in struct order.
    pub images: BTreeMap<String, VersionImages>,
    /// Version limits keyed by exact version or by `vX.Y` minor.
    pub version_info: BTreeMap<String, VersionInfo>,
    /// RKE release (without `v`) → default Kubernetes version, plus a `default` key.
    pub default_versions: BTreeMap<String, String>,
    /// Image fields RKE's struct does not have, over all versions: ignored.
    pub unknown_fields: UnknownFields,
    /// KDM's `K8sVersionedTemplates`, scanned; `None` when the data has none (the embedded
    /// catalog's shape), and then the embedded addon templates apply.
    pub templates: Option<RawTemplates>,
}

impl RawMetadata {
    /// Parses either shape from bytes in one bounded pass ([`parse`]); `name` is used in
    /// errors. This is the entry point the fuzz target drives.
    pub fn from_slice(bytes: &[u8], name: &str) -> Result<RawMetadata, MetadataError> {
        parse::from_slice(bytes).map_err(|e| match e {
            ParseError::Limit { limit } => MetadataError::Limit {
                source_name: name.to_string(),
                limit,
            },
            ParseError::Json(e) => MetadataError::Shape {
                path: name.to_string(),
                detail: e.to_string(),
            },
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
    /// data.json image fields ferry does not know (a newer RKE struct); one warning.
    unknown_fields: UnknownFields,
    /// The addon templates of the data, when it has them (else the embedded ones).
    templates: Option<AddonTemplates>,
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
                let raw =
                    RawMetadata::from_slice(EMBEDDED_CATALOG.as_bytes(), "the embedded catalog")?;
                Catalog::derive(raw, MetadataSource::Embedded, rke_version)
            }
            Some(url) if super::remote::is_url(url) => {
                let (raw, shown) =
                    super::remote::load(url, remote, |text| parse::from_slice(text.as_bytes()))?;
                Catalog::derive(raw, MetadataSource::Url(shown), rke_version)
            }
            Some(p) => {
                let p = p.strip_prefix("file://").unwrap_or(p);
                let path = Path::new(p);
                let bytes = bounded::read(path, MAX_BYTES).map_err(|e| match e {
                    bounded::ReadError::Io(source) => MetadataError::Read {
                        path: path.to_path_buf(),
                        source,
                    },
                    bounded::ReadError::TooLarge { size, cap } => MetadataError::TooLarge {
                        path: path.to_path_buf(),
                        size: size.map_or("more".into(), |n| format!("{n} bytes")),
                        cap,
                    },
                })?;
                let source = MetadataSource::File(path.to_path_buf());
                let raw = RawMetadata::from_slice(&bytes, &source.to_string())?;
                drop(bytes);
                Catalog::derive(raw, source, rke_version)
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
        for (version, version_images) in raw.images {
            if let Some(info) = raw.version_info.get(&version) {
                if !info.deprecate_rke_version.is_empty()
                    && goversion::compare(&rke, &info.deprecate_rke_version) != Ordering::Less
                {
                    bad.push(version);
                    continue;
                }
                if !info.min_rke_version.is_empty()
                    && goversion::compare(&rke, &info.min_rke_version) == Ordering::Less
                {
                    continue;
                }
            }
            available.push(version.clone());
            let minor = minor_of(&version);
            images.insert(version.clone(), version_images);

            if let Some(max) = raw.version_info.get(&minor)
                && !max.max_rke_version.is_empty()
                && goversion::compare(&rke, &max.max_rke_version) == Ordering::Greater
            {
                continue;
            }
            let replace = match newest_per_minor.get(&minor) {
                None => true,
                Some(curr) => goversion::compare(&version, curr) == Ordering::Greater,
            };
            if replace {
                newest_per_minor.insert(minor, version);
            }
        }
        let templates = raw
            .templates
            .filter(|t| !t.ranges.is_empty())
            .map(|t| AddonTemplates::from_kdm(t, &source.to_string()));
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
            unknown_fields: raw.unknown_fields,
            templates,
        })
    }

    /// The addon templates in use: the data's own (`K8sVersionedTemplates`), else the
    /// embedded ones (KDM release-v2.9).
    pub fn addon_templates(&self) -> &AddonTemplates {
        self.templates
            .as_ref()
            .unwrap_or_else(|| AddonTemplates::embedded())
    }

    /// True when the data carried its own addon templates.
    pub fn has_own_templates(&self) -> bool {
        self.templates.is_some()
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

    /// data.json image fields this ferry does not know (ignored): how many, the first names.
    pub fn unknown_fields(&self) -> &UnknownFields {
        &self.unknown_fields
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
