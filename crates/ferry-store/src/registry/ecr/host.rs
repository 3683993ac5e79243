//! ECR registry hosts and API endpoints: recognising
//! `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` the way RKE does (but anchored at the
//! end), the ECR API endpoint of a region or registry, and the AWS SDKs' endpoint override in
//! the environment.

use ferry_base::env_vars::EnvVars;
use url::Url;

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
pub(super) fn is_label(s: &str) -> bool {
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
    if get(EnvVars::AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    for var in [EnvVars::AWS_ENDPOINT_URL_ECR, EnvVars::AWS_ENDPOINT_URL] {
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
