//! One call of the ECR JSON API: a SigV4-signed `POST` of a JSON body with the AWS JSON 1.1
//! headers and the call's `X-Amz-Target`, its answer read up to a size limit, and an error
//! answer turned into [`EcrError::Rejected`] (code and message, scrubbed of the keys). Every ECR
//! call ferry makes (GetAuthorizationToken, CreateRepository, DescribeRepositories) goes
//! through [`call`]; the HTTP client for them comes from [`http_client`].

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use super::error::{clean_message, parse_error};
use super::sigv4::sign;
use super::{AwsKeys, CONTENT_TYPE, DEFAULT_TIMEOUT, EcrError, Operation};
use crate::registry::error::redact;
use ferry_base::chain::flatten;

/// The SigV4 service name.
const SERVICE: &str = "ecr";
/// Larger answers are not what ferry asked for.
const ANSWER_LIMIT: usize = 1 << 20;
/// Time limit of opening a connection to the API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client for the ECR API (proxies from the environment, as every ferry client),
/// trusting `root_certificates` on top of the system roots.
pub fn http_client(
    root_certificates: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    ferry_base::tls::install();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT);
    if !root_certificates.is_empty() {
        builder = builder.tls_certs_merge(root_certificates.to_vec());
    }
    builder.build()
}

/// Makes `operation` with JSON `body` against `endpoint` for `region` (already checked to be a
/// region name), limited to [`DEFAULT_TIMEOUT`]. Returns the body of a success answer; an error
/// answer becomes [`EcrError::Rejected`]. No key or token reaches an error.
pub(super) async fn call(
    http: &reqwest::Client,
    (region, endpoint): (&str, &Url),
    keys: &AwsKeys,
    operation: Operation,
    body: &[u8],
) -> Result<Vec<u8>, EcrError> {
    let shown = redact(endpoint);
    let target = operation.target();
    let fixed = [("content-type", CONTENT_TYPE), ("x-amz-target", target)];
    let signing = |detail: String| EcrError::Signing {
        operation,
        region: region.to_string(),
        detail,
    };
    let signed = sign(
        "POST",
        endpoint.as_str(),
        &fixed,
        body,
        (region, SERVICE),
        keys,
        SystemTime::now(),
    )
    .map_err(|e| signing(e.to_string()))?;
    let mut request = http
        .post(endpoint.clone())
        .timeout(DEFAULT_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header("x-amz-target", target)
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body.to_vec());
    for (name, value, sensitive) in signed {
        let mut v = HeaderValue::from_str(&value)
            .map_err(|_| signing(format!("the signer produced an invalid {name} header")))?;
        v.set_sensitive(sensitive || name.eq_ignore_ascii_case("authorization"));
        request = request.header(HeaderName::from_static(name), v);
    }
    let unreachable = |e: reqwest::Error| EcrError::Unreachable {
        operation,
        region: region.to_string(),
        endpoint: shown.clone(),
        detail: flatten(&e.without_url()),
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
                operation,
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
            operation,
            region: region.to_string(),
            endpoint: shown,
            status: status.as_u16(),
            code: keys.scrub(&code),
            message: clean_message(&message, keys),
        });
    }
    Ok(answer)
}
