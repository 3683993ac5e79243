//! Why an ECR API call failed ([`EcrError`]), which call it was ([`Operation`]), what an AWS
//! error code means for the user ([`explain`], [`Operation::explain`]), and how an AWS error
//! answer is read (code and message from JSON, header or XML) and cleaned (keys scrubbed, one
//! short line).

use serde::Deserialize;

use super::AwsKeys;

/// AWS error messages are cut to this many characters.
pub(super) const MESSAGE_LIMIT: usize = 300;

/// The ECR API calls ferry makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Turns AWS keys into a registry login.
    GetAuthorizationToken,
    /// Creates a repository (`--ecr-create-repos`).
    CreateRepository,
    /// Tells whether a repository exists (when creating it is not allowed).
    DescribeRepositories,
}

impl Operation {
    /// The API action, e.g. `CreateRepository`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetAuthorizationToken => "GetAuthorizationToken",
            Operation::CreateRepository => "CreateRepository",
            Operation::DescribeRepositories => "DescribeRepositories",
        }
    }

    /// Its `X-Amz-Target` header.
    pub fn target(self) -> &'static str {
        match self {
            Operation::GetAuthorizationToken => super::TARGET,
            Operation::CreateRepository => "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
            Operation::DescribeRepositories => {
                "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"
            }
        }
    }

    /// What an AWS error code of this call means for the user.
    pub fn explain(self, code: &str, status: u16) -> &'static str {
        if is_access_denied(code) {
            return match self {
                Operation::GetAuthorizationToken => {
                    "the AWS identity of these keys is not allowed ecr:GetAuthorizationToken; grant it in IAM"
                }
                Operation::CreateRepository => {
                    "the AWS identity of these keys is not allowed ecr:CreateRepository"
                }
                Operation::DescribeRepositories => {
                    "the AWS identity of these keys is not allowed ecr:DescribeRepositories"
                }
            };
        }
        match code {
            "InvalidParameterException" if self != Operation::GetAuthorizationToken => {
                "ECR does not accept this repository name (lower-case letters, digits, and . _ - / between them)"
            }
            "LimitExceededException" => "a service quota of this AWS account is reached",
            "RepositoryNotFoundException" => "the repository does not exist",
            _ => explain(code, status),
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// AWS's codes for "this identity may not do that".
pub(super) fn is_access_denied(code: &str) -> bool {
    matches!(code, "AccessDeniedException" | "AccessDenied")
}

/// Why an ECR API call failed. Messages name the region and endpoint, never a key.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// The region is not a region name.
    #[error("{region:?} is not an AWS region name")]
    Region {
        /// What was given.
        region: String,
    },
    /// The keys could not be used to sign.
    #[error("cannot sign the ECR {operation} request for region {region}: {detail}")]
    Signing {
        /// The call.
        operation: Operation,
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
        /// The call.
        operation: Operation,
        /// The region.
        region: String,
        /// The endpoint, redacted.
        endpoint: String,
        /// The transport error.
        detail: String,
    },
    /// AWS answered with an error.
    #[error(
        "the ECR API for region {region} at {endpoint} refused {operation}: {} (HTTP {status}, {code}: {message})",
        operation.explain(code, *status)
    )]
    Rejected {
        /// The call.
        operation: Operation,
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
        "the ECR API for region {region} at {endpoint} gave a malformed {operation} answer: {detail}"
    )]
    Malformed {
        /// The call.
        operation: Operation,
        /// The region.
        region: String,
        /// The endpoint, redacted.
        endpoint: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A repository the import pushes to does not exist, and these keys may not create it.
    #[error(
        "ECR repository {repository} does not exist in registry {registry} (region {region}) and cannot be created: {cause}; grant the IAM identity of these AWS keys ecr:CreateRepository, create the repository beforehand, or pass --ecr-create-repos=false to push without creating repositories"
    )]
    RepositoryMissing {
        /// The repository, e.g. `rancher/rke-tools`.
        repository: String,
        /// The registry host.
        registry: String,
        /// The region.
        region: String,
        /// Why it cannot be created.
        cause: Box<EcrError>,
    },
    /// Creating a repository the import pushes to failed for another reason.
    #[error(
        "cannot make sure ECR repository {repository} exists in registry {registry} (region {region}): {cause}; {}",
        repository_hint(cause)
    )]
    Repository {
        /// The repository, e.g. `rancher/rke-tools`.
        repository: String,
        /// The registry host.
        registry: String,
        /// The region.
        region: String,
        /// Why.
        cause: Box<EcrError>,
    },
}

/// What to do when a repository could not be made sure of.
fn repository_hint(cause: &EcrError) -> &'static str {
    match cause.code() {
        Some(code) if is_access_denied(code) => {
            "grant the IAM identity of these AWS keys ecr:CreateRepository (and ecr:DescribeRepositories), create the repository beforehand, or pass --ecr-create-repos=false if it exists"
        }
        _ => {
            "create the repository beforehand, or pass --ecr-create-repos=false to push without creating repositories"
        }
    }
}

impl EcrError {
    /// AWS's error code, for a rejected call.
    pub fn code(&self) -> Option<&str> {
        match self {
            EcrError::Rejected { code, .. } => Some(code),
            EcrError::RepositoryMissing { cause, .. } | EcrError::Repository { cause, .. } => {
                cause.code()
            }
            _ => None,
        }
    }
}

/// What an AWS error code of GetAuthorizationToken means for the user (see
/// [`Operation::explain`] for the other calls).
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
