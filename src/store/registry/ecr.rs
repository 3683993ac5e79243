//! AWS ECR logins without the AWS SDK (`PROTOCOL.md` §2, §3.3): one SigV4-signed
//! `GetAuthorizationToken` call turns AWS keys into the Basic `AWS:<token>` login an ECR
//! registry accepts for 12 hours. This covers RKE's `ecr_credential_plugin` (static keys plus
//! an optional session token) and `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in the
//! environment; instance roles, IRSA and SSO go through `docker-credential-ecr-login` in
//! config.json instead.
//!
//! - [`parse_ecr_host`] recognises registry hosts the way RKE does (`util/ecr.go`).
//! - [`get_authorization_token`] makes the one API call.
//! - [`EcrCredentialSource`] plugs it into the credential chain: it wraps another
//!   [`CredentialSource`] and answers for ECR hosts that source has no login for.
//!
//! Keys, session tokens and login tokens live in [`Secret`]s; no message or log line of this
//! module contains one (AWS error texts are scrubbed of the keys before they are shown, and the
//! signer's own trace output is switched off while it signs).

#![cfg(feature = "ecr")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::CredentialSource;
use super::auth::Credentials;
use super::error::redact;
use crate::error::flatten;
use crate::secret::Secret;

/// The `X-Amz-Target` of the call.
pub const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// The content type of the AWS JSON 1.1 protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The SigV4 service name.
const SERVICE: &str = "ecr";
/// How long AWS says a login token lasts; used when an answer carries no `expiresAt`.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A cached token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);
/// Time limit of one GetAuthorizationToken call, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Larger answers are not a token.
const ANSWER_LIMIT: usize = 1 << 20;
/// AWS error messages are cut to this many characters.
const MESSAGE_LIMIT: usize = 300;

/// An ECR registry host, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRegistry {
    /// The account (registry id), e.g. `123456789012`.
    pub account: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// `dkr.ecr-fips.` hosts.
    pub fips: bool,
    /// `amazonaws.com.cn` hosts (the China partition).
    pub china: bool,
}

impl EcrRegistry {
    /// The registry host, `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`.
    pub fn host(&self) -> String {
        format!(
            "{}.dkr.ecr{}.{}.amazonaws.com{}",
            self.account,
            if self.fips { "-fips" } else { "" },
            self.region,
            if self.china { ".cn" } else { "" }
        )
    }

    /// The ECR API endpoint for this registry: `https://api.ecr.<region>.amazonaws.com[.cn]/`,
    /// or `https://ecr-fips.<region>.amazonaws.com/` for a FIPS registry (as
    /// `docker-credential-ecr-login` does).
    pub fn api_endpoint(&self) -> Option<Url> {
        if self.fips && !self.china {
            Url::parse(&format!("https://ecr-fips.{}.amazonaws.com/", self.region)).ok()
        } else {
            default_endpoint(&self.region)
        }
    }
}

/// Recognises an ECR registry: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`, after
/// removing an `https://` (or `http://`) prefix, anything from the first `/` on, and a
/// `:port`. Account and region follow RKE's pattern (`[a-zA-Z0-9][a-zA-Z0-9-_]*`).
///
/// Unlike RKE's unanchored regular expression, the host must END there:
/// `1.dkr.ecr.us-east-1.amazonaws.com.example.org` is not ECR, since an ECR login would be
/// sent to it.
pub fn parse_ecr_host(host: &str) -> Option<EcrRegistry> {
    let host = host.trim();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|p| {
            host.get(..p.len())
                .filter(|s| s.eq_ignore_ascii_case(p))
                .map(|_| &host[p.len()..])
        })
        .unwrap_or(host);
    let authority = rest.split('/').next().unwrap_or(rest);
    let name = match authority.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => authority,
    };
    let name = name.to_ascii_lowercase();
    let (rest, china) = if let Some(r) = name.strip_suffix(".amazonaws.com.cn") {
        (r, true)
    } else if let Some(r) = name.strip_suffix(".amazonaws.com") {
        (r, false)
    } else {
        return None;
    };
    let (account, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("dkr.ecr")?;
    let (fips, region) = if let Some(r) = rest.strip_prefix("-fips.") {
        (true, r)
    } else {
        (false, rest.strip_prefix('.')?)
    };
    if !is_label(account) || !is_label(region) {
        return None;
    }
    Some(EcrRegistry {
        account: account.to_string(),
        region: region.to_string(),
        fips,
        china,
    })
}

/// RKE's `[a-zA-Z0-9][a-zA-Z0-9-_]*`.
fn is_label(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The public ECR API endpoint of `region`: `https://api.ecr.<region>.amazonaws.com/`, with
/// `.com.cn` for the China regions (`cn-*`). `None` for a string that is not a region name.
pub fn default_endpoint(region: &str) -> Option<Url> {
    if !is_label(region) {
        return None;
    }
    let suffix = if region.starts_with("cn-") { ".cn" } else { "" };
    Url::parse(&format!("https://api.ecr.{region}.amazonaws.com{suffix}/")).ok()
}

/// The endpoint override of the AWS SDKs: `AWS_ENDPOINT_URL_ECR`, else `AWS_ENDPOINT_URL`,
/// unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`. A value that is not an http(s) URL is
/// ignored with a warning.
pub fn endpoint_from_env(env: impl Fn(&str) -> Option<String>) -> Option<Url> {
    let get = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    for var in ["AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL"] {
        let Some(value) = get(var) else { continue };
        match Url::parse(&value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                return Some(u);
            }
            _ => {
                tracing::warn!("ignoring {var}: not an http(s) URL");
            }
        }
    }
    None
}

/// AWS access keys. `Debug` shows only the first four characters of the key id (`AKIA` for a
/// long-term key, `ASIA` for a temporary one).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN`, for temporary keys.
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("AwsKeys")
            .field("access_key_id", &format_args!("{prefix}…"))
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .finish()
    }
}

impl AwsKeys {
    /// Keys from their parts; an empty session token counts as none.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: Secret) -> AwsKeys {
        AwsKeys {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
        }
    }

    /// The same keys with a session token (ignored when empty).
    pub fn with_session_token(mut self, token: Secret) -> AwsKeys {
        self.session_token = (!token.is_empty()).then_some(token);
        self
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN`, read
    /// through `env`. `None` unless both keys are set and non-empty.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<AwsKeys> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let id = get("AWS_ACCESS_KEY_ID");
        let secret = get("AWS_SECRET_ACCESS_KEY");
        match (id, secret) {
            (Some(id), Some(secret)) => Some(
                AwsKeys::new(id.trim(), Secret::new(secret.trim()))
                    .with_session_token(Secret::new(get("AWS_SESSION_TOKEN").unwrap_or_default())),
            ),
            (Some(_), None) => {
                tracing::warn!(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; ignoring both"
                );
                None
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; ignoring both"
                );
                None
            }
            (None, None) => None,
        }
    }

    /// The keys of a cluster.yml `ecr_credential_plugin`, by RKE's rule: static keys only when
    /// both `aws_access_key_id` and `aws_secret_access_key` are set (then with the optional
    /// `aws_session_token`); otherwise `None`, and RKE falls back to the AWS default chain.
    pub fn from_plugin(
        access_key_id: Option<&str>,
        secret_access_key: &Secret,
        session_token: &Secret,
    ) -> Option<AwsKeys> {
        let id = access_key_id.map(str::trim).filter(|s| !s.is_empty())?;
        if secret_access_key.expose().trim().is_empty() {
            return None;
        }
        Some(
            AwsKeys::new(id, Secret::new(secret_access_key.expose().trim()))
                .with_session_token(session_token.clone()),
        )
    }

    /// Replaces every occurrence of a key in `text` (an AWS error message) with `<redacted>`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let token = self.session_token.as_ref().map(Secret::expose);
        for k in [
            Some(self.secret_access_key.expose()),
            token,
            Some(self.access_key_id.as_str()),
        ]
        .into_iter()
        .flatten()
        {
            if k.len() >= 4 {
                out = out.replace(k, "<redacted>");
            }
        }
        out
    }
}

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

/// Why GetAuthorizationToken failed. Messages name the region and endpoint, never a key.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// The region is not a region name.
    #[error("{region:?} is not an AWS region name")]
    Region {
        /// What was given.
        region: String,
    },
    /// The keys could not be used to sign.
    #[error("cannot sign the ECR GetAuthorizationToken request for region {region}: {detail}")]
    Signing {
        /// The region.
        region: String,
        /// What went wrong.
        detail: String,
    },
    /// No HTTP answer.
    #[error(
        "cannot reach the ECR API for region {region} at {endpoint}: {detail}; check the network, proxy settings (HTTPS_PROXY, NO_PROXY) or AWS_ENDPOINT_URL_ECR"
    )]
    Unreachable {
        /// The region.
        region: String,
        /// The endpoint, redacted.
        endpoint: String,
        /// The transport error.
        detail: String,
    },
    /// AWS answered with an error.
    #[error(
        "the ECR API for region {region} at {endpoint} refused GetAuthorizationToken: {} (HTTP {status}, {code}: {message})",
        explain(code, *status)
    )]
    Rejected {
        /// The region.
        region: String,
        /// The endpoint, redacted.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// AWS's error code (`__type`), e.g. `UnrecognizedClientException`.
        code: String,
        /// AWS's message, scrubbed of the keys and shortened.
        message: String,
    },
    /// A success status with a body that is not a token.
    #[error(
        "the ECR API for region {region} at {endpoint} gave a malformed GetAuthorizationToken answer: {detail}"
    )]
    Malformed {
        /// The region.
        region: String,
        /// The endpoint, redacted.
        endpoint: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl EcrError {
    /// AWS's error code, for a rejected call.
    pub fn code(&self) -> Option<&str> {
        match self {
            EcrError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What an AWS error code means for the user.
pub fn explain(code: &str, status: u16) -> &'static str {
    match code {
        "UnrecognizedClientException" | "InvalidClientTokenId" | "AuthFailure" => {
            "the AWS access key was rejected (unknown or deactivated access key id, or an invalid session token)"
        }
        "InvalidSignatureException" | "SignatureDoesNotMatch" => {
            "the AWS secret access key does not match the access key id"
        }
        "ExpiredTokenException" | "ExpiredToken" => {
            "the AWS session token has expired; get new temporary keys"
        }
        "RequestExpired" | "RequestTimeTooSkewed" => {
            "the request time is too far from AWS's clock; check this machine's clock"
        }
        "AccessDeniedException" | "AccessDenied" => {
            "the AWS identity of these keys is not allowed ecr:GetAuthorizationToken; grant it in IAM"
        }
        "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException" => "AWS could not read the request signature",
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" => {
            "AWS is throttling requests; try again later"
        }
        _ if status >= 500 => "AWS had a server error; try again later",
        _ => "AWS refused the request",
    }
}

/// Extracts AWS's error code and message from an error answer: the JSON protocol's
/// `{"__type": "...#Code", "message": "..."}`, else the `x-amzn-ErrorType` header, else the
/// query protocol's XML `<Code>`/`<Message>` (what some emulators send).
fn parse_error(status: u16, error_type: Option<&str>, body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct JsonError {
        #[serde(rename = "__type", alias = "code", alias = "Code", default)]
        kind: Option<String>,
        #[serde(alias = "Message", default)]
        message: Option<String>,
    }
    let text = String::from_utf8_lossy(body);
    let xml = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    let json = serde_json::from_slice::<JsonError>(body).ok();
    let header_code = error_type
        .map(|h| h.split(':').next().unwrap_or(h).trim().to_string())
        .filter(|s| !s.is_empty());
    let code = json
        .as_ref()
        .and_then(|j| j.kind.clone())
        .map(|k| k.rsplit('#').next().unwrap_or(&k).to_string())
        .filter(|s| !s.is_empty())
        .or(header_code)
        .or_else(|| xml("Code"))
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = json
        .and_then(|j| j.message)
        .or_else(|| xml("Message"))
        .unwrap_or_default();
    (code, message)
}

/// One line of at most [`MESSAGE_LIMIT`] characters, without the keys.
fn clean_message(message: &str, keys: &AwsKeys) -> String {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let scrubbed = keys.scrub(&one_line);
    if scrubbed.chars().count() > MESSAGE_LIMIT {
        let cut: String = scrubbed.chars().take(MESSAGE_LIMIT).collect();
        format!("{cut}…")
    } else if scrubbed.is_empty() {
        "no message".to_string()
    } else {
        scrubbed
    }
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

/// Parses a GetAuthorizationToken answer. Serde's messages are not used: they can quote values.
fn parse_answer(body: &[u8]) -> Result<EcrToken, String> {
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
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not the expected JSON {{\"authorizationData\":[…]}} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let data = answer
        .data
        .into_iter()
        .next()
        .ok_or("authorizationData is empty")?;
    if data.token.is_empty() {
        return Err("authorizationData has no authorizationToken".into());
    }
    let (username, password) = decode_token(&data.token)?;
    let seconds = match &data.expires_at {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    if data.expires_at.as_ref().is_some_and(|v| !v.is_null()) && seconds.is_none() {
        return Err("expiresAt is not a number of seconds since the epoch".into());
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

/// SigV4-signs a request and returns the headers to add (`authorization`, `x-amz-date`,
/// `x-amz-security-token`), with a flag for the sensitive ones. `headers` are signed too.
///
/// The signer traces the canonical request (which holds the session token) at TRACE level, so
/// it runs with tracing switched off for this thread.
fn sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    (region, service): (&str, &str),
    keys: &AwsKeys,
    time: SystemTime,
) -> Result<Vec<(&'static str, String, bool)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        let credentials = aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose().to_string(),
            keys.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "ferry",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| flatten(&e))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| flatten(&e))?;
        let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
            .map_err(|e| flatten(&e))?
            .into_parts();
        let (added, _params) = instructions.into_parts();
        Ok(added
            .iter()
            .map(|h| (h.name(), h.value().to_string(), h.sensitive()))
            .collect())
    })
}

/// Calls ECR `GetAuthorizationToken` once: a SigV4-signed `POST` of `{}` to `endpoint`
/// (default [`default_endpoint`] of `region`; pass [`endpoint_from_env`] or
/// [`EcrRegistry::api_endpoint`] to override). The call is limited to [`DEFAULT_TIMEOUT`].
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
    .map_err(|detail| EcrError::Signing {
        region: region.to_string(),
        detail,
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
    parse_answer(&answer).map_err(|detail| EcrError::Malformed {
        region: region.to_string(),
        endpoint: shown,
        detail,
    })
}

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
/// before it expires) and answers `Basic AWS:<token>`. Every other name goes to the wrapped
/// source unchanged. When the call fails it logs a warning naming the registry, the region
/// and AWS's error, and answers anonymous, so the push then fails with an authentication
/// error naming the registry.
///
/// [`CredentialSource::credentials`] is synchronous and runs inside ferry's tokio runtime.
/// The call therefore runs on a dedicated std thread with its own current-thread runtime and
/// its own HTTP client, and the caller waits for that thread (at most [`DEFAULT_TIMEOUT`]
/// plus connection setup). Nothing that thread needs runs on the caller's runtime, so it
/// cannot deadlock, whatever the caller's runtime is doing: all workers blocked, a
/// current-thread runtime (where `block_in_place` would panic), or no runtime at all. The
/// price is one blocked worker for the length of one call per registry and run, the same as
/// a `docker-credential-*` helper in the chain it wraps.
pub struct EcrCredentialSource {
    inner: Arc<dyn CredentialSource>,
    /// (lower-case `host[:port]` of the entry's url, keys), in cluster.yml order.
    cluster: Vec<(String, AwsKeys)>,
    env_keys: Option<AwsKeys>,
    endpoint: Option<Url>,
    root_certificates: Vec<reqwest::Certificate>,
    cache: Mutex<HashMap<String, Arc<Mutex<Option<Cached>>>>>,
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
        }
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
        let matching: Vec<&AwsKeys> = self
            .cluster
            .iter()
            .filter(|(h, _)| h == host)
            .map(|(_, k)| k)
            .collect();
        if let Some(first) = matching.first() {
            if matching.iter().any(|k| k != first) {
                tracing::warn!(
                    "registry {host}: several cluster.yml ecr_credential_plugin entries with different keys; using the first"
                );
            }
            return Some(((*first).clone(), KeyOrigin::ClusterYml));
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
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(CONNECT_TIMEOUT);
            if !certificates.is_empty() {
                builder = builder.tls_certs_merge(certificates);
            }
            let http = builder.build().map_err(|e| EcrError::Unreachable {
                region: region.clone(),
                endpoint: built,
                detail: flatten(&e),
            })?;
            get_authorization_token(&http, &region, &keys, Some(&endpoint)).await
        })
        .unwrap_or_else(|detail| {
            Err(EcrError::Unreachable {
                region: ecr.region.clone(),
                endpoint: shown,
                detail,
            })
        })
    }
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

/// Runs the future made by `make` on a new std thread with its own current-thread runtime and
/// waits for it. `Err` when the thread or its runtime could not be started or it panicked.
fn run_detached<T, F, Fut>(make: F) -> Result<T, String>
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
                .map_err(|e| format!("cannot start a runtime for the ECR call: {e}"))?;
            Ok(runtime.block_on(make()))
        })
        .map_err(|e| format!("cannot start a thread for the ECR call: {e}"))?;
    handle
        .join()
        .map_err(|_| "the ECR call crashed".to_string())?
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
        match &*slot {
            Some(Cached::Failed) => return Credentials::Anonymous,
            Some(Cached::Token {
                credentials,
                renew_at,
            }) if SystemTime::now() < *renew_at => return credentials.clone(),
            _ => {}
        }
        let started = SystemTime::now();
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::store::registry::Anonymous;

    const ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys() -> AwsKeys {
        AwsKeys::new(ID, Secret::new(SECRET))
    }

    fn at(epoch: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(epoch)
    }

    fn header<'a>(added: &'a [(&'static str, String, bool)], name: &str) -> Option<&'a str> {
        added
            .iter()
            .find(|(n, ..)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, _)| v.as_str())
    }

    // ---- host parsing -------------------------------------------------------------------

    #[test]
    fn parses_ecr_hosts() {
        let r = parse_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            r,
            EcrRegistry {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                fips: false,
                china: false
            }
        );
        assert_eq!(r.host(), "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(
            r.api_endpoint().unwrap().as_str(),
            "https://api.ecr.us-east-1.amazonaws.com/"
        );

        let r = parse_ecr_host("https://123456789012.dkr.ecr.us-west-2.amazonaws.com/rancher/x")
            .unwrap();
        assert_eq!(
            (r.region.as_str(), r.fips, r.china),
            ("us-west-2", false, false)
        );

        let r = parse_ecr_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").unwrap();
        assert!(r.fips && !r.china);
        assert_eq!(r.region, "us-gov-west-1");
        assert_eq!(
            r.host(),
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            r.api_endpoint().unwrap().as_str(),
            "https://ecr-fips.us-gov-west-1.amazonaws.com/"
        );

        let r = parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").unwrap();
        assert!(r.china && !r.fips);
        assert_eq!(r.host(), "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn");
        assert_eq!(
            r.api_endpoint().unwrap().as_str(),
            "https://api.ecr.cn-north-1.amazonaws.com.cn/"
        );

        let r = parse_ecr_host("HTTPS://123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM:443").unwrap();
        assert_eq!(
            (r.account.as_str(), r.region.as_str()),
            ("123456789012", "eu-west-1")
        );

        // RKE's character class, not AWS's 12 digits.
        let r = parse_ecr_host("my_acct-1.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        assert_eq!(r.account, "my_acct-1");
    }

    #[test]
    fn rejects_other_hosts() {
        for host in [
            "",
            "https://",
            "docker.io",
            "registry.example.com:5000",
            "public.ecr.aws",
            "123.ecr.us-east-1.amazonaws.com",
            "123.dkr.ecr.amazonaws.com",
            "123.dkr.ecr..amazonaws.com",
            ".dkr.ecr.us-east-1.amazonaws.com",
            "-123.dkr.ecr.us-east-1.amazonaws.com",
            "123.dkr.ecr.-us-east-1.amazonaws.com",
            "123.dkr.ecr.us.east.amazonaws.com",
            "123.dkr.ecr-fips.amazonaws.com",
            "123.dkr.ecrx.us-east-1.amazonaws.com",
            "123.dkr.ecr.us-east-1.amazonaws.cn",
            "123.dkr.ecr.us-east-1.amazonaws.com.evil.example.org",
            "123.dkr.ecr.us-east-1.amazonaws.com:",
            "123.dkr.ecr.us-east-1.amazonaws.com:https",
            "a.b.dkr.ecr.us-east-1.amazonaws.com",
        ] {
            assert_eq!(parse_ecr_host(host), None, "{host:?}");
        }
    }

    #[test]
    fn default_endpoints() {
        assert_eq!(
            default_endpoint("eu-central-1").unwrap().as_str(),
            "https://api.ecr.eu-central-1.amazonaws.com/"
        );
        assert_eq!(
            default_endpoint("cn-northwest-1").unwrap().as_str(),
            "https://api.ecr.cn-northwest-1.amazonaws.com.cn/"
        );
        assert_eq!(default_endpoint("us east"), None);
        assert_eq!(default_endpoint("evil.com/x"), None);
        assert_eq!(default_endpoint(""), None);
    }

    #[test]
    fn endpoint_override_from_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(endpoint_from_env(env(&[])), None);
        assert_eq!(
            endpoint_from_env(env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint_from_env(env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("AWS_ENDPOINT_URL_ECR", "https://ecr.internal:8443/")
            ]))
            .unwrap()
            .as_str(),
            "https://ecr.internal:8443/"
        );
        assert_eq!(
            endpoint_from_env(env(&[
                ("AWS_ENDPOINT_URL_ECR", "not a url"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
            ]))
            .unwrap()
            .as_str(),
            "http://127.0.0.1:5000/"
        );
        assert_eq!(
            endpoint_from_env(env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
            ])),
            None
        );
        assert_eq!(
            endpoint_from_env(env(&[("AWS_ENDPOINT_URL", "ftp://x/")])),
            None
        );
    }

    // ---- keys ---------------------------------------------------------------------------

    #[test]
    fn keys_from_env_and_plugin() {
        let env = |pairs: Vec<(&'static str, &'static str)>| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(AwsKeys::from_env(env(vec![])), None);
        assert_eq!(
            AwsKeys::from_env(env(vec![("AWS_ACCESS_KEY_ID", ID)])),
            None
        );
        assert_eq!(
            AwsKeys::from_env(env(vec![("AWS_SECRET_ACCESS_KEY", SECRET)])),
            None
        );
        assert_eq!(
            AwsKeys::from_env(env(vec![
                ("AWS_ACCESS_KEY_ID", ID),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_SESSION_TOKEN", "")
            ])),
            Some(keys())
        );
        let k = AwsKeys::from_env(env(vec![
            ("AWS_ACCESS_KEY_ID", ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", "tok3n-value"),
        ]))
        .unwrap();
        assert_eq!(k.session_token, Some(Secret::new("tok3n-value")));

        let empty = Secret::default();
        assert_eq!(
            AwsKeys::from_plugin(Some(ID), &Secret::new(SECRET), &empty),
            Some(keys())
        );
        assert_eq!(
            AwsKeys::from_plugin(None, &Secret::new(SECRET), &empty),
            None
        );
        assert_eq!(
            AwsKeys::from_plugin(Some(""), &Secret::new(SECRET), &empty),
            None
        );
        assert_eq!(AwsKeys::from_plugin(Some(ID), &empty, &empty), None);
        assert_eq!(
            AwsKeys::from_plugin(Some(ID), &Secret::new(SECRET), &Secret::new("t0ken"))
                .unwrap()
                .session_token,
            Some(Secret::new("t0ken"))
        );
    }

    #[test]
    fn keys_never_print() {
        let k = keys().with_session_token(Secret::new("sess-token-value"));
        let shown = format!("{k:?}");
        assert!(shown.contains("AKID…"), "{shown}");
        for secret in [ID, SECRET, "sess-token-value"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    // ---- answers ------------------------------------------------------------------------

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn decodes_tokens() {
        let (user, password) = decode_token(&Secret::new(b64("AWS:pass:with:colons"))).unwrap();
        assert_eq!(user, "AWS");
        assert_eq!(password.expose(), "pass:with:colons");
        for (bad, why) in [
            ("!!!not base64!!!".to_string(), "base64"),
            (b64("no-colon-here"), "user:password"),
            (b64("AWS:"), "empty"),
            (b64(":pw"), "empty"),
            (
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']),
                "UTF-8",
            ),
        ] {
            let e = decode_token(&Secret::new(bad.clone())).unwrap_err();
            assert!(e.contains(why), "{e}");
            assert!(!e.contains(&bad));
        }
    }

    #[test]
    fn parses_answers() {
        let body = format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":1.7e9,"proxyEndpoint":"https://1.dkr.ecr.us-east-1.amazonaws.com"}}]}}"#,
            b64("AWS:secret-pw")
        );
        let t = parse_answer(body.as_bytes()).unwrap();
        assert_eq!(t.username, "AWS");
        assert_eq!(t.password.expose(), "secret-pw");
        assert_eq!(t.expires_at, Some(at(1_700_000_000)));

        let body = format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}"}}]}}"#,
            b64("AWS:pw")
        );
        assert_eq!(parse_answer(body.as_bytes()).unwrap().expires_at, None);

        for (bad, why) in [
            (r#"{"authorizationData":[]}"#.to_string(), "empty"),
            ("{}".to_string(), "empty"),
            ("<html>".to_string(), "JSON"),
            (
                r#"{"authorizationData":[{"expiresAt":1}]}"#.to_string(),
                "no authorizationToken",
            ),
            (
                r#"{"authorizationData":[{"authorizationToken":"c2VjcmV0LXRva2Vu"}]}"#.to_string(),
                "user:password",
            ),
            (
                format!(
                    r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":"soon"}}]}}"#,
                    b64("AWS:pw")
                ),
                "expiresAt",
            ),
            (
                r#"{"authorizationData":[{"authorizationToken":42}]}"#.to_string(),
                "JSON",
            ),
        ] {
            let e = parse_answer(bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("c2VjcmV0LXRva2Vu") && !e.contains("secret-token"));
        }
    }

    // ---- errors -------------------------------------------------------------------------

    #[test]
    fn maps_aws_errors() {
        let (code, message) = parse_error(
            400,
            None,
            br#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#,
        );
        assert_eq!(code, "UnrecognizedClientException");
        assert_eq!(
            message,
            "The security token included in the request is invalid."
        );
        assert!(explain(&code, 400).contains("the AWS access key was rejected"));

        let (code, _) = parse_error(
            400,
            None,
            br#"{"__type":"com.amazonaws.ecr#AccessDeniedException","Message":"no"}"#,
        );
        assert_eq!(code, "AccessDeniedException");
        assert!(explain(&code, 400).contains("ecr:GetAuthorizationToken"));

        let (code, message) = parse_error(
            403,
            Some(
                "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            ),
            b"",
        );
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("InvalidSignatureException", "")
        );
        assert!(explain(&code, 403).contains("secret access key does not match"));

        let (code, message) = parse_error(
            403,
            None,
            b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>",
        );
        assert_eq!(code, "SignatureDoesNotMatch");
        assert!(message.starts_with("The request signature"));

        let (code, _) = parse_error(503, None, b"busy");
        assert_eq!(code, "HTTP503");
        assert!(explain(&code, 503).contains("server error"));
        assert!(explain("ExpiredTokenException", 400).contains("session token has expired"));
        assert!(explain("ThrottlingException", 400).contains("throttling"));
        assert_eq!(explain("Whatever", 400), "AWS refused the request");
    }

    #[test]
    fn error_messages_hold_no_keys() {
        let k = keys().with_session_token(Secret::new("SESSIONTOKEN123"));
        let message = clean_message(
            &format!("key {ID} secret {SECRET} token SESSIONTOKEN123\n and   more"),
            &k,
        );
        assert_eq!(
            message,
            "key <redacted> secret <redacted> token <redacted> and more"
        );
        let long = clean_message(&"x".repeat(1000), &k);
        assert_eq!(long.chars().count(), MESSAGE_LIMIT + 1);
        assert_eq!(clean_message("", &k), "no message");

        let e = EcrError::Rejected {
            region: "us-east-1".into(),
            endpoint: "https://api.ecr.us-east-1.amazonaws.com/".into(),
            status: 400,
            code: "UnrecognizedClientException".into(),
            message: "The security token included in the request is invalid.".into(),
        };
        let text = e.to_string();
        assert!(text.contains("us-east-1"), "{text}");
        assert!(
            text.contains("https://api.ecr.us-east-1.amazonaws.com/"),
            "{text}"
        );
        assert!(text.contains("the AWS access key was rejected"), "{text}");
        assert!(text.contains("UnrecognizedClientException"), "{text}");
        assert_eq!(e.code(), Some("UnrecognizedClientException"));
    }

    // ---- signing ------------------------------------------------------------------------

    /// AWS's published SigV4 example (IAM ListUsers, "Create a signature for AWS Signature
    /// Version 4"), also reproduced with botocore.
    #[test]
    fn signer_matches_the_aws_documentation_example() {
        let added = sign(
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            b"",
            ("us-east-1", "iam"),
            &keys(),
            at(1_440_938_160), // 2015-08-30T12:36:00Z
        )
        .unwrap();
        assert_eq!(header(&added, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&added, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            )
        );
    }

    /// The ECR request, signed by botocore (`SigV4Auth`) for the same inputs.
    #[test]
    fn signer_matches_botocore_for_the_ecr_request() {
        let fixed = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let time = at(1_704_164_645); // 2024-01-02T03:04:05Z
        let url = "https://api.ecr.us-west-2.amazonaws.com/";
        let added = sign(
            "POST",
            url,
            &fixed,
            b"{}",
            ("us-west-2", "ecr"),
            &keys(),
            time,
        )
        .unwrap();
        assert_eq!(
            header(&added, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-west-2/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=b25bfdfb6d2ebf03e86d3c3e85c5304fb49107603ee87ddd08e21230f538a79b"
            )
        );
        assert_eq!(header(&added, "x-amz-security-token"), None);

        let with_token = keys().with_session_token(Secret::new("FwoGZXIvYXdzEXAMPLESESSIONTOKEN"));
        let added = sign(
            "POST",
            url,
            &fixed,
            b"{}",
            ("us-west-2", "ecr"),
            &with_token,
            time,
        )
        .unwrap();
        assert_eq!(
            header(&added, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-west-2/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=47330429174319c0303c0942a013358d44e33a8c26dbc96e025976c96dd1d059"
            )
        );
        let token = added
            .iter()
            .find(|(n, ..)| n.eq_ignore_ascii_case("x-amz-security-token"))
            .unwrap();
        assert_eq!(token.1, "FwoGZXIvYXdzEXAMPLESESSIONTOKEN");
        assert!(token.2, "the session token header is marked sensitive");
    }

    /// aws-sigv4 traces the canonical request, session token included; ferry's TRACE logs
    /// must not carry it.
    #[test]
    fn signing_logs_no_session_token() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let k = keys().with_session_token(Secret::new("TRACEDSESSIONTOKEN"));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!("before signing");
            sign(
                "POST",
                "https://api.ecr.us-west-2.amazonaws.com/",
                &[("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)],
                b"{}",
                ("us-west-2", "ecr"),
                &k,
                at(1_704_164_645),
            )
            .unwrap();
        });
        let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("before signing"), "{log}");
        assert!(!log.contains("TRACEDSESSIONTOKEN"), "{log}");
        assert!(!log.contains(SECRET), "{log}");
    }

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |b: u8| block.iter().map(|k| k ^ b).collect::<Vec<u8>>();
        let mut inner = Sha256::new();
        inner.update(pad(0x36));
        inner.update(data);
        let mut outer = Sha256::new();
        outer.update(pad(0x5c));
        outer.update(inner.finalize());
        outer.finalize().to_vec()
    }

    /// SigV4 re-derived from the specification, independently of aws-sigv4, for an endpoint
    /// with a port (as in tests against a local emulator).
    #[test]
    fn signer_agrees_with_a_from_scratch_sigv4() {
        let fixed = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let k = AwsKeys::new("AKIAFERRYTEST", Secret::new("s3cr3t/key+value"));
        let time = at(1_767_225_599); // 2025-12-31T23:59:59Z
        let added = sign(
            "POST",
            "http://127.0.0.1:45678/",
            &fixed,
            b"{}",
            ("eu-north-1", "ecr"),
            &k,
            time,
        )
        .unwrap();
        let date_time = "20251231T235959Z";
        assert_eq!(header(&added, "x-amz-date"), Some(date_time));
        let canonical = format!(
            "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:127.0.0.1:45678\nx-amz-date:{date_time}\nx-amz-target:{TARGET}\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
            hex::encode(Sha256::digest(b"{}"))
        );
        let scope = "20251231/eu-north-1/ecr/aws4_request";
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(b"AWS4s3cr3t/key+value", b"20251231");
        for part in ["eu-north-1", "ecr", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        assert_eq!(
            header(&added, "authorization").unwrap(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIAFERRYTEST/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}"
            )
        );
    }

    #[tokio::test]
    async fn bad_region_is_refused_before_any_request() {
        let http = reqwest::Client::new();
        let e = get_authorization_token(&http, "us east", &keys(), None)
            .await
            .unwrap_err();
        assert!(matches!(e, EcrError::Region { .. }), "{e}");
        let e = get_authorization_token(
            &http,
            "../x",
            &keys(),
            Some(&Url::parse("http://127.0.0.1:9/").unwrap()),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, EcrError::Region { .. }), "{e}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_named() {
        // A port nothing listens on: bind, learn the port, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let e = get_authorization_token(&http, "us-east-1", &keys(), Some(&endpoint))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, EcrError::Unreachable { .. }), "{text}");
        assert!(text.contains("us-east-1") && text.contains(&format!("127.0.0.1:{port}")));
        assert!(!text.contains(SECRET) && !text.contains(ID), "{text}");
    }

    // ---- the credential source, against a canned local endpoint -------------------------

    /// A one-answer-fits-all HTTP server on 127.0.0.1 that records requests; stops on Drop.
    struct FakeEcr {
        port: u16,
        requests: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl FakeEcr {
        fn start(status: u16, body: String) -> FakeEcr {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (r, s) = (requests.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => Self::serve(stream, status, &body, &r),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            FakeEcr {
                port,
                requests,
                stop,
                thread: Some(thread),
            }
        }

        fn serve(mut stream: TcpStream, status: u16, body: &str, log: &Mutex<Vec<String>>) {
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&data).to_string());
            let reason = if status == 200 { "OK" } else { "Error" };
            let answer = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }

        fn env(&self) -> impl Fn(&str) -> Option<String> + use<> {
            let url = format!("http://127.0.0.1:{}/", self.port);
            move |k: &str| (k == "AWS_ENDPOINT_URL_ECR").then(|| url.clone())
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for FakeEcr {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    const REGISTRY: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

    fn token_answer(password: &str, expires_at: f64) -> String {
        format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":{expires_at},"proxyEndpoint":"https://{REGISTRY}"}}]}}"#,
            b64(&format!("AWS:{password}"))
        )
    }

    fn in_a_day() -> f64 {
        (SystemTime::now() + Duration::from_secs(86_400))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    fn cluster_keys() -> Vec<(String, AwsKeys)> {
        vec![(
            format!("{REGISTRY}/rancher"),
            AwsKeys::new("AKIDCLUSTER", Secret::new("cluster-secret-value")),
        )]
    }

    /// Answers fixed credentials for one registry.
    struct Fixed(&'static str);

    impl CredentialSource for Fixed {
        fn credentials(&self, registry: &str) -> Credentials {
            if registry == self.0 {
                Credentials::Basic {
                    username: "someone".into(),
                    password: Secret::new("pw"),
                }
            } else {
                Credentials::Anonymous
            }
        }
        fn origin(&self, _registry: &str) -> Option<String> {
            Some("docker config auths".into())
        }
    }

    fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: user.into(),
            password: Secret::new(password),
        }
    }

    #[test]
    fn logs_in_with_cluster_keys_once() {
        let server = FakeEcr::start(200, token_answer("ecr-password-1", in_a_day()));
        let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
        assert_eq!(
            source.origin(REGISTRY).as_deref(),
            Some("ECR GetAuthorizationToken (keys from cluster.yml)")
        );
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-password-1"));
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-password-1"));
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "the token is cached");
        let request = requests[0].to_ascii_lowercase();
        assert!(request.starts_with("post / http/1.1\r\n"), "{request}");
        assert!(request.contains(&format!("x-amz-target: {}", TARGET.to_ascii_lowercase())));
        assert!(request.contains("content-type: application/x-amz-json-1.1"));
        assert!(request.ends_with("\r\n\r\n{}"), "{request}");
        assert!(request.contains("authorization: aws4-hmac-sha256 credential=akidcluster/"));
        assert!(request.contains("/us-west-2/ecr/aws4_request, signedheaders=content-type;host;x-amz-date;x-amz-target, signature="));
        assert!(!request.contains("cluster-secret-value"));
    }

    #[test]
    fn falls_back_to_environment_keys() {
        let server = FakeEcr::start(200, token_answer("ecr-password-2", in_a_day()));
        let endpoint = server.env();
        let env = move |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENVIRONMENT".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_string()),
            "AWS_SESSION_TOKEN" => Some("env-session-token".to_string()),
            _ => endpoint(k),
        };
        // cluster.yml keys for another registry do not apply.
        let source = EcrCredentialSource::new(
            Arc::new(Anonymous),
            vec![(
                "999999999999.dkr.ecr.us-west-2.amazonaws.com".into(),
                AwsKeys::new("AKIDOTHER", Secret::new("x")),
            )],
            env,
        );
        assert_eq!(
            source.origin(REGISTRY).as_deref(),
            Some("ECR GetAuthorizationToken (keys from environment)")
        );
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-password-2"));
        let request = server.requests()[0].to_ascii_lowercase();
        assert!(request.contains("credential=akidenvironment/"), "{request}");
        assert!(request.contains("x-amz-security-token: env-session-token"));
    }

    #[test]
    fn leaves_other_registries_and_existing_logins_alone() {
        let server = FakeEcr::start(200, token_answer("unused", in_a_day()));
        let inner = Arc::new(Fixed(REGISTRY));
        let source = EcrCredentialSource::new(inner, cluster_keys(), server.env());
        assert_eq!(source.credentials(REGISTRY), basic("someone", "pw"));
        assert_eq!(
            source.origin(REGISTRY).as_deref(),
            Some("docker config auths")
        );
        assert_eq!(source.credentials("docker.io"), Credentials::Anonymous);
        assert_eq!(
            source.credentials("registry.example.com:5000"),
            Credentials::Anonymous
        );
        // An ECR host without keys anywhere.
        assert_eq!(
            source.credentials("555555555555.dkr.ecr.eu-west-1.amazonaws.com"),
            Credentials::Anonymous
        );
        assert!(server.requests().is_empty());
    }

    #[test]
    fn ignores_plugin_keys_of_non_ecr_urls() {
        let server = FakeEcr::start(200, token_answer("unused", in_a_day()));
        let source = EcrCredentialSource::new(
            Arc::new(Anonymous),
            vec![(
                "registry.example.com".into(),
                AwsKeys::new("AKIDX", Secret::new("x")),
            )],
            server.env(),
        );
        assert_eq!(
            source.credentials("registry.example.com"),
            Credentials::Anonymous
        );
        assert!(server.requests().is_empty());
    }

    /// Captures log output of the current thread.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rejected_keys_warn_once_and_answer_anonymous() {
        let server = FakeEcr::start(
            400,
            r#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#.into(),
        );
        let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(source.credentials(REGISTRY), Credentials::Anonymous);
            assert_eq!(source.credentials(REGISTRY), Credentials::Anonymous);
        });
        assert_eq!(server.requests().len(), 1, "a failure is not retried");
        assert_eq!(source.origin(REGISTRY), None, "the wrapped source's origin");
        let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("WARN").count(), 1, "{log}");
        for expected in [
            REGISTRY,
            "region us-west-2",
            "cluster.yml ecr_credential_plugin",
            "the AWS access key was rejected",
            "UnrecognizedClientException",
            &format!("127.0.0.1:{}", server.port),
        ] {
            assert!(log.contains(expected), "{expected:?} missing from {log}");
        }
        assert!(!log.contains("AKIDCLUSTER") && !log.contains("cluster-secret-value"));
    }

    #[test]
    fn renews_a_token_that_expires() {
        let soon = (SystemTime::now() + Duration::from_millis(800))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let server = FakeEcr::start(200, token_answer("short-lived", soon));
        let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "short-lived"));
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "short-lived"));
        assert_eq!(server.requests().len(), 1);
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "short-lived"));
        assert_eq!(
            server.requests().len(),
            2,
            "an expired token is fetched again"
        );
    }

    /// `credentials` is called from async code; neither runtime flavour may panic or hang,
    /// even with the only worker blocked in the call.
    #[tokio::test(flavor = "current_thread")]
    async fn works_inside_a_current_thread_runtime() {
        let server = FakeEcr::start(200, token_answer("ct", in_a_day()));
        let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "ct"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn works_inside_a_multi_thread_runtime() {
        let server = FakeEcr::start(200, token_answer("mt", in_a_day()));
        let source = Arc::new(EcrCredentialSource::new(
            Arc::new(Anonymous),
            cluster_keys(),
            server.env(),
        ));
        let s = source.clone();
        let spawned = tokio::spawn(async move { s.credentials(REGISTRY) });
        assert_eq!(spawned.await.unwrap(), basic("AWS", "mt"));
        assert_eq!(source.credentials(REGISTRY), basic("AWS", "mt"));
        assert_eq!(server.requests().len(), 1);
    }
}
