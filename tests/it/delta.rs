//! Delta bundles (`ferry export --since OLD`): two RKE-like image sets sharing base layers
//! (an "old" and a "new" release: some images unchanged, some new versions on the same base
//! layer, one new image). The delta carries exactly the new set's manifests, configs and the
//! layers the old set lacks; importing it onto the old set leaves the registry equal to an
//! import of the full new set; it refuses an empty registry naming what is missing; verify
//! checks it with and without its base; serve serves it with its base; a delta of a delta
//! works.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::serve::Server;
use crate::support::fixtures::{BlobKind, synthetic};
use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The old release.
fn old_set() -> Vec<FixtureImage> {
    vec![
        synthetic("rancher/hyperkube:v1.29.9-rancher1"),
        synthetic("rancher/mirrored-coreos-etcd:v3.5.9"),
        fixture(PAUSE),
        fixture(RKE_TOOLS),
    ]
}

/// The new release: hyperkube and etcd move on (same base layer), pause and rke-tools stay,
/// coredns is new.
fn new_set() -> Vec<FixtureImage> {
    vec![
        synthetic("rancher/hyperkube:v1.30.5-rancher1"),
        synthetic("rancher/mirrored-coreos-etcd:v3.5.12"),
        fixture(PAUSE),
        fixture(RKE_TOOLS),
        fixture(COREDNS),
    ]
}

/// A later release, made against the new one.
fn newer_set() -> Vec<FixtureImage> {
    let mut v = new_set();
    v[0] = synthetic("rancher/hyperkube:v1.31.1-rancher1");
    v
}

/// Every layer of `images`.
fn layers(images: &[FixtureImage]) -> BTreeSet<String> {
    images
        .iter()
        .flat_map(|i| &i.blobs)
        .filter(|b| b.kind == BlobKind::Layer)
        .map(|b| b.digest.clone())
        .collect()
}

/// Bytes a delta of `new` against `old` carries: every manifest and config of `new`, and its
/// layers `old` lacks, each once.
fn delta_bytes(new: &[FixtureImage], old: &[FixtureImage]) -> u64 {
    let old_layers = layers(old);
    let mut seen = BTreeSet::new();
    let manifests: u64 = new
        .iter()
        .flat_map(|i| i.all_manifests())
        .filter(|m| seen.insert(m.digest.clone()))
        .map(|m| m.bytes.len() as u64)
        .sum();
    let blobs: u64 = unique_blobs(new)
        .values()
        .filter(|b| b.kind == BlobKind::Config || !old_layers.contains(&b.digest))
        .map(|b| b.bytes.len() as u64)
        .sum();
    manifests + blobs
}

struct Env {
    sandbox: Sandbox,
    upstream: TestRegistry,
}

impl Env {
    fn new() -> Env {
        let upstream = TestRegistry::start(Auth::None);
        let mut all = old_set();
        all.extend(new_set());
        all.extend(newer_set());
        seed(&upstream, &all);
        Env {
            sandbox: Sandbox::new(),
            upstream,
        }
    }

    fn list(&self, name: &str, images: &[FixtureImage]) -> PathBuf {
        let dir = self.sandbox.work().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        image_list(&dir, images, &[])
    }

    /// `ferry export` of `images` to `out` with `extra` arguments; the JSON summary.
    fn export(&self, images: &[FixtureImage], out: &Path, extra: &[&str]) -> serde_json::Value {
        let list = self.list(
            &format!("list-{}", out.file_name().expect("name").to_string_lossy()),
            images,
        );
        let o = self
            .sandbox
            .ferry()
            .arg("export")
            .arg("--images")
            .arg(&list)
            .args([
                "--upstream",
                &format!("docker.io={}", self.upstream.url()),
                "--json",
                "-o",
            ])
            .arg(out)
            .args(extra)
            .output()
            .expect("export");
        assert!(
            o.status.success(),
            "export {}: {}",
            out.display(),
            text(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("json")
    }

    fn import(&self, bundle: &Path, target: &TestRegistry) -> std::process::Output {
        self.sandbox
            .ferry()
            .arg("import")
            .arg(bundle)
            .args(["--to", &target.host(), "--plain-http", "--json"])
            .output()
            .expect("import")
    }

    fn verify_registry(&self, bundle: &Path, target: &TestRegistry) -> std::process::Output {
        self.sandbox
            .ferry()
            .arg("verify")
            .arg(bundle)
            .args(["--to", &target.host(), "--plain-http"])
            .output()
            .expect("verify")
    }
}

/// Every tag of `images` in `reg` at the fixture digest.
fn assert_tags(reg: &TestRegistry, images: &[FixtureImage]) {
    for img in images {
        assert_eq!(
            sha256_digest(&skopeo_inspect_raw(reg, &img.reference(), false)),
            img.digest,
            "{}",
            img.reference()
        );
    }
}

#[test]
fn a_delta_carries_only_what_is_new_and_onto_the_old_set_equals_the_new_set() {
    let env = Env::new();
    let w = env.sandbox.work();
    let (old, new) = (old_set(), new_set());
    env.export(&old, &w.join("old.tar"), &[]);
    env.export(&new, &w.join("new.tar"), &[]);

    // Against the old bundle, and against the old lock (manifests fetched by digest).
    let d = env.export(
        &new,
        &w.join("delta.tar"),
        &["--since", w.join("old.tar").to_str().expect("path")],
    );
    let old_lock = w.join("old.lock");
    let lock = env
        .sandbox
        .ferry()
        .args(["lock", "--images"])
        .arg(env.list("old-lock", &old))
        .args([
            "--upstream",
            &format!("docker.io={}", env.upstream.url()),
            "-o",
        ])
        .arg(&old_lock)
        .output()
        .expect("lock");
    assert!(lock.status.success(), "{}", text(&lock.stderr));
    let d2 = env.export(
        &new,
        &w.join("delta2.tar"),
        &["--since", old_lock.to_str().expect("path")],
    );

    // Exactly the new bytes: every manifest and config, the layers the old set lacks.
    let want = delta_bytes(&new, &old);
    assert_eq!(d["delta"]["bytes_carried"], want, "{d}");
    assert_eq!(d2["delta"]["bytes_carried"], want, "{d2}");
    let shared: BTreeSet<String> = layers(&new).intersection(&layers(&old)).cloned().collect();
    assert_eq!(d["delta"]["layers_left_out"], shared.len());
    assert!(shared.len() >= 3, "the workload shares layers: {shared:?}");
    assert_eq!(
        d["delta"]["delta_of"], d2["delta"]["delta_of"],
        "the same old lock"
    );
    let full = std::fs::metadata(w.join("new.tar")).expect("new").len();
    let delta = std::fs::metadata(w.join("delta.tar")).expect("delta").len();
    assert!(delta < full, "{delta} < {full}");
    eprintln!("full new bundle {full} bytes, delta {delta} bytes");

    // The dry run says what is saved, writing nothing.
    let dry = env.export(
        &new,
        &w.join("dry.tar"),
        &[
            "--dry-run",
            "--since",
            w.join("old.tar").to_str().expect("path"),
        ],
    );
    assert_eq!(dry["delta"]["bytes_left_out"], d["delta"]["bytes_left_out"]);
    assert!(!w.join("dry.tar").exists());

    // The index says what it is; skopeo still reads the manifests (of the OCI-typed entries,
    // the only ones skopeo selects by name).
    let index = tar_entry(&w.join("delta.tar"), "index.json");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("index");
    assert_eq!(
        index["annotations"]["io.ferry.bundle.delta-of"],
        d["delta"]["delta_of"]
    );
    for img in new
        .iter()
        .filter(|i| i.media_type.starts_with("application/vnd.oci"))
    {
        let raw = skopeo_ok([
            "inspect".to_string(),
            "--raw".to_string(),
            format!(
                "oci-archive:{}:docker.io/{}",
                w.join("delta.tar").display(),
                img.reference()
            ),
        ]);
        assert_eq!(sha256_digest(&raw), img.digest);
    }

    // Into an empty registry: refused before anything is pushed, naming what is missing.
    let empty = TestRegistry::start(Auth::None);
    let o = env.import(&w.join("delta.tar"), &empty);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("delta of old.tar")
            && stderr.contains("Import the older set")
            && stderr.contains("rancher/hyperkube:v1.30.5-rancher1"),
        "{stderr}"
    );
    assert!(empty.storage().repositories().is_empty(), "nothing pushed");

    // old + delta == new, digest for digest.
    let a = TestRegistry::start(Auth::None);
    let b = TestRegistry::start(Auth::None);
    assert!(env.import(&w.join("old.tar"), &a).status.success());
    let o = env.import(&w.join("delta.tar"), &a);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        summary["blobs_mounted"].as_u64().expect("mounted") > 0,
        "base layers mounted from the old repositories: {summary}"
    );
    assert!(env.import(&w.join("new.tar"), &b).status.success());
    assert_tags(&a, &new);
    assert_tags(&b, &new);
    let v = env.verify_registry(&w.join("new.tar"), &a);
    assert!(
        v.status.success(),
        "every blob of the new set in A: {}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
    for img in &new {
        for blob in &img.blobs {
            assert_eq!(
                a.storage().has_layer_link(&img.repository, &blob.digest),
                b.storage().has_layer_link(&img.repository, &blob.digest),
                "{} {}",
                img.repository,
                blob.digest
            );
        }
    }
}

#[test]
fn a_delta_is_verified_with_and_without_its_base_served_with_it_and_built_on() {
    let env = Env::new();
    let w = env.sandbox.work();
    let (old, new, newer) = (old_set(), new_set(), newer_set());
    env.export(&old, &w.join("old.tar"), &[]);
    env.export(
        &new,
        &w.join("delta.tar"),
        &["--since", w.join("old.tar").to_str().expect("path")],
    );

    // Offline, alone: complete, the left-out layers listed as not checked.
    let v = env
        .sandbox
        .ferry()
        .arg("verify")
        .arg(w.join("delta.tar"))
        .output()
        .expect("verify");
    let said = text(&v.stdout);
    assert!(v.status.success(), "{said}{}", text(&v.stderr));
    assert!(said.contains("left out and were not checked"), "{said}");
    // With its base: every left-out layer found and re-hashed there.
    let v = env
        .sandbox
        .ferry()
        .arg("verify")
        .arg(w.join("delta.tar"))
        .arg("--base")
        .arg(w.join("old.tar"))
        .output()
        .expect("verify");
    let said = text(&v.stdout);
    assert!(v.status.success(), "{said}{}", text(&v.stderr));
    assert!(said.contains("found and re-hashed"), "{said}");
    // With the wrong base (the delta itself): the layers are named missing.
    let v = env
        .sandbox
        .ferry()
        .args(["verify", "--json"])
        .arg(w.join("delta.tar"))
        .arg("--base")
        .arg(w.join("delta.tar"))
        .output()
        .expect("verify");
    assert_eq!(v.status.code(), Some(1), "{}", text(&v.stderr));
    assert!(text(&v.stdout).contains("in none of the --base bundles"));

    // Served with its base, every new image pulls whole; alone, what it cannot serve is named.
    let s = Server::start(
        &env.sandbox,
        &[&w.join("old.tar"), &w.join("delta.tar")],
        &[],
    );
    for img in &new {
        let dir = w.join(format!("pulled-{}", img.repository.replace('/', "_")));
        skopeo_ok([
            "copy".to_string(),
            "--all".to_string(),
            "--src-tls-verify=false".to_string(),
            format!("docker://{}/{}", s.host, img.reference()),
            format!("dir:{}", dir.display()),
        ]);
    }
    drop(s);
    let alone = env
        .sandbox
        .ferry()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(w.join("delta.tar"))
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("serve");
    let log = text(&alone.stderr);
    assert_eq!(alone.status.code(), Some(2), "{log}");
    assert!(
        log.contains("is left out of the delta") && log.contains("ferry serve old.tar"),
        "{log}"
    );

    // A delta of the delta: only the newer hyperkube's own layer and the new metadata.
    let d = env.export(
        &newer,
        &w.join("delta2.tar"),
        &["--since", w.join("delta.tar").to_str().expect("path")],
    );
    let mut before = old.clone();
    before.extend(new.clone());
    assert_eq!(
        d["delta"]["bytes_carried"],
        delta_bytes(&newer, &before),
        "{d}"
    );
    let reg = TestRegistry::start(Auth::None);
    for b in ["old.tar", "delta.tar", "delta2.tar"] {
        let o = env.import(&w.join(b), &reg);
        assert!(o.status.success(), "{b}: {}", text(&o.stderr));
    }
    assert_tags(&reg, &newer);
    let full = w.join("newer.tar");
    env.export(&newer, &full, &[]);
    let v = env.verify_registry(&full, &reg);
    assert!(v.status.success(), "{}{}", text(&v.stdout), text(&v.stderr));
}

/// The bytes of entry `name` of a tar file.
pub(crate) fn tar_entry(tar: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(std::fs::File::open(tar).expect("open"));
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_string_lossy() == name {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).expect("read");
            return v;
        }
    }
    panic!("no {name} in {}", tar.display())
}
