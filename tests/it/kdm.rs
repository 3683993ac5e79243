//! Live KDM metadata: `--metadata URL` and `RANCHER_METADATA_URL=https://…` against a static
//! HTTPS server on 127.0.0.1 (the test CA, ETags, a request log) serving the real KDM
//! data.json of 2022-11-21 (`tests/data/`, the same bytes as the shared `rke/` copy). Each
//! test has its own sandbox and cache directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use ferry_test_support::static_files::{StaticServer, etag_of};
use ferry_test_support::tls;

use crate::support::Sandbox;

/// The version the 2022 data names as RKE's default.
pub(crate) const K: &str = "v1.24.8-rancher1-1";

pub(crate) fn kdm_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kdm-data-2022-11-21.json")
}

pub(crate) fn kdm_bytes() -> Vec<u8> {
    std::fs::read(kdm_path()).expect("read the KDM data.json fixture")
}

/// A sandbox with its own cache directory and the test CA in a file.
pub(crate) struct Env {
    pub(crate) sandbox: Sandbox,
    pub(crate) ca: PathBuf,
}

impl Env {
    pub(crate) fn new() -> Env {
        let sandbox = Sandbox::new();
        let dir = sandbox.path().join("ca");
        tls::write_ca_dir(&dir);
        Env {
            ca: dir.join("ca.crt"),
            sandbox,
        }
    }

    pub(crate) fn cache_home(&self) -> PathBuf {
        self.sandbox.path().join("cache")
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.cache_home().join("ferry/metadata")
    }

    pub(crate) fn ferry(&self) -> assert_cmd::Command {
        let mut cmd = self.sandbox.ferry();
        cmd.env("XDG_CACHE_HOME", self.cache_home());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.ferry().args(args).output().expect("run ferry")
    }

    /// `ferry images --metadata-ca-file CA ARGS…`, which must succeed: (stdout, stderr).
    pub(crate) fn images(&self, args: &[&str]) -> (String, String) {
        let ca = self.ca.to_str().expect("utf-8 path");
        let mut all = vec!["images", "--metadata-ca-file", ca];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "ferry {all:?} failed: {stderr}");
        (String::from_utf8(out.stdout).expect("utf-8 stdout"), stderr)
    }

    /// What `ferry images --metadata <local file> -k K` prints.
    fn expected(&self) -> String {
        let local = kdm_path();
        let (out, _) = self.images(&["--metadata", local.to_str().expect("path"), "-k", K]);
        assert!(out.lines().count() > 10, "a real list: {out}");
        out
    }

    /// The files of the cache directory.
    pub(crate) fn cached_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.cache_dir())
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    /// The one meta file of the cache.
    fn meta_file(&self) -> PathBuf {
        let metas: Vec<PathBuf> = self
            .cached_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
            .collect();
        assert_eq!(metas.len(), 1, "one cached URL: {metas:?}");
        metas[0].clone()
    }
}

/// Asserts exit code 2 with a one-paragraph error and nothing on stdout; returns stderr.
pub(crate) fn one_paragraph_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "expected exit 2: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one paragraph: {stderr}"
    );
    stderr
}

/// A loopback URL nobody listens on.
fn dead_url() -> String {
    let port = ferry_test_support::http::free_port();
    format!("https://127.0.0.1:{port}/kontainer-driver-metadata/release-v2.9/data.json")
}

fn server() -> StaticServer {
    StaticServer::start(&[("/data.json", kdm_bytes())], true)
}

/// The list from the URL is the list from the file; the second run revalidates with the
/// ETag, gets 304 and prints the same.
#[test]
fn url_lists_what_the_file_lists_and_revalidates_with_the_etag() {
    let env = Env::new();
    let expected = env.expected();
    let srv = server();
    let url = srv.url("/data.json");

    let (out, _) = env.images(&["--metadata", &url, "-k", K]);
    assert_eq!(out, expected);
    let log = srv.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].target.as_str()),
        ("GET", "/data.json")
    );
    assert_eq!(log[0].if_none_match, None, "nothing cached yet");
    assert_eq!(log[0].status, 200);

    // The cache: the body byte for byte, and a meta file with the ETag.
    let files = env.cached_files();
    assert_eq!(files.len(), 2, "{files:?}");
    let body = files
        .iter()
        .find(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .expect("body file");
    assert_eq!(std::fs::read(body).expect("read body"), kdm_bytes());
    let meta = std::fs::read_to_string(env.meta_file()).expect("meta");
    assert!(
        meta.contains(&etag_of(&kdm_bytes()).replace('"', "\\\"")),
        "{meta}"
    );

    srv.clear_log();
    let (out, _) = env.images(&["--metadata", &url, "-k", K]);
    assert_eq!(out, expected, "the cached copy gives the same list");
    let log = srv.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        log[0].if_none_match.as_deref(),
        Some(etag_of(&kdm_bytes()).as_str())
    );
    assert_eq!(log[0].status, 304);

    // --json names the URL as the metadata source.
    let (json, _) = env.images(&["--metadata", &url, "-k", K, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["metadata"], url.as_str());
}

/// After one download, --offline works with the server gone and never warns; without
/// XDG_CACHE_HOME the cache is under ~/.cache.
#[test]
fn offline_uses_the_cache_with_the_server_stopped() {
    let env = Env::new();
    let expected = env.expected();
    let srv = server();
    let url = srv.url("/data.json");
    env.images(&["--metadata", &url, "-k", K]);
    drop(srv);

    let (out, stderr) = env.images(&["--metadata", &url, "-k", K, "--offline"]);
    assert_eq!(out, expected);
    assert!(stderr.is_empty(), "no warning with --offline: {stderr}");

    // Offline and never cached: the error names the URL and what to do.
    let other = dead_url();
    let ca = env.ca.to_str().expect("path");
    let out = env.run(&[
        "images",
        "--metadata",
        &other,
        "--offline",
        "--metadata-ca-file",
        ca,
    ]);
    let e = one_paragraph_error(&out);
    assert!(e.contains(&other) && e.contains("--offline"), "{e}");
    assert!(
        e.contains("no cached copy") && e.contains("without --offline"),
        "{e}"
    );

    // The default place is ~/.cache/ferry/metadata.
    let srv = server();
    let url = srv.url("/data.json");
    let out = env
        .sandbox
        .ferry()
        .args([
            "images",
            "--metadata",
            &url,
            "-k",
            K,
            "--metadata-ca-file",
            ca,
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let home_cache = env.sandbox.home().join(".cache/ferry/metadata");
    assert_eq!(
        std::fs::read_dir(&home_cache)
            .expect("~/.cache/ferry/metadata")
            .count(),
        2
    );
}

/// A failed download with a cached copy: the copy is used, with a warning naming its age.
#[test]
fn stopped_server_falls_back_to_the_cached_copy_with_its_age() {
    let env = Env::new();
    let expected = env.expected();
    let srv = server();
    let url = srv.url("/data.json");
    env.images(&["--metadata", &url, "-k", K]);
    drop(srv);

    // Age the cached copy by three days.
    let meta_path = env.meta_file();
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).expect("meta")).expect("json");
    let three_days_ago = meta["downloaded_at"].as_u64().expect("downloaded_at") - 3 * 86_400;
    meta["downloaded_at"] = three_days_ago.into();
    meta["checked_at"] = three_days_ago.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).expect("json")).expect("write meta");

    let (out, stderr) = env.images(&["--metadata", &url, "-k", K]);
    assert_eq!(out, expected);
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(stderr.contains(&url), "names the URL: {stderr}");
    assert!(
        stderr.contains("using the copy cached 3 days ago"),
        "{stderr}"
    );
}

/// No cache and nothing to reach, a 404, an untrusted certificate: exit 2 and one paragraph
/// naming the URL, the cause and the fix; nothing is cached.
#[test]
fn failed_download_without_cache_is_a_clear_error() {
    let env = Env::new();
    let ca = env.ca.to_str().expect("path").to_string();

    let url = dead_url();
    let out = env.run(&["images", "--metadata", &url, "--metadata-ca-file", &ca]);
    let e = one_paragraph_error(&out);
    assert!(e.contains(&url), "names the URL: {e}");
    assert!(e.contains("cannot download KDM metadata"), "{e}");
    assert!(e.to_lowercase().contains("connect"), "names the cause: {e}");
    assert!(
        e.contains("--metadata data.json") && e.contains("--offline"),
        "the fix: {e}"
    );

    let srv = server();
    let missing = srv.url("/release-v9.9/data.json");
    let out = env.run(&["images", "--metadata", &missing, "--metadata-ca-file", &ca]);
    let e = one_paragraph_error(&out);
    assert!(e.contains(&missing) && e.contains("404"), "{e}");

    // The test CA is not trusted without --metadata-ca-file. (rustls-platform-verifier also
    // logs its own ERROR line for this, through the global log filter of main.rs; ferry's
    // error is the last line.)
    let url = srv.url("/data.json");
    let out = env.run(&["images", "--metadata", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let e = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(e.starts_with("error: "), "{stderr}");
    assert!(e.contains(&url) && e.contains("certificate"), "{e}");
    assert!(e.contains("--metadata-ca-file"), "{e}");

    // A CA file that is not one.
    let bogus = env.sandbox.work().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").expect("write");
    let out = env.run(&[
        "images",
        "--metadata",
        &url,
        "--metadata-ca-file",
        bogus.to_str().expect("path"),
    ]);
    let e = one_paragraph_error(&out);
    assert!(e.contains("bogus.pem"), "{e}");

    assert!(env.cached_files().is_empty(), "failures cache nothing");
}

/// RKE's variable names the URL too; the flag wins over it.
#[test]
fn rancher_metadata_url_names_the_url() {
    let env = Env::new();
    let expected = env.expected();
    let srv = server();
    let url = srv.url("/data.json");
    let ca = env.ca.to_str().expect("path");

    let out = env
        .ferry()
        .env("RANCHER_METADATA_URL", &url)
        .args(["images", "-k", K, "--metadata-ca-file", ca])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert_eq!(srv.log().len(), 1, "downloaded from the variable's URL");

    // --metadata over the variable: the variable's dead URL is never tried.
    let out = env
        .ferry()
        .env("RANCHER_METADATA_URL", dead_url())
        .args([
            "images",
            "--metadata",
            &url,
            "-k",
            K,
            "--metadata-ca-file",
            ca,
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

/// A URL's credentials are sent as Basic auth and appear nowhere: not in logs, errors,
/// warnings, --json, --help or the cache.
#[test]
fn credentials_in_the_url_are_sent_but_never_shown() {
    const SECRET: &str = "s3cr3t-Pa55";
    let env = Env::new();
    let expected = env.expected();
    let srv = server();
    srv.require_basic("robot", SECRET);
    let plain = srv.url("/data.json");
    let with_creds = plain.replace("https://", &format!("https://robot:{SECRET}@"));

    let (out, stderr) = env.images(&["-vv", "--metadata", &with_creds, "-k", K]);
    assert_eq!(out, expected);
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(
        srv.log()[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
    );
    let (json, _) = env.images(&["--metadata", &with_creds, "-k", K, "--json"]);
    assert!(!json.contains(SECRET) && json.contains(&plain), "{json}");
    for f in env.cached_files() {
        let text = std::fs::read_to_string(&f).expect("read cache file");
        assert!(!text.contains(SECRET), "{}", f.display());
    }

    // A wrong password: a 401, said without the password.
    let wrong = plain.replace("https://", "https://robot:not-the-password@");
    let out = env.run(&[
        "images",
        "--metadata",
        &wrong.replace("/data.json", "/x.json"),
        "--metadata-ca-file",
        env.ca.to_str().expect("path"),
    ]);
    let e = one_paragraph_error(&out);
    assert!(e.contains("401") && !e.contains("not-the-password"), "{e}");

    // The server gone: the warning of the fallback says nothing of the password either.
    drop(srv);
    let (out, stderr) = env.images(&["--metadata", &with_creds, "-k", K]);
    assert_eq!(out, expected);
    assert!(
        stderr.contains("WARN") && !stderr.contains(SECRET),
        "{stderr}"
    );

    // An unreachable URL with credentials, in the error.
    let dead = dead_url().replace("https://", &format!("https://robot:{SECRET}@"));
    let out = env.run(&["images", "--metadata", &dead]);
    let e = one_paragraph_error(&out);
    assert!(
        !e.contains(SECRET) && e.contains("https://127.0.0.1:"),
        "{e}"
    );

    // --help shows that the variable is read, not its value.
    let out = env
        .ferry()
        .env("RANCHER_METADATA_URL", &with_creds)
        .args(["images", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("RANCHER_METADATA_URL") && !help.contains(SECRET),
        "{help}"
    );
}

/// When the file changes upstream, the ETag no longer matches and the new file is used.
#[test]
fn changed_file_is_downloaded_again() {
    let env = Env::new();
    let srv = server();
    let url = srv.url("/data.json");
    let (out, _) = env.images(&["--metadata", &url, "--list-versions"]);
    assert_eq!(out, format!("{K}\n"));

    let newer = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ferry-rke/data/system-images.json"),
    )
    .expect("read the embedded catalog");
    srv.put("/data.json", newer.clone());
    srv.clear_log();
    let (out, _) = env.images(&["--metadata", &url, "--list-versions"]);
    assert_eq!(out, "v1.30.5-rancher1-1\n", "the new file's default");
    let log = srv.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        log[0].if_none_match.as_deref(),
        Some(etag_of(&kdm_bytes()).as_str())
    );
    assert_eq!(log[0].status, 200);
    let meta = std::fs::read_to_string(env.meta_file()).expect("meta");
    assert!(meta.contains(&crate::support::sha256_hex(&newer)), "{meta}");
}
