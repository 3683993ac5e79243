//! OCI 1.1 referrers: read through the referrers API where the registry has it (`ferry serve`
//! of a bundle, which implements it), bounded against a registry that lies about them (a list
//! naming itself, a cycle, 50,000 entries), and written into a registry without the API
//! (distribution 2.8) by merging its referrers tag-schema index, never dropping an entry
//! someone else wrote. The artifacts are written by the test straight into the registry's
//! storage, never by ferry.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::lying::{Extra, Lie, LyingRegistry};
use crate::support::*;

/// The `images.lock` inside `bundle`, written to `to`.
fn bundle_lock(bundle: &Path, to: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("tar")
        .args(["-xOf", bundle.to_str().unwrap(), "images.lock"])
        .output()
        .expect("tar");
    assert!(out.status.success());
    std::fs::write(to, out.stdout).expect("lock");
    lock_entries(to)
}

/// An SPDX SBOM referrer of `image` (an OCI manifest with `subject` and `artifactType`) in
/// `reg`'s storage, untagged; `name` makes its bytes its own. Returns (digest, bytes).
fn sbom_referrer(reg: &TestRegistry, image: &FixtureImage, name: &str) -> (String, Vec<u8>) {
    let storage = reg.storage();
    let repo = &image.repository;
    let empty = storage.put_blob(repo, b"{}");
    let sbom = format!(r#"{{"spdxVersion":"SPDX-2.3","name":"{name}","packages":[]}}"#);
    let layer = storage.put_blob(repo, sbom.as_bytes());
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": layer, "size": sbom.len()}],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.manifest.len()},
        "annotations": {"org.example.written-by": name}
    }))
    .expect("manifest");
    (storage.put_manifest(repo, &manifest), manifest)
}

/// `referrers` (digest, bytes) listed in `image`'s referrers tag-schema index
/// `sha256-<hex>` in `reg`, as an ORAS or cosign 3 client writes it; returns the index digest.
fn tag_schema_index(
    reg: &TestRegistry,
    image: &FixtureImage,
    referrers: &[&(String, Vec<u8>)],
) -> String {
    let manifests: Vec<serde_json::Value> = referrers
        .iter()
        .map(|(d, b)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": d, "size": b.len(), "artifactType": "application/spdx+json"})
        })
        .collect();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests
    }))
    .expect("index");
    let storage = reg.storage();
    let digest = storage.put_manifest(&image.repository, &index);
    storage.tag(&image.repository, &image.digest.replace(':', "-"), &digest);
    digest
}

/// The digests a referrers index at `reference` of `reg` lists, in order.
fn listed(reg: &TestRegistry, reference: &str) -> Vec<String> {
    let raw = skopeo_inspect_raw(reg, reference, false);
    let v: serde_json::Value = serde_json::from_slice(&raw).expect("index");
    v["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// How many requests `ferry serve` at `url` counted on `route` (its `/metrics`).
fn served_requests(url: &str, route: &str) -> u64 {
    let r = http::get(&format!("{url}/metrics")).expect("metrics");
    let label = format!("route=\"{route}\"");
    r.text()
        .lines()
        .filter(|l| l.starts_with("ferry_serve_http_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn export(sandbox: &Sandbox, list: &Path, upstream: &str, bundle: &Path) {
    let (code, _, err) = run(
        sandbox,
        &[
            "export",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={upstream}"),
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn referrers_are_read_through_the_api_of_a_registry_that_has_it_byte_for_byte() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let image = fixture(PAUSE);
    let upstream = TestRegistry::start(Auth::None);
    seed(&upstream, std::slice::from_ref(&image));
    let referrer = sbom_referrer(&upstream, &image, "through-the-api");
    let index = tag_schema_index(&upstream, &image, &[&referrer]);
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let first = work.join("first.tar");
    export(&sandbox, &list, &upstream.url(), &first);

    // ferry serve has the referrers API: exported from it, the referrer comes through the API
    // (by digest alone, its subject recorded), besides the tag schema's index.
    let server = crate::serve::Server::start(&sandbox, &[first.as_path()], &[]);
    assert_eq!(served_requests(&server.url, "referrers"), 0);
    let second = work.join("second.tar");
    export(&sandbox, &list, &server.url, &second);
    assert!(
        served_requests(&server.url, "referrers") >= 1,
        "the referrers API was not asked"
    );
    let entries = bundle_lock(&second, &work.join("second.lock"));
    let by_api = entries
        .iter()
        .find(|e| {
            e["source"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!("@{}", referrer.0)))
        })
        .unwrap_or_else(|| panic!("no referrer by digest: {entries:#?}"));
    assert_eq!(by_api["digest"], referrer.0.as_str());
    assert_eq!(by_api["attached_to"]["kind"], "referrers");
    assert_eq!(by_api["attached_to"]["subject"], image.digest.as_str());
    assert_eq!(sha256_digest(&referrer.1), referrer.0);
    drop(server);

    // That bundle serves the referrer through the API too, described from its manifest.
    let server = crate::serve::Server::start(&sandbox, &[second.as_path()], &[]);
    let r = http::get(&format!(
        "{}/v2/{}/referrers/{}",
        server.url, image.repository, image.digest
    ))
    .expect("referrers");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("index");
    let m = v["manifests"].as_array().expect("manifests");
    assert_eq!(m.len(), 1, "{v}");
    assert_eq!(m[0]["digest"], referrer.0.as_str());
    // The tag `latest` is not the referrer's: it has no tag.
    let r = http::get(&format!(
        "{}/v2/{}/manifests/latest",
        server.url, image.repository
    ))
    .expect("latest");
    assert_eq!(r.status, 404);
    drop(server);

    // Into distribution 2.8: the referrer byte for byte, listed under the tag schema (the
    // bundle's own index, as it was, since the target had none), and nothing tagged latest.
    let target = TestRegistry::start(Auth::None);
    let (code, _, err) = run(
        &sandbox,
        &[
            "import",
            second.to_str().unwrap(),
            "--to",
            &target.host(),
            "--plain-http",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let raw = skopeo_inspect_raw(
        &target,
        &format!("{}@{}", image.repository, referrer.0),
        false,
    );
    assert_eq!(sha256_digest(&raw), referrer.0);
    assert_eq!(raw, referrer.1);
    let storage = target.storage();
    let tag = image.digest.replace(':', "-");
    assert_eq!(
        storage.tag_digest(&image.repository, &tag).as_deref(),
        Some(index.as_str())
    );
    assert_eq!(storage.tag_digest(&image.repository, "latest"), None);
    let (code, out, err) = run(
        &sandbox,
        &[
            "verify",
            second.to_str().unwrap(),
            "--to",
            &target.host(),
            "--plain-http",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn import_merges_the_referrers_index_of_a_registry_without_the_api_and_keeps_theirs() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let image = fixture(PAUSE);
    let upstream = TestRegistry::start(Auth::None);
    seed(&upstream, std::slice::from_ref(&image));
    let ours = sbom_referrer(&upstream, &image, "ours");
    tag_schema_index(&upstream, &image, &[&ours]);
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let bundle = work.join("b.tar");
    export(&sandbox, &list, &upstream.url(), &bundle);

    // The target already lists a referrer someone else wrote, of the same subject.
    let target = TestRegistry::start(Auth::None);
    let theirs = sbom_referrer(&target, &image, "theirs");
    tag_schema_index(&target, &image, &[&theirs]);
    let proxy = FaultProxy::start(&target);
    let import = || {
        run(
            &sandbox,
            &[
                "import",
                bundle.to_str().unwrap(),
                "--to",
                &proxy.host(),
                "--plain-http",
            ],
        )
    };
    let (code, _, err) = import();
    assert_eq!(code, Some(0), "{err}");
    let tag = format!("{}:{}", image.repository, image.digest.replace(':', "-"));
    assert_eq!(listed(&target, &tag), [theirs.0.clone(), ours.0.clone()]);
    let raw = skopeo_inspect_raw(&target, &format!("{}@{}", image.repository, ours.0), false);
    assert_eq!(sha256_digest(&raw), ours.0);
    assert_eq!(raw, ours.1);
    let raw = skopeo_inspect_raw(
        &target,
        &format!("{}@{}", image.repository, theirs.0),
        false,
    );
    assert_eq!(raw, theirs.1);

    // verify against the registry: the target's index lists ours (and more): it passes.
    let (code, out, err) = run(
        &sandbox,
        &[
            "verify",
            bundle.to_str().unwrap(),
            "--to",
            &target.host(),
            "--plain-http",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");

    // A second import writes no manifest.
    proxy.clear_log();
    let (code, _, err) = import();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        proxy.count("PUT", Kind::Manifest),
        0,
        "{}",
        proxy.counts_summary()
    );
    assert_eq!(listed(&target, &tag), [theirs.0.clone(), ours.0.clone()]);

    // Someone drops our entry from the index: verify names the referrer it misses.
    tag_schema_index(&target, &image, &[&theirs]);
    let (code, out, _) = run(
        &sandbox,
        &[
            "verify",
            bundle.to_str().unwrap(),
            "--to",
            &target.host(),
            "--plain-http",
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("does not list referrer {}", ours.0)),
        "{out}"
    );
}

/// An artifact manifest whose `subject` is `image`, made of the image's own config and a layer
/// (which the lying registry serves); returns (digest, bytes).
fn lying_referrer(image: &FixtureImage) -> (String, Vec<u8>) {
    let config = image
        .blobs
        .iter()
        .find(|b| b.kind == crate::support::fixtures::BlobKind::Config)
        .expect("config");
    let layer = image
        .blobs
        .iter()
        .find(|b| b.kind == crate::support::fixtures::BlobKind::Layer)
        .expect("layer");
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/example",
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.bytes.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.bytes.len()}],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.manifest.len()}
    }))
    .expect("manifest");
    (sha256_digest(&bytes), bytes)
}

fn list_of(entries: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries
    }))
    .expect("list")
}

fn lock_from(
    sandbox: &Sandbox,
    image: &FixtureImage,
    url: &str,
) -> (Option<i32>, String, Vec<serde_json::Value>, Duration) {
    let work = sandbox.work();
    let list = image_list(&work, std::slice::from_ref(image), &[]);
    let lock = work.join("images.lock");
    let started = Instant::now();
    let (code, out, err) = run(
        sandbox,
        &[
            "lock",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={url}"),
            "-o",
            lock.to_str().unwrap(),
        ],
    );
    let took = started.elapsed();
    let entries = if lock.exists() {
        lock_entries(&lock)
    } else {
        Vec::new()
    };
    (code, format!("{out}{err}"), entries, took)
}

#[test]
fn a_referrers_api_that_names_itself_and_goes_round_in_a_cycle_ends_and_the_image_locks() {
    let sandbox = Sandbox::new();
    let image = fixture(PAUSE);
    let (referrer, bytes) = lying_referrer(&image);
    let desc = |digest: &str, media_type: &str| serde_json::json!({"mediaType": media_type, "digest": digest, "size": 100, "artifactType": "application/example"});
    let manifest = "application/vnd.oci.image.manifest.v1+json";
    let repo = image.repository.clone();
    // The image's list names the image itself, the referrer, and a blob (not a manifest);
    // the referrer's names the image (a cycle) and itself.
    let lists = vec![
        (
            repo.clone(),
            image.digest.clone(),
            list_of(&[
                desc(&image.digest, &image.media_type),
                desc(&referrer, manifest),
                desc(&image.blobs[0].digest, "application/octet-stream"),
            ]),
        ),
        (
            repo.clone(),
            referrer.clone(),
            list_of(&[
                desc(&image.digest, &image.media_type),
                desc(&referrer, manifest),
            ]),
        ),
    ];
    let extra = [Extra {
        tag: None,
        media_type: manifest.to_string(),
        bytes: bytes.clone(),
    }];
    let liar = LyingRegistry::start_with_referrers(
        std::slice::from_ref(&image),
        &extra,
        &lists,
        Lie::Honest,
        "",
    );
    let (code, out, entries, took) = lock_from(&sandbox, &image, &liar.url());
    assert_eq!(code, Some(0), "{out}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let found = entries
        .iter()
        .find(|e| e["attached_to"]["kind"] == "referrers")
        .expect("the referrer");
    assert_eq!(found["digest"], referrer.as_str());
    assert_eq!(found["attached_to"]["subject"], image.digest.as_str());
    assert!(
        found["source"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("@{referrer}"))
    );
    // Each subject was asked about once.
    let asked = |d: &str| {
        liar.requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.ends_with(&format!("/referrers/{d}")))
            .count()
    };
    assert_eq!(asked(&image.digest), 1, "{:#?}", liar.requests());
    assert_eq!(asked(&referrer), 1, "{:#?}", liar.requests());
}

#[test]
fn a_referrers_api_answer_of_50000_entries_is_refused_with_a_warning_and_the_image_locks() {
    let sandbox = Sandbox::new();
    let image = fixture(PAUSE);
    let entries: Vec<serde_json::Value> = (0..50_000u32)
        .map(|i| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256_digest(&i.to_be_bytes()), "size": 100,
                "artifactType": "application/spdx+json"})
        })
        .collect();
    let lists = vec![(
        image.repository.clone(),
        image.digest.clone(),
        list_of(&entries),
    )];
    let liar = LyingRegistry::start_with_referrers(
        std::slice::from_ref(&image),
        &[],
        &lists,
        Lie::Honest,
        "",
    );
    let (code, out, locked, took) = lock_from(&sandbox, &image, &liar.url());
    assert_eq!(code, Some(0), "{out}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(locked.len(), 1, "{locked:#?}");
    assert_eq!(locked[0]["digest"], image.digest.as_str());
    assert!(
        out.contains(&image.reference()) && out.contains("referrers API"),
        "the warning names the image: {out}"
    );
    // After that answer the registry's API is asked no more in this run.
    let asked = liar
        .requests()
        .iter()
        .filter(|r| r.contains("/referrers/"))
        .count();
    assert_eq!(asked, 1, "{:#?}", liar.requests());
    // None of the 50,000 was fetched.
    assert!(
        !liar
            .requests()
            .iter()
            .any(|r| r.contains(&sha256_digest(&0u32.to_be_bytes()))),
        "{:#?}",
        liar.requests()
    );
}

#[test]
fn a_registry_without_the_api_is_asked_once_per_run_not_once_per_image() {
    let sandbox = Sandbox::new();
    let images = fixtures_named(&[PAUSE, ETCD, RKE_TOOLS]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    let list = image_list(&sandbox.work(), &images, &[]);
    let lock = sandbox.work().join("images.lock");
    let (code, _, err) = run(
        &sandbox,
        &[
            "lock",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={}", proxy.url()),
            "-o",
            lock.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let asked: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.target.contains("/referrers/"))
        .map(|r| format!("{} {} {:?}", r.method, r.target, r.status))
        .collect();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert!(asked[0].contains("Some(404)"), "{asked:#?}");
    // The tag schema is still looked for, in one tag list per repository (which names no
    // cosign or referrers tag here, so none is asked for).
    assert_eq!(
        proxy.count("HEAD", Kind::Manifest),
        images.len(),
        "{}",
        proxy.counts_summary()
    );
    assert_eq!(
        proxy.count("GET", Kind::Tags),
        tag_lists(&images),
        "{}",
        proxy.counts_summary()
    );
}

#[test]
fn a_target_that_answers_oci_subject_indexes_referrers_itself_and_gets_no_tag_schema() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let image = fixture(PAUSE);
    let upstream = TestRegistry::start(Auth::None);
    seed(&upstream, std::slice::from_ref(&image));
    let ours = sbom_referrer(&upstream, &image, "ours");
    tag_schema_index(&upstream, &image, &[&ours]);
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let bundle = work.join("b.tar");
    export(&sandbox, &list, &upstream.url(), &bundle);

    // The target's PUT answers carry `OCI-Subject`, as a registry with the referrers API
    // sends it (distribution 2.8 never does: the header is added on the way back).
    let target = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&target);
    proxy.inject(
        Match::kind(Kind::Manifest).method("PUT"),
        Fault::SetHeader("OCI-Subject".into(), Some(image.digest.clone())),
        usize::MAX,
    );
    let (code, _, err) = run(
        &sandbox,
        &[
            "import",
            bundle.to_str().unwrap(),
            "--to",
            &proxy.host(),
            "--plain-http",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    // The referrer is there by digest, byte for byte; no tag-schema index was read or written
    // (the completeness check's HEAD of the tag is all).
    let raw = skopeo_inspect_raw(&target, &format!("{}@{}", image.repository, ours.0), false);
    assert_eq!(raw, ours.1);
    let tag = image.digest.replace(':', "-");
    assert_eq!(target.storage().tag_digest(&image.repository, &tag), None);
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|r| r.kind == Kind::Manifest && r.method != "HEAD" && r.target.ends_with(&tag)),
        "the tag schema was touched: {}",
        proxy.counts_summary()
    );
}
