//! What the integration tests add to the harness crate (`ferry-test-support`: registries,
//! token server, fixtures, fault proxy, lying registry): runners for `ferry` and `skopeo` in an
//! isolated environment ([`Sandbox`]), and the fixture bundle every import test starts from.
//! They live here because they need what cargo sets only for integration tests
//! (`CARGO_BIN_EXE_ferry`, `CARGO_TARGET_TMPDIR`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use base64::Engine;
use tempfile::TempDir;

pub use ferry_test_support::{
    blobs, fixtures, http, lying, proxy, registry, seed, sha256_digest, sha256_hex, shapes,
};

pub use fixtures::{
    COREDNS, ETCD, FixtureBlob, FixtureImage, HYPERKUBE, PAUSE, RKE_TOOLS, fixture, fixtures,
    fixtures_named, total_unique_blob_bytes, total_unique_bytes, unique_blobs,
};
pub use proxy::{Fault, FaultProxy, Kind, Match};
pub use registry::{Auth, PASSWORD, TestRegistry, USERNAME};
pub use seed::{seed, seed_as, seed_with_prefix};

/// Variables removed from every child environment (the developer's shell must not leak in).
const REMOVED_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "RANCHER_METADATA_URL",
    "REGISTRY_AUTH_FILE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RUST_LOG",
];
/// Prefixes of variables removed likewise.
const REMOVED_PREFIXES: &[&str] = &["FERRY_", "AWS_", "DOCKER_", "XDG_", "CONTAINERS_"];

/// The environment changes for a child rooted at `sandbox`: (variables to remove, to set).
fn env_plan(home: &Path, docker: &Path, tmp: &Path) -> (Vec<OsString>, Vec<(OsString, OsString)>) {
    let mut remove: Vec<OsString> = REMOVED_VARS.iter().map(OsString::from).collect();
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if REMOVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            remove.push(k);
        }
    }
    let mut set: Vec<(OsString, OsString)> = vec![
        ("HOME".into(), home.into()),
        ("DOCKER_CONFIG".into(), docker.into()),
        ("TMPDIR".into(), tmp.into()),
        ("NO_PROXY".into(), "*".into()),
        ("no_proxy".into(), "*".into()),
        ("NO_COLOR".into(), "1".into()),
    ];
    // Opt-in logging for debugging a test: FERRY_IT_RUST_LOG=debug cargo test …
    if let Some(v) = std::env::var_os("FERRY_IT_RUST_LOG") {
        set.push(("RUST_LOG".into(), v));
    }
    (remove, set)
}

/// An isolated HOME / DOCKER_CONFIG / TMPDIR for the commands of one test; removed on Drop.
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("ferry-it-sandbox-")
            .tempdir()
            .expect("create sandbox dir");
        Self::init(dir.path());
        Sandbox { dir }
    }

    fn init(root: &Path) {
        for sub in ["home/.docker", "tmp", "work"] {
            std::fs::create_dir_all(root.join(sub)).expect("create sandbox subdir");
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `HOME` of children.
    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }
    /// `DOCKER_CONFIG` of children (`HOME/.docker`).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.home().join(".docker")
    }
    /// A scratch dir for the test's own files (bundles, lock files, …); also ferry's cwd.
    pub fn work(&self) -> PathBuf {
        self.path().join("work")
    }

    /// The `ferry` binary with this sandbox's environment, run in [`Self::work`].
    pub fn ferry(&self) -> assert_cmd::Command {
        ferry_in(self.path())
    }

    /// Any program with this sandbox's environment (e.g. `umoci`, `oci-image-tool`), cwd
    /// [`Self::work`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> std::process::Command {
        isolated(program, self.path())
    }

    /// Runs skopeo in this sandbox (`TMPDIR`, `HOME`, no auth files from the caller).
    pub fn skopeo<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        skopeo_in(self.path(), args)
    }

    /// Writes `DOCKER_CONFIG/config.json` with `auths` for these `(host, user, password)`.
    pub fn write_docker_config(&self, entries: &[(&str, &str, &str)]) -> PathBuf {
        write_docker_config(&self.docker_config_dir(), entries)
    }

    /// Writes `DOCKER_CONFIG/config.json` with credentials for these registries.
    pub fn login(&self, registries: &[&TestRegistry]) -> PathBuf {
        let hosts: Vec<String> = registries.iter().map(|r| r.host()).collect();
        let entries: Vec<(&str, &str, &str)> = hosts
            .iter()
            .map(|h| (h.as_str(), USERNAME, PASSWORD))
            .collect();
        self.write_docker_config(&entries)
    }
}

/// `program` with the isolated environment rooted at `root` (a sandbox layout), cwd `root/work`.
fn isolated(program: impl AsRef<OsStr>, root: &Path) -> std::process::Command {
    let (remove, set) = env_plan(
        &root.join("home"),
        &root.join("home/.docker"),
        &root.join("tmp"),
    );
    let mut cmd = std::process::Command::new(program);
    for k in remove {
        cmd.env_remove(k);
    }
    for (k, v) in set {
        cmd.env(k, v);
    }
    cmd.current_dir(root.join("work"));
    cmd.stdin(std::process::Stdio::null());
    cmd
}

fn ferry_in(root: &Path) -> assert_cmd::Command {
    isolated(env!("CARGO_BIN_EXE_ferry"), root).into()
}

/// A per-process scratch root under cargo's `target/tmp`; dirs of dead test processes are
/// removed the first time it is used.
fn process_scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-scratch");
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let alive = name
                    .parse::<u32>()
                    .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if !alive {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

/// The `ferry` binary with a fresh, isolated environment: `HOME` and `DOCKER_CONFIG` in a new
/// empty dir (also the cwd), `NO_PROXY=*`, proxy variables, `RANCHER_METADATA_URL`, `FERRY_*`,
/// `AWS_*`, `DOCKER_*`, `XDG_*` removed, `NO_COLOR=1`. The dir lives under `target/tmp` until a
/// later test run cleans it; use a [`Sandbox`] to write a docker config or keep files.
pub fn ferry() -> assert_cmd::Command {
    let root = tempfile::Builder::new()
        .prefix("ferry-")
        .tempdir_in(process_scratch())
        .expect("create ferry home")
        .keep();
    Sandbox::init(&root);
    ferry_in(&root)
}

fn skopeo_in<I, S>(root: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut cmd = isolated("skopeo", root);
    // No dependence on /etc/containers/policy.json; a hung registry cannot hang the test.
    cmd.args(["--insecure-policy", "--command-timeout=120s"])
        .args(&args);
    // Never read the caller's auth.json.
    cmd.env("REGISTRY_AUTH_FILE", root.join("home/auth.json"));
    cmd.env("XDG_RUNTIME_DIR", root.join("tmp"));
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run skopeo (apt-get install skopeo): {e}; args {args:?}")
    })
}

/// Runs skopeo in a throwaway sandbox; returns its output whatever the exit status.
pub fn skopeo<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let sandbox = Sandbox::new();
    sandbox.skopeo(args)
}

/// Runs skopeo and panics (with its stderr) unless it succeeds; returns stdout.
pub fn skopeo_ok<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = skopeo(&args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `skopeo inspect --raw docker://HOST/REFERENCE` (with credentials if `creds`): exact bytes.
/// `reference` is `repo:tag` or `repo@sha256:…`.
pub fn skopeo_inspect_raw(reg: &TestRegistry, reference: &str, creds: bool) -> Vec<u8> {
    let mut args = vec!["inspect".to_string(), "--raw".to_string()];
    args.extend(reg.skopeo_flags("", creds));
    args.push(reg.docker_ref(reference));
    let out = skopeo(&args);
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference} on {} ({:?}) failed ({}):\n{}\nregistry log:\n{}",
        reg.url(),
        reg.auth(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        reg.log()
    );
    out.stdout
}

/// A docker `config.json` value with `auths` for `(host, user, password)` entries.
pub fn docker_config_json(entries: &[(&str, &str, &str)]) -> serde_json::Value {
    let mut auths = serde_json::Map::new();
    for (host, user, pass) in entries {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        auths.insert((*host).to_string(), serde_json::json!({ "auth": auth }));
    }
    serde_json::json!({ "auths": auths })
}

/// Writes `dir/config.json` with `auths` for these entries; returns its path.
pub fn write_docker_config(dir: &Path, entries: &[(&str, &str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create docker config dir");
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&docker_config_json(entries)).expect("serialize");
    std::fs::write(&path, text).expect("write docker config.json");
    path
}

/// Writes `dir/images.txt`: a `# comment` line, the fixtures' `repository:tag`, then `extra`.
pub fn image_list(dir: &Path, images: &[FixtureImage], extra: &[&str]) -> PathBuf {
    let p = dir.join("images.txt");
    let mut text = String::from("# fixture images\n");
    for i in images {
        text.push_str(&i.reference());
        text.push('\n');
    }
    for e in extra {
        text.push_str(e);
        text.push('\n');
    }
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// `--upstream docker.io=URL` (and `--ca-file` for a TLS `reg`).
pub fn upstream_args(url: &str, reg: &TestRegistry) -> Vec<String> {
    let mut a = vec!["--upstream".to_string(), format!("docker.io={url}")];
    if let Some(ca) = reg.ca_file() {
        a.push("--ca-file".into());
        a.push(ca.display().to_string());
    }
    a
}

/// A bundle of all fixtures, exported by `ferry export` once per test process from a plain
/// registry, under `CARGO_TARGET_TMPDIR` (bundles of test processes that are gone are removed).
pub fn fixtures_bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let images = fixtures();
        let reg = TestRegistry::start(Auth::None);
        seed(&reg, &images);
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-bundles");
        for old in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if !Path::new("/proc").join(old.file_name()).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("mkdir fixture bundle dir");
        let list = image_list(&dir, &images, &[]);
        let out = dir.join("bundle.tar");
        let o = ferry()
            .arg("export")
            .arg("--images")
            .arg(&list)
            .args(["--upstream", &format!("docker.io={}", reg.url()), "-o"])
            .arg(&out)
            .output()
            .expect("run ferry export");
        assert!(
            o.status.success(),
            "export of the fixture bundle: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

/// Peak resident memory of a running process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `ferry ARGS` in `sandbox` under `/usr/bin/time`, killed after `deadline`: its output
/// and its peak resident memory in KiB.
pub fn ferry_measured(
    sandbox: &Sandbox,
    args: &[&OsStr],
    deadline: std::time::Duration,
) -> (Output, u64) {
    let report = sandbox.work().join(format!(
        "time-{}.txt",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let child = sandbox
        .command("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn /usr/bin/time ferry");
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-P", &pid.to_string()])
            .status();
        true
    });
    let out = child.wait_with_output().expect("wait ferry");
    let killed = killer.join().unwrap_or(false);
    assert!(
        !killed,
        "ferry {args:?} ran past its deadline of {deadline:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let kib = text
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {text:?}"));
    (out, kib)
}

/// The tag lists `lock` and `export` read looking for what is attached to `images` (nothing
/// is on the fixtures): one `GET /v2/<name>/tags/list` per repository, after which no cosign
/// tag or referrers tag is asked for (the list names none).
pub fn tag_lists(images: &[FixtureImage]) -> usize {
    images
        .iter()
        .map(|i| i.repository.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Runs ferry in `sandbox` with `args`: its exit code, stdout and stderr.
pub fn run(sandbox: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sandbox.ferry().args(args).output().expect("ferry");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The `images` entries of an `images.lock`, as JSON values.
pub fn lock_entries(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("lock");
    let v: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
    v["images"].as_array().expect("images").clone()
}

/// The problems of `name` in a `verify --json` report, as (kind, detail).
pub fn problems(report: &str, name: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(report).expect("json report");
    v["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter(|i| i["name"] == name)
        .flat_map(|i| i["problems"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("").to_string(),
                p["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
