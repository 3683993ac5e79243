//! Keyless signatures checked offline against a site's own sigstore, and cosign 3's sigstore
//! bundles. The CA, the Rekor and CT log keys, the certificates and every signature are made by
//! `tests/it/sigstore/make.py` with python3-cryptography, never by ferry, in cosign's formats:
//! a cosign 3 signature is an OCI 1.1 referrer (artifactType
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, an empty config, the bundle as its one
//! layer, a `subject`), written under the referrers tag schema since distribution 2.8 has no
//! referrers API; a cosign 2 keyless signature is a `.sig` layer with certificate, chain and
//! Rekor bundle annotations.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IDENTITY: &str = "builder@example.test";
const ISSUER: &str = "https://oidc.example.test";

/// One signature for make.py to make.
struct Wanted<'a> {
    image: &'a FixtureImage,
    kind: &'a str,
    flip_set: bool,
}

/// Runs the harness: writes the trusted roots and one file per signature into `dir`.
fn make(dir: &Path, wanted: &[Wanted<'_>]) -> Vec<PathBuf> {
    let outs: Vec<PathBuf> = (0..wanted.len())
        .map(|i| dir.join(format!("signature-{i}.json")))
        .collect();
    let spec = serde_json::json!({
        "signatures": wanted.iter().zip(&outs).map(|(w, out)| serde_json::json!({
            "digest": w.image.digest,
            "repository": w.image.repository,
            "kind": w.kind,
            "flip_set": w.flip_set,
            "identity": IDENTITY,
            "issuer": ISSUER,
            "out": out,
        })).collect::<Vec<_>>()
    });
    let spec_file = dir.join("spec.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec).expect("spec")).expect("spec");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sigstore/make.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .arg(&spec_file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "make.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    outs
}

/// Writes a cosign 3 signature of `image` into `reg`: the referrer manifest (as cosign's
/// `WriteAttestationNewBundleFormat` builds it) and the referrers tag-schema index listing it.
/// Returns the referrer's digest.
fn put_bundle_referrer(reg: &TestRegistry, image: &FixtureImage, bundle: &[u8]) -> String {
    let storage = reg.storage();
    let repo = &image.repository;
    let layer = storage.put_blob(repo, bundle);
    let config = storage.put_blob(repo, b"{}");
    let annotations = serde_json::json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
        "org.opencontainers.image.created": "2026-01-01T00:00:00Z"
    });
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "artifactType": BUNDLE_V03, "digest": config, "size": 2},
        "layers": [{"mediaType": BUNDLE_V03, "digest": layer, "size": bundle.len()}],
        "subject": {"mediaType": image.media_type, "digest": image.digest,
                    "size": image.manifest.len()},
        "annotations": annotations,
        "artifactType": BUNDLE_V03
    }))
    .expect("manifest");
    let referrer = storage.put_manifest(repo, &manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": referrer, "size": manifest.len(),
                       "artifactType": BUNDLE_V03, "annotations": annotations}]
    }))
    .expect("index");
    let index_digest = storage.put_manifest(repo, &index);
    storage.tag(repo, &image.digest.replace(':', "-"), &index_digest);
    referrer
}

/// Writes a cosign 2 keyless `.sig` of `image` (make.py's payload and annotations).
fn put_legacy_sig(reg: &TestRegistry, image: &FixtureImage, made: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(made).expect("legacy json");
    let payload = v["payload"].as_str().expect("payload").as_bytes();
    let storage = reg.storage();
    let repo = &image.repository;
    let layer = storage.put_blob(repo, payload);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]}
    }))
    .expect("config");
    let config_digest = storage.put_blob(repo, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": layer, "size": payload.len(),
                    "annotations": v["annotations"]}]
    }))
    .expect("manifest");
    let digest = storage.put_manifest(repo, &manifest);
    storage.tag(
        repo,
        &format!("{}.sig", image.digest.replace(':', "-")),
        &digest,
    );
    digest
}

struct Site {
    sandbox: Sandbox,
    work: PathBuf,
    bundle: PathBuf,
    lock: PathBuf,
    /// A cosign 3 keyless bundle referrer.
    keyless: FixtureImage,
    /// A cosign 2 keyless `.sig`.
    legacy: FixtureImage,
    /// A cosign 3 bundle whose SET has a flipped byte.
    bad_set: FixtureImage,
    /// A cosign 3 bundle signed with a key (`cosign sign --key`).
    keyed: FixtureImage,
    /// Not signed at all.
    unsigned: FixtureImage,
}

impl Site {
    fn root(&self, name: &str) -> String {
        self.work.join(name).to_str().expect("utf8").to_string()
    }

    fn verify(&self, extra: &[&str]) -> (Option<i32>, String, String) {
        let mut args = vec!["verify", self.bundle.to_str().expect("utf8"), "--json"];
        args.extend_from_slice(extra);
        run(&self.sandbox, &args)
    }
}

/// An upstream with one image per kind of signature, locked and exported to a bundle.
fn site() -> Site {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let images = fixtures_named(&[RKE_TOOLS, COREDNS, ETCD, HYPERKUBE, PAUSE]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let [keyless, legacy, bad_set, keyed, unsigned] =
        <[FixtureImage; 5]>::try_from(images.clone()).unwrap_or_else(|_| panic!("five fixtures"));
    let made = make(
        &work,
        &[
            Wanted {
                image: &keyless,
                kind: "bundle",
                flip_set: false,
            },
            Wanted {
                image: &legacy,
                kind: "legacy",
                flip_set: false,
            },
            Wanted {
                image: &bad_set,
                kind: "bundle",
                flip_set: true,
            },
            Wanted {
                image: &keyed,
                kind: "key",
                flip_set: false,
            },
        ],
    );
    let read = |p: &PathBuf| std::fs::read(p).expect("made");
    put_bundle_referrer(&reg, &keyless, &read(&made[0]));
    put_legacy_sig(&reg, &legacy, &read(&made[1]));
    put_bundle_referrer(&reg, &bad_set, &read(&made[2]));
    put_bundle_referrer(&reg, &keyed, &read(&made[3]));

    let list = image_list(&work, &images, &[]);
    let upstream = format!("docker.io={}", reg.url());
    let lock = work.join("images.lock");
    let (code, _, err) = run(
        &sandbox,
        &[
            "lock",
            "--images",
            list.to_str().unwrap(),
            "--upstream",
            &upstream,
            "-o",
            lock.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let bundle = work.join("bundle.tar");
    let (code, _, err) = run(
        &sandbox,
        &[
            "export",
            "--lock",
            lock.to_str().unwrap(),
            "--upstream",
            &upstream,
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    drop(reg);
    Site {
        sandbox,
        work,
        bundle,
        lock,
        keyless,
        legacy,
        bad_set,
        keyed,
        unsigned,
    }
}

fn kinds(p: &[(String, String)]) -> Vec<&str> {
    p.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn keyless_signatures_verify_offline_against_the_sites_trust_root() {
    let site = site();
    let root = site.root("trusted_root.json");
    let good = [
        "--trusted-root",
        &root,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];

    // The cosign 3 bundle and the cosign 2 keyless .sig pass; the others are named, each with
    // its reason, and the exit code is 1. The registry is gone: nothing needs the network.
    let (code, out, err) = site.verify(&good);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        problems(&out, &site.keyless.reference()).is_empty(),
        "{out}"
    );
    assert!(problems(&out, &site.legacy.reference()).is_empty(), "{out}");
    let p = problems(&out, &site.unsigned.reference());
    assert_eq!(kinds(&p), ["unsigned"], "{out}");
    let p = problems(&out, &site.bad_set.reference());
    assert_eq!(kinds(&p), ["bad_signature"], "{out}");
    assert!(p[0].1.contains("signed entry timestamp"), "{}", p[0].1);
    assert!(p[0].1.contains(&site.bad_set.digest), "{}", p[0].1);
    let p = problems(&out, &site.keyed.reference());
    assert_eq!(kinds(&p), ["bad_signature"], "{out}");
    assert!(p[0].1.contains("signed with a key"), "{}", p[0].1);

    // The regexp forms, as cosign's.
    let (_, out, _) = site.verify(&[
        "--trusted-root",
        &root,
        "--certificate-identity-regexp",
        "^builder@example\\.test$",
        "--certificate-oidc-issuer-regexp",
        "oidc\\.example",
    ]);
    assert!(
        problems(&out, &site.keyless.reference()).is_empty(),
        "{out}"
    );

    // Without a CT log in the root, SCTs are not asked for.
    let no_ct = site.root("trusted_root_no_ct.json");
    let (_, out, _) = site.verify(&[
        "--trusted-root",
        &no_ct,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert!(
        problems(&out, &site.keyless.reference()).is_empty(),
        "{out}"
    );

    // Each wrong thing fails, named, with exit 1.
    let other_ca = site.root("trusted_root_other_ca.json");
    let expired = site.root("trusted_root_expired_ca.json");
    let other_ct = site.root("trusted_root_other_ct.json");
    let forged_ct = site.root("trusted_root_forged_ct.json");
    let forged_rekor = site.root("trusted_root_forged_rekor.json");
    for (args, reason) in [
        (
            vec![
                "--trusted-root",
                &root,
                "--certificate-identity",
                "someone@else.test",
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "identity is \"builder@example.test\", not \"someone@else.test\"",
        ),
        (
            vec![
                "--trusted-root",
                &root,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
            ],
            "OIDC issuer is \"https://oidc.example.test\"",
        ),
        (
            vec![
                "--trusted-root",
                &root,
                "--certificate-identity-regexp",
                "^someone",
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "not /^someone/",
        ),
        (
            vec![
                "--trusted-root",
                &other_ca,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "does not chain to a certificate authority",
        ),
        (
            vec![
                "--trusted-root",
                &expired,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "was valid at the signing time",
        ),
        (
            vec![
                "--trusted-root",
                &other_ct,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "which the trusted root does not name",
        ),
        (
            vec![
                "--trusted-root",
                &forged_ct,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "SCT of the CT log https://forged-ctfe.sigstore.test does not verify",
        ),
        (
            vec![
                "--trusted-root",
                &forged_rekor,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
            ],
            "signed entry timestamp of entry",
        ),
    ] {
        let (code, out, err) = site.verify(&args);
        assert_eq!(code, Some(1), "{args:?}: {out}{err}");
        for image in [&site.keyless, &site.legacy] {
            let p = problems(&out, &image.reference());
            assert_eq!(kinds(&p), ["bad_signature"], "{args:?}: {out}");
            assert!(p[0].1.contains(reason), "{args:?}: {}", p[0].1);
            assert!(p[0].1.contains(&image.reference()), "{}", p[0].1);
        }
    }

    // cosign requires an identity and an issuer for keyless, and so does ferry; --key and
    // --trusted-root are alternatives.
    for args in [
        vec!["--trusted-root", &root, "--certificate-identity", IDENTITY],
        vec!["--trusted-root", &root, "--certificate-oidc-issuer", ISSUER],
        vec![
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ],
        vec![
            "--trusted-root",
            &root,
            "--certificate-identity",
            IDENTITY,
            "--certificate-identity-regexp",
            "x",
            "--certificate-oidc-issuer",
            ISSUER,
        ],
    ] {
        let (code, _, err) = site.verify(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--certificate") || err.contains("--trusted-root"),
            "{err}"
        );
    }
    let key = site.root("cosign.pub");
    let mut both = good.to_vec();
    both.extend(["--key", key.as_str()]);
    let (code, _, err) = site.verify(&both);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    // A trust root that is not one is named.
    let (code, _, err) = site.verify(&[
        "--trusted-root",
        &key,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("trusted_root.json"), "{err}");
}

#[test]
fn a_cosign_3_bundle_verifies_with_key_and_keyless_gates_import_and_serve() {
    let site = site();
    let root = site.root("trusted_root.json");
    let keyless = [
        "--trusted-root",
        root.as_str(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];

    // `cosign sign --key` with cosign 3: the bundle has a key hint and no certificate.
    let key = site.root("cosign.pub");
    let (code, out, err) = site.verify(&["--key", &key]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(problems(&out, &site.keyed.reference()).is_empty(), "{out}");
    let p = problems(&out, &site.keyless.reference());
    assert_eq!(kinds(&p), ["bad_signature"], "{out}");
    assert!(p[0].1.contains("was not made by the key"), "{}", p[0].1);

    // import with the keyless flags is a gate: only the validly signed images and what is
    // attached to them are pushed; the rest are named, and the exit code is 1.
    let gated = TestRegistry::start(Auth::None);
    let host = gated.host();
    let mut args = vec![
        "import",
        site.bundle.to_str().unwrap(),
        "--to",
        host.as_str(),
        "--plain-http",
        "--json",
    ];
    args.extend_from_slice(&keyless);
    let (code, out, err) = run(&site.sandbox, &args);
    assert_eq!(code, Some(1), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let mut failed: Vec<String> = v["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| {
            let error = f["error"].as_str().unwrap_or("");
            assert!(error.contains("--trusted-root kept it out"), "{error}");
            f["name"].as_str().unwrap_or("").to_string()
        })
        .collect();
    failed.sort();
    let mut want = vec![
        site.bad_set.reference(),
        site.keyed.reference(),
        site.unsigned.reference(),
    ];
    want.sort();
    assert_eq!(failed, want, "{out}");
    let storage = gated.storage();
    for image in [&site.keyless, &site.legacy] {
        assert_eq!(
            storage.tag_digest(&image.repository, &image.tag).as_deref(),
            Some(image.digest.as_str())
        );
    }
    assert!(
        storage
            .tag_digest(
                &site.keyless.repository,
                &site.keyless.digest.replace(':', "-")
            )
            .is_some(),
        "the referrers index travels with the image"
    );
    for image in [&site.bad_set, &site.keyed, &site.unsigned] {
        assert_eq!(storage.tag_digest(&image.repository, &image.tag), None);
    }

    // The mirror verifies with the same flags (the bundle names the digest, not the name).
    let mut args = vec![
        "verify",
        "--lock",
        site.lock.to_str().unwrap(),
        "--to",
        host.as_str(),
        "--plain-http",
        "--json",
    ];
    args.extend_from_slice(&keyless);
    let (code, out, err) = run(&site.sandbox, &args);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        problems(&out, &site.keyless.reference()).is_empty(),
        "{out}"
    );
    assert!(problems(&out, &site.legacy.reference()).is_empty(), "{out}");

    // serve with the keyless flags withdraws what fails, with why.
    let server = crate::serve::Server::start(&site.sandbox, &[site.bundle.as_path()], &keyless);
    let status = |image: &FixtureImage| {
        http::request(
            "HEAD",
            &format!(
                "{}/v2/{}/manifests/{}",
                server.url, image.repository, image.tag
            ),
            &[],
            &[],
        )
        .expect("HEAD")
        .status
    };
    assert_eq!(status(&site.keyless), 200, "{}", server.log());
    assert_eq!(status(&site.legacy), 200, "{}", server.log());
    assert_eq!(status(&site.unsigned), 404, "{}", server.log());
    assert_eq!(status(&site.bad_set), 404, "{}", server.log());
    assert!(server.log().contains("--trusted-root"), "{}", server.log());
}
