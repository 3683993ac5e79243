//! SigV4 signing of one request with aws-sigv4: the headers to add, each marked sensitive or
//! not. The signer's own trace output (which holds the session token) is switched off while it
//! signs.

use std::time::SystemTime;

use super::AwsKeys;
use ferry_base::chain::flatten;

/// Why a request could not be signed (the signer's own error, flattened; never a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct SignError(String);

fn sign_error(e: &(dyn std::error::Error + 'static)) -> SignError {
    SignError(flatten(e))
}

/// SigV4-signs a request and returns the headers to add (`authorization`, `x-amz-date`,
/// `x-amz-security-token`), with a flag for the sensitive ones. `headers` are signed too.
///
/// The signer traces the canonical request (which holds the session token) at TRACE level, so
/// it runs with tracing switched off for this thread.
pub(super) fn sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    (region, service): (&str, &str),
    keys: &AwsKeys,
    time: SystemTime,
) -> Result<Vec<(&'static str, String, bool)>, SignError> {
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
            .map_err(|e| sign_error(&e))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| sign_error(&e))?;
        let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
            .map_err(|e| sign_error(&e))?
            .into_parts();
        let (added, _params) = instructions.into_parts();
        Ok(added
            .iter()
            .map(|h| (h.name(), h.value().to_string(), h.sensitive()))
            .collect())
    })
}
