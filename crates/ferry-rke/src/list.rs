//! The system-image list, computed as RKE computes it.
//!
//! - `rke config --system-images` (`cmd/config.go`): the fields of one version in struct
//!   order, the Windows pause image left out, empty fields skipped, duplicates removed keeping
//!   the first occurrence — per version only.
//! - `rke up` (`cluster/defaults.go`): `system_images` overrides used verbatim; every other
//!   field becomes `URL + "/" + image` for the first `is_default` private registry, a plain
//!   string concatenation with no normalisation.
//! - With a [`Usage`] (a cluster.yml, see [`crate::usage`]) only the fields `rke up` uses are
//!   listed, each with the settings that selected it.

use super::catalog::Catalog;
use super::cluster::ClusterConfig;
use super::fields::FIELDS;
use super::usage::Usage;
use ferry_oci::reference::RegistryPrefix;

/// Why a list cannot be produced.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The version is not in the catalog (or is deprecated for this RKE release).
    #[error("{}", unknown_version_message(.version, .origin, .current, .near, *.deprecated, .source_name))]
    UnknownVersion {
        /// The version asked for.
        version: String,
        /// Where the version came from (flag or file).
        origin: String,
        /// Current versions, for the message.
        current: Vec<String>,
        /// Accepted versions of the same minor.
        near: Vec<String>,
        /// True when the version is known but deprecated for this RKE release.
        deprecated: bool,
        /// The catalog's source, for the message.
        source_name: String,
    },
}

fn unknown_version_message(
    version: &str,
    origin: &str,
    current: &[String],
    near: &[String],
    deprecated: bool,
    source_name: &str,
) -> String {
    let what = if deprecated {
        "is deprecated for this RKE release"
    } else {
        "is not a supported Kubernetes version"
    };
    let mut msg = format!(
        "k8s version {version:?} ({origin}) {what} in {source_name}; supported versions are: [{}]",
        current.join(" ")
    );
    if !near.is_empty() {
        msg.push_str(&format!(
            "; versions of the same minor it knows: {}",
            near.join(", ")
        ));
    }
    msg.push_str(". Pick one of these with --kubernetes-version (or kubernetes_version in cluster.yml), list the current ones with `ferry images --list-versions --all`, or pass newer KDM metadata with --metadata data.json");
    msg
}

/// One line of the list, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageEntry {
    /// The Kubernetes version whose list this belongs to.
    pub kubernetes_version: String,
    /// The image to pull, after overrides and the registry rewrite.
    pub image: String,
    /// The image before the rewrite: the catalog's default, or the override.
    pub source: String,
    /// `cluster.yml` keys of every field that uses this image, first one first.
    pub fields: Vec<&'static str>,
    /// True when `system_images` in cluster.yml (or `services.kubelet.infra_container_image`)
    /// set it.
    pub overridden: bool,
    /// The cluster.yml settings that selected it (`always`, `network.plugin=calico`, …);
    /// empty when the list is not trimmed to a cluster.yml.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selected_by: Vec<String>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions<'a> {
    /// Include the Windows pause image (RKE's `--system-images` never does).
    pub windows: bool,
    /// Overrides from a cluster.yml.
    pub cluster: Option<&'a ClusterConfig>,
    /// Default private registry to rewrite onto.
    pub prefix: Option<RegistryPrefix>,
    /// Only the fields `rke up` uses (trimmed to a cluster.yml).
    pub usage: Option<&'a Usage>,
}

/// Checks that `version` is one the catalog accepts; `origin` says where it came from.
pub fn check_version(catalog: &Catalog, version: &str, origin: &str) -> Result<(), ListError> {
    if catalog.images(version).is_some() {
        return Ok(());
    }
    Err(ListError::UnknownVersion {
        version: version.to_string(),
        origin: origin.to_string(),
        current: catalog.current().to_vec(),
        near: catalog
            .near(version)
            .into_iter()
            .map(String::from)
            .collect(),
        deprecated: catalog.bad().iter().any(|b| b == version),
        source_name: catalog.source().to_string(),
    })
}

/// The list for one version, as RKE builds it (see the module docs).
pub fn version_list(
    catalog: &Catalog,
    version: &str,
    opts: &ListOptions<'_>,
) -> Result<Vec<ImageEntry>, ListError> {
    check_version(catalog, version, "requested")?;
    let Some(images) = catalog.images(version) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<ImageEntry> = Vec::new();
    for field in FIELDS.iter() {
        if field.is_windows() && !opts.windows {
            continue;
        }
        let mut selected_by = Vec::new();
        if let Some(u) = opts.usage {
            match u.used.get(field.go) {
                Some(why) => selected_by.clone_from(why),
                None if field.is_windows() => selected_by.push("--windows".to_string()),
                None => continue,
            }
        }
        let replaced = opts.usage.and_then(|u| u.replaced.get(field.go));
        let overridden = replaced
            .map(String::as_str)
            .or_else(|| opts.cluster.and_then(|c| c.override_for(field)));
        let (source, image) = match (overridden, images.get(field)) {
            (Some(v), _) => (v.to_string(), v.to_string()),
            (None, Some(default)) => {
                let image = match &opts.prefix {
                    Some(p) => format!("{p}/{default}"),
                    None => default.to_string(),
                };
                (default.to_string(), image)
            }
            (None, None) => continue,
        };
        if let Some(existing) = out.iter_mut().find(|e| e.image == image) {
            existing.fields.push(field.yaml);
            for why in selected_by {
                if !existing.selected_by.contains(&why) {
                    existing.selected_by.push(why);
                }
            }
            continue;
        }
        out.push(ImageEntry {
            kubernetes_version: version.to_string(),
            image,
            source,
            fields: vec![field.yaml],
            overridden: overridden.is_some(),
            selected_by,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
