//! Where registry credentials come from. [`CredentialChain`] answers "which user and secret
//! for registry X?" from these sources, first match wins:
//!
//! 1. `--username` + `--password-stdin`, for the one registry they were given for;
//! 2. `FERRY_USERNAME` + `FERRY_PASSWORD`, for the configured target registry only;
//! 3. `cluster.yml` `private_registries` (`user`/`password` of the entry whose url's host is X);
//! 4. docker's `config.json`, then podman's `REGISTRY_AUTH_FILE`, each read the way docker
//!    reads it: `credHelpers[X]`, else `credsStore`, else `auths`;
//! 5. anonymous.
//!
//! Answers are cached per registry (helpers are slow), and [`CredentialChain::describe`] says
//! where one came from, for messages. Secrets stay in [`Secret`]s; nothing here prints one.
//! The environment is read through an injectable function, so tests never touch the process
//! environment. This module does not know `rke`: commands pass cluster.yml entries in as plain
//! values (layering: `store` depends only on `oci`).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::CredentialSource;
use super::auth::Credentials;
use crate::secret::Secret;

/// How long a `docker-credential-*` helper may take before ferry gives up on it.
pub const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(30);

const DOCKER_HUB: &str = "docker.io";
/// The server URL docker uses for Docker Hub in `auths` and towards helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
const HELPER_OUTPUT_LIMIT: u64 = 1 << 20;

/// Where the credentials for a registry came from, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOrigin {
    /// `--username` and `--password-stdin`.
    Explicit,
    /// `FERRY_USERNAME` and `FERRY_PASSWORD`.
    Environment,
    /// A `private_registries` entry of `cluster.yml`.
    ClusterYml,
    /// An `auths` entry of a docker (or podman) config file.
    DockerConfigAuths {
        /// The config file.
        file: PathBuf,
    },
    /// A `docker-credential-<helper>` named by `credHelpers` or `credsStore`.
    CredentialHelper {
        /// The helper suffix (`pass`, `ecr-login` …).
        helper: String,
        /// The config file that named it.
        file: PathBuf,
    },
    /// No credentials found anywhere.
    Anonymous,
}

impl CredentialOrigin {
    /// The config file the credentials came from, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            CredentialOrigin::DockerConfigAuths { file }
            | CredentialOrigin::CredentialHelper { file, .. } => Some(file),
            _ => None,
        }
    }
}

impl std::fmt::Display for CredentialOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialOrigin::Explicit => f.write_str("--username"),
            CredentialOrigin::Environment => f.write_str("FERRY_USERNAME"),
            CredentialOrigin::ClusterYml => f.write_str("cluster.yml"),
            CredentialOrigin::DockerConfigAuths { .. } => f.write_str("docker config auths"),
            CredentialOrigin::CredentialHelper { helper, .. } => {
                write!(f, "credential helper docker-credential-{helper}")
            }
            CredentialOrigin::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// The environment function of the builder.
type EnvFn = Box<dyn Fn(&str) -> Option<String>>;

/// Collects the sources of a [`CredentialChain`].
pub struct CredentialChainBuilder {
    explicit: Vec<(String, String, Secret)>,
    target: Option<String>,
    env: EnvFn,
    cluster: Vec<ClusterEntry>,
    docker_config: bool,
    helper_timeout: Duration,
}

/// Credentials for registry names, from flags, environment, cluster.yml and docker config.
///
/// Resolving may run a credential helper (up to [`DEFAULT_HELPER_TIMEOUT`]), so call it from
/// a blocking context (`spawn_blocking`) or resolve the registries of a run up front.
pub struct CredentialChain {
    explicit: Vec<(String, String, Secret)>,
    env: Option<(String, String, Secret)>,
    cluster: Vec<ClusterEntry>,
    config_files: Vec<PathBuf>,
    configs: OnceLock<Vec<ConfigFile>>,
    path: Option<OsString>,
    helper_timeout: Duration,
    cache: Mutex<HashMap<String, Arc<OnceLock<Resolved>>>>,
}

#[derive(Debug, Clone)]
struct Resolved {
    credentials: Credentials,
    origin: CredentialOrigin,
}

#[derive(Debug, Clone)]
struct ClusterEntry {
    url: String,
    host: String,
    user: String,
    password: Secret,
}

/// One parsed docker/podman config file.
#[derive(Debug)]
struct ConfigFile {
    path: PathBuf,
    /// `auths`: key as written, its normalised host, the credentials (None: no usable ones).
    auths: Vec<(String, String, Option<Credentials>)>,
    /// `credHelpers`: key as written, normalised host, helper suffix.
    helpers: Vec<(String, String, String)>,
    /// `credsStore`.
    store: Option<String>,
}

enum HelperAnswer {
    Found(Credentials),
    NotFound,
    Failed,
}

/// Why a config file was not used.
#[derive(Debug, thiserror::Error)]
enum ConfigFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {detail}")]
    Json { path: PathBuf, detail: String },
}

impl CredentialChain {
    /// A builder reading the process environment; replace it with
    /// [`CredentialChainBuilder::env_from`].
    pub fn builder() -> CredentialChainBuilder {
        CredentialChainBuilder {
            explicit: Vec::new(),
            target: None,
            env: Box::new(|k| std::env::var(k).ok()),
            cluster: Vec::new(),
            docker_config: true,
            helper_timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }

    /// Where the credentials for `registry` come from (resolving and caching them if needed).
    pub fn describe(&self, registry: &str) -> CredentialOrigin {
        self.resolve(registry).origin
    }

    fn resolve(&self, registry: &str) -> Resolved {
        let name = canonical_host(registry);
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.entry(name.clone()).or_default().clone()
        };
        cell.get_or_init(|| {
            let r = self.lookup(&name);
            tracing::debug!(
                "registry {name}: credentials from {}{}",
                r.origin,
                r.credentials
                    .username()
                    .map(|u| format!(" (user {u:?})"))
                    .unwrap_or_default()
            );
            r
        })
        .clone()
    }

    fn lookup(&self, name: &str) -> Resolved {
        let found = |credentials, origin| Resolved {
            credentials,
            origin,
        };
        if let Some((_, user, password)) = self.explicit.iter().find(|(r, ..)| r == name) {
            return found(basic(user, password), CredentialOrigin::Explicit);
        }
        if let Some((_, user, password)) = self.env.as_ref().filter(|(t, ..)| t == name) {
            return found(basic(user, password), CredentialOrigin::Environment);
        }
        if let Some(c) = self.cluster_lookup(name) {
            return found(c, CredentialOrigin::ClusterYml);
        }
        let configs = self.configs.get_or_init(|| {
            self.config_files
                .iter()
                .filter_map(|p| match load_config(p) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("ignoring docker config: {e}");
                        None
                    }
                })
                .collect()
        });
        for file in configs {
            if let Some(r) = self.config_lookup(file, name) {
                return r;
            }
        }
        found(Credentials::Anonymous, CredentialOrigin::Anonymous)
    }

    /// RKE keys entries by their exact url; ferry talks to the host, so an entry whose url is
    /// `host/path` also counts for `host`. An exact url wins, and among duplicates of one url
    /// the later wins (as in RKE's map).
    fn cluster_lookup(&self, name: &str) -> Option<Credentials> {
        let matching: Vec<&ClusterEntry> = self.cluster.iter().filter(|e| e.host == name).collect();
        let exact = matching.iter().rev().find(|e| e.url == e.host);
        let chosen = match exact {
            Some(e) => *e,
            None => {
                let first = &matching.first()?.url;
                *matching.iter().rev().find(|e| &e.url == first)?
            }
        };
        if matching
            .iter()
            .any(|e| e.user != chosen.user || e.password != chosen.password)
        {
            let urls: Vec<&str> = matching.iter().map(|e| e.url.as_str()).collect();
            tracing::warn!(
                "registry {name}: cluster.yml private_registries {urls:?} hold different credentials; using those of {}",
                chosen.url
            );
        }
        Some(basic(&chosen.user, &chosen.password))
    }

    /// Docker's order (`configfile.GetCredentialsStore`): a `credHelpers` entry for the host,
    /// else `credsStore`, else `auths`. Where a helper says "not found", docker uses no
    /// credentials, and so does this file (the next file may still answer). Where a helper
    /// fails, docker fails; ferry warns and falls back to `auths`.
    fn config_lookup(&self, file: &ConfigFile, name: &str) -> Option<Resolved> {
        let server = server_url(name);
        let helper = file
            .helpers
            .iter()
            .find(|(key, ..)| key == server || key == name)
            .or_else(|| file.helpers.iter().find(|(_, host, _)| host == name))
            .map(|(.., h)| h)
            .or(file.store.as_ref());
        if let Some(helper) = helper {
            match self.run_helper(helper, server, name) {
                HelperAnswer::Found(credentials) => {
                    return Some(Resolved {
                        credentials,
                        origin: CredentialOrigin::CredentialHelper {
                            helper: helper.clone(),
                            file: file.path.clone(),
                        },
                    });
                }
                HelperAnswer::NotFound => return None,
                HelperAnswer::Failed => {}
            }
        }
        let usable = || {
            file.auths
                .iter()
                .filter(|(_, host, _)| host == name)
                .filter_map(|(key, _, c)| Some((key.as_str(), c.as_ref()?)))
        };
        let (_, credentials) = usable()
            .find(|(key, _)| *key == server || *key == name)
            .or_else(|| usable().next())?;
        Some(Resolved {
            credentials: credentials.clone(),
            origin: CredentialOrigin::DockerConfigAuths {
                file: file.path.clone(),
            },
        })
    }

    /// Runs `docker-credential-<helper> get` with the server URL on stdin.
    fn run_helper(&self, helper: &str, server: &str, name: &str) -> HelperAnswer {
        let program = format!("docker-credential-{helper}");
        if helper.is_empty() || helper.contains(['/', '\\']) || helper.starts_with('.') {
            tracing::warn!(
                "registry {name}: ignoring credential helper {helper:?}: not a helper name"
            );
            return HelperAnswer::Failed;
        }
        let Some(path) = find_program(self.path.as_deref(), &program) else {
            tracing::warn!(
                "registry {name}: credential helper {program} is configured but not on PATH; trying without it"
            );
            return HelperAnswer::Failed;
        };
        let output = match execute(&path, server, self.helper_timeout) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("registry {name}: credential helper {program} failed: {e}");
                return HelperAnswer::Failed;
            }
        };
        if !output.success {
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if text.to_ascii_lowercase().contains("credentials not found") {
                return HelperAnswer::NotFound;
            }
            let first: String = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no message")
                .chars()
                .take(200)
                .collect();
            tracing::warn!(
                "registry {name}: credential helper {program} failed ({}): {first}",
                output.status
            );
            return HelperAnswer::Failed;
        }
        #[derive(Deserialize)]
        struct Reply {
            #[serde(rename = "Username", default)]
            username: Option<String>,
            #[serde(rename = "Secret", default)]
            secret: Secret,
        }
        let reply: Reply = match serde_json::from_slice(&output.stdout) {
            Ok(r) => r,
            Err(e) => {
                // No serde message: a data error could quote the secret.
                tracing::warn!(
                    "registry {name}: credential helper {program} answered with something other than {{\"ServerURL\",\"Username\",\"Secret\"}} JSON (line {}, column {})",
                    e.line(),
                    e.column()
                );
                return HelperAnswer::Failed;
            }
        };
        let username = reply.username.unwrap_or_default();
        if username.is_empty() && reply.secret.is_empty() {
            return HelperAnswer::NotFound;
        }
        HelperAnswer::Found(if username == "<token>" {
            Credentials::IdentityToken {
                username,
                token: reply.secret,
            }
        } else {
            Credentials::Basic {
                username,
                password: reply.secret,
            }
        })
    }
}

impl CredentialSource for CredentialChain {
    fn credentials(&self, registry: &str) -> Credentials {
        self.resolve(registry).credentials
    }

    fn origin(&self, registry: &str) -> Option<String> {
        Some(self.describe(registry).to_string())
    }
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let explicit: Vec<(&str, &str)> = self
            .explicit
            .iter()
            .map(|(r, u, _)| (r.as_str(), u.as_str()))
            .collect();
        let cluster: Vec<(&str, &str)> = self
            .cluster
            .iter()
            .map(|e| (e.url.as_str(), e.user.as_str()))
            .collect();
        let resolved: Vec<(String, String)> = self
            .cache
            .lock()
            .map(|c| {
                c.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.get()?.origin.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        f.debug_struct("CredentialChain")
            .field("explicit", &explicit)
            .field(
                "env",
                &self.env.as_ref().map(|(t, u, _)| (t.as_str(), u.as_str())),
            )
            .field("cluster", &cluster)
            .field("config_files", &self.config_files)
            .field("resolved", &resolved)
            .finish_non_exhaustive()
    }
}

impl CredentialChainBuilder {
    /// Credentials given on the command line (`--username` + `--password-stdin`), used only
    /// for `registry` (a registry name such as `registry.example.com:5000`).
    pub fn explicit(mut self, registry: &str, username: &str, password: Secret) -> Self {
        self.explicit
            .push((canonical_host(registry), username.to_string(), password));
        self
    }

    /// The registry `FERRY_USERNAME`/`FERRY_PASSWORD` apply to; without one they are unused.
    pub fn target(mut self, registry: &str) -> Self {
        self.target = Some(canonical_host(registry));
        self
    }

    /// How to read environment variables (`FERRY_USERNAME`, `FERRY_PASSWORD`,
    /// `DOCKER_CONFIG`, `HOME`, `REGISTRY_AUTH_FILE`, `PATH`); the default reads the process
    /// environment. Read once, in [`CredentialChainBuilder::build`].
    pub fn env_from(mut self, env: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.env = Box::new(env);
        self
    }

    /// A cluster.yml `private_registries` entry: `url` as written (`host[:port][/path]`, empty
    /// for docker.io), `user` and `password`. Entries with neither user nor password are
    /// skipped (they may use ECR, which is not a static credential).
    pub fn cluster_registry(mut self, url: &str, user: &str, password: Secret) -> Self {
        if user.is_empty() && password.is_empty() {
            return self;
        }
        let url = url.trim().trim_end_matches('/');
        let url = if url.is_empty() { DOCKER_HUB } else { url };
        let host = canonical_host(url);
        let url = match url.split_once('/') {
            Some((_, path)) => format!("{host}/{path}"),
            None => host.clone(),
        };
        self.cluster.push(ClusterEntry {
            url,
            host,
            user: user.to_string(),
            password,
        });
        self
    }

    /// Whether to read docker/podman config files (default: yes).
    pub fn docker_config(mut self, enabled: bool) -> Self {
        self.docker_config = enabled;
        self
    }

    /// How long a credential helper may take (default [`DEFAULT_HELPER_TIMEOUT`]).
    pub fn helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// Reads the environment and builds the chain. Config files are read on first need.
    pub fn build(self) -> CredentialChain {
        let get = |k: &str| (self.env)(k).filter(|v| !v.is_empty());
        let user = get("FERRY_USERNAME");
        let password = get("FERRY_PASSWORD").map(Secret::new);
        let env = match (&self.target, user, password) {
            (Some(t), Some(u), Some(p)) => Some((t.clone(), u, p)),
            (None, Some(_), Some(_)) => {
                tracing::debug!("FERRY_USERNAME/FERRY_PASSWORD unused: no target registry");
                None
            }
            (_, Some(_), None) => {
                tracing::warn!("FERRY_USERNAME is set but FERRY_PASSWORD is not; ignoring both");
                None
            }
            (_, None, Some(_)) => {
                tracing::warn!("FERRY_PASSWORD is set but FERRY_USERNAME is not; ignoring both");
                None
            }
            _ => None,
        };
        let mut config_files = Vec::new();
        if self.docker_config {
            if let Some(dir) = get("DOCKER_CONFIG") {
                config_files.push(PathBuf::from(dir).join("config.json"));
            } else if let Some(home) = get("HOME") {
                config_files.push(PathBuf::from(home).join(".docker").join("config.json"));
            }
            if let Some(file) = get("REGISTRY_AUTH_FILE") {
                config_files.push(PathBuf::from(file));
            }
        }
        CredentialChain {
            explicit: self.explicit,
            env,
            cluster: self.cluster,
            config_files,
            configs: OnceLock::new(),
            path: get("PATH").map(OsString::from),
            helper_timeout: self.helper_timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

fn basic(user: &str, password: &Secret) -> Credentials {
    Credentials::Basic {
        username: user.to_string(),
        password: password.clone(),
    }
}

/// `host[:port]` of a registry name or config key, the way docker's `ConvertToHostname`
/// reduces keys: no scheme, nothing from the first `/` on, lower case; every Docker Hub alias
/// becomes `docker.io`.
fn canonical_host(key: &str) -> String {
    let key = key.trim();
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|s| {
            key.get(..s.len())
                .filter(|p| p.eq_ignore_ascii_case(s))
                .map(|_| &key[s.len()..])
        })
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// The server address docker uses for a registry in `auths` and towards helpers.
fn server_url(name: &str) -> &str {
    if name == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        name
    }
}

/// Reads one config file; `Ok(None)` when it does not exist.
fn load_config(path: &Path) -> Result<Option<ConfigFile>, ConfigFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigFileError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let json_error = |detail| ConfigFileError::Json {
        path: path.to_path_buf(),
        detail,
    };
    let root: Map<String, Value> = if text.trim().is_empty() {
        Map::new()
    } else {
        serde_json::from_str(&text).map_err(|e| {
            json_error(if e.is_data() {
                // A data error quotes the offending value, which could be a secret.
                format!(
                    "expected a JSON object at line {} column {}",
                    e.line(),
                    e.column()
                )
            } else {
                e.to_string()
            })
        })?
    };
    let object = |key: &str| match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(json_error(format!("{key} is not an object"))),
    };
    let mut file = ConfigFile {
        path: path.to_path_buf(),
        auths: Vec::new(),
        helpers: Vec::new(),
        store: match root.get("credsStore") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            None | Some(Value::Null) | Some(Value::String(_)) => None,
            Some(_) => return Err(json_error("credsStore is not a string".into())),
        },
    };
    for (key, value) in object("credHelpers")?.into_iter().flatten() {
        match value.as_str() {
            Some(h) if !h.is_empty() => {
                file.helpers
                    .push((key.clone(), canonical_host(key), h.to_string()))
            }
            _ => tracing::warn!(
                "{}: credHelpers.{key} is not a helper name; ignoring it",
                path.display()
            ),
        }
    }
    for (key, value) in object("auths")?.into_iter().flatten() {
        let credentials = auth_entry(value).unwrap_or_else(|why| {
            tracing::warn!("{}: auths.{key} {why}; ignoring it", path.display());
            None
        });
        file.auths
            .push((key.clone(), canonical_host(key), credentials));
    }
    Ok(Some(file))
}

/// The credentials of one `auths` entry: `auth` (base64 `user:password`, which wins over
/// `username`/`password` as in docker), and `identitytoken`, which wins over a password.
fn auth_entry(value: &Value) -> Result<Option<Credentials>, &'static str> {
    let Value::Object(entry) = value else {
        return Err("is not an object");
    };
    let field = |name: &str| match entry.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err("has a field that is not a string"),
    };
    let (mut username, mut password) = (
        field("username")?.to_string(),
        Secret::new(field("password")?),
    );
    let auth = field("auth")?;
    if !auth.trim().is_empty() {
        (username, password) =
            decode_auth(auth).ok_or("has an auth that is not base64 of user:password")?;
    }
    let token = field("identitytoken")?;
    Ok(if !token.is_empty() {
        Some(Credentials::IdentityToken {
            username,
            token: Secret::new(token),
        })
    } else if username.is_empty() && password.is_empty() {
        None
    } else {
        Some(Credentials::Basic { username, password })
    })
}

fn decode_auth(auth: &str) -> Option<(String, Secret)> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = String::from_utf8(engine.decode(auth.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), Secret::new(password.trim_matches('\0'))))
}

/// Finds an executable on a PATH value.
fn find_program(path: Option<&OsStr>, name: &str) -> Option<PathBuf> {
    let names = if cfg!(windows) {
        vec![format!("{name}.exe"), name.to_string()]
    } else {
        vec![name.to_string()]
    };
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

struct HelperOutput {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `<program> get` with `server` on stdin, killing it after `timeout`.
fn execute(program: &Path, server: &str, timeout: Duration) -> Result<HelperOutput, String> {
    let mut cmd = Command::new(program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A script just written (tests, installers) can be briefly busy while another thread forks.
    let mut attempt = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("cannot start it: {e}")),
            Ok(c) => break c,
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin closes the pipe; its exit status tells.
        let _ = stdin.write_all(server.as_bytes());
    }
    let (tx, rx) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (i, pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut buf);
            }
            let _ = tx.send((i, buf));
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", timeout.as_secs_f32()));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot wait for it: {e}"));
            }
        }
    };
    // A grandchild may still hold the pipes open; do not wait for it long.
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok((0, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => break,
        }
    }
    Ok(HelperOutput {
        success: status.success(),
        status: status.to_string(),
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const HELPER: &str = r#"#!/bin/sh
server=$(cat)
case "$server" in
  helper.example.com) echo '{"ServerURL":"helper.example.com","Username":"hu","Secret":"helper-secret"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"helper-token"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hub-secret"}' ;;
  broken.example.com) echo "keychain locked" >&2; exit 2 ;;
  slow.example.com) sleep 5 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        env: BTreeMap<String, String>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut env = BTreeMap::new();
            env.insert("HOME".into(), dir.path().join("home").display().to_string());
            env.insert("PATH".into(), dir.path().join("bin").display().to_string());
            Fixture { dir, env }
        }

        fn set(&mut self, k: &str, v: &str) -> &mut Self {
            self.env.insert(k.into(), v.into());
            self
        }

        /// Writes `~/.docker/config.json` (under the fake HOME).
        fn docker_config(&self, json: &str) -> PathBuf {
            let dir = self.dir.path().join("home/.docker");
            std::fs::create_dir_all(&dir).expect("mkdir");
            let path = dir.join("config.json");
            std::fs::write(&path, json).expect("write config");
            path
        }

        #[cfg(unix)]
        fn helper(&self, name: &str, script: &str) {
            use std::os::unix::fs::PermissionsExt;
            let dir = self.dir.path().join("bin");
            std::fs::create_dir_all(&dir).expect("mkdir");
            let path = dir.join(format!("docker-credential-{name}"));
            std::fs::write(&path, script).expect("write helper");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }

        fn builder(&self) -> CredentialChainBuilder {
            let env = self.env.clone();
            CredentialChain::builder().env_from(move |k| env.get(k).cloned())
        }
    }

    fn basic_of(c: &Credentials) -> Option<(&str, &str)> {
        match c {
            Credentials::Basic { username, password } => Some((username, password.expose())),
            _ => None,
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn anonymous_without_sources() {
        let f = Fixture::new();
        let chain = f.builder().build();
        assert_eq!(chain.credentials("docker.io"), Credentials::Anonymous);
        assert_eq!(chain.describe("docker.io"), CredentialOrigin::Anonymous);
        assert_eq!(chain.describe("docker.io").to_string(), "anonymous");
    }

    #[test]
    fn precedence_explicit_env_cluster_config() {
        let mut f = Fixture::new();
        f.set("FERRY_USERNAME", "envuser")
            .set("FERRY_PASSWORD", "env-pw");
        let all = format!(
            r#"{{"auths": {{"reg.example.com": {{"auth": "{}"}}}}}}"#,
            b64("cfguser:cfg-pw")
        );
        f.docker_config(&all);
        let full = || {
            f.builder().target("reg.example.com").cluster_registry(
                "reg.example.com",
                "clusteruser",
                Secret::new("cluster-pw"),
            )
        };
        let with_explicit = full()
            .explicit("reg.example.com", "flaguser", Secret::new("flag-pw"))
            .build();
        let c = with_explicit.credentials("reg.example.com");
        assert_eq!(basic_of(&c), Some(("flaguser", "flag-pw")));
        assert_eq!(
            with_explicit.describe("reg.example.com").to_string(),
            "--username"
        );

        let env = full().build();
        assert_eq!(
            basic_of(&env.credentials("reg.example.com")),
            Some(("envuser", "env-pw"))
        );
        assert_eq!(
            env.describe("reg.example.com").to_string(),
            "FERRY_USERNAME"
        );

        let f2 = Fixture::new();
        f2.docker_config(&all);
        let cluster = f2
            .builder()
            .target("reg.example.com")
            .cluster_registry("reg.example.com", "clusteruser", Secret::new("cluster-pw"))
            .build();
        let c = cluster.credentials("reg.example.com");
        assert_eq!(basic_of(&c), Some(("clusteruser", "cluster-pw")));
        assert_eq!(
            cluster.describe("reg.example.com"),
            CredentialOrigin::ClusterYml
        );

        let config = f2.builder().build();
        assert_eq!(
            basic_of(&config.credentials("reg.example.com")),
            Some(("cfguser", "cfg-pw"))
        );
        let origin = config.describe("reg.example.com");
        assert_eq!(origin.to_string(), "docker config auths");
        assert_eq!(
            origin.file(),
            Some(f2.dir.path().join("home/.docker/config.json").as_path())
        );
    }

    #[test]
    fn explicit_and_env_apply_to_their_registry_only() {
        let mut f = Fixture::new();
        f.set("FERRY_USERNAME", "envuser")
            .set("FERRY_PASSWORD", "env-pw");
        let chain = f
            .builder()
            .target("target.example.com:5000")
            .explicit("flags.example.com", "flaguser", Secret::new("flag-pw"))
            .build();
        assert_eq!(chain.credentials("docker.io"), Credentials::Anonymous);
        assert_eq!(
            chain.credentials("target.example.com"),
            Credentials::Anonymous
        );
        let c = chain.credentials("target.example.com:5000");
        assert_eq!(basic_of(&c), Some(("envuser", "env-pw")));
        let c = chain.credentials("flags.example.com");
        assert_eq!(basic_of(&c), Some(("flaguser", "flag-pw")));
    }

    #[test]
    fn env_needs_both_variables_and_a_target() {
        let mut f = Fixture::new();
        f.set("FERRY_USERNAME", "envuser");
        let chain = f.builder().target("t.example.com").build();
        assert_eq!(chain.credentials("t.example.com"), Credentials::Anonymous);
        f.set("FERRY_PASSWORD", "env-pw");
        let chain = f.builder().build();
        assert_eq!(chain.credentials("t.example.com"), Credentials::Anonymous);
    }

    #[test]
    fn cluster_entries_match_host_with_or_without_path() {
        let f = Fixture::new();
        let chain = f
            .builder()
            .cluster_registry("1.1.1.1:5555/artifactory", "art", Secret::new("art-pw"))
            .cluster_registry("", "hub", Secret::new("hub-pw"))
            .cluster_registry("ecr.example.com", "", Secret::default())
            .cluster_registry("exact.example.com/path", "pathuser", Secret::new("p1"))
            .cluster_registry("exact.example.com", "old", Secret::new("p2"))
            .cluster_registry("exact.example.com", "new", Secret::new("p3"))
            .build();
        let c = chain.credentials("1.1.1.1:5555");
        assert_eq!(basic_of(&c), Some(("art", "art-pw")));
        assert_eq!(chain.credentials("1.1.1.1:5556"), Credentials::Anonymous);
        assert_eq!(chain.credentials("1.1.1.1"), Credentials::Anonymous);
        assert_eq!(
            basic_of(&chain.credentials("docker.io")),
            Some(("hub", "hub-pw"))
        );
        assert_eq!(chain.credentials("ecr.example.com"), Credentials::Anonymous);
        // An exact url beats a path-prefixed one; a later duplicate wins, as in RKE.
        let c = chain.credentials("exact.example.com");
        assert_eq!(basic_of(&c), Some(("new", "p3")));
    }

    #[test]
    fn docker_hub_keys_are_normalised() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
            "docker.io",
            "https://registry-1.docker.io/v2/",
        ] {
            let f = Fixture::new();
            f.docker_config(&format!(
                r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
                b64("hub:hub-pw")
            ));
            let chain = f.builder().build();
            for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
                let c = chain.credentials(name);
                assert_eq!(
                    basic_of(&c),
                    Some(("hub", "hub-pw")),
                    "key {key}, name {name}"
                );
            }
            assert_eq!(
                chain.credentials("quay.io"),
                Credentials::Anonymous,
                "key {key}"
            );
        }
    }

    #[test]
    fn auths_keys_match_host_and_port_exactly() {
        let f = Fixture::new();
        f.docker_config(
            r#"{"auths": {
                "http://reg.example.com:5000/v2/": {"username": "u5000", "password": "pw5000"},
                "https://reg.example.com": {"username": "u443", "password": "pw443"},
                "127.0.0.1:5000": {"username": "local", "password": "pwlocal"},
                "empty.example.com": {}
            }}"#,
        );
        let chain = f.builder().build();
        assert_eq!(
            basic_of(&chain.credentials("reg.example.com:5000")),
            Some(("u5000", "pw5000"))
        );
        assert_eq!(
            basic_of(&chain.credentials("reg.example.com")),
            Some(("u443", "pw443"))
        );
        assert_eq!(
            basic_of(&chain.credentials("127.0.0.1:5000")),
            Some(("local", "pwlocal"))
        );
        assert_eq!(
            chain.credentials("reg.example.com:5001"),
            Credentials::Anonymous
        );
        assert_eq!(
            chain.credentials("empty.example.com"),
            Credentials::Anonymous
        );
    }

    #[test]
    fn identitytoken_and_docker_config_env() {
        let mut f = Fixture::new();
        let dir = f.dir.path().join("dockercfg");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("config.json"),
            format!(
                r#"{{"auths": {{"tok.example.com": {{"auth": "{}", "identitytoken": "refresh-tok"}}}}}}"#,
                b64("tokuser:")
            ),
        )
        .expect("write");
        // DOCKER_CONFIG replaces ~/.docker.
        f.docker_config(r#"{"auths": {"tok.example.com": {"username": "home", "password": "x"}}}"#);
        f.set("DOCKER_CONFIG", &dir.display().to_string());
        let chain = f.builder().build();
        match chain.credentials("tok.example.com") {
            Credentials::IdentityToken { username, token } => {
                assert_eq!(username, "tokuser");
                assert_eq!(token.expose(), "refresh-tok");
            }
            other => panic!("expected an identity token, got {other:?}"),
        }
    }

    #[test]
    fn registry_auth_file_is_read_after_docker_config() {
        let mut f = Fixture::new();
        f.docker_config(r#"{"auths": {"a.example.com": {"username": "docker", "password": "d"}}}"#);
        let podman = f.dir.path().join("auth.json");
        std::fs::write(
            &podman,
            r#"{"auths": {"a.example.com": {"username": "podman", "password": "p"},
                          "b.example.com/ns": {"username": "podman-b", "password": "pb"}}}"#,
        )
        .expect("write");
        f.set("REGISTRY_AUTH_FILE", &podman.display().to_string());
        let chain = f.builder().build();
        assert_eq!(
            basic_of(&chain.credentials("a.example.com")),
            Some(("docker", "d"))
        );
        assert_eq!(
            basic_of(&chain.credentials("b.example.com")),
            Some(("podman-b", "pb"))
        );
        assert_eq!(
            chain.describe("b.example.com").file(),
            Some(podman.as_path())
        );
    }

    #[test]
    fn malformed_config_is_ignored_with_position() {
        let f = Fixture::new();
        let path = f
            .docker_config("{\n  \"auths\": {\n    \"reg.example.com\": {\"auth\": \"c2VjcmV0\"\n");
        let err = load_config(&path).expect_err("malformed");
        let msg = err.to_string();
        assert!(
            msg.contains("config.json") && msg.contains("line 4 column 0"),
            "{msg}"
        );
        let f2 = Fixture::new();
        let path = f2.docker_config(r#"{"auths": "dXNlcjpzZWNyZXQ="}"#);
        let msg = load_config(&path).expect_err("wrong type").to_string();
        assert!(!msg.contains("dXNlcjpzZWNyZXQ="), "{msg}");
        let chain = f
            .builder()
            .cluster_registry("other.example.com", "u", Secret::new("p"))
            .build();
        assert_eq!(chain.credentials("reg.example.com"), Credentials::Anonymous);
        assert!(basic_of(&chain.credentials("other.example.com")).is_some());
    }

    #[test]
    fn bad_entries_are_skipped_not_fatal() {
        let f = Fixture::new();
        f.docker_config(
            r#"{"auths": {"bad.example.com": {"auth": "%%%"}, "num.example.com": {"password": 5},
                          "ok.example.com": {"auth": "dTpw"}}}"#,
        );
        let chain = f.builder().build();
        assert_eq!(chain.credentials("bad.example.com"), Credentials::Anonymous);
        assert_eq!(chain.credentials("num.example.com"), Credentials::Anonymous);
        assert_eq!(
            basic_of(&chain.credentials("ok.example.com")),
            Some(("u", "p"))
        );
        assert!(
            load_config(&f.dir.path().join("missing.json"))
                .expect("absent")
                .is_none()
        );
    }

    #[cfg(unix)]
    #[test]
    fn cred_helpers_and_creds_store() {
        let f = Fixture::new();
        f.helper("test", HELPER);
        f.docker_config(&format!(
            r#"{{"auths": {{"helper.example.com": {{"auth": "{a}"}}, "other.example.com": {{"auth": "{a}"}},
                           "broken.example.com": {{"auth": "{a}"}}}},
                "credHelpers": {{"helper.example.com": "test", "token.example.com": "test",
                                 "https://broken.example.com": "test", "missing.example.com": "nosuch"}}}}"#,
            a = b64("fromauths:auths-pw")
        ));
        let chain = f.builder().build();
        let c = chain.credentials("helper.example.com");
        assert_eq!(basic_of(&c), Some(("hu", "helper-secret")));
        assert_eq!(
            chain.describe("helper.example.com").to_string(),
            "credential helper docker-credential-test"
        );
        match chain.credentials("token.example.com") {
            Credentials::IdentityToken { token, .. } => assert_eq!(token.expose(), "helper-token"),
            other => panic!("expected an identity token, got {other:?}"),
        }
        // No helper for this host: auths.
        let c = chain.credentials("other.example.com");
        assert_eq!(basic_of(&c), Some(("fromauths", "auths-pw")));
        // A failing helper is a warning; ferry falls back to auths.
        let c = chain.credentials("broken.example.com");
        assert_eq!(basic_of(&c), Some(("fromauths", "auths-pw")));
        // A helper missing from PATH likewise.
        assert_eq!(
            chain.credentials("missing.example.com"),
            Credentials::Anonymous
        );

        // credsStore answers for every host; "not found" means anonymous, like docker.
        let f = Fixture::new();
        f.helper("test", HELPER);
        f.docker_config(&format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{}}, "nope.example.com": {{"auth": "{}"}}}},
                "credsStore": "test"}}"#,
            b64("x:y")
        ));
        let chain = f.builder().build();
        assert_eq!(
            basic_of(&chain.credentials("docker.io")),
            Some(("hubuser", "hub-secret"))
        );
        assert_eq!(
            basic_of(&chain.credentials("helper.example.com")),
            Some(("hu", "helper-secret"))
        );
        assert_eq!(
            chain.credentials("nope.example.com"),
            Credentials::Anonymous
        );
        assert_eq!(
            chain.describe("nope.example.com"),
            CredentialOrigin::Anonymous
        );
    }

    #[cfg(unix)]
    #[test]
    fn helper_timeout_and_cache() {
        let f = Fixture::new();
        f.helper("test", HELPER);
        f.docker_config(r#"{"credsStore": "test"}"#);
        let chain = f
            .builder()
            .helper_timeout(Duration::from_millis(300))
            .build();
        let start = Instant::now();
        assert_eq!(
            chain.credentials("slow.example.com"),
            Credentials::Anonymous
        );
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(4), "{took:?}");
        // Cached: the helper is not asked again, even after it is gone.
        let c = chain.credentials("helper.example.com");
        assert_eq!(basic_of(&c), Some(("hu", "helper-secret")));
        std::fs::remove_file(f.dir.path().join("bin/docker-credential-test")).expect("rm");
        let c = chain.credentials("helper.example.com");
        assert_eq!(basic_of(&c), Some(("hu", "helper-secret")));
    }

    #[test]
    fn helper_names_cannot_escape_path() {
        let f = Fixture::new();
        f.docker_config(r#"{"credsStore": "../../bin/sh"}"#);
        let chain = f.builder().build();
        assert_eq!(chain.credentials("x.example.com"), Credentials::Anonymous);
    }

    #[test]
    fn canonical_hosts() {
        assert_eq!(canonical_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(
            canonical_host("HTTP://Reg.Example.com:5000/v2/"),
            "reg.example.com:5000"
        );
        assert_eq!(canonical_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(canonical_host("reg.example.com/ns/repo"), "reg.example.com");
        assert_eq!(server_url("docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(server_url("reg.example.com"), "reg.example.com");
    }

    #[cfg(unix)]
    #[test]
    fn debug_never_shows_secrets() {
        let mut f = Fixture::new();
        f.set("FERRY_USERNAME", "envuser")
            .set("FERRY_PASSWORD", "env-s3cret");
        f.helper("test", HELPER);
        f.docker_config(&format!(
            r#"{{"auths": {{"cfg.example.com": {{"auth": "{}", "identitytoken": "tok-s3cret"}}}},
                "credHelpers": {{"helper.example.com": "test"}}}}"#,
            b64("cfguser:cfg-s3cret")
        ));
        let chain = f
            .builder()
            .target("t.example.com")
            .explicit("e.example.com", "flaguser", Secret::new("flag-s3cret"))
            .cluster_registry("c.example.com/path", "cuser", Secret::new("cluster-s3cret"))
            .build();
        for r in [
            "t.example.com",
            "e.example.com",
            "c.example.com",
            "cfg.example.com",
            "helper.example.com",
        ] {
            assert_ne!(chain.credentials(r), Credentials::Anonymous, "{r}");
        }
        let debug = format!("{chain:?}");
        for secret in ["s3cret", "helper-secret", &b64("cfguser:cfg-s3cret")] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains("flaguser") && debug.contains("c.example.com/path"),
            "{debug}"
        );
    }
}
