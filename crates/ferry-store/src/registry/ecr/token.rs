//! The login call, GetAuthorizationToken: a SigV4-signed `POST` of `{}` (through
//! [`call`](super::api::call)), and the `authorizationToken` of its answer decoded into the
//! Docker login [`EcrToken`]. No message holds a key or a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use super::api::call;
use super::host::{default_endpoint, is_label};
use super::{AwsKeys, EcrError, Operation};
use crate::registry::error::redact;
use ferry_base::secret::Secret;

/// The Docker login of an ECR registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrToken {
    /// Always `AWS` in practice.
    pub username: String,
    /// The login token.
    pub password: Secret,
    /// When AWS says the token stops working.
    pub expires_at: Option<SystemTime>,
}

/// Decodes an `authorizationToken`: base64 of `user:password`, split at the first `:`. The
/// error never contains the token.
pub fn decode_token(token: &Secret) -> Result<(String, Secret), &'static str> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.expose().trim())
        .map_err(|_| "authorizationToken is not base64")?;
    let text = String::from_utf8(raw).map_err(|_| "authorizationToken is not UTF-8 text")?;
    let (user, password) = text
        .split_once(':')
        .ok_or("authorizationToken is not of the form user:password")?;
    if user.is_empty() || password.is_empty() {
        return Err("authorizationToken has an empty user or password");
    }
    Ok((user.to_string(), Secret::new(password)))
}

/// What is wrong with a GetAuthorizationToken answer (never quoting it: it holds a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Malformed {
    /// Not the JSON shape.
    #[error("not the expected JSON {{\"authorizationData\":[…]}} (line {line}, column {column})")]
    NotJson {
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
    },
    /// Something is missing or not what it must be.
    #[error("{0}")]
    Field(&'static str),
}

/// Parses a GetAuthorizationToken answer. Serde's messages are not used: they can quote values.
pub(super) fn parse_answer(body: &[u8]) -> Result<EcrToken, Malformed> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "authorizationData", default)]
        data: Vec<AuthorizationData>,
    }
    #[derive(Deserialize)]
    struct AuthorizationData {
        #[serde(rename = "authorizationToken", default)]
        token: Secret,
        #[serde(rename = "expiresAt", default)]
        expires_at: Option<serde_json::Value>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| Malformed::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let data = answer
        .data
        .into_iter()
        .next()
        .ok_or(Malformed::Field("authorizationData is empty"))?;
    if data.token.is_empty() {
        return Err(Malformed::Field(
            "authorizationData has no authorizationToken",
        ));
    }
    let (username, password) = decode_token(&data.token).map_err(Malformed::Field)?;
    let seconds = match &data.expires_at {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    if data.expires_at.as_ref().is_some_and(|v| !v.is_null()) && seconds.is_none() {
        return Err(Malformed::Field(
            "expiresAt is not a number of seconds since the epoch",
        ));
    }
    let expires_at = seconds
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e11)
        .map(|s| UNIX_EPOCH + Duration::from_secs_f64(s));
    Ok(EcrToken {
        username,
        password,
        expires_at,
    })
}

/// Calls ECR `GetAuthorizationToken` once: a SigV4-signed `POST` of `{}` to `endpoint`
/// (default [`default_endpoint`] of `region`; pass [`endpoint_from_env`] or
/// [`EcrRegistry::api_endpoint`] to override). The call is limited to [`DEFAULT_TIMEOUT`].
///
/// [`endpoint_from_env`]: super::endpoint_from_env
/// [`EcrRegistry::api_endpoint`]: super::EcrRegistry::api_endpoint
/// [`DEFAULT_TIMEOUT`]: super::DEFAULT_TIMEOUT
pub async fn get_authorization_token(
    http: &reqwest::Client,
    region: &str,
    keys: &AwsKeys,
    endpoint: Option<&Url>,
) -> Result<EcrToken, EcrError> {
    let endpoint = match endpoint {
        Some(u) => u.clone(),
        None => default_endpoint(region).ok_or_else(|| EcrError::Region {
            region: region.to_string(),
        })?,
    };
    if !is_label(region) {
        return Err(EcrError::Region {
            region: region.to_string(),
        });
    }
    let operation = Operation::GetAuthorizationToken;
    let answer = call(http, (region, &endpoint), keys, operation, b"{}").await?;
    parse_answer(&answer).map_err(|e| EcrError::Malformed {
        operation,
        region: region.to_string(),
        endpoint: redact(&endpoint),
        detail: e.to_string(),
    })
}
