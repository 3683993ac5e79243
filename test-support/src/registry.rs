//! A real CNCF distribution registry (`/usr/bin/docker-registry`, 2.8) per test, on a free
//! loopback port with its own temp dir, in one of the auth modes ferry must handle. Killed on Drop.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http;
use super::seed::Storage;
use super::tls;
use super::token::{TokenServer, TokenSettings};

/// The user every authenticated mode accepts.
pub const USERNAME: &str = "ferry-test";
/// Its password (also accepted by the token server).
pub const PASSWORD: &str = "Qk7-vX2pL9-wR4tZ";

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How a test registry authenticates clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Plain HTTP, no auth.
    None,
    /// Plain HTTP, Basic auth (bcrypt htpasswd).
    Htpasswd,
    /// HTTPS (test CA), Basic auth.
    TlsHtpasswd,
    /// Plain HTTP, bearer tokens from an in-process token server (plain HTTP too).
    Token,
    /// HTTPS registry and HTTPS token server (test CA).
    TlsToken,
}

impl Auth {
    pub const ALL: [Auth; 5] = [
        Auth::None,
        Auth::Htpasswd,
        Auth::TlsHtpasswd,
        Auth::Token,
        Auth::TlsToken,
    ];
    pub fn is_tls(self) -> bool {
        matches!(self, Auth::TlsHtpasswd | Auth::TlsToken)
    }
    pub fn is_token(self) -> bool {
        matches!(self, Auth::Token | Auth::TlsToken)
    }
    pub fn is_htpasswd(self) -> bool {
        matches!(self, Auth::Htpasswd | Auth::TlsHtpasswd)
    }
}

/// Options for [`TestRegistry`]; `TestRegistry::builder(auth)…start()`.
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    auth: Auth,
    storage_dir: Option<PathBuf>,
    port: Option<u16>,
    token: TokenSettings,
    blob_descriptor_cache: bool,
    access_log: bool,
}

impl RegistryBuilder {
    /// `storage.cache.blobdescriptor: inmemory`, distribution's usual setting: HEAD of a blob
    /// is then answered from the cache, even after the blob's data is gone.
    pub fn blob_descriptor_cache(mut self) -> Self {
        self.blob_descriptor_cache = true;
        self
    }
    /// Turns distribution's access log on: a combined-log line per request in [`TestRegistry::log`],
    /// naming the protocol (`"GET /v2/… HTTP/2.0"`).
    pub fn access_log(mut self) -> Self {
        self.access_log = true;
        self
    }
    /// Use this storage root (kept after Drop) instead of a fresh temp dir, e.g. to restart a
    /// registry over the storage of an earlier one.
    pub fn storage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage_dir = Some(dir.into());
        self
    }
    /// Listen on this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// Token modes: `expires_in` (and real lifetime) of tokens, seconds.
    pub fn token_expires_in(mut self, secs: u64) -> Self {
        self.token.expires_in = secs;
        self
    }
    /// Token modes: the token server speaks plain HTTP even when the registry is HTTPS (a
    /// realm that must never receive credentials).
    pub fn token_over_http(mut self) -> Self {
        self.token.tls = false;
        self
    }
    /// Token modes: anonymous callers get no access to this repository.
    pub fn private_repo(mut self, repository: &str) -> Self {
        self.token.private_repos.insert(repository.to_string());
        self
    }

    pub fn start(self) -> TestRegistry {
        TestRegistry::launch(self)
    }
}

/// A running registry; the process is killed and waited for on Drop (or [`TestRegistry::stop`]).
pub struct TestRegistry {
    auth: Auth,
    port: u16,
    /// Config, certificates, htpasswd, logs (and storage unless one was given).
    dir: TempDir,
    storage_dir: PathBuf,
    blob_descriptor_cache: bool,
    access_log: bool,
    config_path: PathBuf,
    log_path: PathBuf,
    cert_dir: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    token: Option<TokenServer>,
    child: Option<Child>,
}

impl TestRegistry {
    /// Starts a registry in that auth mode with fresh storage.
    pub fn start(auth: Auth) -> TestRegistry {
        Self::builder(auth).start()
    }

    pub fn builder(auth: Auth) -> RegistryBuilder {
        RegistryBuilder {
            auth,
            storage_dir: None,
            port: None,
            blob_descriptor_cache: false,
            access_log: false,
            token: TokenSettings {
                tls: auth.is_tls(),
                ..TokenSettings::default()
            },
        }
    }

    fn launch(b: RegistryBuilder) -> TestRegistry {
        let dir = tempfile::Builder::new()
            .prefix("ferry-it-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let storage_dir = b
            .storage_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("storage"));
        fs::create_dir_all(&storage_dir).expect("create storage dir");
        let (cert_dir, ca_file) = if b.auth.is_tls() {
            let leaf = tls::server_leaf();
            fs::write(
                dir.path().join("server.crt"),
                format!("{}{}", leaf.cert_pem, tls::ca().cert_pem),
            )
            .expect("write server.crt");
            fs::write(dir.path().join("server.key"), &leaf.key_pem).expect("write server.key");
            let cert_dir = dir.path().join("certs.d");
            tls::write_ca_dir(&cert_dir);
            (Some(cert_dir.clone()), Some(cert_dir.join("ca.crt")))
        } else {
            (None, None)
        };
        if b.auth.is_htpasswd() {
            fs::write(dir.path().join("htpasswd"), htpasswd_line()).expect("write htpasswd");
        }
        let token = b.auth.is_token().then(|| {
            fs::write(dir.path().join("token-ca.pem"), &tls::ca().cert_pem)
                .expect("write token root bundle");
            TokenServer::start(b.token.clone())
        });
        let mut reg = TestRegistry {
            auth: b.auth,
            port: 0,
            config_path: dir.path().join("config.yml"),
            log_path: dir.path().join("registry.log"),
            dir,
            storage_dir,
            blob_descriptor_cache: b.blob_descriptor_cache,
            access_log: b.access_log,
            cert_dir,
            ca_file,
            token,
            child: None,
        };
        // A free port can be taken by someone else between our probe and the registry's bind:
        // retry with another one in that case.
        for attempt in 0.. {
            reg.port = b.port.unwrap_or_else(http::free_port);
            reg.write_config();
            match reg.spawn_and_wait() {
                Ok(()) => return reg,
                Err(msg)
                    if b.port.is_none()
                        && attempt < 4
                        && msg.contains("address already in use") =>
                {
                    continue;
                }
                Err(msg) => panic!("{msg}"),
            }
        }
        unreachable!()
    }

    fn write_config(&self) {
        let d = self.dir.path();
        let mut y = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  formatter: text\n  accesslog:\n    disabled: {no_access_log}\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n{cache}\
             http:\n  addr: 127.0.0.1:{port}\n  secret: ferry-test-http-secret\n",
            storage = self.storage_dir.display(),
            no_access_log = !self.access_log,
            cache = if self.blob_descriptor_cache {
                "  cache:\n    blobdescriptor: inmemory\n"
            } else {
                ""
            },
            port = self.port,
        );
        if self.auth.is_tls() {
            y.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            ));
        }
        if self.auth.is_htpasswd() {
            y.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ferry-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        if let Some(t) = &self.token {
            y.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm(),
                t.service(),
                t.issuer(),
                d.join("token-ca.pem").display()
            ));
        }
        fs::write(&self.config_path, y).expect("write registry config");
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open registry log");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        // Distribution reads REGISTRY_* variables as config overrides: keep the caller's out.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {REGISTRY_BIN} (apt-get install docker-registry): {e}")
        });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let probe = format!("{}/v2/", self.url());
        let mut last_err;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .unwrap()
                .try_wait()
                .expect("try_wait registry")
            {
                self.child = None;
                return Err(format!(
                    "test registry ({:?}, port {}) exited with {status} while starting; log:\n{}",
                    self.auth,
                    self.port,
                    self.log_since(log_start)
                ));
            }
            match http::get(&probe) {
                Ok(r) if r.status == 200 || r.status == 401 => return Ok(()),
                Ok(r) => last_err = format!("GET /v2/ answered {}: {}", r.status, r.text()),
                Err(e) => last_err = e.to_string(),
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "test registry ({:?}, {}) not ready after {START_TIMEOUT:?} (last probe: {last_err}); log:\n{}",
                    self.auth,
                    self.url(),
                    self.log_since(log_start)
                ));
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let all = fs::read(&self.log_path).unwrap_or_default();
        String::from_utf8_lossy(all.get(offset as usize..).unwrap_or(&[])).into_owned()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the registry process (idempotent); the storage stays.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Stops (if running) and starts again on the same port, config and storage.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(msg) = self.spawn_and_wait() {
            panic!("restart: {msg}");
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    pub fn auth(&self) -> Auth {
        self.auth
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.auth.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }
    /// `HOST/REFERENCE`, e.g. `127.0.0.1:5000/rancher/mirrored-pause:3.7`.
    pub fn image(&self, reference: &str) -> String {
        format!("{}/{reference}", self.host())
    }
    /// `docker://HOST/REFERENCE` for skopeo.
    pub fn docker_ref(&self, reference: &str) -> String {
        format!("docker://{}/{reference}", self.host())
    }
    /// PEM of the test CA (TLS modes only).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }
    /// A directory holding only `ca.crt` (skopeo's `--cert-dir`), TLS modes only.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.cert_dir.as_deref()
    }
    pub fn username(&self) -> &'static str {
        USERNAME
    }
    pub fn password(&self) -> &'static str {
        PASSWORD
    }
    /// Does this mode refuse an anonymous pull of a public repository?
    pub fn requires_credentials_to_pull(&self) -> bool {
        self.auth.is_htpasswd()
    }
    /// The storage root (`storage.filesystem.rootdirectory`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage_dir
    }
    /// The distribution storage layout under [`Self::storage_dir`], to seed or inspect.
    pub fn storage(&self) -> Storage {
        Storage::new(&self.storage_dir)
    }
    /// The token server (token modes only).
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }
    /// The config file the registry runs with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }
    /// Everything the registry printed so far.
    pub fn log(&self) -> String {
        self.log_since(0)
    }
    /// The registry's temp dir (config, certs, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// skopeo flags for this registry: TLS (`--{prefix}tls-verify=false` or
    /// `--{prefix}cert-dir=…`) and, with `creds`, `--{prefix}creds=USER:PASS`.
    /// `prefix` is `""` (inspect), `"src-"` or `"dest-"` (copy).
    pub fn skopeo_flags(&self, prefix: &str, creds: bool) -> Vec<String> {
        let mut v = Vec::new();
        match &self.cert_dir {
            Some(d) => v.push(format!("--{prefix}cert-dir={}", d.display())),
            None => v.push(format!("--{prefix}tls-verify=false")),
        }
        if creds {
            v.push(format!("--{prefix}creds={USERNAME}:{PASSWORD}"));
        }
        v
    }

    /// `Authorization: Basic …` value for [`USERNAME`]/[`PASSWORD`].
    pub fn basic_auth(&self) -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"))
        )
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `USER:BCRYPT\n`, hashed once per process with `htpasswd -nbB -C 4` (cost 4: cheap checks).
fn htpasswd_line() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        let out = Command::new("htpasswd")
            .args(["-nbB", "-C", "4", USERNAME, PASSWORD])
            .output()
            .unwrap_or_else(|e| panic!("cannot run htpasswd (apt-get install apache2-utils): {e}"));
        assert!(
            out.status.success(),
            "htpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).expect("htpasswd output is UTF-8");
        format!("{}\n", line.trim())
    })
}
