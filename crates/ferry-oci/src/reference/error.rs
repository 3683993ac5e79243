//! Why a string is not a valid image reference ([`ReferenceError`]) or private-registry URL
//! ([`RegistryPrefixError`]). Every variant carries the whole input; every message quotes it
//! (shortened), names the offending part and shows a valid example.

use crate::digest::{DigestError, truncate_for_message};

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
