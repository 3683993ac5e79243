//! `ferry import` into real registries (htpasswd, TLS, token auth), under RKE's names, with
//! path prefixes, cluster.yml, credential helpers, re-imports, kill -9 and broken bundles.
//! Every pushed image is read back with skopeo and hashed against the lock.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// The `--to` arguments (and CA / plain-HTTP flags) for `reg` under `path`.
fn to_args(reg: &TestRegistry, path: Option<&str>) -> Vec<String> {
    let host = match path {
        Some(p) => format!("{}/{p}", reg.host()),
        None => reg.host(),
    };
    let mut a = vec!["--to".to_string(), host];
    match reg.ca_file() {
        Some(ca) => {
            a.push("--ca-file".into());
            a.push(ca.display().to_string());
        }
        None => a.push("--plain-http".into()),
    }
    a
}

/// Asserts every fixture is in `reg` under `prefix`: tag at the lock digest, every child.
fn assert_pushed(reg: &TestRegistry, prefix: &str, images: &[FixtureImage]) {
    let creds = reg.requires_credentials_to_pull();
    for img in images {
        let repo = format!("{prefix}{}", img.repository);
        let raw = skopeo_inspect_raw(reg, &format!("{repo}:{}", img.tag), creds);
        assert_eq!(
            sha256_digest(&raw),
            img.digest,
            "{repo}:{} hashes to the lock digest",
            img.tag
        );
        for child in &img.children {
            let raw = skopeo_inspect_raw(reg, &format!("{repo}@{}", child.digest), creds);
            assert_eq!(raw, child.bytes, "{repo}@{}", child.digest);
        }
    }
}

fn import(sandbox: &Sandbox, args: &[String]) -> std::process::Output {
    sandbox
        .ferry()
        .arg("import")
        .arg(fixtures_bundle())
        .args(args)
        .output()
        .expect("run import")
}

#[test]
fn import_into_htpasswd_tls_and_token_registries() {
    let images = fixtures();
    for auth in [
        Auth::Htpasswd,
        Auth::TlsHtpasswd,
        Auth::Token,
        Auth::TlsToken,
    ] {
        let reg = TestRegistry::start(auth);
        let sandbox = Sandbox::new();
        sandbox.login(&[&reg]);
        let out = import(
            &sandbox,
            &[to_args(&reg, None), vec!["--json".into()]].concat(),
        );
        assert!(
            out.status.success(),
            "{auth:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(summary["pushed"], images.len(), "{auth:?}: {summary}");
        assert!(
            summary["blobs_mounted"].as_u64().expect("mounted") > 0,
            "shared layers are mounted across repositories: {summary}"
        );
        assert_pushed(&reg, "", &images);
    }
}

#[test]
fn path_prefixed_target_and_password_stdin() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::TlsHtpasswd);
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ferry();
    cmd.arg("import")
        .arg(fixtures_bundle())
        .args(to_args(&reg, Some("artifactory/rke")))
        .args(["--username", USERNAME, "--password-stdin"])
        .write_stdin(format!("{PASSWORD}\n"));
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_pushed(&reg, "artifactory/rke/", &images);
}

#[test]
fn cluster_yml_names_the_target_and_its_credentials() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::TlsHtpasswd);
    let sandbox = Sandbox::new();
    let cluster = sandbox.work().join("cluster.yml");
    std::fs::write(
        &cluster,
        format!("kubernetes_version: v1.30.5-rancher1-1\nprivate_registries:\n  - url: {}/mirror\n    user: {USERNAME}\n    password: {PASSWORD}\n    is_default: true\n", reg.host()),
    )
    .expect("cluster.yml");
    let ca = reg.ca_file().expect("ca").display().to_string();
    let out = sandbox
        .ferry()
        .arg("import")
        .arg(fixtures_bundle())
        .arg("--cluster")
        .arg(&cluster)
        .args(["--ca-file", &ca])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_pushed(&reg, "mirror/", &images);
    // Exactly the names `ferry images --cluster` says rke up will pull (for the fixtures it has).
    let listed = sandbox
        .ferry()
        .args(["images", "--cluster"])
        .arg(&cluster)
        .output()
        .expect("images");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for img in &images {
        assert!(
            listed
                .lines()
                .any(|l| l == format!("{}/mirror/{}", reg.host(), img.reference())),
            "{} in {listed}",
            img.reference()
        );
    }
}

#[test]
fn re_import_is_a_no_op_of_heads() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg);
    let sandbox = Sandbox::new();
    let to = vec!["--to".to_string(), proxy.host(), "--plain-http".to_string()];
    assert!(import(&sandbox, &to).status.success());
    proxy.clear_log();
    let out = import(&sandbox, &[to.clone(), vec!["--json".into()]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["already_present"], images.len());
    let reqs = proxy.requests();
    assert!(
        reqs.iter()
            .all(|r| r.method == "HEAD" || r.kind == Kind::Base),
        "only HEADs: {}",
        proxy.counts_summary()
    );
    // One HEAD per manifest: each tag, and each platform manifest behind it.
    let manifests: usize = images.iter().map(|i| 1 + i.children.len()).sum();
    assert_eq!(
        proxy.count("HEAD", Kind::Manifest),
        manifests,
        "{}",
        proxy.counts_summary()
    );
    assert_pushed(&reg, "", &images);
}

#[test]
fn kill_9_mid_import_then_rerun_completes() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg);
    proxy.inject(
        Match::kind(Kind::Upload).method("PUT"),
        Fault::Delay(Duration::from_millis(300)),
        1000,
    );
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .command(env!("CARGO_BIN_EXE_ferry"))
        .arg("import")
        .arg(fixtures_bundle())
        .args(["--to", &proxy.host(), "--plain-http", "-j", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.kind == Kind::Upload && r.status.is_some())
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "import made no progress: {}",
            proxy.counts_summary()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    proxy.clear_faults();
    let out = import(
        &sandbox,
        &[
            "--to".into(),
            proxy.host(),
            "--plain-http".into(),
            "--json".into(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        summary["blobs_present"].as_u64().expect("present") >= 3,
        "uploads before the crash are kept: {summary}"
    );
    assert_pushed(&reg, "", &images);
}

#[test]
fn credentials_from_a_docker_credential_helper() {
    let reg = TestRegistry::start(Auth::TlsToken);
    let sandbox = Sandbox::new();
    let bin = sandbox.work().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-ferrytest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = \"{}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USERNAME}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n  exit 0\nfi\necho 'credentials not found in native keychain'\nexit 1\n", reg.host()),
    )
    .expect("helper");
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&helper).expect("meta").permissions(),
        0o755,
    );
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::create_dir_all(sandbox.docker_config_dir()).expect("mkdir");
    std::fs::write(
        sandbox.docker_config_dir().join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"ferrytest\"}}}}", reg.host()),
    )
    .expect("config");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = sandbox
        .ferry()
        .env("PATH", path)
        .arg("import")
        .arg(fixtures_bundle())
        .args(to_args(&reg, None))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        reg.token_server()
            .expect("token")
            .requests()
            .iter()
            .any(|r| r.authenticated),
        "the helper's credentials were used"
    );
    assert_pushed(&reg, "", &fixtures());
}

#[test]
fn wrong_password_names_registry_and_user_never_the_secret() {
    let reg = TestRegistry::start(Auth::TlsHtpasswd);
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ferry();
    cmd.arg("import")
        .arg(fixtures_bundle())
        .args(to_args(&reg, None))
        .args(["--username", "admin", "--password-stdin"])
        .write_stdin("Not-The-Pa55\n");
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&reg.host())
            && stderr.contains("\"admin\"")
            && stderr.contains("rejected the credentials"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Not-The-Pa55"),
        "password leaked: {stderr}"
    );
}

#[test]
fn corrupt_blob_in_bundle_fails_its_images_and_pushes_the_rest() {
    let images = fixtures();
    let sandbox = Sandbox::new();
    let copy = sandbox.work().join("corrupt.tar");
    std::fs::copy(fixtures_bundle(), &copy).expect("copy");
    // Flip a byte inside the layer only ETCD uses.
    let etcd = fixture(ETCD);
    let others: Vec<FixtureImage> = images
        .iter()
        .filter(|i| i.repository != etcd.repository)
        .cloned()
        .collect();
    let only_etcd = etcd
        .blobs
        .iter()
        .find(|b| {
            others.iter().all(|o| o.blob(&b.digest).is_none())
                && b.kind == crate::support::fixtures::BlobKind::Layer
        })
        .expect("etcd-only layer");
    let data = std::fs::read(&copy).expect("read");
    let pos = data
        .windows(only_etcd.bytes.len().min(64))
        .position(|w| w == &only_etcd.bytes[..w.len()])
        .expect("layer bytes in the tar");
    let mut data = data;
    data[pos + 10] ^= 0xff;
    std::fs::write(&copy, &data).expect("write");
    let reg = TestRegistry::start(Auth::None);
    let out = sandbox
        .ferry()
        .arg("import")
        .arg(&copy)
        .args(["--to", &reg.host(), "--plain-http", "--json"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(ETCD) && stderr.contains("corrupt"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["pushed"], images.len() - 1);
    assert_pushed(&reg, "", &others);
    let tag = skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &reg.docker_ref(ETCD),
    ]);
    assert!(
        !tag.status.success(),
        "nothing of the corrupt image is tagged"
    );
}

#[test]
fn dry_run_pushes_nothing() {
    let reg = TestRegistry::start(Auth::None);
    let sandbox = Sandbox::new();
    let out = import(
        &sandbox,
        &[
            "--to".into(),
            reg.host(),
            "--plain-http".into(),
            "--dry-run".into(),
            "--json".into(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plan.as_array().expect("array").len(), fixtures().len());
    assert!(reg.storage().repositories().is_empty(), "nothing pushed");
}

#[test]
fn truncated_bundle_names_the_images_it_breaks_and_pushes_the_rest() {
    let images = fixtures();
    let sandbox = Sandbox::new();
    let cut = sandbox.work().join("cut.tar");
    // Blobs are sorted by digest; cut in the middle of the last one.
    let mut ar = tar::Archive::new(std::fs::File::open(fixtures_bundle()).expect("open"));
    let mut last: Option<(String, u64, u64)> = None;
    for e in ar.entries().expect("entries") {
        let e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        if e.size() > 2 && name.starts_with("blobs/sha256/") {
            last = Some((name, e.raw_file_position(), e.size()));
        }
    }
    let (name, offset, size) = last.expect("a blob");
    let digest = format!("sha256:{}", name.trim_start_matches("blobs/sha256/"));
    let data = std::fs::read(fixtures_bundle()).expect("read");
    std::fs::write(&cut, &data[..(offset + size / 2) as usize]).expect("write");
    let affected: Vec<&FixtureImage> = images
        .iter()
        .filter(|i| i.digest == digest || i.blob(&digest).is_some() || i.child(&digest).is_some())
        .collect();
    assert!(
        !affected.is_empty() && affected.len() < images.len(),
        "the cut blob belongs to some images only"
    );

    let reg = TestRegistry::start(Auth::None);
    let out = sandbox
        .ferry()
        .arg("import")
        .arg(&cut)
        .args(["--to", &reg.host(), "--plain-http", "--json"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    for a in &affected {
        assert!(
            stderr.contains(&a.reference()),
            "{} named: {stderr}",
            a.reference()
        );
        assert!(
            reg.storage().tag_digest(&a.repository, &a.tag).is_none(),
            "nothing of {} is tagged",
            a.reference()
        );
    }
    let rest: Vec<FixtureImage> = images
        .iter()
        .filter(|i| !affected.iter().any(|a| a.reference() == i.reference()))
        .cloned()
        .collect();
    assert_pushed(&reg, "", &rest);

    let v = sandbox
        .ferry()
        .arg("verify")
        .arg(&cut)
        .output()
        .expect("verify");
    let report = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(1), "{report}");
    assert!(report.contains("truncated"), "{report}");
}

#[test]
fn chunked_upload_and_ferry_env_credentials() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::Htpasswd);
    let proxy = FaultProxy::start(&reg);
    let sandbox = Sandbox::new();
    let out = sandbox
        .ferry()
        .env("FERRY_USERNAME", USERNAME)
        .env("FERRY_PASSWORD", PASSWORD)
        .arg("import")
        .arg(fixtures_bundle())
        .args([
            "--to",
            &proxy.host(),
            "--plain-http",
            "--chunk-size",
            "2KiB",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let patches = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.kind == Kind::Upload)
        .count();
    let big_blobs = unique_blobs(&images)
        .values()
        .filter(|b| b.bytes.len() > 2048)
        .count();
    assert!(
        patches > big_blobs,
        "blobs larger than a chunk go in several PATCHes: {}",
        proxy.counts_summary()
    );
    assert_pushed(&reg, "", &images);
}

#[test]
fn broken_chunk_resumes_from_the_upload_status() {
    let images = fixtures_named(&[ETCD]);
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg);
    // The second PATCH of the run fails; the upload continues from what the registry has.
    proxy.inject(
        Match::kind(Kind::Upload).method("PATCH"),
        Fault::Status(503),
        1,
    );
    let sandbox = Sandbox::new();
    let out = sandbox
        .ferry()
        .arg("import")
        .arg(fixtures_bundle())
        .args([
            "--to",
            &proxy.host(),
            "--plain-http",
            "--chunk-size",
            "1KiB",
            "-j",
            "1",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statuses = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.kind == Kind::Upload)
        .count();
    assert!(
        statuses >= 1,
        "the upload status was asked: {}",
        proxy.counts_summary()
    );
    assert_pushed(&reg, "", &images);
}
