//! `ferry export` against a token-auth TLS registry standing in for Docker Hub: the bundle is
//! read back with the tar crate, skopeo and umoci; every byte is compared with the fixtures;
//! crashes, corrupt upstreams and missing images are exercised.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Every entry of a tar: name → bytes (asserting names are unique).
fn tar_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).expect("open bundle"));
    let mut out = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("read entry");
        out.push((name, bytes));
    }
    out
}

fn file_sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).expect("read"))
}

/// Asserts the bundle holds exactly the fixtures' manifests and blobs, byte for byte, once each.
fn assert_bundle_matches(bundle: &Path, images: &[FixtureImage]) {
    let entries = tar_entries(bundle);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..4],
        &["oci-layout", "index.json", "images.lock", "manifest.json"],
        "metadata first"
    );
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (n, b) in &entries {
        if let Some(hex) = n.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert!(
                blobs.insert(format!("sha256:{hex}"), b.clone()).is_none(),
                "{n} stored twice"
            );
            assert_eq!(sha256_hex(b), hex, "{n} content matches its name");
        }
    }
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for img in images {
        for m in img.all_manifests() {
            expected.insert(m.digest.clone(), m.bytes.clone());
        }
        for b in &img.blobs {
            expected.insert(b.digest.clone(), b.bytes.clone());
        }
    }
    assert_eq!(
        blobs.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "exactly the fixture objects"
    );
    assert_eq!(blobs, expected, "bytes untouched");

    let index: serde_json::Value = serde_json::from_slice(&entries[1].1).expect("index.json");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), images.len());
    for img in images {
        let full = format!("docker.io/{}", img.reference());
        let d = manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == full.as_str())
            .unwrap_or_else(|| panic!("{full} in index.json"));
        assert_eq!(d["annotations"]["io.containerd.image.name"], full.as_str());
        assert_eq!(d["digest"], img.digest.as_str());
        assert_eq!(d["mediaType"], img.media_type.as_str(), "true media type");
        assert_eq!(d["size"], img.manifest.len());
    }
    assert_eq!(entries[0].1, br#"{"imageLayoutVersion":"1.0.0"}"#);
}

fn export(
    sandbox: &Sandbox,
    reg: &TestRegistry,
    url: &str,
    list: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(list)
        .args(upstream_args(url, reg))
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .expect("run ferry")
}

#[test]
fn export_from_token_tls_upstream_is_byte_exact_and_readable_by_oracles() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::TlsToken);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let bundle = sandbox.work().join("bundle.tar");
    let out = export(&sandbox, &reg, &reg.url(), &list, &bundle, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_bundle_matches(&bundle, &images);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["exported"], images.len());
    assert_eq!(summary["bytes"], total_unique_bytes(&images));
    assert!(
        summary["bytes_saved_by_dedup"].as_u64().expect("saved") > 0,
        "shared layers counted once"
    );
    assert_eq!(
        summary["docker_load_images"],
        images.len(),
        "every fixture has linux/amd64"
    );

    // skopeo reads OCI-typed entries by name, byte for byte.
    for name in [RKE_TOOLS, ETCD] {
        let img = fixture(name);
        let raw = sandbox.skopeo([
            "inspect",
            "--raw",
            &format!("oci-archive:{}:docker.io/{name}", bundle.display()),
        ]);
        assert!(
            raw.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&raw.stderr)
        );
        assert_eq!(sha256_digest(&raw.stdout), img.digest, "{name}");
    }
    // skopeo can copy a whole multi-arch image out of the bundle (every blob present).
    let dest = sandbox.work().join("copied");
    let cp = sandbox.skopeo([
        "copy",
        "--all",
        &format!("oci-archive:{}:docker.io/{RKE_TOOLS}", bundle.display()),
        &format!("oci:{}:x", dest.display()),
    ]);
    assert!(
        cp.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&cp.stderr)
    );

    // umoci validates the extracted layout and reads the single-arch OCI image.
    let dir = sandbox.work().join("layout");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let untar = sandbox
        .command("tar")
        .arg("-xf")
        .arg(&bundle)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("tar");
    assert!(untar.success());
    let ls = sandbox
        .command("umoci")
        .args(["ls", "--layout"])
        .arg(&dir)
        .output()
        .expect("umoci");
    assert!(
        ls.status.success(),
        "umoci ls: {}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let tags = String::from_utf8_lossy(&ls.stdout);
    assert!(tags.contains(&format!("docker.io/{ETCD}")), "{tags}");
    let stat = sandbox
        .command("umoci")
        .args(["stat", "--image"])
        .arg(format!("{}:docker.io/{ETCD}", dir.display()))
        .output()
        .expect("umoci stat");
    assert!(
        stat.status.success(),
        "umoci stat: {}",
        String::from_utf8_lossy(&stat.stderr)
    );

    // The lock inside the bundle agrees with the fixtures.
    let lock_text = String::from_utf8(tar_entries(&bundle)[2].1.clone()).expect("utf-8");
    let lock: serde_json::Value = serde_saphyr::from_str(&lock_text).expect("yaml");
    for img in &images {
        let e = lock["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|e| e["name"] == img.reference().as_str())
            .expect("entry");
        assert_eq!(e["digest"], img.digest.as_str());
    }
    // docker's manifest.json points at blobs that exist, one linux/amd64 entry per image.
    let mj: serde_json::Value =
        serde_json::from_slice(&tar_entries(&bundle)[3].1).expect("manifest.json");
    for entry in mj.as_array().expect("array") {
        for path in
            std::iter::once(&entry["Config"]).chain(entry["Layers"].as_array().expect("layers"))
        {
            assert!(dir.join(path.as_str().expect("path")).is_file(), "{path}");
        }
        assert!(
            entry["RepoTags"][0]
                .as_str()
                .expect("tag")
                .starts_with("rancher/")
        );
    }
}

#[test]
fn same_inputs_give_a_byte_identical_bundle_and_lock_input_works() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let a = sandbox.work().join("a.tar");
    assert!(
        export(&sandbox, &reg, &reg.url(), &list, &a, &[])
            .status
            .success()
    );
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(&list)
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("lock");
    assert!(out.status.success());
    let b = sandbox.work().join("b.tar");
    let out = sandbox
        .ferry()
        .args(["export", "--lock"])
        .arg(&lock)
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(&b)
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(file_sha(&a), file_sha(&b), "byte-identical bundles");

    let dry = sandbox
        .ferry()
        .args(["export", "--dry-run", "--json", "--lock"])
        .arg(&lock)
        // The dry run reads Docker Hub's pull quota (one HEAD): keep it on the test registry.
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(sandbox.work().join("c.tar"))
        .output()
        .expect("dry");
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("json");
    assert_eq!(d["images"], images.len());
    let manifests: std::collections::BTreeSet<String> = images
        .iter()
        .flat_map(|i| i.all_manifests().into_iter().map(|m| m.digest))
        .collect();
    assert_eq!(d["rate_limited_manifest_gets"], manifests.len());
    assert!(!sandbox.work().join("c.tar").exists());
}

#[test]
fn kill_9_mid_export_then_rerun_gives_the_same_bundle_fetching_only_what_is_missing() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let reference = sandbox.work().join("reference.tar");
    assert!(
        export(&sandbox, &reg, &reg.url(), &list, &reference, &[])
            .status
            .success()
    );

    let proxy = FaultProxy::start(&reg);
    proxy.inject(
        Match::get(Kind::Blob),
        Fault::Delay(Duration::from_millis(400)),
        1000,
    );
    let bundle = sandbox.work().join("bundle.tar");
    let mut child = sandbox
        .command(env!("CARGO_BIN_EXE_ferry"))
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args([
            "--upstream",
            &format!("docker.io={}", proxy.url()),
            "-j",
            "1",
            "-o",
        ])
        .arg(&bundle)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let journal = sandbox.work().join("bundle.tar.journal");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = std::fs::read_to_string(&journal)
            .map(|j| j.lines().filter(|l| l.starts_with("done")).count())
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "export made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(!bundle.exists(), "no complete-looking bundle after a crash");
    assert!(sandbox.work().join("bundle.tar.partial").exists());

    proxy.clear_faults();
    proxy.clear_log();
    let out = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args([
            "--json",
            "--upstream",
            &format!("docker.io={}", proxy.url()),
            "-o",
        ])
        .arg(&bundle)
        .output()
        .expect("rerun");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        file_sha(&bundle),
        file_sha(&reference),
        "resumed bundle equals an uninterrupted one"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["resumed"], true, "{summary}");
    let total_blobs = unique_blobs(&images).len() as u64;
    let downloaded = summary["blobs_downloaded"].as_u64().expect("downloaded");
    let present = summary["blobs_already_present"].as_u64().expect("present");
    assert!(
        present >= 3,
        "blobs verified before the crash are kept: {summary}"
    );
    assert_eq!(downloaded + present, total_blobs, "{summary}");
    // Every blob GET of the re-run is a missing blob, plus one config read per single-arch
    // image while resolving (PAUSE, ETCD, COREDNS).
    let single_arch = images.iter().filter(|i| !i.is_multi_arch()).count() as u64;
    assert_eq!(
        proxy.count("GET", Kind::Blob) as u64,
        downloaded + single_arch,
        "{}",
        proxy.counts_summary()
    );
}

#[test]
fn corrupt_upstream_blob_gives_a_clear_error_and_no_bundle() {
    let images = fixtures_named(&[ETCD, PAUSE]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let layer = images[0]
        .blobs
        .iter()
        .find(|b| b.kind == crate::support::fixtures::BlobKind::Layer)
        .expect("layer")
        .clone();
    let mut bad = layer.bytes.clone();
    bad[10] ^= 0xff;
    reg.storage().overwrite_blob_data(&layer.digest, &bad);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let bundle = sandbox.work().join("b.tar");
    let out = export(&sandbox, &reg, &reg.url(), &list, &bundle, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&layer.digest) && stderr.contains("corrupt") && stderr.contains(ETCD),
        "{stderr}"
    );
    assert!(!bundle.exists(), "no complete-looking bundle");
    assert_eq!(
        stderr
            .trim_end()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn missing_image_is_named_and_the_rest_exported() {
    let images = fixtures_named(&[ETCD, HYPERKUBE]);
    let reg = TestRegistry::start(Auth::Token);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &["rancher/not-there:v1"]);
    let bundle = sandbox.work().join("b.tar");
    let out = export(&sandbox, &reg, &reg.url(), &list, &bundle, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rancher/not-there:v1"), "{stderr}");
    assert_bundle_matches(&bundle, &images);
}

#[test]
fn unreachable_upstream_gives_a_clear_error_after_retries() {
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &fixtures_named(&[PAUSE]), &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let bundle = sandbox.work().join("b.tar");
    let out = sandbox
        .ferry()
        .args(["export", "--retries", "2", "--images"])
        .arg(&list)
        .args([
            "--upstream",
            &format!("docker.io=http://127.0.0.1:{port}"),
            "-o",
        ])
        .arg(&bundle)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach registry docker.io"),
        "{stderr}"
    );
    assert!(!bundle.exists());
}

#[test]
fn platform_filter_writes_a_new_index_recorded_in_the_lock() {
    let images = fixtures_named(&[RKE_TOOLS, HYPERKUBE, PAUSE]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let bundle = sandbox.work().join("arm64.tar");
    let out = export(
        &sandbox,
        &reg,
        &reg.url(),
        &list,
        &bundle,
        &["--platform", "linux/arm64"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the amd64-only image is named: {stderr}"
    );
    assert!(
        stderr.contains(PAUSE) && stderr.contains("linux/amd64"),
        "{stderr}"
    );
    let entries = tar_entries(&bundle);
    let lock: serde_json::Value =
        serde_saphyr::from_str(std::str::from_utf8(&entries[2].1).expect("utf-8")).expect("lock");
    let index: serde_json::Value = serde_json::from_slice(&entries[1].1).expect("index");
    for name in [RKE_TOOLS, HYPERKUBE] {
        let img = fixture(name);
        let e = lock["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|e| e["name"] == name)
            .expect("entry");
        assert_eq!(e["digest"], img.digest.as_str(), "upstream digest kept");
        let written = e["written_digest"]
            .as_str()
            .expect("written digest")
            .to_string();
        assert_ne!(written, img.digest);
        let plats: Vec<&str> = e["platforms"]
            .as_array()
            .expect("platforms")
            .iter()
            .map(|p| p["platform"].as_str().expect("p"))
            .collect();
        assert!(
            plats.contains(&"linux/arm64")
                && !plats.contains(&"linux/amd64")
                && !plats.contains(&"windows/amd64"),
            "{plats:?}"
        );
        let d = index["manifests"]
            .as_array()
            .expect("m")
            .iter()
            .find(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    == format!("docker.io/{name}").as_str()
            })
            .expect("index entry");
        assert_eq!(d["digest"], written.as_str());
        assert_eq!(d["mediaType"], img.media_type.as_str());
        // The written index is in the bundle and lists arm64 only.
        let hex = written.trim_start_matches("sha256:");
        let body = &entries
            .iter()
            .find(|(n, _)| n == &format!("blobs/sha256/{hex}"))
            .expect("written index blob")
            .1;
        let parsed: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert!(
            parsed["manifests"]
                .as_array()
                .expect("m")
                .iter()
                .all(|m| m["platform"]["architecture"] == "arm64"
                    || m["platform"]["os"] == "unknown"),
            "{parsed}"
        );
        // Child manifests are still byte-identical to upstream.
        let arm = img.platform("linux/arm64").expect("arm64");
        let child = &entries
            .iter()
            .find(|(n, _)| {
                n == &format!("blobs/sha256/{}", arm.digest.trim_start_matches("sha256:"))
            })
            .expect("child")
            .1;
        assert_eq!(sha256_digest(child), arm.digest);
    }
    // Import and verify use the written digest.
    let target = TestRegistry::start(Auth::None);
    let out = sandbox
        .ferry()
        .arg("import")
        .arg(&bundle)
        .args(["--to", &target.host(), "--plain-http"])
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sandbox
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .args(["--to", &target.host(), "--plain-http"])
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// Docker Hub's pull rate limit: before reading any manifest, `ferry export` HEADs one Docker Hub
// manifest for `RateLimit-Limit` / `RateLimit-Remaining` and warns when the run needs more
// manifest GETs than remain. The fault proxy adds the headers to the test registry's answers.

/// Adds `RateLimit-Limit: LIMIT;w=21600` and `RateLimit-Remaining: REMAINING;w=21600` to every
/// manifest answer. The proxy sets one header per rule (only the first live matching rule
/// fires), so the second header rides in the value after a CRLF: ferry sees two header lines.
fn add_rate_limit_headers(proxy: &FaultProxy, limit: u64, remaining: u64) {
    proxy.inject(
        Match::kind(Kind::Manifest),
        Fault::SetHeader(
            "RateLimit-Limit".into(),
            Some(format!(
                "{limit};w=21600\r\nRateLimit-Remaining: {remaining};w=21600"
            )),
        ),
        usize::MAX,
    );
}

/// Distinct manifests (top-level and children) of `images`: the manifest GETs of an export.
fn distinct_manifests(images: &[FixtureImage]) -> usize {
    images
        .iter()
        .flat_map(|i| i.all_manifests().into_iter().map(|m| m.digest))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// `ferry lock` of `list` straight from `reg` (not through any proxy); the lock's path.
fn lock_from(sandbox: &Sandbox, reg: &TestRegistry, list: &Path) -> std::path::PathBuf {
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(list)
        .args(upstream_args(&reg.url(), reg))
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("lock");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lock
}

/// A registry seeded with `images`, behind a fault proxy that adds Docker Hub's rate-limit
/// headers `(limit, remaining)` when given, and a sandbox with their image list.
struct Hub {
    images: Vec<FixtureImage>,
    reg: TestRegistry,
    proxy: FaultProxy,
    sandbox: Sandbox,
    list: std::path::PathBuf,
}

fn hub(auth: Auth, images: Vec<FixtureImage>, quota: Option<(u64, u64)>) -> Hub {
    let reg = TestRegistry::start(auth);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    if let Some((limit, remaining)) = quota {
        add_rate_limit_headers(&proxy, limit, remaining);
    }
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    Hub {
        images,
        reg,
        proxy,
        sandbox,
        list,
    }
}

/// The rate-limit warning lines of `stderr`.
fn rate_limit_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("Docker Hub pull rate limit"))
        .collect()
}

#[test]
fn dry_run_with_fewer_pulls_left_than_needed_warns_and_reports_the_quota() {
    let Hub {
        images,
        reg,
        proxy,
        sandbox,
        list,
    } = hub(Auth::None, fixtures(), Some((100, 2)));
    let need = distinct_manifests(&images);
    let lock = lock_from(&sandbox, &reg, &list);

    // From a lock: the need is exact, and the dry run reads no manifest, only the one HEAD.
    let out = sandbox
        .ferry()
        .args(["export", "--dry-run", "--json", "--lock"])
        .arg(&lock)
        .args(["--upstream", &format!("docker.io={}", proxy.url()), "-o"])
        .arg(sandbox.work().join("never.tar"))
        .output()
        .expect("dry run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the warning is no failure: {stderr}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["rate_limited_manifest_gets"], need, "{d}");
    assert_eq!(d["rate_limit_limit"], 100, "{d}");
    assert_eq!(d["rate_limit_remaining"], 2, "{d}");
    assert_eq!(d["rate_limit_window_seconds"], 21600, "{d}");
    let warnings = rate_limit_warnings(&stderr);
    assert_eq!(warnings.len(), 1, "one warning line: {stderr}");
    for part in [
        format!("a real export needs {need} manifest GETs but only 2 of 100 remain"),
        "resets within 6 h".to_string(),
        "docker login".to_string(),
        "--lock".to_string(),
    ] {
        assert!(warnings[0].contains(&part), "{part:?} in {stderr}");
    }
    assert_eq!(
        (
            proxy.count("HEAD", Kind::Manifest),
            proxy.count("GET", Kind::Manifest)
        ),
        (1, 0),
        "{}",
        proxy.counts_summary()
    );
    assert!(!sandbox.work().join("never.tar").exists());

    // From a list of tags, as people read it: the remaining count next to the rate-limited
    // one, and one warning before the dry run reads the manifests (at least one per image).
    proxy.clear_log();
    let out = export(
        &sandbox,
        &reg,
        &proxy.url(),
        &list,
        &sandbox.work().join("never.tar"),
        &["--dry-run"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "{need} against Docker Hub's pull rate limit, 2 of 100 per 6 h remaining"
        )),
        "{stdout}"
    );
    let warnings = rate_limit_warnings(&stderr);
    assert_eq!(warnings.len(), 1, "one warning line: {stderr}");
    assert!(
        warnings[0].contains(&format!(
            "needs at least {} manifest GETs but only 2 of 100 remain",
            images.len()
        )),
        "{stderr}"
    );
    assert!(!sandbox.work().join("never.tar").exists());
}

#[test]
fn dry_run_with_enough_pulls_left_says_nothing_but_the_numbers() {
    let need = distinct_manifests(&fixtures());
    let Hub {
        reg,
        proxy,
        sandbox,
        list,
        ..
    } = hub(Auth::None, fixtures(), Some((200, need as u64)));
    let out = export(
        &sandbox,
        &reg,
        &proxy.url(),
        &list,
        &sandbox.work().join("never.tar"),
        &["--dry-run", "--json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        rate_limit_warnings(&stderr).is_empty(),
        "exactly enough left: no warning: {stderr}"
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["rate_limited_manifest_gets"], need, "{d}");
    assert_eq!(d["rate_limit_limit"], 200, "{d}");
    assert_eq!(d["rate_limit_remaining"], need, "{d}");
    assert_eq!(d["rate_limit_window_seconds"], 21600, "{d}");
}

#[test]
fn without_rate_limit_headers_nothing_is_said_and_the_fields_are_null() {
    let Hub {
        images,
        reg,
        proxy,
        sandbox,
        list,
    } = hub(Auth::None, fixtures(), None);
    let out = export(
        &sandbox,
        &reg,
        &proxy.url(),
        &list,
        &sandbox.work().join("never.tar"),
        &["--dry-run", "--json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.to_lowercase().contains("rate limit"),
        "no limit known, nothing said: {stderr}"
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for field in [
        "rate_limit_limit",
        "rate_limit_remaining",
        "rate_limit_window_seconds",
    ] {
        assert_eq!(d.get(field), Some(&serde_json::Value::Null), "{field}: {d}");
    }
    assert_eq!(d["rate_limited_manifest_gets"], distinct_manifests(&images));
    // The quota was asked for all the same: one HEAD more than the tags (the cosign tags are
    // looked for in one tag list per repository).
    assert_eq!(
        proxy.count("HEAD", Kind::Manifest),
        images.len() + 1,
        "{}",
        proxy.counts_summary()
    );
    assert_eq!(
        proxy.count("GET", Kind::Tags),
        tag_lists(&images),
        "one tag list per repository: {}",
        proxy.counts_summary()
    );

    // As people read it: the line is as before, with no remaining count.
    let out = export(
        &sandbox,
        &reg,
        &proxy.url(),
        &list,
        &sandbox.work().join("never.tar"),
        &["--dry-run"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("against Docker Hub's pull rate limit; tag lookups use HEAD"),
        "{stdout}"
    );
    assert!(!stdout.contains("remaining"), "{stdout}");
}

#[test]
fn real_export_with_too_few_pulls_left_warns_first_and_still_completes() {
    let Hub {
        images,
        reg,
        proxy,
        sandbox,
        list,
    } = hub(Auth::Token, fixtures(), Some((100, 1)));
    let bundle = sandbox.work().join("bundle.tar");
    let out = export(&sandbox, &reg, &proxy.url(), &list, &bundle, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the warning is no failure: {stderr}");
    assert_bundle_matches(&bundle, &images);
    let lines: Vec<&str> = stderr.lines().collect();
    let warning = lines
        .iter()
        .position(|l| l.contains("Docker Hub pull rate limit"))
        .unwrap_or_else(|| panic!("a warning: {stderr}"));
    let summary = lines
        .iter()
        .position(|l| l.starts_with("exported "))
        .unwrap_or_else(|| panic!("a summary: {stderr}"));
    assert!(warning < summary, "{stderr}");
    assert_eq!(rate_limit_warnings(&stderr).len(), 1, "{stderr}");
    for part in [
        format!(
            "this export needs at least {} manifest GETs but only 1 of 100 remain",
            images.len()
        ),
        "resets within 6 h".to_string(),
        "docker login".to_string(),
        "ferry goes on".to_string(),
        "running the same command later resumes".to_string(),
    ] {
        assert!(lines[warning].contains(&part), "{part:?} in {stderr}");
    }
    // Before starting: the quota's HEAD is the first manifest request, before any GET.
    let manifests: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.kind == Kind::Manifest && r.status != Some(401))
        .collect();
    assert_eq!(manifests.first().map(|r| r.method.as_str()), Some("HEAD"));
    assert!(
        manifests[1..].iter().any(|r| r.method == "GET"),
        "{}",
        proxy.counts_summary()
    );
}

#[test]
fn the_quota_is_read_with_one_head_and_adds_no_get() {
    let Hub {
        images,
        reg,
        proxy,
        sandbox,
        list,
    } = hub(Auth::None, fixtures(), Some((100, 76)));
    let need = distinct_manifests(&images);
    let lock = lock_from(&sandbox, &reg, &list);

    // From a lock no tag is looked up: the one HEAD is the quota's, by digest, and first.
    let out = sandbox
        .ferry()
        .args(["export", "--json", "--lock"])
        .arg(&lock)
        .args(["--upstream", &format!("docker.io={}", proxy.url()), "-o"])
        .arg(sandbox.work().join("a.tar"))
        .output()
        .expect("export");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(rate_limit_warnings(&stderr).is_empty(), "76 left: {stderr}");
    let manifests: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.kind == Kind::Manifest)
        .collect();
    let heads: Vec<_> = manifests.iter().filter(|r| r.method == "HEAD").collect();
    assert_eq!(heads.len(), 1, "{}", proxy.counts_summary());
    assert!(heads[0].target.contains("/manifests/sha256:"), "{heads:?}");
    assert_eq!(manifests[0].method, "HEAD", "the HEAD comes first");
    assert_eq!(
        proxy.count("GET", Kind::Manifest),
        need,
        "one GET per distinct manifest, none added: {}",
        proxy.counts_summary()
    );

    // From tags: one HEAD per tag plus the quota's (cosign tags: one tag list per repository),
    // and still one GET per distinct manifest.
    proxy.clear_log();
    let out = export(
        &sandbox,
        &reg,
        &proxy.url(),
        &list,
        &sandbox.work().join("b.tar"),
        &["--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        (
            proxy.count("HEAD", Kind::Manifest),
            proxy.count("GET", Kind::Manifest)
        ),
        (images.len() + 1, need),
        "{}",
        proxy.counts_summary()
    );
    assert_eq!(
        proxy.count("GET", Kind::Tags),
        tag_lists(&images),
        "one tag list per repository: {}",
        proxy.counts_summary()
    );
}

#[test]
fn no_quota_is_asked_for_when_no_image_comes_from_docker_hub() {
    let Hub {
        images,
        reg: _reg,
        proxy,
        sandbox,
        ..
    } = hub(Auth::None, fixtures_named(&[ETCD, PAUSE]), Some((100, 0)));
    let list = sandbox.work().join("private.txt");
    let text: String = images
        .iter()
        .map(|i| format!("{}/{}\n", proxy.host(), i.reference()))
        .collect();
    std::fs::write(&list, text).expect("write list");
    let out = sandbox
        .ferry()
        .args(["export", "--dry-run", "--json", "--images"])
        .arg(&list)
        .args([
            "--upstream",
            &format!("{}={}", proxy.host(), proxy.url()),
            "-o",
        ])
        .arg(sandbox.work().join("never.tar"))
        .output()
        .expect("dry run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(rate_limit_warnings(&stderr).is_empty(), "{stderr}");
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["rate_limited_manifest_gets"], 0, "{d}");
    assert_eq!(d["rate_limit_remaining"], serde_json::Value::Null, "{d}");
    assert_eq!(
        proxy.count("HEAD", Kind::Manifest),
        images.len(),
        "no HEAD beyond the tags' (cosign tags: in the tag lists): {}",
        proxy.counts_summary()
    );
    assert_eq!(
        proxy.count("GET", Kind::Tags),
        tag_lists(&images),
        "one tag list per repository: {}",
        proxy.counts_summary()
    );
}
