//! Image references: parsing and normalising them exactly like docker/distribution's
//! `reference.ParseNormalizedNamed` (+ `TagNameOnly`), and rewriting them onto a private
//! registry the way Rancher RKE does ([`RegistryPrefix`], [`Reference::rebase`]).
//!
//! Grammar (distribution/reference), hand-written here instead of with regexes:
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component ( "/" path-component )*
//! domain         := host [ ":" port ]            host: DNS name | IPv4 | "[" IPv6 "]"
//! path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*     separator := [._] | "__" | "-"+
//! tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! The first `/`-separated component is a registry domain only if it contains `.` or `:` or
//! is `localhost`; otherwise the reference is on Docker Hub (`docker.io`) and a one-component
//! path gets the implied `library/` namespace.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::oci::digest::{Digest, DigestError, truncate_for_message};

/// The canonical domain of Docker Hub.
const DOCKER_HUB: &str = "docker.io";
/// The legacy domain of Docker Hub, normalised to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// The tag docker assumes when a reference has neither tag nor digest.
const DEFAULT_TAG: &str = "latest";
/// distribution/reference's `NameTotalLengthMax`: limit on `domain/path`.
const NAME_MAX_LEN: usize = 255;
/// Longest tag distribution accepts.
const TAG_MAX_LEN: usize = 128;
/// Highest TCP port.
const PORT_MAX: u32 = 65_535;

/// `input` shortened to 100 characters and quoted (with escapes) for an error message.
fn quote(input: &str) -> String {
    format!("{:?}", truncate_for_message(input))
}

/// Why a string is not a valid image reference. Every variant carries the whole input; its
/// message quotes it (truncated), names the offending part and shows a valid example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input was empty.
    #[error(
        "invalid image reference \"\": the reference is empty (e.g. rancher/rke-tools:v0.1.103)"
    )]
    Empty {
        /// The rejected input (always empty).
        input: String,
    },
    /// The input starts with a URL scheme such as `https://`.
    #[error(
        "invalid image reference {}: image references have no URL scheme, drop \"{}://\" (e.g. {})",
        quote(.input), truncate_for_message(.scheme), truncate_for_message(.rest)
    )]
    Scheme {
        /// The rejected input.
        input: String,
        /// The scheme as written (before `://`).
        scheme: String,
        /// The input after `://`.
        rest: String,
    },
    /// The input is 64 hex digits: an image ID, which docker refuses as a repository name.
    #[error(
        "invalid image reference {}: a 64-character hex string is an image ID, not a repository name (e.g. rancher/rke-tools:v0.1.103 or rancher/rke-tools@sha256:<hex>)",
        quote(.input)
    )]
    HexIdentifier {
        /// The rejected input.
        input: String,
    },
    /// The registry host is not a DNS name, IPv4 address or bracketed IPv6 address.
    #[error(
        "invalid image reference {}: registry host {} is not a valid host name, IPv4 address or bracketed IPv6 address (e.g. registry.example.com:5000/rancher/rke-tools:v0.1.103)",
        quote(.input), quote(.domain)
    )]
    InvalidDomain {
        /// The rejected input.
        input: String,
        /// The registry part (`host[:port]`) as written.
        domain: String,
    },
    /// The registry port is not a number from 1 to 65535.
    #[error(
        "invalid image reference {}: registry port {} must be a number from 1 to 65535 (e.g. registry.example.com:5000/rancher/rke-tools:v0.1.103)",
        quote(.input), quote(.port)
    )]
    InvalidPort {
        /// The rejected input.
        input: String,
        /// The port as written (after the host's `:`).
        port: String,
    },
    /// There is no repository path (e.g. `registry.example.com/`, `:v1`, `@sha256:…`).
    #[error(
        "invalid image reference {}: the repository name is missing (e.g. rancher/rke-tools:v0.1.103)",
        quote(.input)
    )]
    MissingRepository {
        /// The rejected input.
        input: String,
    },
    /// The repository path contains uppercase letters.
    #[error(
        "invalid image reference {}: repository names must be lowercase (e.g. rancher/rke-tools:v0.1.103)",
        quote(.input)
    )]
    Uppercase {
        /// The rejected input.
        input: String,
        /// The repository path as written.
        repository: String,
    },
    /// A `/`-separated component of the repository path breaks the grammar.
    #[error(
        "invalid image reference {}: repository path component {} must be lowercase letters and digits, optionally joined by '.', '_', '__' or dashes, without leading, trailing or empty parts (e.g. rancher/rke-tools:v0.1.103)",
        quote(.input), quote(.component)
    )]
    InvalidPathComponent {
        /// The rejected input.
        input: String,
        /// The offending component (empty for `a//b`).
        component: String,
    },
    /// The tag breaks `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "invalid image reference {}: tag {} must be 1 to 128 letters, digits, '_', '.' or '-' and must not start with '.' or '-' (e.g. rancher/rke-tools:v0.1.103)",
        quote(.input), quote(.tag)
    )]
    InvalidTag {
        /// The rejected input.
        input: String,
        /// The tag as written (after the `:`).
        tag: String,
    },
    /// The digest after `@` is not a valid digest.
    #[error(
        "invalid image reference {}: {error} (e.g. rancher/rke-tools@sha256:<64 lowercase hex digits>)",
        quote(.input)
    )]
    InvalidDigest {
        /// The rejected input.
        input: String,
        /// What is wrong with the digest.
        error: DigestError,
    },
    /// `registry/repository` is longer than docker's limit of 255 characters.
    #[error(
        "invalid image reference {}: the name {} is {length} characters long, the limit is 255 (e.g. rancher/rke-tools:v0.1.103)",
        quote(.input), quote(.name)
    )]
    NameTooLong {
        /// The rejected input.
        input: String,
        /// The normalised `registry/repository`.
        name: String,
        /// Its length in characters.
        length: usize,
    },
}

/// Why a string is not a valid private-registry URL (`host[:port][/path...]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryPrefixError {
    /// The input was empty.
    #[error("invalid registry URL \"\": it is empty (e.g. registry.example.com:5000/project)")]
    Empty {
        /// The rejected input (always empty).
        input: String,
    },
    /// The input starts with a URL scheme; RKE matches registry URLs without one.
    #[error(
        "invalid registry URL {}: drop \"{}://\", RKE matches registry URLs without a scheme (e.g. {})",
        quote(.input), truncate_for_message(.scheme), truncate_for_message(.rest)
    )]
    Scheme {
        /// The rejected input.
        input: String,
        /// The scheme as written.
        scheme: String,
        /// The input after `://`.
        rest: String,
    },
    /// The input ends with `/`.
    #[error(
        "invalid registry URL {}: remove the trailing '/' (e.g. registry.example.com:5000/project)",
        quote(.input)
    )]
    TrailingSlash {
        /// The rejected input.
        input: String,
    },
    /// The host is not a DNS name, IPv4 address or bracketed IPv6 address.
    #[error(
        "invalid registry URL {}: host {} is not a valid host name, IPv4 address or bracketed IPv6 address (e.g. registry.example.com:5000/project)",
        quote(.input), quote(.host)
    )]
    InvalidHost {
        /// The rejected input.
        input: String,
        /// The host part as written.
        host: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error(
        "invalid registry URL {}: port {} must be a number from 1 to 65535 (e.g. registry.example.com:5000/project)",
        quote(.input), quote(.port)
    )]
    InvalidPort {
        /// The rejected input.
        input: String,
        /// The port as written.
        port: String,
    },
    /// The host has no `.` or `:` and is not `localhost`, so docker would read
    /// `host/rancher/x` as a Docker Hub repository instead of a registry.
    #[error(
        "invalid registry URL {}: docker would not recognise {} as a registry (it needs a '.', a ':port' or to be 'localhost'); use the fully qualified name or add the port (e.g. {}.example.com or {}:5000)",
        quote(.input), quote(.host), truncate_for_message(.host), truncate_for_message(.host)
    )]
    NotARegistryHost {
        /// The rejected input.
        input: String,
        /// The host as written.
        host: String,
    },
    /// A path component after the host breaks the repository path-component grammar.
    #[error(
        "invalid registry URL {}: path component {} must be lowercase letters and digits, optionally joined by '.', '_', '__' or dashes, without leading, trailing or empty parts (e.g. registry.example.com:5000/project)",
        quote(.input), quote(.component)
    )]
    InvalidPathComponent {
        /// The rejected input.
        input: String,
        /// The offending component (empty for `host//path`).
        component: String,
    },
}

/// What is wrong with a `host[:port]` string.
enum DomainProblem {
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
fn check_domain(domain: &str) -> Result<(), DomainProblem> {
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
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// Docker Hub's legacy domain becomes `docker.io`; every other domain is kept as written.
fn normalize_registry(domain: &str) -> &str {
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
fn invalid_path_component(path: &str) -> Option<&str> {
    path.split('/').find(|c| !is_path_component(c))
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
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
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    input.split_once("://")
}

/// A parsed, normalised image reference such as `docker.io/rancher/rke-tools:v0.1.103`.
///
/// Besides the normalised registry and repository it remembers the repository path as the
/// user wrote it ([`Reference::written_path`]), which is what RKE's registry rewrite uses.
///
/// Equality, hashing and ordering compare the *normalised* image (registry, repository,
/// tag, digest) and ignore how it was written: `alpine` equals `docker.io/library/alpine:latest`.
#[derive(Clone, Debug)]
pub struct Reference {
    registry: String,
    repository: String,
    written_path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `input` like docker's `ParseNormalizedNamed` followed by
    /// `TagNameOnly`: Docker Hub names get `docker.io` and (for one-component paths)
    /// `library/`, `index.docker.io` becomes `docker.io`, and a reference without tag and
    /// digest gets the tag `latest`.
    ///
    /// One deliberate difference from current docker: a first component with uppercase
    /// letters but without `.`/`:` (e.g. `UPPER/x`) is not taken as a registry host but
    /// rejected as an uppercase repository name.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let owned = || input.to_owned();
        if input.is_empty() {
            return Err(ReferenceError::Empty { input: owned() });
        }
        if let Some((scheme, rest)) = split_scheme(input) {
            return Err(ReferenceError::Scheme {
                input: owned(),
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            });
        }
        if input.len() == 64 && input.bytes().all(is_lower_hex) {
            return Err(ReferenceError::HexIdentifier { input: owned() });
        }

        // Neither a name nor a tag may contain '@', so the first one starts the digest.
        let (name_and_tag, digest_text) = match input.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (input, None),
        };
        let (domain, remainder) = match name_and_tag.split_once('/') {
            Some((first, rest)) if looks_like_domain(first) => (Some(first), rest),
            _ => (None, name_and_tag),
        };
        // Paths contain no ':', so the first one after the domain starts the tag.
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };

        if path.chars().any(char::is_uppercase) {
            return Err(ReferenceError::Uppercase {
                input: owned(),
                repository: path.to_owned(),
            });
        }
        let registry = match domain {
            None => DOCKER_HUB,
            Some(domain) => {
                match check_domain(domain) {
                    Ok(()) => {}
                    Err(DomainProblem::Host) => {
                        return Err(ReferenceError::InvalidDomain {
                            input: owned(),
                            domain: domain.to_owned(),
                        });
                    }
                    Err(DomainProblem::Port(port)) => {
                        return Err(ReferenceError::InvalidPort {
                            input: owned(),
                            port,
                        });
                    }
                }
                normalize_registry(domain)
            }
        };
        if path.is_empty() {
            return Err(ReferenceError::MissingRepository { input: owned() });
        }
        if let Some(component) = invalid_path_component(path) {
            return Err(ReferenceError::InvalidPathComponent {
                input: owned(),
                component: component.to_owned(),
            });
        }
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(ReferenceError::InvalidTag {
                input: owned(),
                tag: tag.to_owned(),
            });
        }
        let digest = match digest_text {
            None => None,
            Some(text) => {
                Some(
                    Digest::parse(text).map_err(|error| ReferenceError::InvalidDigest {
                        input: owned(),
                        error,
                    })?,
                )
            }
        };
        Reference::assemble(input, registry, path, tag, digest)
    }

    /// Builds a reference from validated parts: adds `library/` on Docker Hub, the default
    /// tag, and checks the total name length.
    fn assemble(
        input: &str,
        registry: &str,
        written_path: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let repository = if registry == DOCKER_HUB && !written_path.contains('/') {
            format!("{OFFICIAL_PREFIX}{written_path}")
        } else {
            written_path.to_owned()
        };
        let length = registry.len() + 1 + repository.len();
        if length > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                input: input.to_owned(),
                name: format!("{registry}/{repository}"),
                length,
            });
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            written_path: written_path.to_owned(),
            tag,
            digest,
        })
    }

    /// The registry domain with optional port: `docker.io` for Docker Hub, otherwise as
    /// written (e.g. `registry.example.com:5000`, `[::1]:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The normalised repository path, e.g. `library/alpine` or `rancher/rke-tools`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, e.g. `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository path as the user wrote it: without Docker Hub's implied `library/`
    /// and without the registry (an explicit `docker.io/` or `index.docker.io/` is
    /// dropped too). `busybox` → `busybox`, `library/busybox` → `library/busybox`,
    /// `docker.io/rancher/rke-tools:v1` → `rancher/rke-tools`,
    /// `quay.io/coreos/etcd` → `coreos/etcd`.
    pub fn written_path(&self) -> &str {
        &self.written_path
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Whether the image lives on Docker Hub (`docker.io`).
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// docker's short ("familiar") form: on Docker Hub `docker.io/` is dropped and so is
    /// `library/` for one-level official images (`alpine:latest`,
    /// `rancher/rke-tools:v0.1.103`); other registries stay (`reg:5000/a/b:t`).
    pub fn familiar(&self) -> String {
        let mut out = if self.is_docker_hub() {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        self.push_tag_and_digest(&mut out);
        out
    }

    fn push_tag_and_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
    }

    /// The same image pinned to `digest` (the tag, if any, is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference without its digest; if that leaves neither tag nor digest, the
    /// tag becomes `latest` (as parsing the result's text would make it).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            tag: Some(self.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned())),
            ..self.clone()
        }
    }

    /// The same reference with tag `tag` (replacing any tag; the digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                input: format!("{}:{tag}", self.name()),
                tag: tag.to_owned(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The image RKE pulls after rewriting this (default) system image onto the default
    /// private registry `prefix`.
    ///
    /// RKE does no normalisation at all: it builds the string `prefix + "/" + image` and
    /// hands it to docker. So the result has registry `prefix.host()` and repository
    /// `prefix.path() + "/" + self.written_path()` (or just the written path), with tag and
    /// digest kept; it equals `Reference::parse(&format!("{prefix}/{written}"))` where
    /// `written` is the written path plus `:tag` / `@digest`. (A prefix on Docker Hub gets
    /// docker's usual normalisation, e.g. `library/` for a one-component result.)
    ///
    /// The source registry of a non-Docker-Hub image is not part of the written path, so
    /// `quay.io/coreos/etcd:v3` rebased onto `reg.local` becomes `reg.local/coreos/etcd:v3`.
    ///
    /// The result is not checked against docker's 255-character name limit; use
    /// [`Reference::try_rebase`] for that.
    pub fn rebase(&self, prefix: &RegistryPrefix) -> Reference {
        let (registry, written_path, repository) = self.rebased_parts(prefix);
        Reference {
            registry: registry.to_owned(),
            repository,
            written_path,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }

    /// Like [`Reference::rebase`], but fails with [`ReferenceError::NameTooLong`] when the
    /// rewritten name exceeds docker's limit (docker would refuse to pull it).
    pub fn try_rebase(&self, prefix: &RegistryPrefix) -> Result<Reference, ReferenceError> {
        let rebased = self.rebase(prefix);
        let length = rebased.registry.len() + 1 + rebased.repository.len();
        if length > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                input: format!("{prefix}/{}", self.written_path),
                name: rebased.name(),
                length,
            });
        }
        Ok(rebased)
    }

    fn rebased_parts<'p>(&self, prefix: &'p RegistryPrefix) -> (&'p str, String, String) {
        let registry = normalize_registry(prefix.host());
        let written_path = match prefix.path() {
            Some(path) => format!("{path}/{}", self.written_path),
            None => self.written_path.clone(),
        };
        let repository = if registry == DOCKER_HUB && !written_path.contains('/') {
            format!("{OFFICIAL_PREFIX}{written_path}")
        } else {
            written_path.clone()
        };
        (registry, written_path, repository)
    }

    fn identity(&self) -> (&str, &str, Option<&str>, Option<&Digest>) {
        (
            &self.registry,
            &self.repository,
            self.tag.as_deref(),
            self.digest.as_ref(),
        )
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

impl PartialEq for Reference {
    fn eq(&self, other: &Reference) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Reference {}

impl Hash for Reference {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl PartialOrd for Reference {
    fn partial_cmp(&self, other: &Reference) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reference {
    fn cmp(&self, other: &Reference) -> Ordering {
        self.identity().cmp(&other.identity())
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/alpine:latest`,
    /// `reg.example.com:5000/a/b@sha256:…`, `…:tag@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_tag_and_digest(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

/// A private-registry URL as RKE's `private_registries[].url` holds it:
/// `host[:port][/path...]`, e.g. `registry.com:5555`, `1.1.1.1:5555/artifactory`,
/// `harbor.local/project/sub`, `[::1]:5000`. No scheme, no trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryPrefix {
    text: String,
    host_len: usize,
}

impl RegistryPrefix {
    /// Parses and validates a registry URL.
    ///
    /// The host must be one docker recognises as a registry when it is the first component
    /// of an image name (it contains `.` or `:`, or is `localhost`); path components follow
    /// the repository path-component grammar (lowercase).
    pub fn parse(input: &str) -> Result<RegistryPrefix, RegistryPrefixError> {
        let owned = || input.to_owned();
        if input.is_empty() {
            return Err(RegistryPrefixError::Empty { input: owned() });
        }
        if let Some((scheme, rest)) = split_scheme(input) {
            return Err(RegistryPrefixError::Scheme {
                input: owned(),
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            });
        }
        if input.ends_with('/') {
            return Err(RegistryPrefixError::TrailingSlash { input: owned() });
        }
        let (host, path) = match input.split_once('/') {
            Some((host, path)) => (host, Some(path)),
            None => (input, None),
        };
        match check_domain(host) {
            Ok(()) => {}
            Err(DomainProblem::Host) => {
                return Err(RegistryPrefixError::InvalidHost {
                    input: owned(),
                    host: host.to_owned(),
                });
            }
            Err(DomainProblem::Port(port)) => {
                return Err(RegistryPrefixError::InvalidPort {
                    input: owned(),
                    port,
                });
            }
        }
        if !looks_like_domain(host) {
            return Err(RegistryPrefixError::NotARegistryHost {
                input: owned(),
                host: host.to_owned(),
            });
        }
        if let Some(component) = path.and_then(invalid_path_component) {
            return Err(RegistryPrefixError::InvalidPathComponent {
                input: owned(),
                component: component.to_owned(),
            });
        }
        Ok(RegistryPrefix {
            text: owned(),
            host_len: host.len(),
        })
    }

    /// The host with its port, if any: `registry.com:5555`, `[::1]:5000`.
    pub fn host(&self) -> &str {
        self.text.get(..self.host_len).unwrap_or(&self.text)
    }

    /// The path after the host, if any: `artifactory`, `project/sub`.
    pub fn path(&self) -> Option<&str> {
        self.text
            .get(self.host_len..)
            .and_then(|rest| rest.strip_prefix('/'))
    }

    /// The URL exactly as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RegistryPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for RegistryPrefix {
    type Err = RegistryPrefixError;

    fn from_str(s: &str) -> Result<RegistryPrefix, RegistryPrefixError> {
        RegistryPrefix::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(s: &str) -> Reference {
        match Reference::parse(s) {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn prefix(s: &str) -> RegistryPrefix {
        match RegistryPrefix::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn err(s: &str) -> ReferenceError {
        match Reference::parse(s) {
            Ok(r) => panic!("{s:?} should be rejected, parsed as {r}"),
            Err(e) => e,
        }
    }

    /// Parses `input` (with `{D}` replaced by a sha256 digest) and checks every accessor.
    /// `Display` is checked as `registry/repository[:tag][@digest]`.
    fn check_case(
        input: &str,
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        familiar: &str,
        written: &str,
    ) {
        let digest = format!("sha256:{HEX}");
        let input = input.replace("{D}", &digest);
        let familiar = familiar.replace("{D}", &digest);
        let has_digest = input.contains('@');
        let r = parse(&input);
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        let expected_digest = has_digest.then_some(digest.as_str());
        assert_eq!(r.digest().map(Digest::as_str), expected_digest, "{input}");
        let mut display = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            display = format!("{display}:{tag}");
        }
        if has_digest {
            display = format!("{display}@{digest}");
        }
        assert_eq!(r.to_string(), display, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
        assert_eq!(r.written_path(), written, "{input}");
        assert_eq!(r.is_docker_hub(), registry == "docker.io", "{input}");
        assert_eq!(parse(&display), r, "{input}: Display must round-trip");
        assert_eq!(parse(&familiar), r, "{input}: familiar() must round-trip");
        assert_eq!(input.parse::<Reference>(), Ok(r.clone()));
    }

    #[test]
    #[rustfmt::skip]
    fn docker_documented_cases() {
        let latest = Some("latest");
        // input, registry, repository, tag, familiar(), written_path()
        check_case("alpine", "docker.io", "library/alpine", latest, "alpine:latest", "alpine");
        check_case("localhost/foo", "localhost", "foo", latest, "localhost/foo:latest", "foo");
        check_case("localhost:5000/foo/bar:t", "localhost:5000", "foo/bar", Some("t"),
            "localhost:5000/foo/bar:t", "foo/bar");
        check_case("foo.com/bar", "foo.com", "bar", latest, "foo.com/bar:latest", "bar");
        check_case("foo:5000/bar", "foo:5000", "bar", latest, "foo:5000/bar:latest", "bar");
        check_case("rancher/rke-tools:v0.1.103", "docker.io", "rancher/rke-tools", Some("v0.1.103"),
            "rancher/rke-tools:v0.1.103", "rancher/rke-tools");
        check_case("docker.io/rancher/x", "docker.io", "rancher/x", latest, "rancher/x:latest",
            "rancher/x");
        check_case("index.docker.io/library/alpine", "docker.io", "library/alpine", latest,
            "alpine:latest", "library/alpine");
        check_case("docker.io/alpine", "docker.io", "library/alpine", latest, "alpine:latest",
            "alpine");
        check_case("library/busybox", "docker.io", "library/busybox", latest, "busybox:latest",
            "library/busybox");
        check_case("library/a/b", "docker.io", "library/a/b", latest, "library/a/b:latest",
            "library/a/b");
        check_case("a/b/c/d:tag@{D}", "docker.io", "a/b/c/d", Some("tag"), "a/b/c/d:tag@{D}",
            "a/b/c/d");
        check_case("alpine@{D}", "docker.io", "library/alpine", None, "alpine@{D}", "alpine");
        check_case("reg.example.com:5000/a/b@{D}", "reg.example.com:5000", "a/b", None,
            "reg.example.com:5000/a/b@{D}", "a/b");
        check_case("[::1]:5000/x:y", "[::1]:5000", "x", Some("y"), "[::1]:5000/x:y", "x");
        check_case("[2001:db8::1]/x", "[2001:db8::1]", "x", latest, "[2001:db8::1]/x:latest", "x");
        check_case("192.168.1.1/a__b.c-d---e_f:V1.0_rc-1", "192.168.1.1", "a__b.c-d---e_f",
            Some("V1.0_rc-1"), "192.168.1.1/a__b.c-d---e_f:V1.0_rc-1", "a__b.c-d---e_f");
        // No '/' means no domain, even with a ':' (that is the tag).
        check_case("foo:5000", "docker.io", "library/foo", Some("5000"), "foo:5000", "foo");
        check_case("reg.example.com", "docker.io", "library/reg.example.com", latest,
            "reg.example.com:latest", "reg.example.com");
        // Domains may be mixed case; only the repository must be lowercase.
        check_case("Reg.Example.com/x", "Reg.Example.com", "x", latest, "Reg.Example.com/x:latest",
            "x");
    }

    #[test]
    fn errors() {
        let long_tag = "t".repeat(129);
        assert!(matches!(err(""), ReferenceError::Empty { .. }));
        assert!(matches!(err("UPPER/x"), ReferenceError::Uppercase { .. }));
        assert!(
            matches!(err("a//b"), ReferenceError::InvalidPathComponent { component, .. } if component.is_empty())
        );
        assert!(matches!(err("a/b:"), ReferenceError::InvalidTag { tag, .. } if tag.is_empty()));
        assert!(
            matches!(err("-a/b"), ReferenceError::InvalidPathComponent { component, .. } if component == "-a")
        );
        assert!(
            matches!(err("a/b:tag with space"), ReferenceError::InvalidTag { tag, .. } if tag == "tag with space")
        );
        assert!(matches!(err("a:b:c"), ReferenceError::InvalidTag { tag, .. } if tag == "b:c"));
        assert!(matches!(
            err(&format!("a/b:{long_tag}")),
            ReferenceError::InvalidTag { .. }
        ));
        assert!(parse(&format!("a/b:{}", "t".repeat(128))).tag().is_some());
        assert!(matches!(
            err("a/b@sha256:abc"),
            ReferenceError::InvalidDigest {
                error: DigestError::WrongLength { .. },
                ..
            }
        ));
        assert!(matches!(
            err(&format!("a/b@md5:{HEX}")),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err("a/b@"),
            ReferenceError::InvalidDigest {
                error: DigestError::Empty,
                ..
            }
        ));
        assert!(
            matches!(err("https://reg/x"), ReferenceError::Scheme { scheme, rest, .. } if scheme == "https" && rest == "reg/x")
        );
        assert!(matches!(err(HEX), ReferenceError::HexIdentifier { .. }));
        assert!(matches!(
            err("reg.example.com/"),
            ReferenceError::MissingRepository { .. }
        ));
        assert!(matches!(
            err(":v1"),
            ReferenceError::MissingRepository { .. }
        ));
        assert!(matches!(
            err(&format!("@sha256:{HEX}")),
            ReferenceError::MissingRepository { .. }
        ));
        assert!(
            matches!(err("reg_x.com/a"), ReferenceError::InvalidDomain { domain, .. } if domain == "reg_x.com")
        );
        assert!(matches!(
            err("-reg.com/a"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(matches!(
            err("reg..com/a"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(matches!(
            err("[::1/a"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(matches!(
            err("[]:5000/a"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(matches!(
            err("[::1]x/a"),
            ReferenceError::InvalidDomain { .. }
        ));
        assert!(
            matches!(err("reg.com:0/a"), ReferenceError::InvalidPort { port, .. } if port == "0")
        );
        assert!(matches!(
            err("reg.com:65536/a"),
            ReferenceError::InvalidPort { .. }
        ));
        assert!(matches!(
            err("reg.com:/a"),
            ReferenceError::InvalidPort { .. }
        ));
        assert!(matches!(
            err("reg.com:50a/a"),
            ReferenceError::InvalidPort { .. }
        ));
        assert!(
            matches!(err("a/b_/c"), ReferenceError::InvalidPathComponent { component, .. } if component == "b_")
        );
        assert!(matches!(
            err("a/b___c"),
            ReferenceError::InvalidPathComponent { .. }
        ));
        assert!(matches!(
            err("a/b._c"),
            ReferenceError::InvalidPathComponent { .. }
        ));
        assert!(matches!(
            err("a/.b"),
            ReferenceError::InvalidPathComponent { .. }
        ));
        assert!(matches!(
            err("a/b/"),
            ReferenceError::InvalidPathComponent { .. }
        ));
        assert!(matches!(err("a/b:.tag"), ReferenceError::InvalidTag { .. }));
        assert!(matches!(err("a/b:-tag"), ReferenceError::InvalidTag { .. }));
        let long_name = format!("reg.com/{}", ["abcdefghij"; 23].join("/"));
        assert!(matches!(
            err(&long_name),
            ReferenceError::NameTooLong { length: 260, .. }
        ));
        let just_fits = format!(
            "docker.io/{}/abcdefghijklmnopqrst",
            ["abcdefghij"; 20].join("/")
        );
        assert_eq!(just_fits.len(), 250);
        assert!(Reference::parse(&just_fits).is_ok());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            err("rancher/RKE-tools:v1").to_string(),
            "invalid image reference \"rancher/RKE-tools:v1\": repository names must be lowercase (e.g. rancher/rke-tools:v0.1.103)"
        );
        let msg = err("https://reg/x").to_string();
        assert!(
            msg.contains("drop \"https://\"") && msg.contains("(e.g. reg/x)"),
            "{msg}"
        );
        let msg = err("a/b:tag with space").to_string();
        assert!(msg.contains("tag \"tag with space\""), "{msg}");
        let msg = err("a/b@sha256:abc").to_string();
        assert!(
            msg.contains("\"sha256:abc\"") && msg.contains("64 hex digits"),
            "{msg}"
        );
        let msg = err(&format!("a/{}:{}", "b".repeat(300), "x y")).to_string();
        assert!(msg.len() < 600 && msg.contains('…'), "{msg}");
    }

    #[test]
    fn modifiers() -> Result<(), ReferenceError> {
        let digest = Digest::sha256_of(b"x");
        let r = parse("alpine");
        let pinned = r.with_digest(digest.clone());
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/alpine:latest@{digest}")
        );
        assert_eq!(pinned.without_digest(), r);
        let digest_only = parse(&format!("alpine@{digest}"));
        assert_eq!(digest_only.tag(), None);
        assert_eq!(digest_only.without_digest().tag(), Some("latest"));
        let retagged = pinned.with_tag("3.20")?;
        assert_eq!(retagged.familiar(), format!("alpine:3.20@{digest}"));
        assert_eq!(retagged.written_path(), "alpine");
        assert!(matches!(
            r.with_tag("bad tag"),
            Err(ReferenceError::InvalidTag { .. })
        ));
        Ok(())
    }

    #[test]
    fn equality_ignores_spelling() {
        use std::collections::HashSet;
        let set: HashSet<Reference> = [
            "alpine",
            "docker.io/library/alpine:latest",
            "index.docker.io/alpine",
        ]
        .into_iter()
        .map(parse)
        .collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn registry_prefixes() {
        let valid: &[(&str, &str, Option<&str>)] = &[
            ("registry.com", "registry.com", None),
            ("registry.com:5555", "registry.com:5555", None),
            ("1.1.1.1", "1.1.1.1", None),
            (
                "1.1.1.1:5555/artifactory",
                "1.1.1.1:5555",
                Some("artifactory"),
            ),
            (
                "harbor.local/project/sub",
                "harbor.local",
                Some("project/sub"),
            ),
            ("localhost:5000", "localhost:5000", None),
            ("localhost", "localhost", None),
            ("[::1]:5000", "[::1]:5000", None),
            ("[::1]/mirror", "[::1]", Some("mirror")),
        ];
        for (input, host, path) in valid {
            let p = prefix(input);
            assert_eq!(p.host(), *host);
            assert_eq!(p.path(), *path);
            assert_eq!(p.to_string(), *input);
            assert_eq!(input.parse::<RegistryPrefix>(), Ok(p));
        }
        let perr = |s: &str| match RegistryPrefix::parse(s) {
            Ok(p) => panic!("{s:?} should be rejected, parsed as {p}"),
            Err(e) => e,
        };
        assert!(matches!(perr(""), RegistryPrefixError::Empty { .. }));
        assert!(matches!(
            perr("https://registry.com"),
            RegistryPrefixError::Scheme { .. }
        ));
        assert!(
            perr("https://registry.com")
                .to_string()
                .contains("drop \"https://\"")
        );
        assert!(matches!(
            perr("registry.com/"),
            RegistryPrefixError::TrailingSlash { .. }
        ));
        assert!(matches!(
            perr("registry.com/proj/"),
            RegistryPrefixError::TrailingSlash { .. }
        ));
        assert!(matches!(
            perr("reg_istry.com"),
            RegistryPrefixError::InvalidHost { .. }
        ));
        assert!(matches!(
            perr("/registry.com"),
            RegistryPrefixError::InvalidHost { .. }
        ));
        assert!(matches!(
            perr("registry.com:99999"),
            RegistryPrefixError::InvalidPort { .. }
        ));
        assert!(matches!(
            perr("registry"),
            RegistryPrefixError::NotARegistryHost { .. }
        ));
        assert!(matches!(
            perr("registry.com/Project"),
            RegistryPrefixError::InvalidPathComponent { .. }
        ));
        assert!(
            matches!(perr("registry.com//p"), RegistryPrefixError::InvalidPathComponent { component, .. } if component.is_empty())
        );
    }

    #[test]
    fn rebase_like_rke() {
        let cases = [
            (
                "rancher/rke-tools:v0.1.103",
                "registry.com",
                "registry.com/rancher/rke-tools:v0.1.103",
            ),
            (
                "rancher/rke-tools:v0.1.103",
                "1.1.1.1:5555/artifactory",
                "1.1.1.1:5555/artifactory/rancher/rke-tools:v0.1.103",
            ),
            (
                "busybox",
                "harbor.local/project/sub",
                "harbor.local/project/sub/busybox:latest",
            ),
            (
                "library/busybox:1",
                "reg.local",
                "reg.local/library/busybox:1",
            ),
            ("busybox:1", "reg.local", "reg.local/busybox:1"),
            (
                "docker.io/rancher/x:v1",
                "localhost:5000",
                "localhost:5000/rancher/x:v1",
            ),
            (
                "quay.io/coreos/etcd:v3",
                "reg.local",
                "reg.local/coreos/etcd:v3",
            ),
            (
                "busybox:1",
                "index.docker.io",
                "docker.io/library/busybox:1",
            ),
            (
                "busybox:1",
                "docker.io/mirror",
                "docker.io/mirror/busybox:1",
            ),
        ];
        for (image, pre, expected) in cases {
            let r = parse(image);
            let p = prefix(pre);
            let rebased = r.rebase(&p);
            assert_eq!(rebased.to_string(), expected, "{image} onto {pre}");
            let written = format!("{}:{}", r.written_path(), r.tag().unwrap_or_default());
            assert_eq!(parse(&format!("{p}/{written}")), rebased);
            assert_eq!(r.try_rebase(&p), Ok(rebased));
        }
        let long = parse(&format!("{}/x", ["abcdefghij"; 22].join("/")));
        let too_long = long.try_rebase(&prefix("registry.example.com/mirror"));
        assert!(matches!(too_long, Err(ReferenceError::NameTooLong { .. })));
    }

    // ---- property tests -------------------------------------------------------------

    /// A path component; without '.' when it could be mistaken for a registry domain.
    fn component(allow_dot: bool) -> BoxedStrategy<String> {
        if allow_dot {
            "[a-z0-9]{1,5}(([._]|__|-{1,3})[a-z0-9]{1,5}){0,2}".boxed()
        } else {
            "[a-z0-9]{1,5}(([_]|__|-{1,3})[a-z0-9]{1,5}){0,2}".boxed()
        }
    }

    fn port() -> impl Strategy<Value = String> {
        (1u32..=65_535).prop_map(|p| p.to_string())
    }

    fn ipv4() -> impl Strategy<Value = String> {
        proptest::array::uniform4(any::<u8>()).prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"))
    }

    fn dns_host() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?){1,2}"
    }

    /// A domain docker recognises as a registry.
    fn domain() -> impl Strategy<Value = String> {
        prop_oneof![
            dns_host(),
            (dns_host(), port()).prop_map(|(h, p)| format!("{h}:{p}")),
            Just("localhost".to_owned()),
            ("[a-z0-9]{1,8}", port()).prop_map(|(h, p)| format!("{h}:{p}")),
            (ipv4(), proptest::option::of(port()))
                .prop_map(|(h, p)| p.map_or(h.clone(), |p| format!("{h}:{p}"))),
            (
                "\\[[0-9a-f]{0,4}:[0-9a-f:]{0,8}\\]",
                proptest::option::of(port())
            )
                .prop_map(|(h, p)| p.map_or(h.clone(), |p| format!("{h}:{p}"))),
            Just("docker.io".to_owned()),
            Just("index.docker.io".to_owned()),
        ]
    }

    fn tag() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
            1 => "[A-Za-z0-9_][A-Za-z0-9_.-]{127}",
        ]
    }

    fn digest() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
            "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}"))
        ]
    }

    /// (input, expected registry, expected repository, expected written path)
    fn valid_reference() -> impl Strategy<Value = (String, String, String, String)> {
        (
            proptest::option::of(domain()),
            component(false),
            proptest::collection::vec(component(true), 0..4),
            proptest::option::of(tag()),
            proptest::option::of(digest()),
        )
            .prop_map(|(domain, first, rest, tag, digest)| {
                // Without a domain, the first component must not look like one.
                let first = if domain.is_none() && first == "localhost" {
                    "x".to_owned()
                } else {
                    first
                };
                let mut path = first;
                for c in rest {
                    path.push('/');
                    path.push_str(&c);
                }
                let mut input = match &domain {
                    Some(d) => format!("{d}/{path}"),
                    None => path.clone(),
                };
                if let Some(t) = tag {
                    input.push(':');
                    input.push_str(&t);
                }
                if let Some(d) = digest {
                    input.push('@');
                    input.push_str(&d);
                }
                let registry = match domain.as_deref() {
                    None | Some("index.docker.io") => "docker.io".to_owned(),
                    Some(d) => d.to_owned(),
                };
                let repository = if registry == "docker.io" && !path.contains('/') {
                    format!("library/{path}")
                } else {
                    path.clone()
                };
                (input, registry, repository, path)
            })
    }

    fn registry_prefix() -> impl Strategy<Value = String> {
        let host = prop_oneof![
            "[a-z][a-z0-9]{0,8}(\\.[a-z0-9]{1,8}){1,2}",
            Just("localhost".to_owned()),
            ipv4(),
        ];
        (
            host,
            proptest::option::of(port()),
            proptest::collection::vec(component(true), 0..3),
        )
            .prop_map(|(host, port, path)| {
                let mut s = host;
                if let Some(p) = port {
                    s.push(':');
                    s.push_str(&p);
                }
                for c in path {
                    s.push('/');
                    s.push_str(&c);
                }
                s
            })
    }

    /// A Docker Hub image as RKE lists them (`rancher/rke-tools:v0.1.103`), sometimes written
    /// with an explicit `docker.io/` and sometimes with a digest.
    fn docker_hub_image() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just(""), Just("docker.io/"), Just("index.docker.io/")],
            component(false),
            component(true),
            proptest::option::of(tag()),
            proptest::option::of(digest()),
        )
            .prop_map(|(domain, org, name, tag, digest)| {
                let mut s = format!("{domain}{org}/{name}");
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(&t);
                }
                if let Some(d) = digest {
                    s.push('@');
                    s.push_str(&d);
                }
                s
            })
    }

    fn to_fail(e: impl std::fmt::Display) -> TestCaseError {
        TestCaseError::fail(e.to_string())
    }

    proptest! {
        #[test]
        fn valid_references_parse_and_round_trip((input, registry, repository, written) in valid_reference()) {
            let r = Reference::parse(&input).map_err(to_fail)?;
            prop_assert_eq!(r.registry(), registry.as_str());
            prop_assert_eq!(r.repository(), repository.as_str());
            prop_assert_eq!(r.written_path(), written.as_str());
            prop_assert!(r.tag().is_some() || r.digest().is_some());
            let again = Reference::parse(&r.to_string()).map_err(to_fail)?;
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(again.to_string(), r.to_string());
            let familiar = Reference::parse(&r.familiar()).map_err(to_fail)?;
            prop_assert_eq!(familiar, r);
        }

        #[test]
        fn rebase_is_rke_concatenation(image in docker_hub_image(), pre in registry_prefix()) {
            let r = Reference::parse(&image).map_err(to_fail)?;
            let p = RegistryPrefix::parse(&pre).map_err(to_fail)?;
            prop_assert_eq!(p.to_string(), pre.clone());
            let mut written = r.written_path().to_owned();
            if let Some(t) = r.tag() {
                written.push(':');
                written.push_str(t);
            }
            if let Some(d) = r.digest() {
                written.push('@');
                written.push_str(d.as_str());
            }
            let expected = Reference::parse(&format!("{pre}/{written}")).map_err(to_fail)?;
            let rebased = r.rebase(&p);
            prop_assert_eq!(&rebased, &expected);
            prop_assert_eq!(rebased.written_path(), expected.written_path());
            prop_assert_eq!(rebased.to_string(), expected.to_string());
            prop_assert_eq!(rebased.registry(), p.host());
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Reference::parse(&s);
            let _ = RegistryPrefix::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_reference_alphabet(s in "[a-zA-Z0-9._:/@\\[\\]-]{0,40}") {
            // Whatever parses must round-trip through Display.
            if let Ok(r) = Reference::parse(&s) {
                let again = Reference::parse(&r.to_string()).map_err(to_fail)?;
                prop_assert_eq!(again, r);
            }
            if let Ok(p) = RegistryPrefix::parse(&s) {
                prop_assert_eq!(p.to_string(), s);
            }
        }
    }
}
