//! Where registry credentials come from. [`CredentialChain`] answers "which user and secret
//! for registry X?" from these sources, first match wins:
//!
//! 1. `--username` + `--password-stdin`, for the one registry they were given for;
//! 2. `FERRY_USERNAME` + `FERRY_PASSWORD`, for the configured target registry only;
//! 3. `cluster.yml` `private_registries` (`user`/`password` of the entry whose url's host is X);
//! 4. docker's `config.json`, then podman's `REGISTRY_AUTH_FILE`, each read the way docker
//!    reads it: `credHelpers[X]`, else `credsStore`, else `auths`;
//! 5. anonymous.
//!
//! Answers are cached per registry (helpers are slow), and [`CredentialChain::describe`] says
//! where one came from, for messages. Secrets stay in [`Secret`]s; nothing here prints one.
//! The environment is read through an injectable function, so tests never touch the process
//! environment. This module does not know `rke`: commands pass cluster.yml entries in as plain
//! values (layering: `store` depends only on `oci`).
//!
//! The parts: `chain` (the lookup in that order, and the cache), `builder`
//! ([`CredentialChainBuilder`], which reads the environment), `docker_config` (config files
//! read the way docker reads them) and `helper` (running `docker-credential-*` helpers).

mod builder;
mod chain;
mod docker_config;
mod helper;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use builder::CredentialChainBuilder;
use docker_config::ConfigFile;

use super::auth::Credentials;
use ferry_base::secret::Secret;

/// How long a `docker-credential-*` helper may take before ferry gives up on it.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

const DOCKER_HUB: &str = "docker.io";

/// Where the credentials for a registry came from, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOrigin {
    /// `--username` and `--password-stdin`.
    Explicit,
    /// `FERRY_USERNAME` and `FERRY_PASSWORD`.
    Environment,
    /// A `private_registries` entry of `cluster.yml`.
    ClusterYml,
    /// An `auths` entry of a docker (or podman) config file.
    DockerConfigAuths {
        /// The config file.
        file: PathBuf,
    },
    /// A `docker-credential-<helper>` named by `credHelpers` or `credsStore`.
    CredentialHelper {
        /// The helper suffix (`pass`, `ecr-login` …).
        helper: String,
        /// The config file that named it.
        file: PathBuf,
    },
    /// No credentials found anywhere.
    Anonymous,
}

impl CredentialOrigin {
    /// The config file the credentials came from, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            CredentialOrigin::DockerConfigAuths { file }
            | CredentialOrigin::CredentialHelper { file, .. } => Some(file),
            _ => None,
        }
    }
}

impl std::fmt::Display for CredentialOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialOrigin::Explicit => f.write_str("--username"),
            CredentialOrigin::Environment => f.write_str("FERRY_USERNAME"),
            CredentialOrigin::ClusterYml => f.write_str("cluster.yml"),
            CredentialOrigin::DockerConfigAuths { .. } => f.write_str("docker config auths"),
            CredentialOrigin::CredentialHelper { helper, .. } => {
                write!(f, "credential helper docker-credential-{helper}")
            }
            CredentialOrigin::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Credentials for registry names, from flags, environment, cluster.yml and docker config.
///
/// Resolving may run a credential helper (up to [`DEFAULT_HELPER_TIMEOUT`]), so call it from
/// a blocking context (`spawn_blocking`) or resolve the registries of a run up front.
pub struct CredentialChain {
    explicit: Vec<(String, String, Secret)>,
    env: Option<(String, String, Secret)>,
    cluster: Vec<ClusterEntry>,
    config_files: Vec<PathBuf>,
    configs: OnceLock<Vec<ConfigFile>>,
    path: Option<OsString>,
    helper_timeout: Duration,
    cache: Mutex<HashMap<String, Arc<OnceLock<Resolved>>>>,
}

#[derive(Debug, Clone)]
struct Resolved {
    credentials: Credentials,
    origin: CredentialOrigin,
}

#[derive(Debug, Clone)]
struct ClusterEntry {
    url: String,
    host: String,
    user: String,
    password: Secret,
}

fn basic(user: &str, password: &Secret) -> Credentials {
    Credentials::Basic {
        username: user.to_string(),
        password: password.clone(),
    }
}

/// `host[:port]` of a registry name or config key, the way docker's `ConvertToHostname`
/// reduces keys: no scheme, nothing from the first `/` on, lower case; every Docker Hub alias
/// becomes `docker.io`.
fn canonical_host(key: &str) -> String {
    let key = key.trim();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|s| {
            key.get(..s.len())
                .filter(|p| p.eq_ignore_ascii_case(s))
                .map(|_| &key[s.len()..])
        })
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}
