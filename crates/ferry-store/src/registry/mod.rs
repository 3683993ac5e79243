//! ferry's own thin registry client on reqwest, split by concern: [`config`] (endpoints, TLS,
//! limits), [`auth`] (challenges, tokens, credentials), [`request`] (auth + retry + rate
//! limits), [`manifests`], [`blobs`]. It is ours rather than oci-client's because ferry's core
//! is where a generic client is thin: resumable retried transfers both ways, cross-repository
//! mounts with multi-scope tokens, per-registry TLS and HTTP tuning, token refresh over hours,
//! flat memory whatever the layer size, and manifest pushes by digest.
//!
//! [`Registries`] hands out one [`Registry`] per registry name, all sharing one HTTP client and
//! one global transfer limit; each registry adds its own per-host limit. A transfer holds its
//! permits until its body is fully read, so the limits bound real concurrent transfers.

pub mod auth;
pub mod blobs;
pub mod config;
pub mod credentials;
pub mod destination;
pub mod ecr;
pub mod error;
pub mod manifests;
pub mod ratelimit;
pub mod referrers;
pub mod request;
pub mod source;
pub mod tags;
pub mod upload;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

pub use auth::{Credentials, Scope};
pub use config::ClientOptions;
pub use destination::RegistryDestination;
pub use error::RegistryError;
pub use manifests::{FetchedManifest, ManifestHead};
pub use request::RateLimit;
pub use {
    credentials::CredentialChain,
    ratelimit::{Need, PullCheck, Quota, Run as PullRun, human_window},
};

/// Supplies credentials for a registry name (flags, environment, docker config …).
pub trait CredentialSource: Send + Sync {
    /// Credentials for `registry` (a name as in image references, e.g. `docker.io`).
    fn credentials(&self, registry: &str) -> Credentials;

    /// Where the credentials for `registry` come from, for messages ("docker config auths").
    fn origin(&self, _registry: &str) -> Option<String> {
        None
    }

    /// When the credentials [`credentials`](Self::credentials) gave for `registry` should be
    /// asked for again (a login token that expires); `None`: they last the run.
    fn renew_at(&self, _registry: &str) -> Option<std::time::SystemTime> {
        None
    }

    /// The registry refused `refused`, which this source gave for `registry`. True when asking
    /// [`credentials`](Self::credentials) again can give other ones (a login that is renewed,
    /// such as ECR's; the source forgets the refused one); false when it has nothing else.
    fn invalidate(&self, _registry: &str, _refused: &Credentials) -> bool {
        false
    }
}

/// No credentials anywhere.
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn credentials(&self, _registry: &str) -> Credentials {
        Credentials::Anonymous
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A `--ca-file` could not be read or parsed.
    #[error("cannot use CA file {path}: {detail}; pass a PEM file with one or more certificates")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot set up HTTPS: {0}")]
    Build(String),
    /// A bad endpoint.
    #[error(transparent)]
    Endpoint(#[from] config::EndpointError),
}

/// One registry endpoint with its auth state and limits.
pub struct Registry {
    name: String,
    base: Url,
    http: reqwest::Client,
    auth: auth::Authenticator,
    opts: Arc<ClientOptions>,
    global: Arc<Semaphore>,
    host: Arc<Semaphore>,
    rate_limit: Mutex<Option<RateLimit>>,
    /// Set when the registry could not be connected to at all: (attempts, why). Every later
    /// request of the run fails at once with it.
    down: Mutex<Option<(u32, String)>>,
}

/// Permits held for the duration of one transfer.
pub struct TransferPermit {
    _global: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

impl Registry {
    /// The registry name (as in image references).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last rate-limit state the registry reported, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit.lock().ok().and_then(|r| r.clone())
    }

    /// Waits for a transfer slot (per host first, then global, so one slow host cannot hold
    /// global slots while it waits for its own).
    pub(crate) async fn permits(&self) -> TransferPermit {
        // The semaphores are never closed, so acquiring cannot fail.
        let host = self.host.clone().acquire_owned().await;
        let global = self.global.clone().acquire_owned().await;
        match (host, global) {
            (Ok(h), Ok(g)) => TransferPermit {
                _global: g,
                _host: h,
            },
            _ => unreachable!("transfer semaphores are never closed"),
        }
    }
}

/// All registries of one run.
pub struct Registries {
    opts: Arc<ClientOptions>,
    http: reqwest::Client,
    credentials: Arc<dyn CredentialSource>,
    global: Arc<Semaphore>,
    map: Mutex<HashMap<String, Arc<Registry>>>,
}

fn build_http(opts: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    ferry_base::tls::install();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.stall_timeout)
        .pool_max_idle_per_host(opts.per_host.max(1) * 2)
        // HTTP/2 (negotiated over TLS) multiplexes transfers on one connection; without an
        // adaptive window its 64 KiB default stream window caps each transfer's speed.
        .http2_adaptive_window(true);
    if opts.http1_only {
        // A pool of HTTP/1.1 connections, one transfer each: measured faster than one
        // multiplexed HTTP/2 connection for bulk blobs (scripts/bench.sh, ferry_export_h2).
        b = b.http1_only();
    }
    let mut certs = Vec::new();
    for path in &opts.ca_files {
        let pem = ferry_base::fsutil::read_small_bytes(path, ferry_base::fsutil::MAX_TEXT_FILE)
            .map_err(|e| ClientError::CaFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        let found =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::CaFile {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if found.is_empty() {
            return Err(ClientError::CaFile {
                path: path.clone(),
                detail: "no certificate found in it".into(),
            });
        }
        certs.extend(found);
    }
    if !certs.is_empty() {
        b = b.tls_certs_merge(certs);
    }
    if !opts.tls_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build()
        .map_err(|e| ClientError::Build(request::flatten(&e)))
}

impl Registries {
    /// Builds the shared HTTP client (TLS roots, `--ca-file`, timeouts, proxies from the environment).
    pub fn new(
        opts: ClientOptions,
        credentials: Arc<dyn CredentialSource>,
    ) -> Result<Registries, ClientError> {
        let http = build_http(&opts)?;
        let global = Arc::new(Semaphore::new(opts.jobs.max(1)));
        Ok(Registries {
            opts: Arc::new(opts),
            http,
            credentials,
            global,
            map: Mutex::new(HashMap::new()),
        })
    }

    /// The client for a registry name, created on first use.
    pub fn get(&self, registry: &str) -> Result<Arc<Registry>, ClientError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| ClientError::Build("registry table poisoned".into()))?;
        if let Some(r) = map.get(registry) {
            return Ok(r.clone());
        }
        let base = self.opts.endpoint(registry)?;
        // Credentials of the endpoint actually contacted win (a mirror standing in for
        // docker.io has its own login); then those of the registry name. They are looked up
        // when a request first needs them, off the async runtime and outside this table's lock.
        let endpoint_host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        };
        let mut names = Vec::new();
        if endpoint_host != registry && !endpoint_host.is_empty() {
            names.push(endpoint_host);
        }
        names.push(registry.to_string());
        tracing::debug!("registry {registry}: endpoint {base}");
        let secure = base.scheme() == "https";
        let r = Arc::new(Registry {
            name: registry.to_string(),
            base,
            http: self.http.clone(),
            auth: auth::Authenticator::new(
                registry,
                secure,
                auth::CredentialLookup {
                    source: self.credentials.clone(),
                    names,
                },
            ),
            opts: self.opts.clone(),
            global: self.global.clone(),
            host: Arc::new(Semaphore::new(self.opts.per_host.max(1))),
            rate_limit: Mutex::new(None),
            down: Mutex::new(None),
        });
        map.insert(registry.to_string(), r.clone());
        Ok(r)
    }

    /// Every registry used so far.
    pub fn used(&self) -> Vec<Arc<Registry>> {
        self.map
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Announces the images a run is about to read: on registries that use bearer tokens,
    /// token requests then ask for many of their repositories' pull scopes at once, in this
    /// order (`auth/tokens.rs`), instead of one token request per repository. A hint: nothing
    /// is contacted, and a registry name without an endpoint is left to the first real request.
    pub fn expect_pulls<'a>(
        &self,
        images: impl IntoIterator<Item = &'a ferry_oci::reference::Reference>,
    ) {
        let mut by_registry: Vec<(&str, Vec<Scope>)> = Vec::new();
        for image in images {
            let scope = Scope::pull(image.repository());
            match by_registry.iter_mut().find(|(r, _)| *r == image.registry()) {
                Some((_, scopes)) => scopes.push(scope),
                None => by_registry.push((image.registry(), vec![scope])),
            }
        }
        for (name, scopes) in by_registry {
            if let Ok(registry) = self.get(name) {
                registry.auth.announce(scopes);
            }
        }
    }
}
