//! `cluster.yml`: the few keys of RKE's `RancherKubernetesEngineConfig` that decide which
//! images `rke up` pulls and from where. Every other key (nodes, services options, addons …)
//! is accepted and ignored, as RKE's own non-strict parser (`gopkg.in/yaml.v2`) would. The
//! file is read only up to [`MAX_CLUSTER_BYTES`].

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
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Services {
    #[serde(default)]
    kubelet: Option<Kubelet>,
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
        let kubelet_extra_env = raw
            .services
            .and_then(|s| s.kubelet)
            .and_then(|k| k.extra_env)
            .unwrap_or_default();
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
