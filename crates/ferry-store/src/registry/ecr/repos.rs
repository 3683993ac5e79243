//! Making sure the repositories a push needs exist: a push into a missing ECR repository fails
//! (unless the account has repository creation templates), so [`ensure_repositories`] calls
//! `CreateRepository` for each one, once. `RepositoryAlreadyExistsException` is success. When
//! the keys may not create repositories (the common `AmazonEC2ContainerRegistryPowerUser`
//! policy cannot), `DescribeRepositories` tells whether the repository is there anyway, so
//! such users are not stopped when their repositories were made beforehand.
//!
//! Transient failures (no answer, throttling, AWS server errors) are tried again a few times.
//! Every message names the repository, the registry and the region; none holds a key.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::Deserialize;
use url::Url;

use super::api::call;
use super::error::is_access_denied;
use super::{AwsKeys, EcrError, EcrRegistry, Operation};

/// Repositories handled at once.
const CONCURRENCY: usize = 4;
/// Tries of one call that fails transiently.
const ATTEMPTS: u32 = 3;
/// The first wait before trying again (doubled each time).
const BACKOFF: Duration = Duration::from_millis(500);

/// What [`ensure_repositories`] found and did, each list sorted.
#[derive(Debug, Default)]
pub struct EnsuredRepositories {
    /// Repositories that did not exist and were created.
    pub created: Vec<String>,
    /// Repositories that existed already.
    pub existing: Vec<String>,
    /// Repositories that may be missing, and why ([`EcrError::RepositoryMissing`] or
    /// [`EcrError::Repository`]).
    pub failed: Vec<(String, EcrError)>,
}

/// How one repository turned out.
enum Outcome {
    Created,
    Existing,
}

/// Makes sure every repository in `repositories` (names inside the registry, such as
/// `rancher/rke-tools`; duplicates are handled once) exists in the ECR `registry`, creating
/// the missing ones with `keys`. `endpoint` overrides the registry's ECR API endpoint
/// ([`EcrRegistry::api_endpoint`]), e.g. with [`endpoint_from_env`](super::endpoint_from_env).
pub async fn ensure_repositories(
    http: &reqwest::Client,
    registry: &EcrRegistry,
    keys: &AwsKeys,
    endpoint: Option<&Url>,
    repositories: &[String],
) -> EnsuredRepositories {
    let unique: BTreeSet<&str> = repositories.iter().map(String::as_str).collect();
    let mut report = EnsuredRepositories::default();
    let Some(endpoint) = endpoint.cloned().or_else(|| registry.api_endpoint()) else {
        for repository in unique {
            let cause = EcrError::Region {
                region: registry.region.clone(),
            };
            report
                .failed
                .push((repository.to_string(), wrap(registry, repository, cause)));
        }
        return report;
    };
    let outcomes: Vec<(String, Result<Outcome, EcrError>)> = futures_util::stream::iter(unique)
        .map(|repository| {
            let endpoint = &endpoint;
            async move {
                let outcome = ensure_one(http, registry, keys, endpoint, repository).await;
                (repository.to_string(), outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (repository, outcome) in outcomes {
        match outcome {
            Ok(Outcome::Created) => report.created.push(repository),
            Ok(Outcome::Existing) => report.existing.push(repository),
            Err(e) => report.failed.push((repository, e)),
        }
    }
    report.created.sort();
    report.existing.sort();
    report.failed.sort_by(|a, b| a.0.cmp(&b.0));
    report
}

/// Creates `repository` unless it exists; when creating is not allowed, asks whether it exists.
async fn ensure_one(
    http: &reqwest::Client,
    registry: &EcrRegistry,
    keys: &AwsKeys,
    endpoint: &Url,
    repository: &str,
) -> Result<Outcome, EcrError> {
    let denied = match create_repository(http, registry, keys, endpoint, repository).await {
        Ok(true) => {
            tracing::debug!(
                "registry {}: created ECR repository {repository}",
                registry.host()
            );
            return Ok(Outcome::Created);
        }
        Ok(false) => return Ok(Outcome::Existing),
        Err(e) if e.code().is_some_and(is_access_denied) => e,
        Err(e) => return Err(wrap(registry, repository, e)),
    };
    match repository_exists(http, registry, keys, endpoint, repository).await {
        Ok(true) => {
            tracing::debug!(
                "registry {}: ECR repository {repository} exists (these keys may not create repositories, but need not)",
                registry.host()
            );
            Ok(Outcome::Existing)
        }
        Ok(false) => Err(EcrError::RepositoryMissing {
            repository: repository.to_string(),
            registry: registry.host(),
            region: registry.region.clone(),
            cause: Box::new(denied),
        }),
        // Neither call is allowed: whether it exists is unknown, say why creating failed.
        Err(_) => Err(wrap(registry, repository, denied)),
    }
}

fn wrap(registry: &EcrRegistry, repository: &str, cause: EcrError) -> EcrError {
    EcrError::Repository {
        repository: repository.to_string(),
        registry: registry.host(),
        region: registry.region.clone(),
        cause: Box::new(cause),
    }
}

/// Calls `CreateRepository` for `repository` in `registry`'s account. `Ok(true)` when it was
/// created, `Ok(false)` when it existed (`RepositoryAlreadyExistsException`).
pub async fn create_repository(
    http: &reqwest::Client,
    registry: &EcrRegistry,
    keys: &AwsKeys,
    endpoint: &Url,
    repository: &str,
) -> Result<bool, EcrError> {
    let body = serde_json::json!({
        "repositoryName": repository,
        "registryId": registry.account,
    });
    match with_retries(
        http,
        registry,
        keys,
        endpoint,
        Operation::CreateRepository,
        &body,
    )
    .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Calls `DescribeRepositories` for `repository` in `registry`'s account: whether it exists.
pub async fn repository_exists(
    http: &reqwest::Client,
    registry: &EcrRegistry,
    keys: &AwsKeys,
    endpoint: &Url,
    repository: &str,
) -> Result<bool, EcrError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        repositories: Vec<serde_json::Value>,
    }
    let body = serde_json::json!({
        "repositoryNames": [repository],
        "registryId": registry.account,
    });
    let operation = Operation::DescribeRepositories;
    match with_retries(http, registry, keys, endpoint, operation, &body).await {
        Ok(answer) => {
            let answer: Answer =
                serde_json::from_slice(&answer).map_err(|e| EcrError::Malformed {
                    operation,
                    region: registry.region.clone(),
                    endpoint: crate::registry::error::redact(endpoint),
                    detail: format!(
                        "not the expected JSON {{\"repositories\":[…]}} (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                })?;
            Ok(!answer.repositories.is_empty())
        }
        Err(e) if e.code() == Some("RepositoryNotFoundException") => Ok(false),
        Err(e) => Err(e),
    }
}

/// One call, tried again after a failure that may pass (no answer, throttling, 5xx).
async fn with_retries(
    http: &reqwest::Client,
    registry: &EcrRegistry,
    keys: &AwsKeys,
    endpoint: &Url,
    operation: Operation,
    body: &serde_json::Value,
) -> Result<Vec<u8>, EcrError> {
    let body = body.to_string();
    let mut wait = BACKOFF;
    let mut attempt = 1;
    loop {
        let result = call(
            http,
            (&registry.region, endpoint),
            keys,
            operation,
            body.as_bytes(),
        )
        .await;
        match result {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tracing::info!(
                    "ECR {operation} failed ({e}); trying again in {:.1} s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Failures worth another try.
fn is_transient(e: &EcrError) -> bool {
    match e {
        EcrError::Unreachable { .. } => true,
        EcrError::Rejected { status, code, .. } => {
            *status >= 500
                || matches!(
                    code.as_str(),
                    "ThrottlingException" | "Throttling" | "TooManyRequestsException"
                )
        }
        _ => false,
    }
}
