//! Security and correctness at the edges: a token realm over plain HTTP for an HTTPS
//! registry, a registry that sends no `Docker-Content-Digest`, a registry that lies about the
//! digest of what was pushed, the re-import fast path and `--check-all`, a transfer waiting out
//! `Retry-After` (it must hold no permit), and a slow credential helper (it must hold up only
//! its own registry).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::fixtures::BlobKind;
use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exports every fixture from a fresh plain registry into `sandbox/work/bundle.tar`.
fn bundle(sandbox: &Sandbox) -> std::path::PathBuf {
    let images = fixtures();
    let upstream = TestRegistry::start(Auth::None);
    seed(&upstream, &images);
    let list = image_list(&sandbox.work(), &images, &[]);
    let out = sandbox.work().join("bundle.tar");
    let o = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", upstream.url()), "-o"])
        .arg(&out)
        .output()
        .expect("export");
    assert!(o.status.success(), "{}", text(&o.stderr));
    out
}

fn import(sandbox: &Sandbox, bundle: &Path, host: &str, extra: &[&str]) -> std::process::Output {
    sandbox
        .ferry()
        .arg("import")
        .arg(bundle)
        .args(["--to", host, "--plain-http", "--json", "--retries", "2"])
        .args(extra)
        .timeout(Duration::from_secs(120))
        .output()
        .expect("import")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stderr)))
}

#[test]
fn an_http_token_realm_of_an_https_registry_never_sees_credentials() {
    let reg = TestRegistry::builder(Auth::TlsToken)
        .token_over_http()
        .start();
    let images = fixtures_named(&[PAUSE]);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    sandbox.login(&[&reg]);
    let list = image_list(&sandbox.work(), &images, &[]);
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(&list)
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(sandbox.work().join("images.lock"))
        .output()
        .expect("lock");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let realm = reg.token_server().expect("token").realm();
    assert!(
        stderr.contains("plain HTTP") && stderr.contains(&realm),
        "the error names the insecure realm: {stderr}"
    );
    assert!(
        reg.token_server().expect("token").requests().is_empty(),
        "nothing at all went to the plain-HTTP token service"
    );
}

#[test]
fn verify_without_a_digest_header_hashes_what_the_tag_serves() {
    let sandbox = Sandbox::new();
    let bundle = bundle(&sandbox);
    let reg = TestRegistry::start(Auth::None);
    let out = import(&sandbox, &bundle, &reg.host(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let proxy = FaultProxy::start(&reg);
    proxy.inject(
        Match::kind(Kind::Manifest),
        Fault::SetHeader("Docker-Content-Digest".into(), None),
        usize::MAX,
    );
    let verify = || {
        sandbox
            .ferry()
            .arg("verify")
            .arg(&bundle)
            .args(["--to", &proxy.host(), "--plain-http", "--json"])
            .output()
            .expect("verify")
    };
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // Move a tag: the report names the digest it really points at.
    let etcd = fixture(ETCD);
    let coredns = fixture(COREDNS);
    let storage = reg.storage();
    let other = storage.put_manifest(&etcd.repository, &coredns.manifest);
    storage.tag(&etcd.repository, &etcd.tag, &other);
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report = json(&out);
    let problems = report["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == ETCD)
        .expect("etcd")["problems"]
        .to_string();
    assert!(
        problems.contains("tag_mismatch") && problems.contains(&coredns.digest),
        "{problems}"
    );
}

#[test]
fn a_registry_lying_about_the_digest_of_a_push_is_refused() {
    let sandbox = Sandbox::new();
    let bundle = bundle(&sandbox);
    let wrong = sha256_digest(b"what the registry claims it stored");
    for (what, matcher) in [
        ("blob", Match::kind(Kind::Upload).method("PUT")),
        ("manifest", Match::kind(Kind::Manifest).method("PUT")),
    ] {
        let reg = TestRegistry::start(Auth::None);
        let proxy = FaultProxy::start(&reg);
        proxy.inject(
            matcher,
            Fault::SetHeader("Docker-Content-Digest".into(), Some(wrong.clone())),
            usize::MAX,
        );
        let out = import(&sandbox, &bundle, &proxy.host(), &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(&wrong) && stderr.contains("refusing"),
            "{what}: the error names the digest the registry claimed: {stderr}"
        );
    }
}

#[test]
fn re_import_checks_platform_manifests_and_check_all_checks_blobs() {
    let sandbox = Sandbox::new();
    let bundle = bundle(&sandbox);
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    let out = import(&sandbox, &bundle, &reg.host(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A platform manifest lost behind a tag that is still in place.
    let tools = fixture(RKE_TOOLS);
    let arm = tools.platform("linux/arm64").expect("arm64").digest.clone();
    let revision = reg
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(&tools.repository)
        .join("_manifests/revisions/sha256")
        .join(arm.trim_start_matches("sha256:"));
    std::fs::remove_dir_all(&revision).expect("unlink the child");
    let out = import(&sandbox, &bundle, &reg.host(), &[]);
    let summary = json(&out);
    assert_eq!(summary["pushed"], 1, "{summary}");
    assert_eq!(summary["already_present"], images.len() - 1, "{summary}");
    assert!(reg.storage().has_manifest(&tools.repository, &arm));

    // A layer lost later (garbage collection): only --check-all looks at blobs.
    let pause = fixture(PAUSE);
    let layer = pause
        .blobs
        .iter()
        .rfind(|b| b.kind == BlobKind::Layer)
        .expect("layer")
        .digest
        .clone();
    reg.storage().unlink_blob(&pause.repository, &layer);
    let out = import(&sandbox, &bundle, &reg.host(), &[]);
    assert_eq!(json(&out)["pushed"], 0, "the fast path trusts the tags");
    let out = import(&sandbox, &bundle, &reg.host(), &["--check-all"]);
    let summary = json(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        reg.storage().has_layer_link(&pause.repository, &layer),
        "--check-all put the lost layer back: {summary}"
    );
    let out = sandbox
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .args(["--to", &reg.host(), "--plain-http"])
        .output()
        .expect("verify");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_transfer_waiting_out_retry_after_holds_no_permit() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    let layer = fixture(HYPERKUBE)
        .blobs
        .iter()
        .rfind(|b| b.kind == BlobKind::Layer)
        .expect("layer")
        .digest
        .clone();
    proxy.inject(
        Match::get(Kind::Blob).path_contains(&layer),
        Fault::TooManyRequests { retry_after: 2 },
        1,
    );
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let out = sandbox
        .ferry()
        .args(["export", "-j", "1", "--per-host", "1", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", proxy.url()), "-o"])
        .arg(sandbox.work().join("b.tar"))
        .output()
        .expect("export");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = proxy.requests();
    let tries: Vec<Instant> = log
        .iter()
        .filter(|r| r.method == "GET" && r.target.contains(&layer))
        .map(|r| r.at)
        .collect();
    assert_eq!(tries.len(), 2, "{}", proxy.counts_summary());
    let meanwhile = log
        .iter()
        .filter(|r| r.at > tries[0] && r.at < tries[1])
        .count();
    assert!(
        meanwhile > 0,
        "with one transfer slot, other requests went on while one waited out Retry-After"
    );
}

#[test]
fn a_slow_credential_helper_holds_up_only_its_own_registry() {
    // Registry A needs credentials from a helper that takes 3 s; registry B (docker.io here)
    // needs none. B's requests must go on while A's helper runs.
    let a = TestRegistry::start(Auth::Htpasswd);
    let etcd = fixture(ETCD);
    seed(&a, std::slice::from_ref(&etcd));
    let b = TestRegistry::start(Auth::None);
    let images = fixtures();
    seed(&b, &images);
    let proxy_b = FaultProxy::start(&b);
    let sandbox = Sandbox::new();
    let bin = sandbox.work().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let started = sandbox.work().join("helper-started");
    let finished = sandbox.work().join("helper-finished");
    let helper = bin.join("docker-credential-slow");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\ntouch {}\nsleep 3\ntouch {}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USERNAME}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            started.display(),
            finished.display()
        ),
    )
    .expect("helper");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::write(
        sandbox.docker_config_dir().join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"slow\"}}}}", a.host()),
    )
    .expect("config");
    let list = sandbox.work().join("images.txt");
    let mut text_list = format!("{}/{}\n", a.host(), etcd.reference());
    for i in &images {
        text_list.push_str(&format!("{}\n", i.reference()));
    }
    std::fs::write(&list, text_list).expect("list");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = sandbox
        .command(env!("CARGO_BIN_EXE_ferry"))
        .env("PATH", path)
        .args(["lock", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", proxy_b.url())])
        .args(["--upstream", &format!("{}={}", a.host(), a.url())])
        .arg("-o")
        .arg(sandbox.work().join("images.lock"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let wait_for = |p: &Path| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !p.exists() {
            assert!(Instant::now() < deadline, "{} never appeared", p.display());
            std::thread::sleep(Duration::from_millis(5));
        }
        Instant::now()
    };
    let t0 = wait_for(&started);
    let t1 = wait_for(&finished);
    let status = child.wait().expect("wait");
    assert!(status.success(), "lock failed");
    let during = proxy_b
        .requests()
        .iter()
        .filter(|r| r.at > t0 && r.at < t1)
        .count();
    assert!(
        during > 0,
        "registry B was asked nothing while A's credential helper ran ({})",
        proxy_b.counts_summary()
    );
}

#[test]
fn chunked_uploads_hash_the_whole_blob_before_committing_it() {
    let sandbox = Sandbox::new();
    let bundle = bundle(&sandbox);
    // Flip a byte in the third KiB of a layer only ETCD has: with 1 KiB chunks, the first
    // chunk is intact and the corrupt one is a later one.
    let etcd = fixture(ETCD);
    let others: Vec<FixtureImage> = fixtures()
        .into_iter()
        .filter(|i| i.repository != etcd.repository)
        .collect();
    let layer = etcd
        .blobs
        .iter()
        .find(|b| b.kind == BlobKind::Layer && others.iter().all(|o| o.blob(&b.digest).is_none()))
        .expect("an etcd-only layer")
        .clone();
    assert!(layer.bytes.len() > 3000, "{}", layer.bytes.len());
    let mut data = std::fs::read(&bundle).expect("read");
    let at = data
        .windows(64)
        .position(|w| w == &layer.bytes[..64])
        .expect("layer in the tar");
    data[at + 2500] ^= 0xff;
    let corrupt = sandbox.work().join("corrupt.tar");
    std::fs::write(&corrupt, &data).expect("write");

    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg);
    let out = import(&sandbox, &corrupt, &proxy.host(), &["--chunk-size", "1KiB"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(ETCD) && stderr.contains("corrupt"),
        "{stderr}"
    );
    let patches = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert!(
        patches > 3,
        "the upload was chunked: {}",
        proxy.counts_summary()
    );
    let committed = proxy.requests().iter().any(|r| {
        r.method == "PUT"
            && r.target
                .contains(layer.digest.trim_start_matches("sha256:"))
    });
    assert!(
        !committed,
        "no PUT ever asked the registry to commit the corrupt blob"
    );
    // The other images are complete.
    for o in &others {
        assert_eq!(
            reg.storage().tag_digest(&o.repository, &o.tag).as_deref(),
            Some(o.digest.as_str())
        );
    }
}
