//! Self-tests of the harness in `support/`: a broken registry launcher, token server, seeding,
//! fixture set or fault proxy fails here, before it can mislead a test of ferry.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::blobs::{self, EMPTY_LAYER, EMPTY_LAYER_DIFF_ID, EMPTY_LAYER_DIGEST};
use crate::support::fixtures::{BlobKind, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::support::http;
use crate::support::*;
use ferry_test_support::token::decode_claims;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// skopeo inspect --raw without asserting success.
fn try_inspect(
    reg: &TestRegistry,
    reference: &str,
    creds: Option<(&str, &str)>,
) -> std::process::Output {
    let mut args = vec!["inspect".to_string(), "--raw".to_string()];
    args.extend(reg.skopeo_flags("", false));
    if let Some((u, p)) = creds {
        args.push(format!("--creds={u}:{p}"));
    }
    args.push(reg.docker_ref(reference));
    skopeo(&args)
}

#[test]
fn fixtures_are_deterministic_and_shaped_as_documented() {
    let all = fixtures();
    assert_eq!(
        all,
        fixtures(),
        "fixtures() must return the same bytes every call"
    );
    // Rebuilding from scratch (not the cache) must give the same bytes too.
    assert_eq!(
        blobs::layer("x", &[("a", 10)]).gz,
        blobs::layer("x", &[("a", 10)]).gz
    );
    assert_eq!(
        all.iter().map(|f| f.reference()).collect::<Vec<_>>(),
        [RKE_TOOLS, HYPERKUBE, PAUSE, ETCD, COREDNS]
    );
    for f in &all {
        assert_eq!(f.digest, sha256_digest(&f.manifest), "{}", f.reference());
        let top: serde_json::Value = serde_json::from_slice(&f.manifest).unwrap();
        assert_eq!(top["mediaType"], f.media_type.as_str());
        for c in &f.children {
            assert_eq!(c.digest, sha256_digest(&c.bytes));
        }
        for b in &f.blobs {
            assert_eq!(b.digest, sha256_digest(&b.bytes));
            assert!(b.bytes.len() < 16 * 1024, "fixture blobs stay small");
        }
        // Every descriptor in every manifest points at bytes of the right size.
        for m in f.all_manifests() {
            let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
            let descs = v["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(v["layers"].as_array().into_iter().flatten())
                .chain(v.get("config"));
            for d in descs {
                let digest = d["digest"].as_str().unwrap();
                let size = d["size"].as_u64().unwrap() as usize;
                let len = f
                    .child(digest)
                    .map(|c| c.bytes.len())
                    .or_else(|| f.blob(digest).map(|b| b.bytes.len()))
                    .unwrap_or_else(|| panic!("{}: dangling descriptor {digest}", f.reference()));
                assert_eq!(size, len, "{}: size of {digest}", f.reference());
            }
        }
        // Config diff_ids are the sha256 of each layer's tar.
        for cfg in f.blobs.iter().filter(|b| b.kind == BlobKind::Config) {
            let v: serde_json::Value = serde_json::from_slice(&cfg.bytes).unwrap();
            if v["os"] == "unknown" {
                continue;
            }
            let diff_ids: Vec<&str> = v["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            assert!(!diff_ids.is_empty());
            for id in diff_ids {
                let found = f.blobs.iter().any(|b| {
                    b.kind == BlobKind::Layer
                        && (blobs::gunzip_stored(&b.bytes).is_some_and(|t| sha256_digest(&t) == id)
                            || (b.digest == EMPTY_LAYER_DIGEST && id == EMPTY_LAYER_DIFF_ID))
                });
                assert!(found, "{}: no layer with diff_id {id}", f.reference());
            }
        }
    }

    let rke = fixture(RKE_TOOLS);
    assert_eq!(rke.media_type, OCI_INDEX);
    let names: Vec<String> = rke.platforms.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
            "unknown/unknown"
        ]
    );
    assert!(rke.platforms[3].attestation);
    let idx: serde_json::Value = serde_json::from_slice(&rke.manifest).unwrap();
    assert_eq!(
        idx["manifests"][3]["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert!(rke.children.iter().all(|c| c.media_type == OCI_MANIFEST));

    let hk = fixture(HYPERKUBE);
    assert_eq!(hk.media_type, DOCKER_LIST);
    let win = hk.platform("windows/amd64").expect("windows entry");
    assert_eq!(win.os_version.as_deref(), Some("10.0.17763.1234"));
    assert!(hk.children.iter().all(|c| c.media_type == DOCKER_MANIFEST));
    assert!(
        hk.manifest.starts_with(b"{\n   \"schemaVersion\""),
        "Docker-style 3-space indent"
    );

    assert_eq!(fixture(PAUSE).media_type, DOCKER_MANIFEST);
    assert_eq!(fixture(ETCD).media_type, OCI_MANIFEST);
    let coredns = fixture(COREDNS);
    let empty = coredns
        .blob(EMPTY_LAYER_DIGEST)
        .expect("empty layer in coredns");
    assert_eq!(empty.bytes, EMPTY_LAYER);
    assert_eq!(sha256_digest(&EMPTY_LAYER), EMPTY_LAYER_DIGEST);
    assert_eq!(sha256_digest(&[0u8; 1024]), EMPTY_LAYER_DIFF_ID);

    // A base layer shared by at least three images.
    let shared = unique_blobs(&all)
        .keys()
        .filter(|d| all.iter().filter(|f| f.blob(d).is_some()).count() >= 3)
        .count();
    assert!(shared >= 1, "no layer shared by three images");
    assert!(total_unique_blob_bytes(&all) < all.iter().map(|f| f.unique_blob_bytes()).sum());
    assert!(total_unique_bytes(&all) > total_unique_blob_bytes(&all));
}

#[test]
fn fixture_layers_are_real_gzip_tars() {
    // An outside oracle: gzip and tar read the layers, and the tar hashes to the diff_id.
    let f = fixture(HYPERKUBE);
    let layer = f.blobs.iter().find(|b| b.kind == BlobKind::Layer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar.gz");
    std::fs::write(&path, &layer.bytes).unwrap();
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "gzip -dc: {}", stderr(&out));
    assert_eq!(Some(out.stdout.clone()), blobs::gunzip_stored(&layer.bytes));
    let tar_path = dir.path().join("layer.tar");
    std::fs::write(&tar_path, &out.stdout).unwrap();
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar_path)
        .output()
        .unwrap();
    assert!(list.status.success(), "tar -tf: {}", stderr(&list));
    assert!(String::from_utf8_lossy(&list.stdout).contains("bin/busybox"));
}

#[test]
fn every_auth_mode_starts_and_challenges_as_configured() {
    // Start all five at once: also shows that parallel registries get distinct ports and dirs.
    let regs: Vec<TestRegistry> = std::thread::scope(|s| {
        let hs: Vec<_> = Auth::ALL
            .iter()
            .map(|&a| s.spawn(move || TestRegistry::start(a)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = regs.iter().map(|r| r.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 5);
    for reg in &regs {
        let r = http::get(&format!("{}/v2/", reg.url())).unwrap();
        let www = r.header("www-authenticate").unwrap_or("").to_string();
        match reg.auth() {
            Auth::None => assert_eq!(r.status, 200),
            Auth::Htpasswd | Auth::TlsHtpasswd => {
                assert_eq!(r.status, 401, "{:?}", reg.auth());
                assert!(www.starts_with("Basic realm="), "{www}");
                let ok = http::request(
                    "GET",
                    &format!("{}/v2/", reg.url()),
                    &[("Authorization", &reg.basic_auth())],
                    &[],
                )
                .unwrap();
                assert_eq!(
                    ok.status,
                    200,
                    "{:?}: Basic with right password",
                    reg.auth()
                );
            }
            Auth::Token | Auth::TlsToken => {
                let t = reg.token_server().unwrap();
                assert_eq!(r.status, 401);
                assert!(www.starts_with("Bearer realm="), "{www}");
                assert!(www.contains(&format!("realm=\"{}\"", t.realm())), "{www}");
                assert!(
                    www.contains(&format!("service=\"{}\"", t.service())),
                    "{www}"
                );
            }
        }
        assert_eq!(reg.url().starts_with("https://"), reg.auth().is_tls());
        assert_eq!(reg.ca_file().is_some(), reg.auth().is_tls());
    }
}

#[test]
fn seeded_fixtures_read_back_byte_identical_without_auth() {
    let reg = TestRegistry::start(Auth::None);
    let all = fixtures();
    seed(&reg, &all);
    for f in &all {
        let raw = skopeo_inspect_raw(&reg, &f.reference(), false);
        assert_eq!(
            sha256_digest(&raw),
            f.digest,
            "{} via skopeo",
            f.reference()
        );
        assert_eq!(raw, f.manifest);
        for c in &f.children {
            let raw = skopeo_inspect_raw(&reg, &format!("{}@{}", f.repository, c.digest), false);
            assert_eq!(sha256_digest(&raw), c.digest, "child of {}", f.reference());
        }
        // Blobs straight over HTTP, with the registry's own digest header.
        for b in &f.blobs {
            let r = http::get(&format!(
                "{}/v2/{}/blobs/{}",
                reg.url(),
                f.repository,
                b.digest
            ))
            .unwrap();
            assert_eq!(r.status, 200, "blob {} of {}", b.digest, f.reference());
            assert_eq!(r.body, b.bytes);
            assert_eq!(r.header("docker-content-digest"), Some(b.digest.as_str()));
        }
        // The Content-Type of a manifest GET is the media type inside it.
        let r = http::request(
            "GET",
            &format!("{}/v2/{}/manifests/{}", reg.url(), f.repository, f.tag),
            &[(
                "Accept",
                &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", "),
            )],
            &[],
        )
        .unwrap();
        assert_eq!(r.header("content-type"), Some(f.media_type.as_str()));
        assert_eq!(r.header("docker-content-digest"), Some(f.digest.as_str()));
    }
    let storage = reg.storage();
    assert_eq!(storage.repositories().len(), all.len());
    assert_eq!(
        storage.tag_digest(PAUSE.split(':').next().unwrap(), "3.7"),
        Some(fixture(PAUSE).digest)
    );
}

#[test]
fn skopeo_copies_seeded_multi_arch_images_with_every_blob() {
    // skopeo reads every manifest and blob and checks each digest: proof the seeding is whole.
    let src = TestRegistry::start(Auth::None);
    let dst = TestRegistry::start(Auth::Htpasswd);
    let images = fixtures_named(&[RKE_TOOLS, HYPERKUBE]);
    seed_with_prefix(&src, "mirror", &images);
    for f in &images {
        let reference = format!("mirror/{}", f.reference());
        let mut args = vec![
            "copy".to_string(),
            "--all".into(),
            "--preserve-digests".into(),
        ];
        args.extend(src.skopeo_flags("src-", false));
        args.extend(dst.skopeo_flags("dest-", true));
        args.push(src.docker_ref(&reference));
        args.push(dst.docker_ref(&f.reference()));
        skopeo_ok(&args);
        let raw = skopeo_inspect_raw(&dst, &f.reference(), true);
        assert_eq!(sha256_digest(&raw), f.digest);
        for b in &f.blobs {
            assert!(
                dst.storage().has_layer_link(&f.repository, &b.digest),
                "{} lacks {}",
                f.reference(),
                b.digest
            );
        }
    }
}

#[test]
fn htpasswd_modes_refuse_anonymous_and_accept_credentials() {
    for auth in [Auth::Htpasswd, Auth::TlsHtpasswd] {
        let reg = TestRegistry::start(auth);
        let f = fixture(HYPERKUBE);
        seed(&reg, std::slice::from_ref(&f));
        let anon = try_inspect(&reg, &f.reference(), None);
        assert!(!anon.status.success(), "{auth:?}: anonymous pull must fail");
        assert!(
            stderr(&anon).contains("unauthorized")
                || stderr(&anon).contains("authentication required"),
            "{auth:?}: {}",
            stderr(&anon)
        );
        let wrong = try_inspect(&reg, &f.reference(), Some((USERNAME, "wrong-password")));
        assert!(
            !wrong.status.success(),
            "{auth:?}: wrong password must fail"
        );
        let raw = skopeo_inspect_raw(&reg, &f.reference(), true);
        assert_eq!(raw, f.manifest, "{auth:?}");
        let child = &f.children[2];
        let raw = skopeo_inspect_raw(&reg, &format!("{}@{}", f.repository, child.digest), true);
        assert_eq!(raw, child.bytes, "{auth:?}: windows child");
    }
}

#[test]
fn token_modes_pull_anonymously_through_the_token_flow() {
    for auth in [Auth::Token, Auth::TlsToken] {
        let reg = TestRegistry::builder(auth)
            .private_repo("rancher/mirrored-pause")
            .start();
        seed(&reg, &fixtures_named(&[RKE_TOOLS, PAUSE]));
        let t = reg.token_server().unwrap();
        let f = fixture(RKE_TOOLS);

        let raw = skopeo_inspect_raw(&reg, &f.reference(), false);
        assert_eq!(sha256_digest(&raw), f.digest, "{auth:?}");
        let reqs = t.requests();
        assert!(
            !reqs.is_empty(),
            "{auth:?}: skopeo never asked the token server"
        );
        let r = reqs.last().unwrap();
        assert!(!r.authenticated && !r.rejected);
        assert_eq!(r.service.as_deref(), Some(t.service().as_str()));
        assert!(
            r.scopes
                .contains(&"repository:rancher/rke-tools:pull".to_string()),
            "{:?}",
            r.scopes
        );
        assert_eq!(r.granted[0].actions, ["pull"]);

        // Child manifests by digest, anonymously.
        let child = &f.children[3];
        let raw = skopeo_inspect_raw(&reg, &format!("{}@{}", f.repository, child.digest), false);
        assert_eq!(raw, child.bytes);

        // A private repository: anonymous gets nothing, credentials get it.
        let anon = try_inspect(&reg, PAUSE, None);
        assert!(
            !anon.status.success(),
            "{auth:?}: private repo pulled anonymously"
        );
        t.clear_log();
        let raw = skopeo_inspect_raw(&reg, PAUSE, true);
        assert_eq!(raw, fixture(PAUSE).manifest);
        assert!(
            t.requests()
                .iter()
                .any(|r| r.authenticated && r.account.as_deref() == Some(USERNAME))
        );

        // Wrong credentials are refused by the token server itself.
        t.clear_log();
        let wrong = try_inspect(&reg, &f.reference(), Some((USERNAME, "nope")));
        assert!(!wrong.status.success(), "{auth:?}: wrong password accepted");
        assert!(
            t.requests().iter().any(|r| r.rejected),
            "{auth:?}: {:?}",
            t.requests()
        );
    }
}

#[test]
fn token_server_grants_refuses_and_expires_as_configured() {
    let reg = TestRegistry::builder(Auth::Token)
        .token_expires_in(2)
        .start();
    let f = fixture(PAUSE);
    seed(&reg, std::slice::from_ref(&f));
    let t = reg.token_server().unwrap();
    let scope_url = format!(
        "{}?service={}&scope=repository:{}:pull,push&scope=repository:rancher/other:pull",
        t.realm(),
        t.service(),
        f.repository
    );

    // Anonymous: pull only, on both repositories; right JSON shape.
    let anon = http::get(&scope_url).unwrap();
    assert_eq!(anon.status, 200);
    let body = anon.json();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 2);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let claims = decode_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["aud"], t.service().as_str());
    assert_eq!(claims["iss"], t.issuer().as_str());
    assert!(claims["nbf"].as_u64().unwrap() < claims["exp"].as_u64().unwrap());
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(claims["access"][1]["name"], "rancher/other");

    // Authenticated: what it asks.
    let authed = http::request(
        "GET",
        &scope_url,
        &[("Authorization", &reg.basic_auth())],
        &[],
    )
    .unwrap();
    let claims = decode_claims(authed.json()["token"].as_str().unwrap());
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );

    // Wrong password: 401 JSON.
    let bad = http::request(
        "GET",
        &scope_url,
        &[("Authorization", "Basic ZmVycnktdGVzdDpub3Bl")],
        &[],
    )
    .unwrap();
    assert_eq!(bad.status, 401);
    assert!(
        bad.json()["details"]
            .as_str()
            .unwrap()
            .contains("incorrect")
    );
    let log = t.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[0].authenticated, log[1].authenticated, log[2].rejected),
        (false, true, true)
    );
    assert_eq!(log[0].scopes.len(), 2);

    // OAuth2 password grant.
    let form = format!(
        "grant_type=password&username={USERNAME}&password={PASSWORD}&service={}&scope=repository:{}:pull&client_id=ferry",
        t.service(),
        f.repository
    );
    let oauth = http::request(
        "POST",
        &t.realm(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(oauth.status, 200, "{}", oauth.text());
    assert!(oauth.json()["refresh_token"].is_string());

    // The registry accepts the token; a token already expired by more than the registry's 60 s
    // leeway (Debian's 2.8.2 has one, on `exp` and `nbf`) is refused as `invalid_token`.
    let manifest_url = format!("{}/v2/{}/manifests/{}", reg.url(), f.repository, f.tag);
    let get_with = |token: &str| {
        let bearer = format!("Bearer {token}");
        http::request(
            "GET",
            &manifest_url,
            &[
                ("Authorization", bearer.as_str()),
                ("Accept", DOCKER_MANIFEST),
            ],
            &[],
        )
        .unwrap()
    };
    let ok = get_with(body["token"].as_str().unwrap());
    assert_eq!(
        ok.status,
        200,
        "token refused: {}\n{}",
        ok.text(),
        reg.log()
    );
    assert_eq!(ok.body, f.manifest);
    let scope = format!("repository:{}:pull", f.repository);
    t.set_clock_skew(-70);
    let expired = get_with(&t.issue(&[&scope], false));
    assert_eq!(expired.status, 401, "expired token accepted");
    assert!(
        expired
            .header("www-authenticate")
            .unwrap_or("")
            .contains("invalid_token")
    );
    t.set_clock_skew(0);
    assert_eq!(get_with(&t.issue(&[&scope], false)).status, 200);
    // A token for another repository does not open this one.
    assert_eq!(
        get_with(&t.issue(&["repository:rancher/other:pull"], true)).status,
        401
    );
}

#[test]
fn registry_restarts_over_the_same_storage() {
    let storage = tempfile::tempdir().unwrap();
    let f = fixture(ETCD);
    let mut reg = TestRegistry::builder(Auth::Htpasswd)
        .storage_dir(storage.path())
        .start();
    seed(&reg, std::slice::from_ref(&f));
    reg.stop();
    assert!(!reg.is_running());
    assert!(
        http::get(&format!("{}/v2/", reg.url())).is_err(),
        "stopped registry still answers"
    );
    reg.restart();
    assert_eq!(skopeo_inspect_raw(&reg, &f.reference(), true), f.manifest);
    drop(reg);
    // A second registry over the same storage dir sees the image too.
    let again = TestRegistry::builder(Auth::None)
        .storage_dir(storage.path())
        .start();
    assert_eq!(
        skopeo_inspect_raw(&again, &f.reference(), false),
        f.manifest
    );
}

fn get_blob(proxy: &FaultProxy, f: &FixtureImage, digest: &str) -> std::io::Result<http::Response> {
    http::get(&format!(
        "{}/v2/{}/blobs/{digest}",
        proxy.url(),
        f.repository
    ))
}

#[test]
fn proxy_injects_429_5xx_and_resets_as_scripted() {
    let reg = TestRegistry::start(Auth::None);
    let f = fixture(PAUSE);
    seed(&reg, std::slice::from_ref(&f));
    let proxy = FaultProxy::start(&reg);
    let manifest_url = format!("{}/v2/{}/manifests/{}", proxy.url(), f.repository, f.tag);
    let accept = [("Accept", DOCKER_MANIFEST)];

    let rule = proxy.inject(
        Match::get(Kind::Manifest),
        Fault::TooManyRequests { retry_after: 3 },
        2,
    );
    for _ in 0..2 {
        let r = http::request("GET", &manifest_url, &accept, &[]).unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("3"));
        assert_eq!(r.json()["errors"][0]["code"], "TOOMANYREQUESTS");
    }
    // HEAD is not matched by a GET rule; the third GET goes through.
    let head = http::request("HEAD", &manifest_url, &accept, &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("docker-content-digest"),
        Some(f.digest.as_str())
    );
    let r = http::request("GET", &manifest_url, &accept, &[]).unwrap();
    assert_eq!((r.status, r.body == f.manifest), (200, true));
    assert_eq!(proxy.hits(rule), 2);
    assert_eq!(proxy.count("GET", Kind::Manifest), 3);
    assert_eq!(proxy.count("HEAD", Kind::Manifest), 1);
    assert_eq!(
        proxy.counts_summary(),
        "GET manifests: 3, HEAD manifests: 1"
    );

    // 503 once for one blob.
    let layer = f.blobs.iter().find(|b| b.kind == BlobKind::Layer).unwrap();
    proxy.inject(
        Match::get(Kind::Blob).path_contains(&layer.digest),
        Fault::Status(503),
        1,
    );
    assert_eq!(get_blob(&proxy, &f, &layer.digest).unwrap().status, 503);
    assert_eq!(
        get_blob(&proxy, &f, &layer.digest).unwrap().body,
        layer.bytes
    );

    // Reset after 100 body bytes: the client sees a short body and a closed connection.
    proxy.inject(Match::get(Kind::Blob), Fault::ResetAfter(100), 1);
    let err = get_blob(&proxy, &f, &layer.digest).expect_err("reset must fail the read");
    assert!(err.to_string().contains("body cut at 100 of"), "{err}");
    assert_eq!(
        get_blob(&proxy, &f, &layer.digest).unwrap().body,
        layer.bytes
    );

    // Drop: no answer at all.
    proxy.inject(Match::kind(Kind::Base), Fault::Drop, 1);
    assert!(http::get(&format!("{}/v2/", proxy.url())).is_err());
    assert_eq!(
        http::get(&format!("{}/v2/", proxy.url())).unwrap().status,
        200
    );

    // Stall mid-body: the bytes arrive complete, later.
    proxy.inject(
        Match::get(Kind::Blob),
        Fault::StallAfter {
            bytes: 10,
            pause: Duration::from_millis(300),
        },
        1,
    );
    let t0 = Instant::now();
    assert_eq!(
        get_blob(&proxy, &f, &layer.digest).unwrap().body,
        layer.bytes
    );
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[test]
fn proxy_keeps_connections_alive_and_forwards_uploads() {
    // Raw keep-alive: two requests on one connection, then a monolithic push through the proxy.
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg);
    let s = TcpStream::connect(proxy.host()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let mut s = s;
    for _ in 0..2 {
        write!(s, "GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.host()).unwrap();
        let head = http::read_head(&mut reader).unwrap().expect("a response");
        let (status, headers) = http::parse_response_head(&head).unwrap();
        assert_eq!(status, 200);
        let len: u64 = http::header(&headers, "content-length")
            .unwrap()
            .parse()
            .unwrap();
        let mut body = Vec::new();
        (&mut reader).take(len).read_to_end(&mut body).unwrap();
        assert_eq!(body, b"{}");
    }
    assert_eq!(proxy.count("GET", Kind::Base), 2);
    drop(s);

    let data = blobs::pseudo_random("upload", 3000);
    let digest = sha256_digest(&data);
    let start = http::request(
        "POST",
        &format!("{}/v2/test/up/blobs/uploads/", proxy.url()),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(start.status, 202, "{}", start.text());
    let location = start.header("location").unwrap().to_string();
    assert!(
        location.contains(&proxy.host()) || location.starts_with('/'),
        "{location}"
    );
    let url = if location.starts_with('/') {
        format!("{}{location}", proxy.url())
    } else {
        location
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let put = http::request(
        "PUT",
        &format!("{url}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        &data,
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(reg.storage().read_blob(&digest), Some(data));
    assert_eq!(proxy.count("POST", Kind::Upload), 1);
    assert_eq!(proxy.count("PUT", Kind::Upload), 1);
}

#[test]
fn proxy_redirects_blobs_to_a_cdn_that_sees_authorization() {
    let reg = TestRegistry::start(Auth::None);
    let f = fixture(ETCD);
    seed(&reg, std::slice::from_ref(&f));
    let proxy = FaultProxy::start(&reg);
    proxy.redirect_blobs(true);
    let layer = &f.blobs[1];

    let r = get_blob(&proxy, &f, &layer.digest).unwrap();
    assert_eq!(r.status, 307);
    let location = r.header("location").unwrap().to_string();
    assert!(location.starts_with(&proxy.cdn_url()), "{location}");
    // Unknown blobs are not redirected.
    let missing = get_blob(&proxy, &f, &sha256_digest(b"missing")).unwrap();
    assert_eq!(missing.status, 404);

    // Following without Authorization works; with it, the CDN refuses (as S3 does) and records it.
    let cdn = http::get(&location).unwrap();
    assert_eq!(cdn.status, 200);
    assert_eq!(cdn.body, layer.bytes);
    let leaked =
        http::request("GET", &location, &[("Authorization", "Bearer leaked")], &[]).unwrap();
    assert_eq!(leaked.status, 400);
    let log = proxy.cdn_requests();
    assert_eq!(log.len(), 2);
    assert!(!log[0].had_authorization && log[1].had_authorization);

    proxy.cdn_reject_authorization(false);
    let ranged = http::request(
        "GET",
        &location,
        &[("Range", "bytes=0-9"), ("Authorization", "x")],
        &[],
    )
    .unwrap();
    assert_eq!(
        (ranged.status, ranged.body.as_slice()),
        (206, &layer.bytes[..10])
    );
    assert_eq!(
        proxy
            .requests()
            .iter()
            .filter(|r| r.fault.as_deref() == Some("redirect"))
            .count(),
        1
    );
}

#[test]
fn commands_run_in_an_isolated_environment() {
    let sandbox = Sandbox::new();
    let out = sandbox.command("env").output().unwrap();
    let env = String::from_utf8(out.stdout).unwrap();
    let has = |line: &str| env.lines().any(|l| l == line);
    assert!(has(&format!("HOME={}", sandbox.home().display())), "{env}");
    assert!(has(&format!(
        "DOCKER_CONFIG={}",
        sandbox.docker_config_dir().display()
    )));
    assert!(has("NO_PROXY=*") && has("no_proxy=*") && has("NO_COLOR=1"));
    for l in env.lines() {
        let name = l.split('=').next().unwrap();
        assert!(
            !name.to_ascii_lowercase().ends_with("_proxy") || name.eq_ignore_ascii_case("no_proxy"),
            "{l}"
        );
        assert!(
            !name.starts_with("FERRY_")
                && !name.starts_with("AWS_")
                && name != "RANCHER_METADATA_URL"
        );
    }
    let reg_host = "127.0.0.1:5999";
    let path = sandbox.write_docker_config(&[(reg_host, USERNAME, PASSWORD)]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(v["auths"][reg_host]["auth"].is_string());
    // The ferry binary runs through both runners.
    ferry().arg("--help").assert().success();
    sandbox.ferry().arg("--help").assert().success();
}
