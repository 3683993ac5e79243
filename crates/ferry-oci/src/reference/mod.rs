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
//!
//! The parts: `grammar` (the character-level rules above, as predicates), `error` (what is
//! wrong with an input, and the messages), `prefix` ([`RegistryPrefix`] and
//! [`Reference::rebase`]); this file holds the [`Reference`] type, its parser and accessors.

mod dedupe;
mod error;
mod grammar;
mod prefix;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

pub use dedupe::dedupe;
pub use error::{ReferenceError, RegistryPrefixError};
use grammar::{
    DomainProblem, check_domain, invalid_path_component, is_lower_hex, is_tag, looks_like_domain,
    normalize_registry, split_scheme,
};
pub use prefix::RegistryPrefix;

use crate::digest::Digest;

/// The canonical domain of Docker Hub.
const DOCKER_HUB: &str = "docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// The tag docker assumes when a reference has neither tag nor digest.
const DEFAULT_TAG: &str = "latest";
/// distribution/reference's `NameTotalLengthMax`: limit on `domain/path`.
const NAME_MAX_LEN: usize = 255;

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
            let first = self.repository.split('/').next().unwrap_or("");
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                // A first component that looks like a host would be read back as a
                // registry: keep `docker.io/` so the short form names the same image.
                _ if grammar::looks_like_domain(first) => self.name(),
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

    fn identity(&self) -> (&str, &str, Option<&str>, Option<&Digest>) {
        (
            &self.registry,
            &self.repository,
            self.tag.as_deref(),
            self.digest.as_ref(),
        )
    }
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
