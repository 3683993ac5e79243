//! Errors of the registry client: typed (so retry and exit-code logic can match on them),
//! with messages that name the registry, the object and what to try — and never a secret.
//! URLs are redacted (no userinfo, no query string: signed CDN URLs carry credentials there).

use reqwest::StatusCode;
use url::Url;

use ferry_oci::ErrorCode;
use ferry_oci::digest::{Digest, VerifyError};
use ferry_oci::manifest::ManifestError;

/// A URL safe to print: scheme, host, port and path only.
pub fn redact(url: &Url) -> String {
    ferry_base::secret::redact_url(url)
}

/// One entry of a distribution-spec error body: `{"errors":[{"code","message"}]}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SpecError {
    /// e.g. `MANIFEST_UNKNOWN`, `DENIED`, `UNAUTHORIZED`, `TOOMANYREQUESTS`; a code ferry
    /// has no variant for is kept verbatim, an absent one is empty.
    #[serde(default = "no_code")]
    pub code: ErrorCode,
    /// Human text from the registry.
    #[serde(default)]
    pub message: String,
}

fn no_code() -> ErrorCode {
    ErrorCode::Other(String::new())
}

/// Parses a spec error body; empty when it is not one.
pub fn spec_errors(body: &[u8]) -> Vec<SpecError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<SpecError>,
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
}

fn describe(errors: &[SpecError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                e.code.to_string()
            } else {
                format!("{} ({})", e.code, e.message)
            }
        })
        .collect();
    format!(": {}", parts.join("; "))
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be opened at all (refused, no such host): the registry is given
    /// up on for the rest of the run after a few quick tries.
    #[error(
        "cannot reach registry {registry} at {url} after {attempts} attempt(s): {detail}; check the address (--upstream, --to or cluster.yml), proxy settings and that the registry is running"
    )]
    Unreachable {
        /// Registry name as in image references.
        registry: String,
        /// Redacted endpoint URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error, flattened.
        detail: String,
    },
    /// A request failed on the way without an answer (reset, timeout), after retries.
    #[error(
        "cannot reach registry {registry} at {url} after {attempts} attempt(s): {detail}; check the address (--upstream, --to or cluster.yml), proxy settings and that the registry is running"
    )]
    Connect {
        /// Registry name as in image references.
        registry: String,
        /// Redacted URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error, flattened.
        detail: String,
    },
    /// The registry answered, but a transfer kept breaking off (after retries).
    #[error(
        "the transfer of {what} with registry {registry} kept breaking off after {attempts} attempt(s): {detail}; re-run to resume, or raise --retries / --stall-timeout on a flaky link"
    )]
    Transfer {
        /// Registry name.
        registry: String,
        /// What was being moved.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// TLS handshake or certificate failure.
    #[error(
        "TLS connection to registry {registry} at {url} failed: {detail}; if the registry uses a private CA pass it with --ca-file, or use --tls-verify=false for a test registry"
    )]
    Tls {
        /// Registry name.
        registry: String,
        /// Redacted URL.
        url: String,
        /// The error chain.
        detail: String,
    },
    /// Credentials missing or rejected.
    #[error("registry {registry} rejected the credentials{}{}; check the user name and password (--username/--password-stdin, FERRY_USERNAME/FERRY_PASSWORD, cluster.yml or docker login)", user.as_ref().map(|u| format!(" of user {u}")).unwrap_or_else(|| " (anonymous access)".into()), describe(.errors))]
    Unauthorized {
        /// Registry name.
        registry: String,
        /// The user (quoted, with where the credentials came from), when one was used.
        user: Option<String>,
        /// Spec errors from the registry.
        errors: Vec<SpecError>,
    },
    /// Authenticated, but not allowed (or the repository does not exist and the registry hides it).
    #[error("registry {registry} denied access to {repository}{}; check that the repository (or Harbor project) exists and that the user may {action} it", describe(.errors))]
    Denied {
        /// Registry name.
        registry: String,
        /// The repository.
        repository: String,
        /// pull or push.
        action: &'static str,
        /// Spec errors.
        errors: Vec<SpecError>,
    },
    /// Rate limited beyond what ferry is willing to wait.
    #[error("registry {registry} is rate limiting requests (HTTP 429{}){}; wait and run again (finished work is kept), or log in to get a higher limit", retry_after.map(|s| format!(", retry after {s} s")).unwrap_or_default(), describe(.errors))]
    RateLimited {
        /// Registry name.
        registry: String,
        /// The server's Retry-After, in seconds.
        retry_after: Option<u64>,
        /// Spec errors.
        errors: Vec<SpecError>,
    },
    /// Any other unexpected status.
    #[error("registry {registry} answered {status} to {method} {url}{}", describe(.errors))]
    Status {
        /// Registry name.
        registry: String,
        /// HTTP method.
        method: String,
        /// Redacted URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The registry's `Retry-After`, in seconds (a 503 may carry one).
        retry_after: Option<u64>,
        /// Spec errors.
        errors: Vec<SpecError>,
    },
    /// The token endpoint misbehaved.
    #[error("token service {realm} for registry {registry} failed: {detail}")]
    Token {
        /// Registry name.
        registry: String,
        /// Redacted realm URL.
        realm: String,
        /// What went wrong.
        detail: String,
    },
    /// Content did not match its digest or size.
    #[error(
        "{what} from registry {registry} is corrupt: {source}; the registry (or something between) served wrong bytes — nothing of it was kept"
    )]
    Integrity {
        /// Registry name.
        registry: String,
        /// What was being fetched.
        what: String,
        /// The verification failure.
        source: VerifyError,
    },
    /// The registry's `Docker-Content-Digest` disagrees with the content.
    #[error(
        "registry {registry} says {what} has digest {header} but its bytes hash to {actual}; refusing it"
    )]
    DigestHeader {
        /// Registry name.
        registry: String,
        /// What.
        what: String,
        /// The header value.
        header: String,
        /// The computed digest.
        actual: Digest,
    },
    /// A Docker schema 1 manifest.
    #[error(
        "{what} on registry {registry} is a Docker schema 1 manifest ({media_type}), which has no stable digest and is deprecated; ferry cannot carry it — use a newer tag"
    )]
    Schema1 {
        /// Registry name.
        registry: String,
        /// What.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// Manifest parsing failed.
    #[error("registry {registry}: {source}")]
    Manifest {
        /// Registry name.
        registry: String,
        /// The parse error.
        source: ManifestError,
    },
    /// A size bound was exceeded (manifest too large, body longer than declared).
    #[error("{what} from registry {registry} is larger than {limit} bytes; refusing it")]
    TooLarge {
        /// Registry name.
        registry: String,
        /// What.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// The registry answered something that breaks the protocol.
    #[error("registry {registry} answered {what} with something ferry cannot use: {detail}")]
    Protocol {
        /// Registry name.
        registry: String,
        /// What.
        what: String,
        /// Details.
        detail: String,
    },
    /// A local I/O error while writing what was downloaded.
    #[error("cannot write {what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RegistryError {
    /// True when the object simply does not exist (404 or a `*_UNKNOWN` code).
    pub fn is_not_found(&self) -> bool {
        match self {
            RegistryError::Status { status, errors, .. } => {
                *status == StatusCode::NOT_FOUND || errors.iter().any(|e| e.code.is_unknown())
            }
            _ => false,
        }
    }

    /// True when trying again can help: no answer (reset, timeout, refused), 429, and 500,
    /// 502, 503, 504. What the registry refused for a reason (401, 403, 404, bad content)
    /// stays refused.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. }
            | RegistryError::Connect { .. }
            | RegistryError::Transfer { .. }
            | RegistryError::RateLimited { .. } => true,
            RegistryError::Status { status, .. } => {
                matches!(status.as_u16(), 500 | 502 | 503 | 504)
            }
            _ => false,
        }
    }

    /// How long the registry asked to wait before the next attempt.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            RegistryError::RateLimited { retry_after, .. }
            | RegistryError::Status { retry_after, .. } => {
                retry_after.map(std::time::Duration::from_secs)
            }
            _ => None,
        }
    }

    /// The same error, counting `n` attempts.
    pub fn after_attempts(mut self, n: u32) -> RegistryError {
        match &mut self {
            RegistryError::Unreachable { attempts, .. }
            | RegistryError::Connect { attempts, .. }
            | RegistryError::Transfer { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_error_bodies_keep_unknown_codes_verbatim() {
        let errors = spec_errors(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"QUOTA_EXCEEDED","message":"over"},{"message":"no code"}]}"#,
        );
        let codes: Vec<&ErrorCode> = errors.iter().map(|e| &e.code).collect();
        assert_eq!(
            codes,
            [
                &ErrorCode::ManifestUnknown,
                &ErrorCode::Other("QUOTA_EXCEEDED".into()),
                &ErrorCode::Other(String::new())
            ]
        );
        assert_eq!(
            describe(&errors),
            ": MANIFEST_UNKNOWN (manifest unknown); QUOTA_EXCEEDED (over);  (no code)"
        );
        assert!(spec_errors(b"<html>").is_empty());
        assert!(spec_errors(br#"{"errors":[{"code":7}]}"#).is_empty());
    }

    #[test]
    fn not_found_by_status_or_by_an_unknown_code() {
        let status = |status: StatusCode, code: &str| RegistryError::Status {
            registry: "r".into(),
            method: "GET".into(),
            url: "https://r/v2/".into(),
            status,
            retry_after: None,
            errors: vec![SpecError {
                code: ErrorCode::from(code),
                message: String::new(),
            }],
        };
        assert!(status(StatusCode::NOT_FOUND, "").is_not_found());
        assert!(status(StatusCode::BAD_REQUEST, "BLOB_UNKNOWN").is_not_found());
        assert!(status(StatusCode::BAD_REQUEST, "NAME_UNKNOWN").is_not_found());
        assert!(!status(StatusCode::BAD_REQUEST, "DENIED").is_not_found());
        assert!(!status(StatusCode::BAD_REQUEST, "NOT_FOUND").is_not_found());
    }
}
