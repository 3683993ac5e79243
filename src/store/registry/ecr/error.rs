//! Why a GetAuthorizationToken call failed ([`EcrError`]), what an AWS error code means for the
//! user ([`explain`]), and how an AWS error answer is read (code and message from JSON, header
//! or XML) and cleaned (keys scrubbed, one short line).

use serde::Deserialize;

use super::AwsKeys;

/// AWS error messages are cut to this many characters.
pub(super) const MESSAGE_LIMIT: usize = 300;

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
pub(super) fn parse_error(status: u16, error_type: Option<&str>, body: &[u8]) -> (String, String) {
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
pub(super) fn clean_message(message: &str, keys: &AwsKeys) -> String {
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
