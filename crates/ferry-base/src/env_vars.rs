//! Every environment variable ferry reads, its own and other tools', declared once (as uv's
//! `env_vars.rs` does): code names them through [`EnvVars`] and reads them only through
//! [`EnvVars::var`] and [`EnvVars::var_os`], `--help` shows them next to the flags they stand
//! for, and the README lists them. Tests hold all three to [`EnvVars::ALL`]: no other file of
//! `src/` reads the environment, and the README's table names exactly these.

/// The names of the environment variables ferry reads.
pub struct EnvVars;

impl EnvVars {
    /// Log filter for stderr (`info`, `debug`, `ferry=trace`), as `-v` sets.
    pub const FERRY_LOG: &'static str = "FERRY_LOG";
    /// The RKE release whose version rules `images`, `lock` and `export` apply.
    pub const FERRY_RKE_VERSION: &'static str = "FERRY_RKE_VERSION";
    /// User for the target registry of `import` and `verify` (with [`Self::FERRY_PASSWORD`]).
    pub const FERRY_USERNAME: &'static str = "FERRY_USERNAME";
    /// Password for the target registry (with [`Self::FERRY_USERNAME`]).
    pub const FERRY_PASSWORD: &'static str = "FERRY_PASSWORD";
    /// A KDM `data.json` to read instead of the embedded catalog (RKE's own variable): an
    /// `http(s)://` URL (downloaded and cached, as `--metadata URL`) or a local file.
    pub const RANCHER_METADATA_URL: &'static str = "RANCHER_METADATA_URL";
    /// The base of the user's cache (`$XDG_CACHE_HOME/ferry/metadata` holds downloaded
    /// metadata; default `$HOME/.cache`).
    pub const XDG_CACHE_HOME: &'static str = "XDG_CACHE_HOME";
    /// Set and non-empty: no colour in ferry's messages (<https://no-color.org>).
    pub const NO_COLOR: &'static str = "NO_COLOR";
    /// The directory of docker's `config.json` (default `$HOME/.docker`).
    pub const DOCKER_CONFIG: &'static str = "DOCKER_CONFIG";
    /// podman's and skopeo's auth file, read after docker's config (`auths` only).
    pub const REGISTRY_AUTH_FILE: &'static str = "REGISTRY_AUTH_FILE";
    /// The home directory (for `~/.docker/config.json` and `~/.cache`).
    pub const HOME: &'static str = "HOME";
    /// Where `docker-credential-*` helpers are looked for.
    pub const PATH: &'static str = "PATH";
    /// AWS access key for ECR logins (with [`Self::AWS_SECRET_ACCESS_KEY`]).
    pub const AWS_ACCESS_KEY_ID: &'static str = "AWS_ACCESS_KEY_ID";
    /// AWS secret key for ECR logins.
    pub const AWS_SECRET_ACCESS_KEY: &'static str = "AWS_SECRET_ACCESS_KEY";
    /// AWS session token for temporary credentials.
    pub const AWS_SESSION_TOKEN: &'static str = "AWS_SESSION_TOKEN";
    /// The ECR API endpoint to use instead of `api.ecr.<region>.amazonaws.com`.
    pub const AWS_ENDPOINT_URL_ECR: &'static str = "AWS_ENDPOINT_URL_ECR";
    /// The endpoint of every AWS API (when [`Self::AWS_ENDPOINT_URL_ECR`] is not set).
    pub const AWS_ENDPOINT_URL: &'static str = "AWS_ENDPOINT_URL";
    /// `true`: ignore the two endpoint variables above.
    pub const AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: &'static str =
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";
    /// The proxy for HTTPS requests (read by the HTTP client; also `https_proxy`).
    pub const HTTPS_PROXY: &'static str = "HTTPS_PROXY";
    /// The proxy for plain-HTTP requests (also `http_proxy`).
    pub const HTTP_PROXY: &'static str = "HTTP_PROXY";
    /// The proxy for every request (also `all_proxy`).
    pub const ALL_PROXY: &'static str = "ALL_PROXY";
    /// Hosts reached without a proxy (also `no_proxy`), e.g. `127.0.0.1,localhost`.
    pub const NO_PROXY: &'static str = "NO_PROXY";

    /// Every name above (the HTTP client also reads the lower-case proxy spellings).
    pub const ALL: &'static [&'static str] = &[
        Self::FERRY_LOG,
        Self::FERRY_RKE_VERSION,
        Self::FERRY_USERNAME,
        Self::FERRY_PASSWORD,
        Self::RANCHER_METADATA_URL,
        Self::XDG_CACHE_HOME,
        Self::NO_COLOR,
        Self::DOCKER_CONFIG,
        Self::REGISTRY_AUTH_FILE,
        Self::HOME,
        Self::PATH,
        Self::AWS_ACCESS_KEY_ID,
        Self::AWS_SECRET_ACCESS_KEY,
        Self::AWS_SESSION_TOKEN,
        Self::AWS_ENDPOINT_URL_ECR,
        Self::AWS_ENDPOINT_URL,
        Self::AWS_IGNORE_CONFIGURED_ENDPOINT_URLS,
        Self::HTTPS_PROXY,
        Self::HTTP_PROXY,
        Self::ALL_PROXY,
        Self::NO_PROXY,
    ];

    /// The value of `name` (one of [`Self::ALL`]) when it is set and valid UTF-8.
    pub fn var(name: &str) -> Option<String> {
        debug_assert!(
            Self::ALL.contains(&name),
            "{name} is not declared in EnvVars"
        );
        std::env::var(name).ok()
    }

    /// The value of `name` (one of [`Self::ALL`]) when it is set, in any encoding.
    pub fn var_os(name: &str) -> Option<std::ffi::OsString> {
        debug_assert!(
            Self::ALL.contains(&name),
            "{name} is not declared in EnvVars"
        );
        std::env::var_os(name)
    }
}

#[cfg(test)]
mod tests;
