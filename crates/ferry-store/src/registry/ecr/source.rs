//! [`EcrCredentialSource`]: the [`CredentialSource`] that logs into ECR registries with AWS keys
//! where the wrapped source has no login: one GetAuthorizationToken call per registry, on its
//! own thread and runtime, the token cached until shortly before it expires (the registry
//! client asks again then: [`CredentialSource::renew_at`]) or until the registry refuses it
//! ([`CredentialSource::invalidate`]: one new login per refused token, never a loop), and a
//! failure remembered for the run. [`keys_for_registry`] is the choice of keys, for the other
//! ECR calls of a run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use url::Url;

use super::{
    AwsKeys, EcrError, EcrRegistry, EcrToken, Operation, TOKEN_LIFETIME, endpoint_from_env,
    get_authorization_token, parse_ecr_host,
};
use crate::registry::CredentialSource;
use crate::registry::auth::Credentials;
use crate::registry::error::redact;
use ferry_base::chain::flatten;

/// A cached token is replaced this long before it expires.
pub(super) const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// The time source: the system clock, or a test's.
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Where the keys for a registry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOrigin {
    ClusterYml,
    Environment,
}

impl KeyOrigin {
    fn label(self) -> &'static str {
        match self {
            KeyOrigin::ClusterYml => "ECR GetAuthorizationToken (keys from cluster.yml)",
            KeyOrigin::Environment => "ECR GetAuthorizationToken (keys from environment)",
        }
    }
}

/// The outcome of the last call for one registry.
#[derive(Debug, Clone)]
enum Cached {
    /// A token, good until `renew_at`.
    Token {
        credentials: Credentials,
        renew_at: SystemTime,
        /// A registry refused it: the next `credentials` call logs in again.
        refused: bool,
        /// It was fetched because the one before was refused. Should it be refused too, the
        /// keys' login is not the problem, and no new one is fetched.
        after_refusal: bool,
    },
    /// The call failed; not retried in this run (the warning was given once).
    Failed,
}

/// A [`CredentialSource`] that logs into ECR registries with AWS keys.
///
/// For a registry name that [`parse_ecr_host`] accepts and for which the wrapped source has
/// no credentials ([`Credentials::Anonymous`]), it takes the keys of the cluster.yml
/// `ecr_credential_plugin` entry whose url has that host, else the keys in the environment,
/// calls [`get_authorization_token`] (once per registry; the token is reused until 15 minutes
/// before it expires, which [`CredentialSource::renew_at`] tells the registry client) and
/// answers `Basic AWS:<token>`. Every other name goes to the wrapped source unchanged. When
/// the call fails it logs a warning naming the registry, the region and AWS's error, and
/// answers anonymous, so the push then fails with an authentication error naming the
/// registry.
///
/// When a registry refuses the token ([`CredentialSource::invalidate`]: expired early,
/// revoked), the next call logs in again: once for all the requests refused with that token.
/// Should the fresh token be refused too, the keys' login is not the problem and no further
/// call is made for it.
///
/// [`CredentialSource::credentials`] is synchronous and runs inside ferry's tokio runtime.
/// The call therefore runs on a dedicated std thread with its own current-thread runtime and
/// its own HTTP client, and the caller waits for that thread (at most [`DEFAULT_TIMEOUT`]
/// plus connection setup). Nothing that thread needs runs on the caller's runtime, so it
/// cannot deadlock, whatever the caller's runtime is doing: all workers blocked, a
/// current-thread runtime (where `block_in_place` would panic), or no runtime at all. The
/// price is one blocked worker for the length of one call per registry and run, the same as
/// a `docker-credential-*` helper in the chain it wraps.
///
/// [`DEFAULT_TIMEOUT`]: super::DEFAULT_TIMEOUT
pub struct EcrCredentialSource {
    inner: Arc<dyn CredentialSource>,
    /// (lower-case `host[:port]` of the entry's url, keys), in cluster.yml order.
    cluster: Vec<(String, AwsKeys)>,
    env_keys: Option<AwsKeys>,
    endpoint: Option<Url>,
    root_certificates: Vec<reqwest::Certificate>,
    cache: Mutex<HashMap<String, Arc<Mutex<Option<Cached>>>>>,
    clock: Clock,
}

impl std::fmt::Debug for EcrCredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cluster: Vec<&str> = self.cluster.iter().map(|(h, _)| h.as_str()).collect();
        f.debug_struct("EcrCredentialSource")
            .field("cluster", &cluster)
            .field("env_keys", &self.env_keys.is_some())
            .field("endpoint", &self.endpoint.as_ref().map(redact))
            .finish_non_exhaustive()
    }
}

impl EcrCredentialSource {
    /// Wraps `inner`. `cluster_keys` are the cluster.yml `ecr_credential_plugin` entries as
    /// `(url, keys)` (see [`AwsKeys::from_plugin`]); `env` reads `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (the fallback keys, [`AwsKeys::from_env`])
    /// and the endpoint override ([`endpoint_from_env`]), once, here.
    pub fn new(
        inner: Arc<dyn CredentialSource>,
        cluster_keys: Vec<(String, AwsKeys)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> EcrCredentialSource {
        let cluster = cluster_keys
            .into_iter()
            .filter_map(|(url, keys)| {
                let host = host_of(&url);
                if parse_ecr_host(&host).is_none() {
                    tracing::warn!(
                        "cluster.yml private registry {url:?} has ecr_credential_plugin keys but is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com); ignoring them"
                    );
                    return None;
                }
                Some((host, keys))
            })
            .collect();
        EcrCredentialSource {
            inner,
            cluster,
            env_keys: AwsKeys::from_env(&env),
            endpoint: endpoint_from_env(&env),
            root_certificates: Vec::new(),
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Reads the time from `clock` instead of the system clock (tests of renewal).
    #[cfg(test)]
    pub(crate) fn with_clock(
        mut self,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Extra trusted CA certificates for the ECR API endpoint (a TLS-inspecting proxy, or an
    /// `AWS_ENDPOINT_URL_ECR` with a private CA).
    pub fn root_certificates(mut self, certificates: Vec<reqwest::Certificate>) -> Self {
        self.root_certificates = certificates;
        self
    }

    /// The keys for an ECR host and where they come from: a cluster.yml entry for exactly
    /// this host wins (the first one, and a warning if others disagree), then the environment.
    fn keys_for(&self, host: &str) -> Option<(AwsKeys, KeyOrigin)> {
        if let Some(first) = cluster_keys_for(&self.cluster, host) {
            return Some((first, KeyOrigin::ClusterYml));
        }
        self.env_keys.clone().map(|k| (k, KeyOrigin::Environment))
    }

    /// The ECR registry, its keys and their origin when this source (rather than the wrapped
    /// one) answers for `registry`, given that the wrapped one answered `inner`.
    fn plan(
        &self,
        registry: &str,
        inner: &Credentials,
    ) -> Option<(String, EcrRegistry, AwsKeys, KeyOrigin)> {
        if *inner != Credentials::Anonymous {
            return None;
        }
        let host = host_of(registry);
        let ecr = parse_ecr_host(&host)?;
        let Some((keys, origin)) = self.keys_for(&host) else {
            tracing::debug!(
                "registry {host}: ECR registry without keys (no cluster.yml ecr_credential_plugin keys, no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            );
            return None;
        };
        Some((host, ecr, keys, origin))
    }

    /// The cache slot of a registry host.
    fn slot(&self, host: &str) -> Arc<Mutex<Option<Cached>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(host.to_string()).or_default().clone()
    }

    fn fetch(&self, ecr: &EcrRegistry, keys: &AwsKeys) -> Result<EcrToken, EcrError> {
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => ecr.api_endpoint().ok_or_else(|| EcrError::Region {
                region: ecr.region.clone(),
            })?,
        };
        let shown = redact(&endpoint);
        let region = ecr.region.clone();
        let keys = keys.clone();
        let certificates = self.root_certificates.clone();
        let built = shown.clone();
        run_detached(move || async move {
            let http = super::http_client(&certificates).map_err(|e| EcrError::Unreachable {
                operation: Operation::GetAuthorizationToken,
                region: region.clone(),
                endpoint: built,
                detail: flatten(&e),
            })?;
            get_authorization_token(&http, &region, &keys, Some(&endpoint)).await
        })
        .unwrap_or_else(|detail| {
            Err(EcrError::Unreachable {
                operation: Operation::GetAuthorizationToken,
                region: ecr.region.clone(),
                endpoint: shown,
                detail: detail.to_string(),
            })
        })
    }
}

/// The keys of the first `(url, keys)` entry whose url has this `host` (lower-case
/// `host[:port]`), with a warning when later entries for it disagree.
fn cluster_keys_for(cluster: &[(String, AwsKeys)], host: &str) -> Option<AwsKeys> {
    let mut matching = cluster.iter().filter(|(h, _)| h == host).map(|(_, k)| k);
    let first = matching.next()?;
    if matching.any(|k| k != first) {
        tracing::warn!(
            "registry {host}: several cluster.yml ecr_credential_plugin entries with different keys; using the first"
        );
    }
    Some(first.clone())
}

/// The AWS keys ferry uses for the ECR registry `registry` (a host, or a url with one), as
/// [`EcrCredentialSource`] chooses them: those of the first cluster.yml `ecr_credential_plugin`
/// entry (`(url, keys)`) whose url has this host, else `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` read through `env`. `None` for a registry
/// that is not ECR, or without keys.
pub fn keys_for_registry(
    cluster_keys: &[(String, AwsKeys)],
    registry: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<AwsKeys> {
    let host = host_of(registry);
    parse_ecr_host(&host)?;
    let cluster: Vec<(String, AwsKeys)> = cluster_keys
        .iter()
        .map(|(url, keys)| (host_of(url), keys.clone()))
        .collect();
    cluster_keys_for(&cluster, &host).or_else(|| AwsKeys::from_env(env))
}

/// `host[:port]`, lower case, of a registry name or cluster.yml url.
fn host_of(url: &str) -> String {
    let url = url.trim();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|p| {
            url.get(..p.len())
                .filter(|s| s.eq_ignore_ascii_case(p))
                .map(|_| &url[p.len()..])
        })
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

/// Why a detached call did not run to its end.
#[derive(Debug, thiserror::Error)]
enum Detached {
    /// The thread or its runtime could not be started.
    #[error("cannot start a thread or runtime for the ECR call: {0}")]
    Start(std::io::Error),
    /// It panicked.
    #[error("the ECR call crashed")]
    Crashed,
}

/// Runs the future made by `make` on a new std thread with its own current-thread runtime and
/// waits for it. `Err` when the thread or its runtime could not be started or it panicked.
fn run_detached<T, F, Fut>(make: F) -> Result<T, Detached>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let handle = std::thread::Builder::new()
        .name("ferry-ecr".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Detached::Start)?;
            Ok(runtime.block_on(make()))
        })
        .map_err(Detached::Start)?;
    handle.join().map_err(|_| Detached::Crashed)?
}

impl CredentialSource for EcrCredentialSource {
    fn credentials(&self, registry: &str) -> Credentials {
        let inner = self.inner.credentials(registry);
        let Some((host, ecr, keys, origin)) = self.plan(registry, &inner) else {
            return inner;
        };
        let cell = self.slot(&host);
        // One call per registry at a time: concurrent callers wait for the first one's answer.
        let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
        let now = (self.clock)();
        let after_refusal = match &*slot {
            Some(Cached::Failed) => return Credentials::Anonymous,
            Some(Cached::Token {
                credentials,
                renew_at,
                refused: false,
                ..
            }) if now < *renew_at => return credentials.clone(),
            Some(Cached::Token { refused, .. }) => *refused,
            None => false,
        };
        let started = now;
        match self.fetch(&ecr, &keys) {
            Ok(token) => {
                let expires = match token.expires_at {
                    Some(t) if t > started => t,
                    Some(_) => {
                        tracing::debug!(
                            "registry {host}: the ECR token's expiresAt is in the past (clock skew?); assuming 12 h"
                        );
                        started + TOKEN_LIFETIME
                    }
                    None => started + TOKEN_LIFETIME,
                };
                let renew_at = expires
                    .checked_sub(REFRESH_MARGIN)
                    .filter(|t| *t > started)
                    .unwrap_or(expires);
                tracing::debug!(
                    "registry {host}: ECR login token for region {} from {}",
                    ecr.region,
                    origin.label()
                );
                let credentials = Credentials::Basic {
                    username: token.username,
                    password: token.password,
                };
                *slot = Some(Cached::Token {
                    credentials: credentials.clone(),
                    renew_at,
                    refused: false,
                    after_refusal,
                });
                credentials
            }
            Err(e) => {
                let from = match origin {
                    KeyOrigin::ClusterYml => "cluster.yml ecr_credential_plugin",
                    KeyOrigin::Environment => "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                };
                tracing::warn!(
                    "registry {host}: cannot log into ECR (region {}, keys from {from}): {e}; continuing without credentials, so requests to {host} will fail with an authentication error",
                    ecr.region
                );
                *slot = Some(Cached::Failed);
                Credentials::Anonymous
            }
        }
    }

    fn renew_at(&self, registry: &str) -> Option<SystemTime> {
        let inner = self.inner.credentials(registry);
        let Some((host, ..)) = self.plan(registry, &inner) else {
            return self.inner.renew_at(registry);
        };
        match &*self.slot(&host).lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Cached::Token { renew_at, .. }) => Some(*renew_at),
            _ => None,
        }
    }

    fn invalidate(&self, registry: &str, refused: &Credentials) -> bool {
        let inner = self.inner.credentials(registry);
        let Some((host, ecr, ..)) = self.plan(registry, &inner) else {
            return self.inner.invalidate(registry, refused);
        };
        let cell = self.slot(&host);
        let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *slot {
            // A newer token is there already: asking again gives it.
            Some(Cached::Token { credentials, .. }) if credentials != refused => true,
            // Marked already by another refused request: one new login serves them all.
            Some(Cached::Token { refused: true, .. }) => true,
            Some(Cached::Token {
                after_refusal: true,
                ..
            }) => {
                tracing::debug!(
                    "registry {host}: the registry refused a fresh ECR login token too; not logging in again"
                );
                false
            }
            Some(Cached::Token { refused, .. }) => {
                tracing::info!(
                    "registry {host}: the registry refused the ECR login token (expired or revoked); logging in again (region {})",
                    ecr.region
                );
                *refused = true;
                true
            }
            Some(Cached::Failed) | None => false,
        }
    }

    fn origin(&self, registry: &str) -> Option<String> {
        let inner = self.inner.credentials(registry);
        match self.plan(registry, &inner) {
            Some((host, .., origin)) => {
                let failed = matches!(
                    *self.slot(&host).lock().unwrap_or_else(|p| p.into_inner()),
                    Some(Cached::Failed)
                );
                if failed {
                    self.inner.origin(registry)
                } else {
                    Some(origin.label().to_string())
                }
            }
            None => self.inner.origin(registry),
        }
    }
}
