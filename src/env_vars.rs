//! Every environment variable ferry reads, its own and other tools', declared once (as uv's
//! `env_vars.rs` does): code names them through [`EnvVars`], `--help` shows them next to the
//! flags they stand for, and the README lists them.

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
}
