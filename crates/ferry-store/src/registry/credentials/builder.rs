//! [`CredentialChainBuilder`]: collects the sources of a [`CredentialChain`] (flags, target
//! registry, cluster.yml entries, whether to read config files) and reads the environment once,
//! in `build`: `FERRY_USERNAME`/`FERRY_PASSWORD`, which config files to read (`DOCKER_CONFIG`
//! or `~/.docker`, then `REGISTRY_AUTH_FILE`) and the `PATH` to find helpers on.

use ferry_base::env_vars::EnvVars;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{ClusterEntry, CredentialChain, DEFAULT_HELPER_TIMEOUT, DOCKER_HUB, canonical_host};
use ferry_base::secret::Secret;

/// The environment function of the builder.
type EnvFn = Box<dyn Fn(&str) -> Option<String>>;

/// Collects the sources of a [`CredentialChain`].
pub struct CredentialChainBuilder {
    explicit: Vec<(String, String, Secret)>,
    target: Option<String>,
    env: EnvFn,
    cluster: Vec<ClusterEntry>,
    docker_config: bool,
    helper_timeout: Duration,
}

impl CredentialChain {
    /// A builder reading the process environment; replace it with
    /// [`CredentialChainBuilder::env_from`].
    pub fn builder() -> CredentialChainBuilder {
        CredentialChainBuilder {
            explicit: Vec::new(),
            target: None,
            env: Box::new(ferry_base::env_vars::EnvVars::var),
            cluster: Vec::new(),
            docker_config: true,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }
}

impl CredentialChainBuilder {
    /// Credentials given on the command line (`--username` + `--password-stdin`), used only
    /// for `registry` (a registry name such as `registry.example.com:5000`).
    pub fn explicit(mut self, registry: &str, username: &str, password: Secret) -> Self {
        self.explicit
            .push((canonical_host(registry), username.to_string(), password));
        self
    }

    /// The registry `FERRY_USERNAME`/`FERRY_PASSWORD` apply to; without one they are unused.
    pub fn target(mut self, registry: &str) -> Self {
        self.target = Some(canonical_host(registry));
        self
    }

    /// How to read environment variables (`FERRY_USERNAME`, `FERRY_PASSWORD`,
    /// `DOCKER_CONFIG`, `HOME`, `REGISTRY_AUTH_FILE`, `PATH`); the default reads the process
    /// environment. Read once, in [`CredentialChainBuilder::build`].
    pub fn env_from(mut self, env: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.env = Box::new(env);
        self
    }

    /// A cluster.yml `private_registries` entry: `url` as written (`host[:port][/path]`, empty
    /// for docker.io), `user` and `password`. Entries with neither user nor password are
    /// skipped (they may use ECR, which is not a static credential).
    pub fn cluster_registry(mut self, url: &str, user: &str, password: Secret) -> Self {
        if user.is_empty() && password.is_empty() {
            return self;
        }
        let url = url.trim().trim_end_matches('/');
        let url = if url.is_empty() { DOCKER_HUB } else { url };
        let host = canonical_host(url);
        let url = match url.split_once('/') {
            Some((_, path)) => format!("{host}/{path}"),
            None => host.clone(),
        };
        self.cluster.push(ClusterEntry {
            url,
            host,
            user: user.to_string(),
            password,
        });
        self
    }

    /// Whether to read docker/podman config files (default: yes).
    pub fn docker_config(mut self, enabled: bool) -> Self {
        self.docker_config = enabled;
        self
    }

    /// How long a credential helper may take (default [`DEFAULT_HELPER_TIMEOUT`]).
    pub fn helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// Reads the environment and builds the chain. Config files are read on first need.
    pub fn build(self) -> CredentialChain {
        let get = |k: &str| (self.env)(k).filter(|v| !v.is_empty());
        let user = get(EnvVars::FERRY_USERNAME);
        let password = get(EnvVars::FERRY_PASSWORD).map(Secret::new);
        let env = match (&self.target, user, password) {
            (Some(t), Some(u), Some(p)) => Some((t.clone(), u, p)),
            (None, Some(_), Some(_)) => {
                tracing::debug!("FERRY_USERNAME/FERRY_PASSWORD unused: no target registry");
                None
            }
            (_, Some(_), None) => {
                tracing::warn!("FERRY_USERNAME is set but FERRY_PASSWORD is not; ignoring both");
                None
            }
            (_, None, Some(_)) => {
                tracing::warn!("FERRY_PASSWORD is set but FERRY_USERNAME is not; ignoring both");
                None
            }
            _ => None,
        };
        let mut config_files = Vec::new();
        if self.docker_config {
            if let Some(dir) = get(EnvVars::DOCKER_CONFIG) {
                config_files.push(PathBuf::from(dir).join("config.json"));
            } else if let Some(home) = get(EnvVars::HOME) {
                config_files.push(PathBuf::from(home).join(".docker").join("config.json"));
            }
            if let Some(file) = get(ferry_base::env_vars::EnvVars::REGISTRY_AUTH_FILE) {
                config_files.push(PathBuf::from(file));
            }
        }
        CredentialChain {
            explicit: self.explicit,
            env,
            cluster: self.cluster,
            config_files,
            configs: OnceLock::new(),
            path: get(EnvVars::PATH).map(OsString::from),
            helper_timeout: self.helper_timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }
}
