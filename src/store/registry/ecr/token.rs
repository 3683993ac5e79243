//! The one ECR API call, GetAuthorizationToken: a SigV4-signed `POST` of `{}` with the AWS JSON
//! 1.1 headers, its answer read up to a size limit, and the `authorizationToken` decoded into
//! the Docker login [`EcrToken`]. No message holds a key or a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::error::{clean_message, parse_error};
use super::host::{default_endpoint, is_label};
use super::sigv4::sign;
use super::{AwsKeys, CONTENT_TYPE, DEFAULT_TIMEOUT, EcrError, TARGET};
use crate::error::flatten;
use crate::secret::Secret;
use crate::store::registry::error::redact;

/// The SigV4 service name.
const SERVICE: &str = "ecr";
/// Larger answers are not a token.
const ANSWER_LIMIT: usize = 1 << 20;

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
    let shown = redact(&endpoint);
    let body: &[u8] = b"{}";
    let fixed = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
    let signed = sign(
        "POST",
        endpoint.as_str(),
        &fixed,
        body,
        (region, SERVICE),
        keys,
        SystemTime::now(),
    )
    .map_err(|e| EcrError::Signing {
        region: region.to_string(),
        detail: e.to_string(),
    })?;
    let mut request = http
        .post(endpoint.clone())
        .timeout(DEFAULT_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header("x-amz-target", TARGET)
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    for (name, value, sensitive) in signed {
        let mut v = HeaderValue::from_str(&value).map_err(|_| EcrError::Signing {
            region: region.to_string(),
            detail: format!("the signer produced an invalid {name} header"),
        })?;
        v.set_sensitive(sensitive || name.eq_ignore_ascii_case("authorization"));
        request = request.header(HeaderName::from_static(name), v);
    }
    let unreachable = |e: reqwest::Error| EcrError::Unreachable {
        region: region.to_string(),
        endpoint: shown.clone(),
        detail: flatten(&e),
    };
    let mut response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if answer.len() + chunk.len() > ANSWER_LIMIT {
            return Err(EcrError::Malformed {
                region: region.to_string(),
                endpoint: shown,
                detail: format!("the answer is larger than {ANSWER_LIMIT} bytes"),
            });
        }
        answer.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let (code, message) = parse_error(status.as_u16(), error_type.as_deref(), &answer);
        return Err(EcrError::Rejected {
            region: region.to_string(),
            endpoint: shown,
            status: status.as_u16(),
            code: keys.scrub(&code),
            message: clean_message(&message, keys),
        });
    }
    parse_answer(&answer).map_err(|e| EcrError::Malformed {
        region: region.to_string(),
        endpoint: shown,
        detail: e.to_string(),
    })
}
