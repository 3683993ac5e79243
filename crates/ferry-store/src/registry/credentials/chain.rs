//! How a [`CredentialChain`] answers for a registry: the sources in order (flags, environment,
//! cluster.yml, config files, anonymous), one answer per registry cached for the run, and a
//! `Debug` that names users and sources but never a secret.

use super::docker_config::load_config;
use super::{ClusterEntry, CredentialChain, CredentialOrigin, Resolved, basic, canonical_host};
use crate::registry::CredentialSource;
use crate::registry::auth::Credentials;

impl CredentialChain {
    /// Where the credentials for `registry` come from (resolving and caching them if needed).
    pub fn describe(&self, registry: &str) -> CredentialOrigin {
        self.resolve(registry).origin
    }

    fn resolve(&self, registry: &str) -> Resolved {
        let name = canonical_host(registry);
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.entry(name.clone()).or_default().clone()
        };
        cell.get_or_init(|| {
            let r = self.lookup(&name);
            tracing::debug!(
                "registry {name}: credentials from {}{}",
                r.origin,
                r.credentials
                    .username()
                    .map(|u| format!(" (user {u:?})"))
                    .unwrap_or_default()
            );
            r
        })
        .clone()
    }

    fn lookup(&self, name: &str) -> Resolved {
        let found = |credentials, origin| Resolved {
            credentials,
            origin,
        };
        if let Some((_, user, password)) = self.explicit.iter().find(|(r, ..)| r == name) {
            return found(basic(user, password), CredentialOrigin::Explicit);
        }
        if let Some((_, user, password)) = self.env.as_ref().filter(|(t, ..)| t == name) {
            return found(basic(user, password), CredentialOrigin::Environment);
        }
        if let Some(c) = self.cluster_lookup(name) {
            return found(c, CredentialOrigin::ClusterYml);
        }
        let configs = self.configs.get_or_init(|| {
            self.config_files
                .iter()
                .filter_map(|p| match load_config(p) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("ignoring docker config: {e}");
                        None
                    }
                })
                .collect()
        });
        for file in configs {
            if let Some(r) = self.config_lookup(file, name) {
                return r;
            }
        }
        found(Credentials::Anonymous, CredentialOrigin::Anonymous)
    }

    /// RKE keys entries by their exact url; ferry talks to the host, so an entry whose url is
    /// `host/path` also counts for `host`. An exact url wins, and among duplicates of one url
    /// the later wins (as in RKE's map).
    fn cluster_lookup(&self, name: &str) -> Option<Credentials> {
        let matching: Vec<&ClusterEntry> = self.cluster.iter().filter(|e| e.host == name).collect();
        let exact = matching.iter().rev().find(|e| e.url == e.host);
        let chosen = match exact {
            Some(e) => *e,
            None => {
                let first = &matching.first()?.url;
                *matching.iter().rev().find(|e| &e.url == first)?
            }
        };
        if matching
            .iter()
            .any(|e| e.user != chosen.user || e.password != chosen.password)
        {
            let urls: Vec<&str> = matching.iter().map(|e| e.url.as_str()).collect();
            tracing::warn!(
                "registry {name}: cluster.yml private_registries {urls:?} hold different credentials; using those of {}",
                chosen.url
            );
        }
        Some(basic(&chosen.user, &chosen.password))
    }
}

impl CredentialSource for CredentialChain {
    fn credentials(&self, registry: &str) -> Credentials {
        self.resolve(registry).credentials
    }

    fn origin(&self, registry: &str) -> Option<String> {
        Some(self.describe(registry).to_string())
    }
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let explicit: Vec<(&str, &str)> = self
            .explicit
            .iter()
            .map(|(r, u, _)| (r.as_str(), u.as_str()))
            .collect();
        let cluster: Vec<(&str, &str)> = self
            .cluster
            .iter()
            .map(|e| (e.url.as_str(), e.user.as_str()))
            .collect();
        let resolved: Vec<(String, String)> = self
            .cache
            .lock()
            .map(|c| {
                c.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.get()?.origin.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        f.debug_struct("CredentialChain")
            .field("explicit", &explicit)
            .field(
                "env",
                &self.env.as_ref().map(|(t, u, _)| (t.as_str(), u.as_str())),
            )
            .field("cluster", &cluster)
            .field("config_files", &self.config_files)
            .field("resolved", &resolved)
            .finish_non_exhaustive()
    }
}
