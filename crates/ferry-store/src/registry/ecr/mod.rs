//! AWS ECR logins without the AWS SDK (the SDK would bring dozens of crates for one call): one SigV4-signed
//! `GetAuthorizationToken` call turns AWS keys into the Basic `AWS:<token>` login an ECR
//! registry accepts for 12 hours. This covers RKE's `ecr_credential_plugin` (static keys plus
//! an optional session token) and `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in the
//! environment; instance roles, IRSA and SSO go through `docker-credential-ecr-login` in
//! config.json instead.
//!
//! - [`parse_ecr_host`] recognises registry hosts the way RKE does (`util/ecr.go`).
//! - [`get_authorization_token`] makes the login call.
//! - [`EcrCredentialSource`] plugs it into the credential chain: it wraps another
//!   [`CredentialSource`] and answers for ECR hosts that source has no login for, renewing
//!   the login before it expires and once when the registry refuses it.
//! - [`ensure_repositories`] creates the repositories an import pushes to (`CreateRepository`,
//!   the same signed call), since ECR refuses pushes into a repository that does not exist.
//!
//! Keys, session tokens and login tokens live in [`Secret`]s; no message or log line of this
//! module contains one (AWS error texts are scrubbed of the keys before they are shown, and the
//! signer traces nothing).
//!
//! The parts: `host` (registry hosts and API endpoints), `keys` ([`AwsKeys`]), `sigv4`
//! (the SigV4 algorithm, by hand on ring's HMAC), `api` (one signed call of the JSON API), `token` (the login call and its
//! answer), `repos` (creating repositories), `error` ([`EcrError`] and what AWS's error codes
//! mean), `source` ([`EcrCredentialSource`]).
//!
//! [`CredentialSource`]: super::CredentialSource
//! [`Secret`]: ferry_base::secret::Secret

#![cfg(feature = "ecr")]

mod api;
mod error;
mod host;
mod keys;
mod repos;
mod sigv4;
mod source;
#[cfg(test)]
mod tests;
mod token;

use std::time::Duration;

pub use api::http_client;
pub use error::{EcrError, Operation, explain};
pub use host::{EcrRegistry, default_endpoint, endpoint_from_env, parse_ecr_host};
pub use keys::AwsKeys;
pub use repos::{EnsuredRepositories, create_repository, ensure_repositories, repository_exists};
pub use source::{EcrCredentialSource, keys_for_registry};
pub use token::{EcrToken, decode_token, get_authorization_token};

/// The `X-Amz-Target` of the GetAuthorizationToken call.
pub const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// The content type of the AWS JSON 1.1 protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// How long AWS says a login token lasts; used when an answer carries no `expiresAt`.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Time limit of one ECR API call, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
