//! Rewriting images onto a private registry the way Rancher RKE does: the registry URL of a
//! `private_registries` entry ([`RegistryPrefix`], `host[:port][/path...]`) and
//! [`Reference::rebase`], which puts an image under it by plain string concatenation.

use std::fmt;
use std::str::FromStr;

use super::grammar::{
    DomainProblem, check_domain, invalid_path_component, looks_like_domain, normalize_registry,
    split_scheme,
};
use super::{
    DOCKER_HUB, NAME_MAX_LEN, OFFICIAL_PREFIX, Reference, ReferenceError, RegistryPrefixError,
};

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

impl Reference {
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
}
