//! cosign signatures, attestations and SBOMs travel with the images (lock, export, import),
//! and `verify --key` checks them offline, against a bundle and against the mirror. The
//! signatures are made by openssl in cosign's exact format (a simple-signing payload, its
//! signature in the layer annotation, under the tag `sha256-<hex>.sig`), never by ferry.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A key pair made by openssl: the private key (to sign) and the public key (`--key`).
struct Key {
    private: PathBuf,
    public: PathBuf,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn key(dir: &Path, name: &str) -> Key {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let p = |p: &Path| p.to_str().expect("utf8").to_string();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p(&private),
    ]);
    openssl(&["pkey", "-in", &p(&private), "-pubout", "-out", &p(&public)]);
    Key { private, public }
}

/// Signs `payload` with openssl: base64 of the DER ECDSA signature over SHA-256.
fn sign(dir: &Path, key: &Key, payload: &[u8]) -> String {
    let file = dir.join("payload.json");
    std::fs::write(&file, payload).expect("payload");
    let sig = openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        key.private.to_str().expect("utf8"),
        file.to_str().expect("utf8"),
    ]);
    let file = dir.join("payload.sig");
    std::fs::write(&file, sig).expect("sig");
    String::from_utf8(openssl(&[
        "base64",
        "-A",
        "-in",
        file.to_str().expect("utf8"),
    ]))
    .expect("base64")
}

/// Stores a cosign-style manifest with one layer of `layer_type` (blob `layer`, annotations
/// `annotations`) in `repo`, tagged `tag`; returns its digest.
fn put_artifact(
    reg: &TestRegistry,
    repo: &str,
    tag: &str,
    layer_type: &str,
    layer: &[u8],
    annotations: serde_json::Value,
) -> String {
    let storage = reg.storage();
    let layer_digest = storage.put_blob(repo, layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
    }))
    .expect("config");
    let config_digest = storage.put_blob(repo, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len(),
                    "annotations": annotations}]
    }))
    .expect("manifest");
    let digest = storage.put_manifest(repo, &manifest);
    storage.tag(repo, tag, &digest);
    digest
}

fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

/// Signs `image` (its top-level digest) in `reg` with `key`, as `cosign sign --key` does.
/// `flip` corrupts one byte of the signature. Returns the `.sig` manifest's digest.
fn cosign_sign(
    dir: &Path,
    reg: &TestRegistry,
    image: &FixtureImage,
    key: &Key,
    flip: bool,
) -> String {
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"index.docker.io/{}"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        image.repository, image.digest
    );
    let mut signature = sign(dir, key, payload.as_bytes());
    if flip {
        // A different base64 character in the middle changes a byte of the DER signature.
        let mid = signature.len() / 2;
        let c = if &signature[mid..=mid] == "A" {
            "B"
        } else {
            "A"
        };
        signature.replace_range(mid..=mid, c);
    }
    put_artifact(
        reg,
        &image.repository,
        &cosign_tag(&image.digest, "sig"),
        "application/vnd.dev.cosign.simplesigning.v1+json",
        payload.as_bytes(),
        serde_json::json!({"dev.cosignproject.cosign/signature": signature}),
    )
}

/// An in-toto attestation in a DSSE envelope (`.att`), as `cosign attest --key` stores it:
/// the statement's subject is the image's digest, and openssl signs the envelope's PAE
/// (`DSSEv1 <len> <type> <len> <body>`). `about` replaces the subject digest (to make an
/// attestation of another image).
fn cosign_attest(
    dir: &Path,
    reg: &TestRegistry,
    image: &FixtureImage,
    key: &Key,
    about: Option<&str>,
) -> String {
    let subject = about.unwrap_or(&image.digest);
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{{"name":"{}","digest":{{"sha256":"{}"}}}}],"predicate":{{"builder":{{"id":"https://ci.example.com"}}}}}}"#,
        image.repository,
        subject.trim_start_matches("sha256:")
    );
    let payload_type = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {payload_type} {} {statement}",
        payload_type.len(),
        statement.len()
    );
    let signature = sign(dir, key, pae.as_bytes());
    use base64::Engine as _;
    let envelope = serde_json::to_vec(&serde_json::json!({
        "payloadType": payload_type,
        "payload": base64::engine::general_purpose::STANDARD.encode(&statement),
        "signatures": [{"keyid": "", "sig": signature}]
    }))
    .expect("envelope");
    put_artifact(
        reg,
        &image.repository,
        &cosign_tag(&image.digest, "att"),
        "application/vnd.dsse.envelope.v1+json",
        &envelope,
        serde_json::json!({"predicateType": "https://slsa.dev/provenance/v0.2"}),
    )
}

/// An SPDX SBOM attached to `subject` (a platform manifest) with `cosign attach sbom`.
fn cosign_sbom(reg: &TestRegistry, repo: &str, subject: &str) -> String {
    put_artifact(
        reg,
        repo,
        &cosign_tag(subject, "sbom"),
        "text/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3","name":"rke-tools","packages":[]}"#,
        serde_json::json!({}),
    )
}

struct Upstream {
    reg: TestRegistry,
    signed: FixtureImage,
    unsigned: FixtureImage,
    sig: String,
    att: String,
    sbom: String,
    sbom_subject: String,
}

fn upstream(dir: &Path, key: &Key) -> Upstream {
    let images = fixtures_named(&[RKE_TOOLS, PAUSE]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let signed = images[0].clone();
    let unsigned = images[1].clone();
    let sig = cosign_sign(dir, &reg, &signed, key, false);
    let att = cosign_attest(dir, &reg, &signed, key, None);
    let arm64 = signed
        .platforms
        .iter()
        .find(|p| p.architecture == "arm64")
        .expect("arm64 platform")
        .digest
        .clone();
    let sbom = cosign_sbom(&reg, &signed.repository, &arm64);
    Upstream {
        reg,
        signed,
        unsigned,
        sig,
        att,
        sbom,
        sbom_subject: arm64,
    }
}

#[test]
fn signatures_attestations_and_sboms_travel_and_verify_offline() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let good = key(&work, "good");
    let other = key(&work, "other");
    let up = upstream(&work, &good);
    let list = image_list(&work, &[up.signed.clone(), up.unsigned.clone()], &[]);
    let upstream_flag = format!("docker.io={}", up.reg.url());
    let lock = work.join("images.lock");
    let (code, _, err) = run(
        &sandbox,
        &[
            "lock",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &upstream_flag,
            "-o",
            lock.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");

    // The lock lists the three attachments, each with its subject, byte-exact digests.
    let entries = lock_entries(&lock);
    let attached: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| !e["attached_to"].is_null())
        .collect();
    assert_eq!(attached.len(), 3, "{entries:#?}");
    let find = |kind: &str| {
        attached
            .iter()
            .find(|e| e["attached_to"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the lock"))
    };
    assert_eq!(find("sig")["digest"], up.sig.as_str());
    assert_eq!(
        find("sig")["attached_to"]["subject"],
        up.signed.digest.as_str()
    );
    assert_eq!(
        find("sig")["attached_to"]["image"],
        up.signed.reference().as_str()
    );
    assert_eq!(
        find("sig")["source"],
        format!(
            "docker.io/{}:{}",
            up.signed.repository,
            cosign_tag(&up.signed.digest, "sig")
        )
        .as_str()
    );
    assert_eq!(find("att")["digest"], up.att.as_str());
    assert_eq!(find("sbom")["digest"], up.sbom.as_str());
    assert_eq!(
        find("sbom")["attached_to"]["subject"],
        up.sbom_subject.as_str()
    );

    // Exported: the bundle verifies, and --key names the unsigned image only.
    let bundle = work.join("bundle.tar");
    let (code, _, err) = run(
        &sandbox,
        &[
            "export",
            "--lock",
            lock.to_str().unwrap(),
            "--upstream",
            &upstream_flag,
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let b = bundle.to_str().unwrap();
    let (code, _, err) = run(&sandbox, &["verify", b]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(
        &sandbox,
        &[
            "verify",
            b,
            "--key",
            good.public.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(problems(&out, &up.signed.reference()).is_empty(), "{out}");
    let p = problems(&out, &up.unsigned.reference());
    assert_eq!(p.len(), 1, "{out}");
    assert_eq!(p[0].0, "unsigned");
    assert!(p[0].1.contains(&up.unsigned.digest), "{}", p[0].1);

    // --attestations (cosign verify-attestation): the openssl-signed DSSE envelope of the
    // signed image verifies; the image without any attestation is named.
    let (code, out, err) = run(
        &sandbox,
        &[
            "verify",
            b,
            "--key",
            good.public.to_str().unwrap(),
            "--attestations",
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(problems(&out, &up.signed.reference()).is_empty(), "{out}");
    let kinds: Vec<String> = problems(&out, &up.unsigned.reference())
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(kinds, ["unsigned", "unattested"], "{out}");
    let (code, _, err) = run(&sandbox, &["verify", b, "--attestations"]);
    assert_eq!(
        code,
        Some(2),
        "--attestations without --key is a usage error: {err}"
    );

    // The wrong key: the signed image is named, with the reason.
    let (code, out, _) = run(
        &sandbox,
        &[
            "verify",
            b,
            "--key",
            other.public.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(1));
    let p = problems(&out, &up.signed.reference());
    assert_eq!(p.len(), 1, "{out}");
    assert_eq!(p[0].0, "bad_signature");
    assert!(p[0].1.contains("was not made by the key"), "{}", p[0].1);

    // inspect shows what is attached to the image, and whose each attachment is.
    let (code, out, err) = run(&sandbox, &["inspect", b, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let inv: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rows = inv["images"].as_array().expect("images");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {out}"))
    };
    assert_eq!(
        row(&up.signed.reference())["cosign"],
        serde_json::json!({"att": 1, "sbom": 1, "sig": 1})
    );
    let sig_name = format!(
        "{}:{}",
        up.signed.repository,
        cosign_tag(&up.signed.digest, "sig")
    );
    assert_eq!(
        row(&sig_name)["attached_to"],
        up.signed.reference().as_str()
    );

    // serve --key withdraws the unsigned image and serves the signed one with its signature.
    let server = crate::serve::Server::start(
        &sandbox,
        &[bundle.as_path()],
        &["--key", good.public.to_str().unwrap()],
    );
    let status = |image: &FixtureImage, reference: &str| {
        http::request(
            "HEAD",
            &format!(
                "{}/v2/{}/manifests/{reference}",
                server.url, image.repository
            ),
            &[],
            &[],
        )
        .expect("HEAD")
        .status
    };
    assert_eq!(status(&up.signed, &up.signed.tag), 200, "{}", server.log());
    assert_eq!(
        status(&up.signed, &cosign_tag(&up.signed.digest, "sig")),
        200
    );
    assert_eq!(
        status(&up.unsigned, &up.unsigned.tag),
        404,
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("has no cosign signature"),
        "{}",
        server.log()
    );
    drop(server);

    // skopeo reads the signature out of the bundle, byte for byte.
    let sig_tag = cosign_tag(&up.signed.digest, "sig");
    let raw = skopeo_ok([
        "inspect",
        "--raw",
        &format!(
            "oci-archive:{b}:docker.io/{}:{sig_tag}",
            up.signed.repository
        ),
    ]);
    assert_eq!(sha256_digest(&raw), up.sig);

    // Imported under a path prefix: tags stay tags, the mirror verifies with the key (the
    // payload names the upstream repository), and only the unsigned image is named.
    let target = TestRegistry::start(Auth::None);
    let to = format!("{}/mirror", target.host());
    let (code, _, err) = run(&sandbox, &["import", b, "--to", &to, "--plain-http"]);
    assert_eq!(code, Some(0), "{err}");
    for (tag, digest) in [
        (sig_tag.clone(), &up.sig),
        (cosign_tag(&up.signed.digest, "att"), &up.att),
        (cosign_tag(&up.sbom_subject, "sbom"), &up.sbom),
    ] {
        let repo = format!("mirror/{}", up.signed.repository);
        assert_eq!(
            target.storage().tag_digest(&repo, &tag).as_deref(),
            Some(digest.as_str()),
            "{tag}"
        );
    }
    let (code, out, err) = run(
        &sandbox,
        &[
            "verify",
            "--lock",
            lock.to_str().unwrap(),
            "--to",
            &to,
            "--plain-http",
            "--key",
            good.public.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(problems(&out, &up.signed.reference()).is_empty(), "{out}");
    assert_eq!(problems(&out, &up.unsigned.reference())[0].0, "unsigned");

    // import --key is a gate: the unsigned image is named and not pushed, the signed one and
    // its attachments are, and the exit code is 1.
    let gated = TestRegistry::start(Auth::None);
    let (code, out, err) = run(
        &sandbox,
        &[
            "import",
            b,
            "--to",
            &gated.host(),
            "--plain-http",
            "--key",
            good.public.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(failed, [up.unsigned.reference()], "{out}");
    let storage = gated.storage();
    assert_eq!(
        storage
            .tag_digest(&up.signed.repository, &up.signed.tag)
            .as_deref(),
        Some(up.signed.digest.as_str())
    );
    assert_eq!(
        storage
            .tag_digest(&up.signed.repository, &sig_tag)
            .as_deref(),
        Some(up.sig.as_str())
    );
    assert_eq!(
        storage.tag_digest(&up.unsigned.repository, &up.unsigned.tag),
        None
    );

    // Re-import is a no-op.
    let (code, out, err) = run(
        &sandbox,
        &["import", b, "--to", &to, "--plain-http", "--json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["pushed"], 0, "{out}");
    assert_eq!(v["blobs_pushed"], 0, "{out}");
}

#[test]
fn a_flipped_signature_byte_is_named() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let good = key(&work, "good");
    let image = fixture(PAUSE);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&image));
    cosign_sign(&work, &reg, &image, &good, true);
    // A validly signed attestation, but of another digest: it does not vouch for this image.
    let elsewhere = sha256_digest(b"another image");
    cosign_attest(&work, &reg, &image, &good, Some(&elsewhere));
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let bundle = work.join("b.tar");
    let (code, _, err) = run(
        &sandbox,
        &[
            "export",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={}", reg.url()),
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(
        &sandbox,
        &[
            "verify",
            bundle.to_str().unwrap(),
            "--key",
            good.public.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    let p = problems(&out, &image.reference());
    assert_eq!(p.len(), 1, "{out}");
    assert_eq!(p[0].0, "bad_signature", "{out}");
    let (code, out, _) = run(
        &sandbox,
        &[
            "verify",
            bundle.to_str().unwrap(),
            "--key",
            good.public.to_str().unwrap(),
            "--attestations",
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    let p = problems(&out, &image.reference());
    assert_eq!(p.len(), 2, "{out}");
    assert_eq!(p[1].0, "bad_attestation", "{out}");
    assert!(p[1].1.contains("is not about this image"), "{}", p[1].1);
}

#[test]
fn platform_filter_and_remove_signatures_decide_what_travels() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let good = key(&work, "good");
    let up = upstream(&work, &good);
    let list = image_list(&work, std::slice::from_ref(&up.signed), &[]);
    let upstream_flag = format!("docker.io={}", up.reg.url());
    let export = |extra: &[&str], name: &str| {
        let bundle = work.join(name);
        let mut args = vec![
            "export",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &upstream_flag,
            "-o",
            bundle.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&sandbox, &args);
        assert_eq!(code, Some(0), "{out}{err}");
        // The bundle's own lock.
        let lock = work.join(format!("{name}.lock"));
        let (code, _, err) = run(&sandbox, &["verify", bundle.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{err}");
        let out = Command::new("tar")
            .args(["-xOf", bundle.to_str().unwrap(), "images.lock"])
            .output()
            .expect("tar");
        std::fs::write(&lock, out.stdout).expect("lock");
        lock_entries(&lock)
    };
    let kinds = |entries: &[serde_json::Value]| {
        let mut k: Vec<String> = entries
            .iter()
            .filter_map(|e| e["attached_to"]["kind"].as_str().map(String::from))
            .collect();
        k.sort();
        k
    };
    // amd64 only: the SBOM of the arm64 manifest stays behind; the image's own stay.
    assert_eq!(
        kinds(&export(&["--platform", "linux/amd64"], "amd64.tar")),
        ["att", "sig"]
    );
    assert_eq!(
        kinds(&export(&["--platform", "linux/arm64"], "arm64.tar")),
        ["att", "sbom", "sig"]
    );
    assert!(kinds(&export(&["--remove-signatures"], "none.tar")).is_empty());
}

/// An OCI 1.1 referrer (an SPDX SBOM with `subject` and `artifactType`) of `image`, listed in
/// the referrers tag schema index `sha256-<hex>`, as an ORAS or cosign 3 client writes them
/// to a registry without the referrers API (distribution 2.8). Returns (index, referrer).
fn oci_referrer(reg: &TestRegistry, image: &FixtureImage) -> (String, String) {
    let storage = reg.storage();
    let repo = &image.repository;
    let empty = storage.put_blob(repo, b"{}");
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"referrer","packages":[]}"#;
    let layer = storage.put_blob(repo, sbom);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": layer, "size": sbom.len()}],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.manifest.len()}
    }))
    .expect("manifest");
    let referrer = storage.put_manifest(repo, &manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": referrer, "size": manifest.len(),
                       "artifactType": "application/spdx+json"}]
    }))
    .expect("index");
    let index_digest = storage.put_manifest(repo, &index);
    storage.tag(repo, &image.digest.replace(':', "-"), &index_digest);
    (index_digest, referrer)
}

#[test]
fn an_sbom_referrer_under_the_tag_schema_travels_by_digest() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let image = fixture(PAUSE);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&image));
    let (index, referrer) = oci_referrer(&reg, &image);
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let bundle = work.join("b.tar");
    let (code, _, err) = run(
        &sandbox,
        &[
            "export",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={}", reg.url()),
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let b = bundle.to_str().unwrap();
    let (code, _, err) = run(&sandbox, &["verify", b]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&sandbox, &["inspect", b, "--json"]);
    assert_eq!(code, Some(0));
    let inv: serde_json::Value = serde_json::from_str(&out).expect("json");
    let row = inv["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|r| r["name"] == image.reference())
        .expect("row")
        .clone();
    assert_eq!(row["cosign"], serde_json::json!({"referrers": 1}), "{out}");

    // ferry serve answers the referrers API from the bundle, with the artifactType filter.
    let server = crate::serve::Server::start(&sandbox, &[bundle.as_path()], &[]);
    let get = |query: &str| {
        http::get(&format!(
            "{}/v2/{}/referrers/{}{query}",
            server.url, image.repository, image.digest
        ))
        .expect("referrers")
    };
    let json = |r: &http::Response| -> serde_json::Value {
        serde_json::from_slice(&r.body).expect("index")
    };
    let r = get("");
    assert_eq!(r.status, 200);
    assert!(http::header(&r.headers, "oci-filters-applied").is_none());
    let v = json(&r);
    assert_eq!(v["manifests"][0]["digest"], referrer.as_str(), "{v}");
    assert_eq!(v["manifests"][0]["artifactType"], "application/spdx+json");
    let r = get("?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson");
    assert_eq!(
        http::header(&r.headers, "oci-filters-applied"),
        Some("artifactType")
    );
    assert_eq!(json(&r)["manifests"], serde_json::json!([]));
    let v = json(&get("?artifactType=application/spdx%2Bjson"));
    assert_eq!(v["manifests"].as_array().map(Vec::len), Some(1), "{v}");
    let tags =
        http::get(&format!("{}/v2/{}/tags/list", server.url, image.repository)).expect("tags");
    let tags = json(&tags);
    assert!(
        tags["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t == image.digest.replace(':', "-").as_str()),
        "{tags}"
    );
    drop(server);

    // Into a registry without the referrers API: the tag schema index keeps its tag and
    // digest, the referrer is there by digest, byte for byte.
    let target = TestRegistry::start(Auth::None);
    let (code, _, err) = run(
        &sandbox,
        &["import", b, "--to", &target.host(), "--plain-http"],
    );
    assert_eq!(code, Some(0), "{err}");
    let storage = target.storage();
    let tag = image.digest.replace(':', "-");
    assert_eq!(
        storage.tag_digest(&image.repository, &tag).as_deref(),
        Some(index.as_str())
    );
    assert!(storage.has_manifest(&image.repository, &referrer));
}

#[test]
fn a_lying_referrers_index_of_50000_entries_is_refused_and_named_and_the_image_still_locks() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let image = fixture(PAUSE);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&image));
    // 50,000 referrers that do not exist, under the image's referrers tag.
    let manifests: Vec<serde_json::Value> = (0..50_000u32)
        .map(|i| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256_digest(&i.to_be_bytes()), "size": 100,
                "artifactType": "application/spdx+json"})
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

    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let lock = work.join("images.lock");
    let (code, out, err) = run(
        &sandbox,
        &[
            "lock",
            "--json",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={}", reg.url()),
            "-o",
            lock.to_str().unwrap(),
        ],
    );
    // The image is locked; the referrers index is named among the failures (exit 1).
    assert_eq!(code, Some(1), "{out}{err}");
    let entries = lock_entries(&lock);
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["digest"], image.digest.as_str());
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let failed = v["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0]["name"]
            .as_str()
            .unwrap_or("")
            .ends_with(&image.digest.replace(':', "-")),
        "{out}"
    );
}

#[test]
fn a_delta_carries_new_signatures_of_old_images() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let good = key(&work, "good");
    let image = fixture(RKE_TOOLS);
    let up = TestRegistry::start(Auth::None);
    seed(&up, std::slice::from_ref(&image));
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let upstream_flag = format!("docker.io={}", up.url());
    let export = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "export",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &upstream_flag,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = run(&sandbox, &args);
        assert_eq!(code, Some(0), "export {}: {err}", out.display());
    };

    // The old release: unsigned, imported into the site's registry.
    let old = work.join("old.tar");
    export(&old, &[]);
    let target = TestRegistry::start(Auth::None);
    let host = target.host();
    let (code, _, err) = run(
        &sandbox,
        &[
            "import",
            old.to_str().unwrap(),
            "--to",
            &host,
            "--plain-http",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let verify_key = |bundle: &Path| {
        run(
            &sandbox,
            &[
                "verify",
                bundle.to_str().unwrap(),
                "--to",
                &host,
                "--plain-http",
                "--key",
                good.public.to_str().unwrap(),
                "--json",
            ],
        )
    };
    let (code, out, _) = verify_key(&old);
    assert_eq!(code, Some(1), "unsigned on the mirror: {out}");

    // Upstream signs the same image (same digest) later; the delta since the old bundle
    // carries the new signature (manifest, config and payload) and none of the image's layers.
    let sig = cosign_sign(&work, &up, &image, &good, false);
    let delta = work.join("delta.tar");
    export(&delta, &["--since", old.to_str().unwrap()]);
    let (code, out, err) = run(&sandbox, &["inspect", delta.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&cosign_tag(&image.digest, "sig")), "{out}");
    let lock = String::from_utf8(crate::delta::tar_entry(&delta, "images.lock")).expect("utf8");
    assert!(
        lock.contains(&sig),
        "the delta's lock names the new signature: {lock}"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&crate::delta::tar_entry(&delta, "ferry-delta.json"))
            .expect("delta json");
    let left_out: Vec<&str> = info["left_out"]
        .as_array()
        .expect("left_out")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest"))
        .collect();
    let layers: Vec<&str> = image
        .blobs
        .iter()
        .filter(|b| b.kind == fixtures::BlobKind::Layer)
        .map(|b| b.digest.as_str())
        .collect();
    assert!(!layers.is_empty());
    for layer in &layers {
        assert!(
            left_out.contains(layer),
            "the delta leaves out the old image's layer {layer}: {info}"
        );
    }

    // Imported onto the old mirror, the image now verifies with --key there.
    let (code, _, err) = run(
        &sandbox,
        &[
            "import",
            delta.to_str().unwrap(),
            "--to",
            &host,
            "--plain-http",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = verify_key(&delta);
    assert_eq!(code, Some(0), "{out}{err}");
}

#[test]
fn one_tag_list_per_repository_replaces_the_heads_and_a_partial_list_falls_back_to_them() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let good = key(&work, "good");
    let images = fixtures_named(&[RKE_TOOLS, PAUSE]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sig = cosign_sign(&work, &reg, &images[0], &good, false);
    let proxy = FaultProxy::start(&reg);
    let list = image_list(&work, &images, &[]);
    let lock = |name: &str| {
        let out = work.join(name);
        let (code, _, err) = run(
            &sandbox,
            &[
                "lock",
                "--images",
                list.to_str().unwrap(),
                "--upstream",
                &format!("docker.io={}", proxy.url()),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        let entries = lock_entries(&out);
        assert!(
            entries.iter().any(|e| e["digest"] == sig.as_str()),
            "the signature is found: {entries:#?}"
        );
    };
    let cosign_heads = || {
        proxy
            .requests()
            .iter()
            .filter(|r| {
                r.method == "HEAD" && r.kind == Kind::Manifest && r.target.contains("sha256-")
            })
            .count()
    };

    // The registry lists each repository's tags in one page: one GET each, and only the
    // signature's tag is asked for.
    lock("a.lock");
    assert_eq!(
        proxy.count("GET", Kind::Tags),
        2,
        "{}",
        proxy.counts_summary()
    );
    assert_eq!(cosign_heads(), 1, "{}", proxy.counts_summary());

    // The dry run counts the signature as more content of the image.
    let up = format!("docker.io={}", proxy.url());
    let dry = |extra: &[&str]| {
        let mut args = vec![
            "export",
            "--dry-run",
            "--json",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &up,
            "-o",
            "never.tar",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&sandbox, &args);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str::<serde_json::Value>(&out).expect("json")
    };
    let with = dry(&[]);
    let without = dry(&["--remove-signatures"]);
    assert_eq!(with["images"], 3, "{with}");
    assert_eq!(without["images"], 2, "{without}");
    assert!(
        with["bytes"].as_u64() > without["bytes"].as_u64(),
        "{with} / {without}"
    );

    // A list that goes on (a Link to the next page) is not trusted to be whole: every cosign
    // and referrers tag is asked for, and the signature is still found.
    proxy.clear_log();
    proxy.inject(
        Match::get(Kind::Tags),
        Fault::SetHeader(
            "Link".into(),
            Some("</v2/x/tags/list?n=1000&last=z>; rel=\"next\"".into()),
        ),
        usize::MAX,
    );
    lock("b.lock");
    assert_eq!(
        cosign_heads(),
        attachment_probes(&images),
        "{}",
        proxy.counts_summary()
    );

    // A registry without the tags API: the same.
    proxy.clear_faults();
    proxy.clear_log();
    proxy.inject(Match::get(Kind::Tags), Fault::Status(404), usize::MAX);
    lock("c.lock");
    assert_eq!(
        cosign_heads(),
        attachment_probes(&images),
        "{}",
        proxy.counts_summary()
    );
}

/// The tags looked for without a tag list: four kinds (`.sig`, `.att`, `.sbom`, the
/// referrers tag) for each image's digest and each real platform's, then four for the one
/// signature found.
fn attachment_probes(images: &[FixtureImage]) -> usize {
    let subjects: usize = images
        .iter()
        .map(|i| {
            1 + if i.is_multi_arch() {
                i.platforms.iter().filter(|p| !p.attestation).count()
            } else {
                0
            }
        })
        .sum();
    4 * (subjects + 1)
}

#[test]
fn a_signature_of_an_sbom_travels_two_levels_deep() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let good = key(&work, "good");
    let image = fixture(PAUSE);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&image));
    let sbom = cosign_sbom(&reg, &image.repository, &image.digest);
    // cosign sign of the SBOM's own digest: its .sig is attached to the SBOM, not the image.
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"index.docker.io/{}"}},"image":{{"docker-manifest-digest":"{sbom}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        image.repository
    );
    let signature = sign(&work, &good, payload.as_bytes());
    let sbom_sig = put_artifact(
        &reg,
        &image.repository,
        &cosign_tag(&sbom, "sig"),
        "application/vnd.dev.cosign.simplesigning.v1+json",
        payload.as_bytes(),
        serde_json::json!({"dev.cosignproject.cosign/signature": signature}),
    );
    let list = image_list(&work, std::slice::from_ref(&image), &[]);
    let bundle = work.join("b.tar");
    let (code, _, err) = run(
        &sandbox,
        &[
            "export",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &format!("docker.io={}", reg.url()),
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let lock = work.join("from-bundle.lock");
    std::fs::write(&lock, crate::delta::tar_entry(&bundle, "images.lock")).expect("lock");
    let entries = lock_entries(&lock);
    let by_digest = |d: &str| {
        entries
            .iter()
            .find(|e| e["digest"] == d)
            .unwrap_or_else(|| panic!("{d} in {entries:#?}"))
            .clone()
    };
    let s = by_digest(&sbom);
    assert_eq!(s["attached_to"]["kind"], "sbom");
    assert_eq!(s["attached_to"]["subject"], image.digest.as_str());
    let g = by_digest(&sbom_sig);
    assert_eq!(g["attached_to"]["kind"], "sig");
    assert_eq!(g["attached_to"]["subject"], sbom.as_str());
    assert_eq!(g["attached_to"]["image"], image.reference().as_str());
    let (code, _, err) = run(&sandbox, &["verify", bundle.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    // The image itself is unsigned: a signature of its SBOM does not vouch for it.
    let (code, out, _) = run(
        &sandbox,
        &[
            "verify",
            bundle.to_str().unwrap(),
            "--key",
            good.public.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(problems(&out, &image.reference())[0].0, "unsigned", "{out}");
}
