//! A faithful port of the version comparison RKE uses (`github.com/mcuadros/go-version`
//! `Compare`, which is `Normalize` followed by `CompareNormalized`), so that ferry filters and
//! orders Kubernetes versions exactly as RKE does.
//!
//! The rules are PHP's `version_compare` as ported by that library: strings are split on
//! `.`, `-`, `_`, `+` and at digit/non-digit boundaries, and compared part by part; numbers
//! compare numerically; the words `dev < alpha = a < beta = b < RC = rc < # < p = pl` rank
//! below numbers (except `p`/`pl`), and any other word ranks lowest of all.
//!
//! Quirk kept on purpose: Kubernetes versions such as `v1.30.5-rancher1-1` do not match the
//! classical pattern, so they are compared un-normalised (with the leading `v`); RKE
//! versions such as `v1.6.3` and `1.5.99` are normalised to `1.6.3.0` and `1.5.99.0`.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex_lite::Regex;

const MODIFIER: &str =
    r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)(?:[.-]?(\d+))?)?([.-]?dev)?";

static ALIAS: LazyLock<Regex> = LazyLock::new(|| re(r"^([^,\s]+) +as +([^,\s]+)$"));
static MASTER_LIKE: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:dev-)?(?:master|trunk|default)$"));
static CLASSICAL: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^v?(\d{{1,3}})(\.\d+)?(\.\d+)?(\.\d+)?{MODIFIER}$"
    ))
});
static DATE_BASED: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^v?(\d{{4}}(?:[.:-]?\d{{2}}){{1,6}}(?:[.:-]?\d{{1,3}})?){MODIFIER}$"
    ))
});
static DEV_SUFFIX: LazyLock<Regex> = LazyLock::new(|| re(r"(.*?)[.-]?dev$"));
static BRANCH: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^v?(\d+)(\.(?:\d+|[x*]))?(\.(?:\d+|[x*]))?(\.(?:\d+|[x*]))?$"));
static NON_DIGIT: LazyLock<Regex> = LazyLock::new(|| re(r"\D"));
static SIGNS: LazyLock<Regex> = LazyLock::new(|| re(r"[_\-+]"));
static NON_NUMBER_RUN: LazyLock<Regex> = LazyLock::new(|| re(r"([^.\d]+)"));
static MULTI_DOTS: LazyLock<Regex> = LazyLock::new(|| re(r"\.{2,}"));

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file; a typo is a programming error caught by tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern}: {e}"))
}

fn group<'a>(caps: &'a regex_lite::Captures<'_>, i: usize) -> &'a str {
    caps.get(i).map_or("", |m| m.as_str())
}

/// `version.Normalize` of go-version.
pub fn normalize(version: &str) -> String {
    let mut version = version.to_string();
    if let Some(c) = ALIAS.captures(&version) {
        version = group(&c, 1).to_string();
    }
    if MASTER_LIKE.is_match(&version.to_lowercase()) {
        return "9999999-dev".to_string();
    }
    if version.to_lowercase().starts_with("dev-") {
        return format!("dev-{}", &version[4..]);
    }
    let mut result: Option<(String, [String; 3])> = None;
    if let Some(c) = CLASSICAL.captures(&version) {
        let mut v = String::new();
        for i in 1..5 {
            let part = group(&c, i);
            if part.is_empty() {
                v.push_str(".0");
            } else {
                v.push_str(part);
            }
        }
        result = Some((v, [5, 6, 7].map(|i| group(&c, i).to_string())));
    } else if let Some(c) = DATE_BASED.captures(&version) {
        let v = NON_DIGIT.replace_all(group(&c, 1), "-").into_owned();
        result = Some((v, [2, 3, 4].map(|i| group(&c, i).to_string())));
    }
    if let Some((mut v, [stability, number, dev])) = result {
        if !stability.is_empty() {
            if stability == "stable" {
                return v;
            }
            v.push('-');
            v.push_str(&expand_stability(&stability));
            v.push_str(&number);
        }
        if !dev.is_empty() {
            v.push_str("-dev");
        }
        return v;
    }
    if let Some(c) = DEV_SUFFIX.captures(&version) {
        return normalize_branch(group(&c, 1));
    }
    version
}

fn normalize_branch(name: &str) -> String {
    let name = name.trim_matches(' ');
    if matches!(name, "master" | "trunk" | "default") {
        return normalize(name);
    }
    if let Some(c) = BRANCH.captures(name) {
        let mut out = String::new();
        for i in 1..5 {
            let part = group(&c, i);
            if part.is_empty() {
                out.push_str(".9999999");
            } else {
                out.push_str(&part.replace(['*', 'x'], "9999999"));
            }
        }
        return out + "-dev";
    }
    format!("dev-{name}")
}

fn expand_stability(s: &str) -> String {
    match s.to_lowercase().as_str() {
        "a" => "alpha".into(),
        "b" => "beta".into(),
        "p" | "pl" => "patch".into(),
        "rc" => "RC".into(),
        other => other.into(),
    }
}

fn prep(version: &str) -> Vec<String> {
    if version.is_empty() {
        return vec![String::new()];
    }
    let v = SIGNS.replace_all(version, ".");
    let v = NON_NUMBER_RUN.replace_all(&v, ".$1.");
    let v = MULTI_DOTS.replace_all(&v, ".");
    v.split('.').map(str::to_string).collect()
}

fn num(part: &str) -> i64 {
    if part.is_empty() {
        return 0;
    }
    if let Ok(n) = part.parse::<i64>() {
        return n;
    }
    match part {
        "dev" => -6,
        "alpha" | "a" => -5,
        "beta" | "b" => -4,
        "RC" | "rc" => -3,
        "#" => -2,
        "p" | "pl" => 1,
        _ => -7,
    }
}

/// `CompareSimple` of two already-normalised versions.
pub fn compare_normalized(a: &str, b: &str) -> Ordering {
    compare_prepared(&prep(a), &prep(b))
}

/// What [`compare`] compares a version by: computed once per version, for sorting many
/// (normalizing takes a handful of regex passes; a sort would repeat them per comparison).
pub fn sort_key(version: &str) -> Vec<String> {
    prep(&normalize(version))
}

/// [`compare`] of two [`sort_key`]s.
pub fn compare_prepared(va: &[String], vb: &[String]) -> Ordering {
    for i in 0..va.len().max(vb.len()) {
        if i < va.len() && i < vb.len() && va[i] == vb[i] {
            continue;
        }
        let l = va.get(i).map_or(0, |p| num(p));
        let r = vb.get(i).map_or(0, |p| num(p));
        match l.cmp(&r) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// `version.Compare(a, b, op)` expressed as an ordering: normalise both, then compare.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_normalized(&normalize(a), &normalize(b))
}

#[cfg(test)]
mod tests;
