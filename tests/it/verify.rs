//! `ferry verify`: a registry against the lock (every problem listed, HEADs or --deep), and
//! a bundle offline (re-hash, consistency), with the exit codes 0 / 1 / 2.

use std::path::{Path, PathBuf};

use crate::support::*;

/// Exports all fixtures from a fresh registry and imports them into `target` (plain HTTP);
/// returns the bundle path inside `sandbox`.
fn mirror(sandbox: &Sandbox, target: &TestRegistry) -> PathBuf {
    let images = fixtures();
    let upstream = TestRegistry::start(Auth::None);
    seed(&upstream, &images);
    let list = sandbox.work().join("images.txt");
    std::fs::write(
        &list,
        images
            .iter()
            .map(|i| format!("{}\n", i.reference()))
            .collect::<String>(),
    )
    .expect("list");
    let bundle = sandbox.work().join("bundle.tar");
    let out = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", upstream.url()), "-o"])
        .arg(&bundle)
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    bundle
}

fn verify(sandbox: &Sandbox, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = sandbox
        .ferry()
        .arg("verify")
        .args(args)
        .arg("--json")
        .output()
        .expect("verify");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json, stderr)
}

fn problems_of(report: &serde_json::Value, name: &str) -> Vec<(String, String)> {
    report["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} in report"))["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("").to_string(),
                p["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn complete_mirror_verifies_and_every_problem_is_listed() {
    let reg = TestRegistry::start(Auth::None);
    let sandbox = Sandbox::new();
    let bundle = mirror(&sandbox, &reg);
    let b = bundle.to_str().expect("path");
    let (code, report, stderr) = verify(&sandbox, &[b, "--to", &reg.host(), "--plain-http"]);
    assert_eq!(code, Some(0), "{stderr} {report}");
    assert_eq!(report["complete"], true);
    // Human table too.
    let out = sandbox
        .ferry()
        .args(["verify", b, "--to", &reg.host(), "--plain-http"])
        .output()
        .expect("verify");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("IMAGE") && table.contains("complete: 5 images"),
        "{table}"
    );

    // Break the mirror in several ways at once.
    let storage = reg.storage();
    let hk = fixture(HYPERKUBE);
    let windows = hk
        .platform("windows/amd64")
        .expect("windows entry")
        .digest
        .clone();
    // A missing platform manifest: drop its revision link in the repository.
    let revision = reg
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(&hk.repository)
        .join("_manifests/revisions/sha256")
        .join(windows.trim_start_matches("sha256:"));
    std::fs::remove_dir_all(&revision).expect("unlink revision");
    let pause = fixture(PAUSE);
    let pause_layer = pause
        .blobs
        .iter()
        .find(|b| b.kind == crate::support::fixtures::BlobKind::Layer)
        .expect("layer")
        .digest
        .clone();
    storage.unlink_blob(&pause.repository, &pause_layer); // a missing blob
    let etcd = fixture(ETCD);
    let other = storage.put_manifest(&etcd.repository, &fixture(COREDNS).manifest);
    storage.tag(&etcd.repository, &etcd.tag, &other); // the tag moved to another manifest
    let (code, report, stderr) = verify(&sandbox, &[b, "--to", &reg.host(), "--plain-http"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["complete"], false);
    let hkp = problems_of(&report, HYPERKUBE);
    assert!(
        hkp.iter().any(|(k, d)| k == "missing_platform"
            && d.contains("windows/amd64")
            && d.contains(&windows)),
        "{hkp:?}"
    );
    let pp = problems_of(&report, PAUSE);
    assert!(
        pp.iter()
            .any(|(k, d)| k == "missing_blob" && d.contains(&pause_layer)),
        "{pp:?}"
    );
    let ep = problems_of(&report, ETCD);
    assert!(ep.iter().any(|(k, _)| k == "tag_mismatch"), "{ep:?}");
    assert!(problems_of(&report, RKE_TOOLS).is_empty());
    // In JSON each problem also names its image and the object at fault.
    let at = |name: &str, kind: &str| -> serde_json::Value {
        report["images"]
            .as_array()
            .expect("images")
            .iter()
            .flat_map(|i| i["problems"].as_array().expect("problems"))
            .find(|p| p["image"] == name && p["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} of {name} in {report}"))["digest"]
            .clone()
    };
    assert_eq!(at(HYPERKUBE, "missing_platform"), windows.as_str());
    assert_eq!(at(PAUSE, "missing_blob"), pause_layer.as_str());
    assert_eq!(
        at(ETCD, "tag_mismatch"),
        other.as_str(),
        "what the tag serves"
    );
}

#[test]
fn deep_verify_rehashes_what_heads_cannot_see() {
    let reg = TestRegistry::start(Auth::None);
    let sandbox = Sandbox::new();
    let bundle = mirror(&sandbox, &reg);
    let b = bundle.to_str().expect("path");
    let etcd = fixture(ETCD);
    let layer = etcd
        .blobs
        .iter()
        .find(|b| b.kind == crate::support::fixtures::BlobKind::Layer)
        .expect("layer")
        .clone();
    let mut bad = layer.bytes.clone();
    bad[5] ^= 1;
    reg.storage().overwrite_blob_data(&layer.digest, &bad);
    let (code, _, stderr) = verify(&sandbox, &[b, "--to", &reg.host(), "--plain-http"]);
    assert_eq!(
        code,
        Some(0),
        "HEAD cannot see a same-size corruption: {stderr}"
    );
    let (code, report, stderr) = verify(
        &sandbox,
        &[b, "--to", &reg.host(), "--plain-http", "--deep"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let ep = problems_of(&report, ETCD);
    assert!(
        ep.iter()
            .any(|(k, d)| k == "digest_mismatch" && d.contains(&layer.digest)),
        "{ep:?}"
    );
}

#[test]
fn bundle_offline_detects_tampering_and_names_the_image() {
    let reg = TestRegistry::start(Auth::None);
    let sandbox = Sandbox::new();
    let bundle = mirror(&sandbox, &reg);
    let (code, report, stderr) = verify(&sandbox, &[bundle.to_str().expect("path")]);
    assert_eq!(code, Some(0), "{stderr} {report}");
    // Flip one byte of a layer only COREDNS uses.
    let coredns = fixture(COREDNS);
    let others: Vec<FixtureImage> = fixtures()
        .into_iter()
        .filter(|i| i.repository != coredns.repository)
        .collect();
    let own = coredns
        .blobs
        .iter()
        .find(|b| {
            b.kind == crate::support::fixtures::BlobKind::Layer
                && others.iter().all(|o| o.blob(&b.digest).is_none())
                && b.bytes.len() > 100
        })
        .expect("own layer")
        .clone();
    let tampered = sandbox.work().join("tampered.tar");
    let mut data = std::fs::read(&bundle).expect("read");
    let pos = data
        .windows(64)
        .position(|w| w == &own.bytes[..64])
        .expect("layer in tar");
    data[pos + 70] ^= 0x01;
    std::fs::write(&tampered, &data).expect("write");
    let (code, report, stderr) = verify(&sandbox, &[tampered.to_str().expect("path")]);
    assert_eq!(code, Some(1), "{stderr}");
    let cp = problems_of(&report, COREDNS);
    assert!(
        cp.iter()
            .any(|(k, d)| k == "digest_mismatch" && d.contains(&own.digest)),
        "{cp:?}"
    );
    assert!(problems_of(&report, ETCD).is_empty());
    // Told by its digest, the corrupt layer is not reported a second time for the bundle.
    assert_eq!(report["general"], serde_json::json!([]), "{report}");
}

#[test]
fn could_not_check_exits_2() {
    let sandbox = Sandbox::new();
    let reg = TestRegistry::start(Auth::None);
    let bundle = mirror(&sandbox, &reg);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (code, _, stderr) = verify(
        &sandbox,
        &[
            bundle.to_str().expect("path"),
            "--to",
            &format!("127.0.0.1:{port}"),
            "--plain-http",
            "--retries",
            "1",
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("could not check"), "{stderr}");
    let (code, _, stderr) = verify(&sandbox, &["/nonexistent/bundle.tar"]);
    assert_eq!(code, Some(2), "{stderr}");
    let _ = Path::new("");
}

/// distribution with `cache: blobdescriptor: inmemory` answers HEAD of a blob from its cache
/// after the blob's data is gone; `docker pull` then fails. verify without --deep must see it.
#[test]
fn lost_blob_storage_behind_a_descriptor_cache_is_found_without_deep() {
    let reg = TestRegistry::builder(Auth::None)
        .blob_descriptor_cache()
        .start();
    let sandbox = Sandbox::new();
    let bundle = mirror(&sandbox, &reg);
    let b = bundle.to_str().expect("path");
    let etcd = fixture(ETCD);
    let layer = etcd
        .blobs
        .iter()
        .rfind(|x| x.kind == crate::support::fixtures::BlobKind::Layer)
        .expect("layer")
        .digest
        .clone();
    let url = format!("{}/v2/{}/blobs/{layer}", reg.url(), etcd.repository);
    // Fill the cache, then lose the data.
    assert_eq!(
        http::request("HEAD", &url, &[], &[]).expect("head").status,
        200
    );
    reg.storage().remove_blob_data(&layer);
    let head = http::request("HEAD", &url, &[], &[]).expect("head");
    assert_eq!(
        head.status, 200,
        "the cache answers HEAD as if the blob were there"
    );
    // A pull fails: distribution sends the headers of a 200, then no body.
    match http::get(&url) {
        Ok(r) => assert_ne!(r.status, 200, "a pull fails"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }

    let (code, report, stderr) = verify(&sandbox, &[b, "--to", &reg.host(), "--plain-http"]);
    assert_eq!(code, Some(1), "{stderr} {report}");
    let problems = problems_of(&report, ETCD);
    assert!(
        problems
            .iter()
            .any(|(k, d)| k == "missing_blob" && d.contains(&layer)),
        "{problems:?}"
    );
    // Only the images that use the lost layer are named.
    for other in [PAUSE, COREDNS, RKE_TOOLS, HYPERKUBE] {
        assert!(problems_of(&report, other).is_empty(), "{other}: {report}");
    }
}
