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
//!
//! [`PullCheck`] is the policy an export follows: when to read the quota, what it needs,
//! when and how to warn (once per run).

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};

use super::auth::Scope;
use super::error::RegistryError;
use super::request::Req;
use super::{Registries, Registry};
use ferry_oci::media_types::MANIFEST_ACCEPT;
use ferry_oci::reference::Reference;

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

/// The run whose pulls are counted, for the warning's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// An export that will read every manifest.
    Export,
    /// `--dry-run`: it reads the manifests only without a lock.
    DryRun,
}

/// What the run learnt of Docker Hub's pull rate limit before it read any manifest there,
/// and whether it has warned.
///
/// The check sits before resolution because resolution is where every rate-limited GET of an
/// export happens: each tag is looked up with a HEAD (free), then every manifest of every
/// image graph is read once by digest; the copy engine writes those very bytes and reads no
/// manifest again, and blob downloads do not count. Resolving is the same for a resumed
/// export, so every manifest counts, whatever the partial bundle holds. Before resolution is
/// therefore the last point where a warning still comes before the pulls are spent. What the
/// run needs is known there exactly with a lock (every top-level and platform manifest the
/// lock names, each once: the dry run's own count); from a list of tags only as a floor, one
/// GET per image (a multi-platform image needs one more per platform, known once its index is
/// read; two tags of one digest share theirs), which the warning says ("at least").
pub struct PullCheck {
    /// The registry Docker Hub's images are read from (`--upstream docker.io=URL` honoured);
    /// `None` when no image comes from Docker Hub.
    hub: Option<Arc<Registry>>,
    /// The quota the HEAD's answer stated.
    quota: Option<Quota>,
    /// A warning was given (one per run).
    warned: bool,
}

impl PullCheck {
    /// Before any manifest is read from Docker Hub: one HEAD of the first Docker Hub image's
    /// manifest, with the run's own client, credentials and endpoint, for the `RateLimit-*`
    /// headers of its answer (a HEAD does not count against the limit), and a warning when
    /// the run needs more manifest GETs than remain. `images` are the run's; `exact` is the
    /// number of Docker Hub manifests when a lock says it (else the images give a floor).
    /// Nothing is done when no image comes from Docker Hub; a HEAD that fails leaves the
    /// quota unknown (the run meets the same failure where it used to).
    pub async fn before_reading<'a>(
        registries: &Registries,
        images: impl IntoIterator<Item = &'a Reference>,
        exact: Option<usize>,
        run: Run,
    ) -> PullCheck {
        let mut check = PullCheck {
            hub: None,
            quota: None,
            warned: false,
        };
        let hub_images: Vec<&Reference> =
            images.into_iter().filter(|r| r.is_docker_hub()).collect();
        let Some(first) = hub_images.first() else {
            return check;
        };
        let Ok(registry) = registries.get(first.registry()) else {
            return check;
        };
        check.quota = head_quota_of(&registry, first).await;
        check.hub = Some(registry);
        let need = match exact {
            Some(gets) => Need {
                gets,
                at_least: false,
            },
            None => Need {
                gets: hub_images
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<BTreeSet<_>>()
                    .len(),
                at_least: true,
            },
        };
        let (who, then) = match (run, exact.is_some()) {
            (Run::Export, _) => (
                "this export",
                " ferry goes on: a 429 with a short Retry-After is waited out; an image still refused fails, and running the same command later resumes the export.",
            ),
            (Run::DryRun, true) => ("a real export", ""),
            (Run::DryRun, false) => (
                "this dry run (it reads every manifest to count them; with --lock it reads none)",
                "",
            ),
        };
        let quota = check.quota;
        check.warn_if_short(who, need, quota, then);
        check
    }

    /// The quota the HEAD's answer stated.
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }

    /// The freshest quota known: that of the last Docker Hub answer the request layer
    /// recorded (after a dry run's resolving GETs, what is left for a real export), each part
    /// falling back to what the HEAD stated.
    pub fn latest(&self) -> Option<Quota> {
        let seen = self
            .hub
            .as_ref()
            .and_then(|r| r.rate_limit())
            .map(|rl| Quota::from_rate_limit(&rl));
        match (seen, self.quota) {
            (Some(s), Some(q)) => Some(Quota {
                limit: s.limit.or(q.limit),
                remaining: s.remaining.or(q.remaining),
                window_seconds: s.window_seconds.or(q.window_seconds),
            }),
            (s, q) => s.or(q),
        }
    }

    /// After a dry run read the manifests: the exact count of Docker Hub GETs is `gets`, and
    /// what remains ([`PullCheck::latest`], returned) is what a real export would find;
    /// warns (unless already warned) when that is not enough.
    pub fn after_dry_run(&mut self, gets: usize) -> Option<Quota> {
        let quota = self.latest();
        let need = Need {
            gets,
            at_least: false,
        };
        self.warn_if_short("a real export", need, quota, "");
        quota
    }

    /// Warns (once per run) when `need` is more than the quota `quota` holds.
    fn warn_if_short(&mut self, who: &str, need: Need, quota: Option<Quota>, then: &str) {
        let (Some(quota), false) = (quota, self.warned) else {
            return;
        };
        let logged_in = self.hub.as_ref().is_some_and(|r| r.logged_in());
        if let Some(line) = warning(who, need, &quota, logged_in) {
            tracing::warn!("{line}{then}");
            self.warned = true;
        }
    }
}

/// The quota the answer to a HEAD of `image`'s manifest states; `None` when it states none
/// or the HEAD fails (logged at debug).
async fn head_quota_of(registry: &Registry, image: &Reference) -> Option<Quota> {
    let reference = match (image.digest(), image.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let quota = match registry.head_quota(image.repository(), &reference).await {
        Ok(q) => q,
        Err(e) => {
            tracing::debug!(
                "cannot read Docker Hub's pull rate limit ({}); going on without it",
                ferry_base::chain::flatten(&e)
            );
            None
        }
    };
    match quota {
        Some(q) => tracing::debug!(
            "Docker Hub pull quota: limit {:?}, remaining {:?}, window {:?} s",
            q.limit,
            q.remaining,
            q.window_seconds
        ),
        None => tracing::debug!("Docker Hub states no pull rate limit"),
    }
    quota
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
