//! SigV4 signing of one request (AWS's "Signature Version 4 for API requests"): the headers to
//! add, each marked sensitive or not. ferry signs exactly one kind of request (a JSON `POST` to
//! the ECR API), so this is the signing algorithm and nothing around it: no SDK, no credential
//! chain, no trace output that could carry the session token. HMAC-SHA256 comes from ring,
//! which TLS already builds. The tests check it against AWS's documented example, botocore and
//! a derivation from the specification.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;
use sha2::{Digest as _, Sha256};

use super::AwsKeys;

/// Why a request could not be signed (never a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SignError {
    /// The URL does not parse, or names no host.
    #[error("the endpoint {0} is not an http(s) URL with a host")]
    Url(String),
    /// The clock is before 1970.
    #[error("the system clock is before 1970")]
    Clock,
}

/// SigV4-signs a request and returns the headers to add (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` for temporary keys), with a flag for the sensitive ones. `headers`
/// are signed too, as are `host` and the added ones.
pub(super) fn sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    (region, service): (&str, &str),
    keys: &AwsKeys,
    time: SystemTime,
) -> Result<Vec<(&'static str, String, bool)>, SignError> {
    let parsed = url::Url::parse(url).map_err(|_| SignError::Url(url.to_string()))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(SignError::Url(url.to_string())),
    };
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SignError::Clock)?
        .as_secs();
    let date_time = amz_date(secs);
    let date = &date_time[..8];

    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), canonical_value(v)))
        .collect();
    signed.push(("host".to_string(), host));
    signed.push(("x-amz-date".to_string(), date_time.clone()));
    if let Some(token) = &keys.session_token {
        signed.push(("x-amz-security-token".into(), token.expose().to_string()));
    }
    signed.sort();
    let names = signed
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let header_lines: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical = format!(
        "{method}\n{}\n{}\n{header_lines}\n{names}\n{}",
        canonical_path(parsed.path()),
        canonical_query(&parsed),
        hex::encode(Sha256::digest(body)),
    );

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let secret = format!("AWS4{}", keys.secret_access_key.expose());
    let mut key = mac(secret.as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = mac(&key, part.as_bytes());
    }
    let signature = hex::encode(mac(&key, string_to_sign.as_bytes()));

    let mut added = vec![
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
                keys.access_key_id
            ),
            true,
        ),
        ("x-amz-date", date_time, false),
    ];
    if let Some(token) = &keys.session_token {
        added.push(("x-amz-security-token", token.expose().to_string(), true));
    }
    Ok(added)
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// A header value as SigV4 signs it: trimmed, runs of spaces made one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every byte outside SigV4's unreserved set (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path as every service but S3 signs it: the (already percent-encoded) path encoded once
/// more, `/` when empty.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        uri_encode(path, true)
    }
}

/// The query's pairs, decoded, re-encoded the SigV4 way and sorted.
fn canonical_query(url: &url::Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch, UTC.
fn amz_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
