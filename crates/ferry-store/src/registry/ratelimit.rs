//! Docker Hub's pull rate limit, read before a run spends it: one manifest `HEAD` (which Docker
//! Hub does not count) whose answer carries `RateLimit-Limit: 100;w=21600` and
//! `RateLimit-Remaining: 76;w=21600` (the window is in seconds), the parsing of those headers, and
//! the one-line warning for a run that needs more manifest `GET`s than remain.
//!
//! Absent headers mean "no limit known" (a paid account, a mirror, another registry), never
//! "no pulls left": nothing is said then. The request layer keeps its own record of the last
//! `RateLimit-*` answer ([`super::RateLimit`]) for summaries; this module reads the headers
//! itself, more leniently (lists of policies, quoted or upper-case parameters), because a
//! warning that is wrong or missing costs the user a blocked run.

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};

use super::Registry;
use super::auth::Scope;
use super::error::RegistryError;
use super::request::Req;
use ferry_oci::media_types::MANIFEST_ACCEPT;

/// A pull quota as one registry answer states it; each part `None` when not stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    /// Manifest GETs allowed per window (`RateLimit-Limit`).
    pub limit: Option<u64>,
    /// Manifest GETs left in the window (`RateLimit-Remaining`).
    pub remaining: Option<u64>,
    /// The window, in seconds (the `w=` parameter of either header).
    pub window_seconds: Option<u64>,
}

impl Quota {
    /// The quota in `RateLimit-Limit` and `RateLimit-Remaining`; `None` when neither header
    /// holds a count ferry can read.
    pub fn from_headers(h: &HeaderMap) -> Option<Quota> {
        let limit = field(h, "ratelimit-limit");
        let remaining = field(h, "ratelimit-remaining");
        if limit.is_none() && remaining.is_none() {
            return None;
        }
        Some(Quota {
            limit: limit.map(|(n, _)| n),
            remaining: remaining.map(|(n, _)| n),
            window_seconds: limit
                .and_then(|(_, w)| w)
                .or_else(|| remaining.and_then(|(_, w)| w)),
        })
    }

    /// The same quota from the request layer's record of an answer.
    pub fn from_rate_limit(rl: &super::RateLimit) -> Quota {
        Quota {
            limit: Some(rl.limit),
            remaining: rl.remaining,
            window_seconds: rl.window_seconds,
        }
    }
}

/// A count in one header: `N`, `N;w=SECONDS`, with other parameters, or a list of policies
/// (`10, 10;w=1, 100;w=21600`, the IETF draft's form: the first item is the one in force, and
/// the window is its own `w=` or that of a later item with the same count). The first header
/// line that reads wins.
fn field(h: &HeaderMap, name: &str) -> Option<(u64, Option<u64>)> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_field)
}

/// One header value (see [`field`]).
pub(crate) fn parse_field(value: &str) -> Option<(u64, Option<u64>)> {
    let mut items = value.split(',').map(parse_item);
    let (count, window) = items.next()??;
    let window = window.or_else(|| {
        items
            .flatten()
            .find_map(|(n, w)| if n == count { w } else { None })
    });
    Some((count, window))
}

/// `N;param=value;…`: the count and its `w=` window.
fn parse_item(item: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = item.split(';');
    let count = number(parts.next()?)?;
    let window = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("w") {
            number(v)
        } else {
            None
        }
    });
    Some((count, window))
}

/// A non-negative integer, optionally quoted; nothing else.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
        .trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A window for people: `6 h`, `90 min`, `45 s` (`1.0 h` for an hour and a second).
pub fn human_window(seconds: u64) -> String {
    match seconds {
        0 => "0 s".to_string(),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s if s > 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{s} s"),
    }
}

/// How many rate-limited manifest GETs a run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The count.
    pub gets: usize,
    /// True when only a lower bound is known (the tags of a list, before their manifests
    /// were read: a multi-platform image needs one more GET per platform).
    pub at_least: bool,
}

/// The pulls a run needs but the quota does not hold: `Some` with the number short when the
/// run needs more than remain (or, when only the limit is known, more than a whole window
/// allows).
pub fn shortfall(need: Need, quota: &Quota) -> Option<u64> {
    let gets = need.gets as u64;
    match (quota.remaining, quota.limit) {
        (Some(r), _) if gets > r => Some(gets - r),
        (None, Some(l)) if gets > l => Some(gets - l),
        _ => None,
    }
}

/// The warning for a run that needs more manifest GETs than `quota` holds, or `None` when it
/// fits (or nothing is known). `who` names the run ("this export", "a real export");
/// `logged_in` says whether ferry sends Docker Hub credentials (then `docker login` is no
/// advice). One line: the numbers, the window, what to do.
pub fn warning(who: &str, need: Need, quota: &Quota, logged_in: bool) -> Option<String> {
    shortfall(need, quota)?;
    let window = quota.window_seconds.map(human_window);
    let resets = window
        .as_ref()
        .map(|w| format!(" (resets within {w})"))
        .unwrap_or_default();
    let have = match (quota.remaining, quota.limit) {
        (Some(r), Some(l)) => format!("only {r} of {l} remain{resets}"),
        (Some(r), None) => format!("only {r} remain{resets}"),
        (None, Some(l)) => match &window {
            Some(w) => format!("Docker Hub allows only {l} per {w}"),
            None => format!("Docker Hub allows only {l}"),
        },
        (None, None) => return None,
    };
    let advice = if logged_in {
        "export fewer images at a time (a --lock or --images file with a subset), wait for the window to pass, or use an account with a higher limit"
    } else {
        "log in with `docker login` for a higher limit, export fewer images at a time (a --lock or --images file with a subset), or wait for the window to pass"
    };
    Some(format!(
        "Docker Hub pull rate limit: {who} needs {}{} manifest GET{} but {have}. To avoid 429 answers and waits: {advice}.",
        if need.at_least { "at least " } else { "" },
        need.gets,
        if need.gets == 1 { "" } else { "s" },
    ))
}

impl Registry {
    /// One `HEAD` of the manifest `repository:reference` (a tag or a digest), with the
    /// credentials and endpoint every other request of the run uses, for the quota its answer
    /// states: `None` when it states none. Docker Hub does not count a `HEAD` against the
    /// limit. Any answer counts (a 404 still carries the headers); a request that fails
    /// after the usual retries is an error, which callers take as "unknown".
    pub async fn head_quota(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Quota>, RegistryError> {
        let url = self.manifest_url(repository, reference)?;
        let scopes = [Scope::pull(repository)];
        let req = Req::new(Method::HEAD, url, &scopes)
            .header(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let (resp, _permit) = self.send(&req).await?;
        Ok(Quota::from_headers(resp.headers()))
    }

    /// Whether ferry sends this registry credentials (looked up by a request already made).
    pub fn logged_in(&self) -> bool {
        self.auth.user_label().is_some()
    }
}

#[cfg(test)]
mod tests;
