//! The character-level rules of distribution/reference, hand-written instead of with regexes:
//! registry hosts (DNS name, IPv4, bracketed IPv6) and ports, repository path components and
//! tags, plus docker's rule for "is the first component a registry?" and Docker Hub's legacy
//! domain. Pure predicates: the parsers in the parent module turn their answers into errors.

use super::DOCKER_HUB;

/// The legacy domain of Docker Hub, normalised to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Longest tag distribution accepts.
const TAG_MAX_LEN: usize = 128;
/// Highest TCP port.
const PORT_MAX: u32 = 65_535;

/// What is wrong with a `host[:port]` string.
pub(super) enum DomainProblem {
    Host,
    Port(String),
}

/// A DNS label: `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// A port: digits only, value 1–65535.
fn is_port(port: &str) -> bool {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let value = port.bytes().fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    });
    (1..=PORT_MAX).contains(&value)
}

/// Validates `host[:port]` where host is a DNS name / IPv4 (dot-joined labels) or `[IPv6]`.
///
/// The IPv6 form follows distribution's `\[[a-fA-F0-9:]+\]`.
pub(super) fn check_domain(domain: &str) -> Result<(), DomainProblem> {
    let (host_ok, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(DomainProblem::Host);
        };
        let inside_ok =
            !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err(DomainProblem::Host),
            },
        };
        (inside_ok, port)
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        (host.split('.').all(is_domain_label), port)
    };
    if !host_ok {
        return Err(DomainProblem::Host);
    }
    match port {
        Some(port) if !is_port(port) => Err(DomainProblem::Port(port.to_owned())),
        _ => Ok(()),
    }
}

/// docker's rule for "is the first path component a registry?".
pub(super) fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// Docker Hub's legacy domain becomes `docker.io`; every other domain is kept as written.
pub(super) fn normalize_registry(domain: &str) -> &str {
    if domain == LEGACY_DOCKER_HUB {
        DOCKER_HUB
    } else {
        domain
    }
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A path component: `[a-z0-9]+ ((?:[._]|__|[-]+) [a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while bytes.get(i).is_some_and(|b| is_lower_alnum(*b)) {
            i += 1;
        }
        if i == start {
            return false; // empty component, leading or doubled separator, or bad character
        }
        match bytes.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            Some(b'-') => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => return false,
        }
    }
}

/// The first `/`-separated component of `path` that breaks the grammar, if any.
pub(super) fn invalid_path_component(path: &str) -> Option<&str> {
    path.split('/').find(|c| !is_path_component(c))
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(super) fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    bytes.len() <= TAG_MAX_LEN
        && (first.is_ascii_alphanumeric() || *first == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `input` = `<scheme>://<rest>`?
pub(super) fn split_scheme(input: &str) -> Option<(&str, &str)> {
    input.split_once("://")
}

pub(super) fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}
