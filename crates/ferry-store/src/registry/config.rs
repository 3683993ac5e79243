//! How ferry reaches registries: the endpoint of each registry name (Docker Hub's API host,
//! `--upstream` overrides), TLS settings, limits and retry policy. Plain HTTP is used only for
//! an endpoint written with `http://`.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// Docker Hub's name in image references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's registry API host.
pub const DOCKER_HUB_API: &str = "https://registry-1.docker.io";

/// A malformed endpoint or `--upstream` value.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid registry endpoint {value:?}: {reason}; write REGISTRY=URL, e.g. docker.io=https://mirror.example.com:5000 or docker.io=http://127.0.0.1:5000"
)]
pub struct EndpointError {
    /// The value as given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses an endpoint: `https://host[:port]`, `http://host[:port]` or a bare `host[:port]`
/// (HTTPS). A path is not allowed: the distribution API lives at `/v2/` of the host.
pub fn parse_endpoint(value: &str) -> Result<Url, EndpointError> {
    let err = |reason: &str| EndpointError {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("https://{value}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| err(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            "credentials do not belong in the URL; use --username/--password-stdin or docker login",
        ));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(err("no path or query allowed"));
    }
    Ok(url)
}

/// Parses `--upstream REGISTRY=URL`.
pub fn parse_upstream(value: &str) -> Result<(String, Url), EndpointError> {
    let Some((name, url)) = value.split_once('=') else {
        return Err(EndpointError {
            value: value.to_string(),
            reason: "missing '='".into(),
        });
    };
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(EndpointError {
            value: value.to_string(),
            reason: "missing registry name".into(),
        });
    }
    let name = if name == "index.docker.io" || name == "registry-1.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        name
    };
    Ok((name, parse_endpoint(url.trim())?))
}

/// Settings shared by every registry ferry talks to in one run.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Endpoint overrides: registry name → URL (`--upstream`, `--to`).
    pub endpoints: Vec<(String, Url)>,
    /// Verify TLS certificates (`--tls-verify`).
    pub tls_verify: bool,
    /// Extra CA certificates (PEM files), trusted on top of the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Concurrent transfers overall (`--jobs`).
    pub jobs: usize,
    /// Concurrent transfers per registry host.
    pub per_host: usize,
    /// Attempts per request, first one included.
    pub attempts: u32,
    /// First backoff delay; doubles each retry, with jitter.
    pub backoff: Duration,
    /// Longest `Retry-After` ferry waits; beyond it the request fails with a clear error.
    pub max_retry_after: Duration,
    /// Fail a transfer whose body sends nothing for this long (then it is retried/resumed).
    pub stall_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// HTTP/1.1 only (a pool of connections per host) instead of HTTP/2 where offered.
    pub http1_only: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            endpoints: Vec::new(),
            tls_verify: true,
            ca_files: Vec::new(),
            jobs: 8,
            per_host: 6,
            attempts: 5,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            http1_only: true,
        }
    }
}

impl ClientOptions {
    /// The endpoint of a registry name: an override, Docker Hub's API host, or `https://name`.
    pub fn endpoint(&self, registry: &str) -> Result<Url, EndpointError> {
        if let Some((_, url)) = self.endpoints.iter().rev().find(|(n, _)| n == registry) {
            return Ok(url.clone());
        }
        if registry == DOCKER_HUB {
            return parse_endpoint(DOCKER_HUB_API);
        }
        parse_endpoint(&format!("https://{registry}"))
    }
}

#[cfg(test)]
mod tests;
