//! `cluster.yml`: the keys of RKE's `RancherKubernetesEngineConfig` that decide which images
//! `rke up` pulls and from where: `kubernetes_version`, `system_images`, `private_registries`,
//! `services.etcd.external_urls`, `services.kubelet` (`infra_container_image`, `extra_env`),
//! `network` (`plugin`, `options`, `aci_network_provider`), `dns` (`provider`,
//! `nodelocal.ip_address`), `ingress` (`provider`, `default_backend`), `monitoring.provider`,
//! `addons` and `addons_include`. Every other key (nodes, other service options …) is
//! accepted and ignored, as RKE's own non-strict parser (`gopkg.in/yaml.v2`) would. The file
//! is read only up to [`MAX_CLUSTER_BYTES`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fields::Field;
use ferry_base::secret::Secret;
use ferry_oci::reference::{Reference, RegistryPrefix};

/// The largest cluster.yml read. Real ones are a few KiB; even inline `addons` manifests
/// stay far below this.
pub const MAX_CLUSTER_BYTES: u64 = 4 << 20;

/// Why a `cluster.yml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Unreadable file.
    #[error("cannot read cluster file {path}: {source}; check the path given to --cluster")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Larger than [`MAX_CLUSTER_BYTES`].
    #[error(
        "cluster file {path} is larger than {}, ferry's limit for a cluster.yml (real ones are a few KiB); check the path given to --cluster",
        ferry_base::bounded::size_text(*cap)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        cap: u64,
    },
    /// Not UTF-8 text.
    #[error("cluster file {path} is not UTF-8 text; check the path given to --cluster")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// Not valid YAML, or a key of the wrong type.
    #[error(
        "{path} is not a valid cluster.yml: {detail}; fix the YAML at that position (RKE would reject it too)"
    )]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        detail: String,
    },
    /// An override under `system_images` is not a valid image reference.
    #[error(
        "{path}: system_images.{field} is {value:?}, which is not a valid image reference ({reason}); write it as docker does, e.g. rancher/rke-tools:v0.1.103 or registry.example.com/rancher/rke-tools:v0.1.103"
    )]
    BadOverride {
        /// The file.
        path: PathBuf,
        /// YAML key.
        field: String,
        /// The value as written.
        value: String,
        /// The reference parser's explanation.
        reason: String,
    },
    /// The default private registry URL cannot prefix an image.
    #[error(
        "{path}: private_registries[{index}].url is {url:?}, which RKE cannot use as an image prefix ({reason}); write host[:port][/path] without scheme or trailing slash, e.g. registry.example.com:5000/artifactory"
    )]
    BadRegistryUrl {
        /// The file.
        path: PathBuf,
        /// Position in the list.
        index: usize,
        /// The URL as written.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// `ecr_credential_plugin` of a private registry entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EcrCredentialPlugin {
    /// AWS access key id.
    #[serde(default, alias = "awsAccessKeyId")]
    pub aws_access_key_id: Option<String>,
    /// AWS secret access key.
    #[serde(default, alias = "awsSecretAccessKey")]
    pub aws_secret_access_key: Secret,
    /// Optional session token (`awsAccessToken` in RKE's JSON tags).
    #[serde(default, alias = "awsAccessToken")]
    pub aws_session_token: Secret,
}

/// One `private_registries` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PrivateRegistry {
    /// `host[:port][/path]`, no scheme. Empty means docker.io for credentials.
    #[serde(default)]
    pub url: Option<String>,
    /// Registry user.
    #[serde(default)]
    pub user: Option<String>,
    /// Registry password.
    #[serde(default)]
    pub password: Secret,
    /// The first entry with `is_default: true` is where RKE pulls system images from.
    #[serde(default)]
    pub is_default: Option<bool>,
    /// ECR credentials, RKE's spelling.
    #[serde(default)]
    pub ecr_credential_plugin: Option<EcrCredentialPlugin>,
    /// ECR credentials in the Rancher docs' spelling, which the RKE CLI silently ignores.
    #[serde(default, rename = "ecrCredentialPlugin")]
    pub ecr_credential_plugin_camel: Option<EcrCredentialPlugin>,
}

impl PrivateRegistry {
    /// The URL, empty when absent.
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or("")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Kubelet {
    #[serde(default)]
    extra_env: Option<Vec<String>>,
    #[serde(default)]
    infra_container_image: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Etcd {
    #[serde(default)]
    external_urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Services {
    #[serde(default)]
    kubelet: Option<Kubelet>,
    #[serde(default)]
    etcd: Option<Etcd>,
}

/// A YAML value whose scalars are read as strings (RKE's `map[string]string` options take
/// `mtu: 1450` as "1450").
type Loose = BTreeMap<String, serde_json::Value>;

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Network {
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    options: Option<Loose>,
    #[serde(default)]
    aci_network_provider: Option<Loose>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Nodelocal {
    #[serde(default)]
    ip_address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Dns {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    nodelocal: Option<Nodelocal>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Ingress {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    default_backend: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Monitoring {
    #[serde(default)]
    provider: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawCluster {
    #[serde(default)]
    kubernetes_version: Option<String>,
    #[serde(default)]
    system_images: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    private_registries: Option<Vec<PrivateRegistry>>,
    #[serde(default)]
    services: Option<Services>,
    #[serde(default)]
    network: Option<Network>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    ingress: Option<Ingress>,
    #[serde(default)]
    monitoring: Option<Monitoring>,
    #[serde(default)]
    addons: Option<String>,
    #[serde(default)]
    addons_include: Option<Vec<String>>,
}

/// The parts of a `cluster.yml` ferry uses.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// `kubernetes_version`; empty means RKE's default.
    pub kubernetes_version: String,
    /// Non-empty `system_images` overrides, validated, by field.
    pub overrides: Vec<(&'static Field, String)>,
    /// `private_registries` in file order.
    pub private_registries: Vec<PrivateRegistry>,
    /// `services.kubelet.extra_env` (`K=V` strings).
    pub kubelet_extra_env: Vec<String>,
    /// `services.kubelet.infra_container_image`: replaces `pod_infra_container` (empty: unset).
    pub infra_container_image: String,
    /// `services.etcd.external_urls`: etcd runs outside the cluster when non-empty.
    pub etcd_external_urls: Vec<String>,
    /// `network.plugin` as written (empty: RKE's default, canal).
    pub network_plugin: String,
    /// `network.options`, scalars as strings.
    pub network_options: BTreeMap<String, String>,
    /// `network.aci_network_provider`, top-level scalars as strings; `None` when absent.
    pub aci_network_provider: Option<BTreeMap<String, String>>,
    /// `dns.provider` as written (empty: RKE's default for the version).
    pub dns_provider: String,
    /// `dns.nodelocal.ip_address` (empty: no NodeLocal DNS).
    pub nodelocal_ip: String,
    /// `ingress.provider` as written (empty: nginx).
    pub ingress_provider: String,
    /// `ingress.default_backend` (`None`: RKE's default for the version).
    pub ingress_default_backend: Option<bool>,
    /// `monitoring.provider` as written (empty: metrics-server).
    pub monitoring_provider: String,
    /// `addons`: inline manifests (multi-document YAML), empty when unset.
    pub addons: String,
    /// `addons_include`: paths (relative to this file's directory) and URLs.
    pub addons_include: Vec<String>,
    /// Things RKE would silently ignore, worth telling the user.
    pub warnings: Vec<String>,
}

impl ClusterConfig {
    /// Reads and validates a cluster.yml file.
    pub fn load(path: &Path) -> Result<ClusterConfig, ClusterError> {
        let bytes = ferry_base::bounded::read(path, MAX_CLUSTER_BYTES).map_err(|e| match e {
            ferry_base::bounded::ReadError::Io(source) => ClusterError::Read {
                path: path.to_path_buf(),
                source,
            },
            ferry_base::bounded::ReadError::TooLarge { cap, .. } => ClusterError::TooLarge {
                path: path.to_path_buf(),
                cap,
            },
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ClusterError::NotText {
            path: path.to_path_buf(),
        })?;
        ClusterConfig::parse(&text, path)
    }

    /// Parses cluster.yml text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<ClusterConfig, ClusterError> {
        let raw: RawCluster = if text.trim().is_empty() {
            RawCluster::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ClusterError::Yaml {
                path: path.to_path_buf(),
                detail: one_paragraph(&e.to_string()),
            })?
        };
        let mut warnings = Vec::new();
        let mut overrides = Vec::new();
        for (key, value) in raw.system_images.unwrap_or_default() {
            let Some(field) = Field::by_yaml(&key) else {
                warnings.push(format!(
                    "{}: system_images.{key} is not an RKE system image field; RKE ignores it, and so does ferry",
                    path.display()
                ));
                continue;
            };
            let value = value.unwrap_or_default();
            if value.is_empty() {
                continue;
            }
            if let Err(e) = Reference::parse(&value) {
                return Err(ClusterError::BadOverride {
                    path: path.to_path_buf(),
                    field: key,
                    value,
                    reason: e.to_string(),
                });
            }
            overrides.push((field, value));
        }
        let private_registries = raw.private_registries.unwrap_or_default();
        for (i, r) in private_registries.iter().enumerate() {
            if r.ecr_credential_plugin_camel.is_some() && r.ecr_credential_plugin.is_none() {
                warnings.push(format!(
                    "{}: private_registries[{i}] uses the key ecrCredentialPlugin (the Rancher docs' spelling); the RKE CLI ignores it and only reads ecr_credential_plugin, so rke up will not use these ECR credentials. ferry accepts it, but rename the key for RKE",
                    path.display()
                ));
            }
        }
        let services = raw.services.unwrap_or_default();
        let kubelet = services.kubelet.unwrap_or_default();
        let kubelet_extra_env = kubelet.extra_env.unwrap_or_default();
        let infra_container_image = kubelet
            .infra_container_image
            .unwrap_or_default()
            .trim()
            .to_string();
        if !infra_container_image.is_empty()
            && let Err(e) = Reference::parse(&infra_container_image)
        {
            return Err(ClusterError::BadOverride {
                path: path.to_path_buf(),
                field: "services.kubelet.infra_container_image".into(),
                value: infra_container_image,
                reason: e.to_string(),
            });
        }
        let etcd_external_urls = services
            .etcd
            .and_then(|e| e.external_urls)
            .unwrap_or_default()
            .into_iter()
            .filter(|u| !u.trim().is_empty())
            .collect();
        let network = raw.network.unwrap_or_default();
        let loose = |m: Loose| -> BTreeMap<String, String> {
            m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect()
        };
        let dns = raw.dns.unwrap_or_default();
        let ingress = raw.ingress.unwrap_or_default();
        let trimmed = |s: Option<String>| s.unwrap_or_default().trim().to_string();
        Ok(ClusterConfig {
            path: path.to_path_buf(),
            kubernetes_version: raw
                .kubernetes_version
                .unwrap_or_default()
                .trim()
                .to_string(),
            overrides,
            private_registries,
            kubelet_extra_env,
            infra_container_image,
            etcd_external_urls,
            network_plugin: trimmed(network.plugin),
            network_options: network.options.map(loose).unwrap_or_default(),
            aci_network_provider: network.aci_network_provider.map(loose),
            dns_provider: trimmed(dns.provider),
            nodelocal_ip: trimmed(dns.nodelocal.and_then(|n| n.ip_address)),
            ingress_provider: trimmed(ingress.provider),
            ingress_default_backend: ingress.default_backend,
            monitoring_provider: trimmed(raw.monitoring.and_then(|m| m.provider)),
            addons: raw.addons.unwrap_or_default(),
            addons_include: raw
                .addons_include
                .unwrap_or_default()
                .into_iter()
                .filter(|a| !a.trim().is_empty())
                .collect(),
            warnings,
        })
    }

    /// The first `is_default: true` entry, as RKE picks it.
    pub fn default_registry(&self) -> Option<(usize, &PrivateRegistry)> {
        self.private_registries
            .iter()
            .enumerate()
            .find(|(_, r)| r.is_default == Some(true))
    }

    /// The prefix RKE puts in front of every non-overridden image, if any. An `is_default`
    /// entry without `url` gives no prefix (RKE's behaviour).
    pub fn default_prefix(&self) -> Result<Option<RegistryPrefix>, ClusterError> {
        let Some((index, reg)) = self.default_registry() else {
            return Ok(None);
        };
        let url = reg.url();
        if url.is_empty() {
            return Ok(None);
        }
        RegistryPrefix::parse(url)
            .map(Some)
            .map_err(|e| ClusterError::BadRegistryUrl {
                path: self.path.clone(),
                index,
                url: url.to_string(),
                reason: e.to_string(),
            })
    }

    /// The override for a field, if the file sets one.
    pub fn override_for(&self, field: &Field) -> Option<&str> {
        self.overrides
            .iter()
            .find(|(f, _)| f.go == field.go)
            .map(|(_, v)| v.as_str())
    }
}

/// Collapses a multi-line parser message into one line.
fn one_paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
