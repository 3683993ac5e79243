//! Semantic versions and version ranges exactly as blang/semver v3.5.1 reads them: what RKE
//! v1.6.3 uses to pick an addon template for a Kubernetes version (`templates/templates.go`,
//! `getTemplate`: `semver.Make(version[1:])` tested against every `ParseRange` key of KDM's
//! `K8sVersionedTemplates`). This is not [`crate::goversion`] (hashicorp/go-version, used
//! for RKE's own version filtering): the two order pre-releases differently.

use std::cmp::Ordering;

/// Why a version or range is not one blang/semver accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a semantic version range as RKE reads them ({reason})")]
pub struct SemverError {
    /// The text.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pre {
    Num(u64),
    Alpha(String),
}

impl Pre {
    fn cmp(&self, o: &Pre) -> Ordering {
        match (self, o) {
            (Pre::Num(a), Pre::Num(b)) => a.cmp(b),
            (Pre::Num(_), Pre::Alpha(_)) => Ordering::Less,
            (Pre::Alpha(_), Pre::Num(_)) => Ordering::Greater,
            (Pre::Alpha(a), Pre::Alpha(b)) => a.cmp(b),
        }
    }
}

/// A parsed version: major, minor, patch and pre-release parts (build metadata dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Pre>,
}

fn number(s: &str, what: &'static str, text: &str) -> Result<u64, SemverError> {
    let err = |reason| SemverError {
        text: text.to_string(),
        reason,
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(what));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(err("a number has a leading zero"));
    }
    s.parse().map_err(|_| err("a number is too large"))
}

impl Version {
    /// `semver.Parse`: `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, no leading `v`.
    pub fn parse(s: &str) -> Result<Version, SemverError> {
        let err = |reason| SemverError {
            text: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.splitn(3, '.').collect();
        if parts.len() != 3 {
            return Err(err("no MAJOR.MINOR.PATCH"));
        }
        let major = number(parts[0], "the major version is not a number", s)?;
        let minor = number(parts[1], "the minor version is not a number", s)?;
        let mut patch = parts[2];
        if let Some(i) = patch.find('+') {
            patch = &patch[..i];
        }
        let mut pre = Vec::new();
        if let Some(i) = patch.find('-') {
            for p in patch[i + 1..].split('.') {
                if p.is_empty() {
                    return Err(err("an empty pre-release part"));
                }
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    pre.push(Pre::Num(number(p, "bad pre-release number", s)?));
                } else if p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    pre.push(Pre::Alpha(p.to_string()));
                } else {
                    return Err(err(
                        "a pre-release part has a character other than [0-9A-Za-z-]",
                    ));
                }
            }
            patch = &patch[..i];
        }
        let patch = number(patch, "the patch version is not a number", s)?;
        Ok(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// A Kubernetes version as RKE passes it (`v1.30.5-rancher1-1`: the first character,
    /// the `v`, dropped as `version[1:]` does).
    pub fn kubernetes(version: &str) -> Result<Version, SemverError> {
        let mut chars = version.chars();
        chars.next();
        Version::parse(chars.as_str())
    }

    /// The same version without its pre-release part.
    pub fn release(&self) -> Version {
        Version {
            pre: Vec::new(),
            ..self.clone()
        }
    }
}

impl Ord for Version {
    fn cmp(&self, o: &Version) -> Ordering {
        let base = (self.major, self.minor, self.patch).cmp(&(o.major, o.minor, o.patch));
        if base != Ordering::Equal {
            return base;
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (a, b) in self.pre.iter().zip(&o.pre) {
            let c = a.cmp(b);
            if c != Ordering::Equal {
                return c;
            }
        }
        self.pre.len().cmp(&o.pre.len())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, o: &Version) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed range: alternatives (`||`) of comparators that must all hold.
#[derive(Debug, Clone)]
pub struct Range {
    any_of: Vec<Vec<(Op, Version)>>,
}

/// blang's `splitAndTrim`: split on spaces, except a space right after `>`, `<` or `=`
/// (so `< 1.27.15-rancher1-1` is one part), then drop the spaces inside each part.
fn split_and_trim(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut last = 0usize;
    let mut last_char = 0u8;
    for i in 0..b.len() {
        if b[i] == b' ' && !matches!(last_char, b'>' | b'<' | b'=') {
            if last + 1 < i {
                out.push(s[last..i].to_string());
            }
            last = i + 1;
        } else if b[i] != b' ' {
            last_char = b[i];
        }
    }
    if last + 1 < b.len() {
        out.push(s[last..].to_string());
    }
    out.into_iter().map(|p| p.replace(' ', "")).collect()
}

impl Range {
    /// `semver.ParseRange` (without wildcard versions, which no KDM range uses).
    pub fn parse(s: &str) -> Result<Range, SemverError> {
        let err = |reason| SemverError {
            text: s.to_string(),
            reason,
        };
        let mut any_of = Vec::new();
        let mut all_of = Vec::new();
        let parts = split_and_trim(s);
        for (i, part) in parts.iter().enumerate() {
            if part == "||" {
                if i == 0 || i + 1 == parts.len() || all_of.is_empty() {
                    return Err(err("|| without a range on both sides"));
                }
                any_of.push(std::mem::take(&mut all_of));
                continue;
            }
            let Some(at) = part.find(|c: char| c.is_ascii_digit()) else {
                return Err(err("a comparator without a version"));
            };
            let op = match &part[..at] {
                "" | "=" | "==" => Op::Eq,
                "!" | "!=" => Op::Ne,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                "<=" => Op::Le,
                _ => return Err(err("an unknown comparison operator")),
            };
            let v = &part[at..];
            if v.contains(['x', 'X', '*']) && !v.contains('-') {
                return Err(err("wildcard versions are not supported"));
            }
            let version = Version::parse(v).map_err(|e| err(e.reason))?;
            all_of.push((op, version));
        }
        if all_of.is_empty() {
            return Err(err("empty range"));
        }
        any_of.push(all_of);
        Ok(Range { any_of })
    }

    /// Whether `v` is in the range.
    pub fn contains(&self, v: &Version) -> bool {
        self.any_of.iter().any(|all| {
            all.iter().all(|(op, r)| {
                let c = v.cmp(r);
                match op {
                    Op::Eq => c == Ordering::Equal,
                    Op::Ne => c != Ordering::Equal,
                    Op::Gt => c == Ordering::Greater,
                    Op::Ge => c != Ordering::Less,
                    Op::Lt => c == Ordering::Less,
                    Op::Le => c != Ordering::Greater,
                }
            })
        })
    }
}

#[cfg(test)]
mod tests;
