//! `ferry lock` against real registries standing in for Docker Hub, in every auth mode, with
//! faults, redirects and wrong credentials.

use std::path::Path;

use crate::support::*;

fn read_lock(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("lock written");
    let v: serde_json::Value = serde_saphyr::from_str(&text).expect("lock is YAML");
    v
}

/// Asserts the lock matches the fixtures exactly: digest, media type, every platform.
fn assert_lock_matches(lock: &serde_json::Value, images: &[FixtureImage]) {
    assert_eq!(lock["version"], 1);
    let entries = lock["images"].as_array().expect("images");
    assert_eq!(entries.len(), images.len());
    for img in images {
        let e = entries
            .iter()
            .find(|e| e["name"] == img.reference().as_str())
            .unwrap_or_else(|| panic!("{} missing from lock", img.reference()));
        assert_eq!(e["source"], format!("docker.io/{}", img.reference()));
        assert_eq!(e["digest"], img.digest.as_str(), "{}", img.reference());
        assert_eq!(e["media_type"], img.media_type.as_str());
        assert_eq!(e["size"], img.manifest.len() as u64);
        let plats = e["platforms"].as_array().expect("platforms");
        assert_eq!(plats.len(), img.platforms.len(), "{}", img.reference());
        for (p, f) in plats.iter().zip(&img.platforms) {
            let want = if f.attestation {
                "unknown/unknown".to_string()
            } else {
                f.name()
            };
            assert_eq!(p["platform"], want.as_str());
            assert_eq!(p["digest"], f.digest.as_str());
            assert_eq!(p["media_type"], f.media_type.as_str());
            match &f.os_version {
                Some(v) => assert_eq!(p["os_version"], v.as_str()),
                None => assert!(p.get("os_version").is_none_or(|v| v.is_null())),
            }
        }
        let own = total_unique_bytes(std::slice::from_ref(img));
        assert_eq!(e["total_size"], own, "{}", img.reference());
    }
    assert_eq!(lock["total_size"], total_unique_bytes(images));
}

#[test]
fn lock_in_every_auth_mode_matches_fixture_digests() {
    let images = fixtures();
    for auth in Auth::ALL {
        let reg = TestRegistry::start(auth);
        seed(&reg, &images);
        let sandbox = Sandbox::new();
        if auth.is_htpasswd() {
            sandbox.login(&[&reg]);
        }
        let list = image_list(&sandbox.work(), &images, &[]);
        let lock = sandbox.work().join("images.lock");
        let out = sandbox
            .ferry()
            .arg("lock")
            .arg("--images")
            .arg(&list)
            .args(upstream_args(&reg.url(), &reg))
            .arg("-o")
            .arg(&lock)
            .output()
            .expect("run ferry");
        assert!(
            out.status.success(),
            "{auth:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_lock_matches(&read_lock(&lock), &images);
        // Anonymous pulls through the token flow: no credentials were configured.
        if auth.is_token() {
            let reqs = reg.token_server().expect("token server").requests();
            assert!(
                !reqs.is_empty() && reqs.iter().all(|r| !r.authenticated),
                "{auth:?}: {reqs:?}"
            );
        }
    }
}

#[test]
fn heads_resolve_tags_and_each_manifest_is_fetched_once() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", proxy.url()), "-o"])
        .arg(sandbox.work().join("images.lock"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One HEAD per tag (cosign tags are looked for in one tag list per repository); one GET
    // per distinct manifest (top-level and children), never by tag.
    let distinct_manifests: std::collections::BTreeSet<String> = images
        .iter()
        .flat_map(|i| i.all_manifests().into_iter().map(|m| m.digest))
        .collect();
    assert_eq!(
        proxy.count("HEAD", Kind::Manifest),
        images.len(),
        "{}",
        proxy.counts_summary()
    );
    assert_eq!(
        proxy.count("GET", Kind::Tags),
        tag_lists(&images),
        "one tag list per repository: {}",
        proxy.counts_summary()
    );
    assert_eq!(
        proxy.count("GET", Kind::Manifest),
        distinct_manifests.len(),
        "{}",
        proxy.counts_summary()
    );
    assert!(
        proxy
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.kind == Kind::Manifest)
            .all(|r| r.target.contains("/manifests/sha256:"))
    );
}

#[test]
fn missing_image_is_named_and_the_rest_are_locked() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::Token);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = sandbox.work().join("list.txt");
    let mut text: String = images
        .iter()
        .map(|i| format!("{}\n", i.reference()))
        .collect();
    text.push_str("rancher/does-not-exist:v1\n");
    std::fs::write(&list, text).expect("write");
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "--json", "--images"])
        .arg(&list)
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rancher/does-not-exist:v1"), "{stderr}");
    assert_lock_matches(&read_lock(&lock), &images);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(summary["locked"], images.len());
    assert_eq!(summary["failed"][0]["name"], "rancher/does-not-exist:v1");
}

#[test]
fn rke_selection_locks_what_exists_and_names_the_rest() {
    // The five fixtures carry the names v1.30.5 uses; the other 21 images do not exist here.
    let reg = TestRegistry::start(Auth::None);
    let images = fixtures();
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "-k", "v1.30.5-rancher1-1", "--json"])
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["images"], 26);
    assert_eq!(summary["locked"], 5);
    assert_eq!(summary["failed"].as_array().expect("failed").len(), 21);
    assert_lock_matches(&read_lock(&lock), &images);
}

#[test]
fn wrong_credentials_name_the_registry_and_never_the_password() {
    for auth in [Auth::Htpasswd, Auth::TlsToken] {
        let reg = TestRegistry::builder(auth)
            .private_repo("rancher/mirrored-pause")
            .start();
        let images = fixtures_named(&[PAUSE]);
        seed(&reg, &images);
        let sandbox = Sandbox::new();
        sandbox.write_docker_config(&[(reg.host().as_str(), USERNAME, "wrong-Pa55word")]);
        let list = image_list(&sandbox.work(), &images, &[]);
        let out = sandbox
            .ferry()
            .args(["-vvv", "lock", "--images"])
            .arg(&list)
            .args(upstream_args(&reg.url(), &reg))
            .arg("-o")
            .arg(sandbox.work().join("l"))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{auth:?}: {stderr}");
        assert!(
            stderr.contains("rejected the credentials") && stderr.contains(USERNAME),
            "{auth:?}: {stderr}"
        );
        assert!(
            stderr.contains("docker.io") || stderr.contains(&reg.host()),
            "{stderr}"
        );
        assert!(
            !stderr.contains("wrong-Pa55word"),
            "password leaked: {stderr}"
        );
    }
}

#[test]
fn secrets_never_appear_in_output_or_lock() {
    let reg = TestRegistry::start(Auth::TlsToken);
    let images = fixtures();
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    sandbox.login(&[&reg]);
    let list = image_list(&sandbox.work(), &images, &[]);
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .env("FERRY_LOG", "trace")
        .args(["-vvv", "lock", "--images"])
        .arg(&list)
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let everything = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&lock).expect("lock")
    );
    assert!(!everything.contains(PASSWORD), "password leaked");
    let token_server = reg.token_server().expect("token");
    let issued = token_server.issue(&["repository:rancher/rke-tools:pull"], true);
    // A token's header and claims part (shared by every token this server issues).
    let header_part = issued.split('.').next().expect("jwt");
    assert!(
        !everything.contains(header_part),
        "a token leaked into the output"
    );
    assert!(
        token_server.requests().iter().any(|r| r.authenticated),
        "credentials were used"
    );
}

#[test]
fn retries_429_and_dropped_connections() {
    let reg = TestRegistry::start(Auth::None);
    let images = fixtures();
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    let r429 = proxy.inject(
        Match::head(Kind::Manifest),
        Fault::TooManyRequests { retry_after: 1 },
        2,
    );
    let reset = proxy.inject(Match::get(Kind::Manifest), Fault::ResetAfter(10), 3);
    let s503 = proxy.inject(Match::get(Kind::Blob), Fault::Status(503), 2);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", proxy.url())])
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.hits(r429), 2);
    assert_eq!(proxy.hits(reset), 3);
    assert_eq!(proxy.hits(s503), 2);
    assert_lock_matches(&read_lock(&lock), &images);
}

#[test]
fn unreachable_upstream_fails_clearly_after_retries() {
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &fixtures_named(&[PAUSE]), &[]);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = sandbox
        .ferry()
        .args(["lock", "--retries", "2", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io=http://127.0.0.1:{port}")])
        .arg("-o")
        .arg(sandbox.work().join("l"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach registry docker.io") && stderr.contains("2 attempt"),
        "{stderr}"
    );
    assert!(!sandbox.work().join("l").exists(), "no lock written");
}

#[test]
fn blob_redirects_do_not_carry_authorization() {
    let reg = TestRegistry::start(Auth::Htpasswd);
    let images = fixtures_named(&[PAUSE, ETCD]);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    proxy.redirect_blobs(true);
    let sandbox = Sandbox::new();
    sandbox.write_docker_config(&[(proxy.host().as_str(), USERNAME, PASSWORD)]);
    let list = image_list(&sandbox.work(), &images, &[]);
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", proxy.url())])
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cdn = proxy.cdn_requests();
    assert!(
        !cdn.is_empty(),
        "configs were fetched through the CDN redirect"
    );
    assert!(
        cdn.iter().all(|r| !r.had_authorization),
        "Authorization leaked to the CDN: {cdn:?}"
    );
    assert_lock_matches(&read_lock(&lock), &images);
}

#[test]
fn corrupt_config_blob_is_refused() {
    let reg = TestRegistry::start(Auth::None);
    let images = fixtures_named(&[PAUSE]);
    seed(&reg, &images);
    let config = images[0]
        .blobs
        .iter()
        .find(|b| b.kind == crate::support::fixtures::BlobKind::Config)
        .expect("config")
        .digest
        .clone();
    let mut tampered = images[0].blob(&config).expect("blob").bytes.clone();
    tampered[0] ^= 0x20;
    reg.storage().overwrite_blob_data(&config, &tampered);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let out = sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(&list)
        .args(upstream_args(&reg.url(), &reg))
        .arg("-o")
        .arg(sandbox.work().join("l"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("corrupt") && stderr.contains(&config),
        "{stderr}"
    );
}

#[test]
fn expired_tokens_are_renewed_during_a_long_run() {
    // Tokens live 1 s here; each manifest GET is delayed past that, so a run that reused its
    // first token for everything would be using an expired one.
    let reg = TestRegistry::builder(Auth::Token)
        .token_expires_in(1)
        .start();
    let images = fixtures_named(&[HYPERKUBE]);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    proxy.inject(
        Match::get(Kind::Manifest),
        Fault::Delay(std::time::Duration::from_millis(1100)),
        100,
    );
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let lock = sandbox.work().join("images.lock");
    let out = sandbox
        .ferry()
        .args(["lock", "-j", "1", "--images"])
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", proxy.url())])
        .arg("-o")
        .arg(&lock)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_lock_matches(&read_lock(&lock), &images);
    let scope = format!("repository:{}:pull", images[0].repository);
    let asked = reg
        .token_server()
        .expect("token")
        .requests()
        .iter()
        .filter(|r| r.scopes.contains(&scope))
        .count();
    // One manifest list and three children are fetched, each more than a token lifetime apart.
    assert!(
        asked >= 3,
        "a fresh token was fetched as each one expired: {asked} token requests"
    );
}
