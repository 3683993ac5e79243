//! Image lists in real-world shapes ([`shapes`]): two names for one digest across repositories
//! and within one, one image listed in two spellings, a child shared by two indexes, an
//! attestation-only index, a platform manifest that is another image's top-level manifest.
//! Every shape must export on the first run, verify offline, import (mounting where the
//! registry allows) and verify against the registry — and a re-import must be a no-op.

use std::collections::BTreeSet;

use crate::support::shapes::{Shapes, shapes};
use crate::support::*;

fn ok(out: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Seeds every name of the shapes into `reg`.
fn seed_shapes(reg: &TestRegistry, s: &Shapes) {
    for x in &s.seeded {
        seed_as(reg, &x.image, &x.repository, &x.tag);
    }
}

/// Every name resolves in `reg` (under `prefix`) to its digest, and every child is there,
/// read back by skopeo byte for byte.
fn assert_mirrored(reg: &TestRegistry, s: &Shapes) {
    for x in &s.seeded {
        let raw = skopeo_inspect_raw(reg, &x.reference(), true);
        assert_eq!(sha256_digest(&raw), x.image.digest, "{}", x.reference());
        for c in &x.image.children {
            let raw = skopeo_inspect_raw(reg, &format!("{}@{}", x.repository, c.digest), true);
            assert_eq!(raw, c.bytes, "{}@{}", x.repository, c.digest);
        }
    }
}

#[test]
fn real_world_shapes_export_import_and_verify_on_the_first_run() {
    let s = shapes();
    let upstream = TestRegistry::start(Auth::TlsToken);
    seed_shapes(&upstream, &s);
    let sandbox = Sandbox::new();
    let list = sandbox.work().join("images.txt");
    std::fs::write(&list, s.list.join("\n") + "\n").expect("list");
    let bundle = sandbox.work().join("shapes.tar");

    // Export: the first run succeeds (no "already being written" race between aliases).
    let out = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(upstream_args(&upstream.url(), &upstream))
        .arg("-o")
        .arg(&bundle)
        .arg("--json")
        .output()
        .expect("export");
    let summary = ok(&out, "export");
    let names: BTreeSet<String> = s.seeded.iter().map(|x| x.reference()).collect();
    assert_eq!(
        summary["exported"],
        names.len(),
        "each distinct image once (nginx listed twice): {summary}"
    );
    let objects = s.unique_objects();
    assert_eq!(summary["blobs"], objects.len(), "{summary}");

    // Every object is in the bundle exactly once, byte for byte.
    let mut ar = tar::Archive::new(std::fs::File::open(&bundle).expect("open"));
    let mut seen = BTreeSet::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).expect("read");
            let d = format!("sha256:{hex}");
            assert_eq!(objects.get(&d), Some(&bytes), "{name}");
            assert!(seen.insert(d), "{name} twice");
        }
    }
    assert_eq!(seen.len(), objects.len());
    // index.json: one entry per distinct name, none twice.
    let index = read_bundle_member(&bundle, "index.json");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("index.json");
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .expect("ref.name")
        })
        .collect();
    let unique: BTreeSet<&str> = refs.iter().copied().collect();
    assert_eq!(refs.len(), unique.len(), "{refs:?}");
    assert_eq!(refs.len(), names.len(), "{refs:?}");

    // Offline verify.
    let out = sandbox
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--json")
        .output()
        .expect("verify bundle");
    let report = ok(&out, "verify bundle");
    assert_eq!(report["complete"], true, "{report}");

    // skopeo reads an alias and the attestation-only index out of the bundle by name.
    for name in [
        "docker.io/rancher/pause:3.7",
        "docker.io/rancher/mirrored-sbom-scanner:v1",
    ] {
        let raw = skopeo_ok([
            "inspect".to_string(),
            "--raw".to_string(),
            format!("oci-archive:{}:{name}", bundle.display()),
        ]);
        let want = s
            .seeded
            .iter()
            .find(|x| format!("docker.io/{}", x.reference()) == name)
            .expect("seeded");
        assert_eq!(sha256_digest(&raw), want.image.digest, "{name}");
    }

    // Import into a token-auth registry (mounts need a token for two repositories).
    let target = TestRegistry::start(Auth::TlsToken);
    sandbox.login(&[&target]);
    let ca = target.ca_file().expect("ca").display().to_string();
    let import = || {
        sandbox
            .ferry()
            .arg("import")
            .arg(&bundle)
            .args(["--to", &target.host(), "--ca-file", &ca, "--json"])
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("import")
    };
    let summary = ok(&import(), "import");
    assert_eq!(summary["pushed"], names.len(), "{summary}");
    assert!(
        summary["blobs_mounted"].as_u64().expect("mounted") > 0,
        "aliases in other repositories are mounted, not uploaded again: {summary}"
    );
    assert_mirrored(&target, &s);

    // Verify against the registry.
    let out = sandbox
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .args(["--to", &target.host(), "--ca-file", &ca, "--json"])
        .output()
        .expect("verify registry");
    let report = ok(&out, "verify registry");
    assert_eq!(report["complete"], true, "{report}");

    // A second import finds everything in place.
    let summary = ok(&import(), "re-import");
    assert_eq!(summary["pushed"], 0, "{summary}");
    assert_eq!(summary["already_present"], names.len(), "{summary}");
}

/// The bytes of one member of a tar.
fn read_bundle_member(bundle: &std::path::Path, member: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(std::fs::File::open(bundle).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_str() == Some(member) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).expect("read");
            return bytes;
        }
    }
    panic!("{member} not in {}", bundle.display())
}
