//! Image lists in the shapes real ones have, which the tidy [`fixtures`](super::fixtures) lack:
//! two names for one digest (across repositories, within one, and the same image spelled two
//! ways), one child manifest under two indexes, an index that holds only an attestation, and a
//! platform manifest that is also another image's top-level manifest.
//!
//! | listed as | what it is |
//! | --- | --- |
//! | `rancher/mirrored-pause:3.7`, `rancher/pause:3.7` | one OCI index in two repositories (Rancher's `mirrored-*` copies) |
//! | `rancher/mirrored-flannel-flannel:v0.25.1`, `…:stable` | one Docker manifest list under two tags |
//! | `docker.io/library/nginx:1.25`, `nginx:1.25` | one image, listed twice in two spellings |
//! | `rancher/mirrored-calico-node:v3.28.1`, `rancher/mirrored-calico-ctl:v3.28.1` | two indexes sharing their linux/amd64 child |
//! | `rancher/mirrored-sbom-scanner:v1` | an index whose only entry is an `unknown/unknown` attestation |
//! | `rancher/mirrored-coredns-coredns:1.11.3`, `…:1.11.3-amd64` | the list's linux/amd64 child is the `-amd64` tag's top-level manifest |

use serde_json::{Value, json};

use super::fixtures::{
    AMD64, ARM64, ARMV7, BlobKind, DOCKER_MANIFEST, FixtureBlob, FixtureImage, FixtureManifest,
    FixturePlatform, OCI_INDEX, OCI_MANIFEST, Style, multi, single, to_bytes,
};
use super::sha256_digest;

/// One name of an image as the upstream registry holds it.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The image (its bytes).
    pub image: FixtureImage,
    /// Repository in the registry (no `docker.io/`).
    pub repository: String,
    pub tag: String,
}

impl Seeded {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// The shapes: what to list, and what the upstream registry holds under which name.
#[derive(Debug, Clone)]
pub struct Shapes {
    /// The image list, as a user would write it (with the duplicate spelling).
    pub list: Vec<String>,
    /// Every (image, repository, tag) to seed; each distinct name once.
    pub seeded: Vec<Seeded>,
}

impl Shapes {
    /// Every unique manifest and blob the shapes consist of, by digest.
    pub fn unique_objects(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut m = std::collections::BTreeMap::new();
        for s in &self.seeded {
            for mf in s.image.all_manifests() {
                m.insert(mf.digest.clone(), mf.bytes.clone());
            }
            for b in &s.image.blobs {
                m.insert(b.digest.clone(), b.bytes.clone());
            }
        }
        m
    }
}

fn seeded(image: &FixtureImage, repository: &str, tag: &str) -> Seeded {
    Seeded {
        image: image.clone(),
        repository: repository.into(),
        tag: tag.into(),
    }
}

/// The configs and layers `manifest` references, taken from `pool`.
fn blobs_of(manifest: &[u8], pool: &[FixtureBlob]) -> Vec<FixtureBlob> {
    let v: Value = serde_json::from_slice(manifest).expect("manifest json");
    let mut digests = vec![v["config"]["digest"].as_str().expect("config").to_string()];
    for l in v["layers"].as_array().expect("layers") {
        digests.push(l["digest"].as_str().expect("layer digest").to_string());
    }
    digests
        .iter()
        .map(|d| {
            pool.iter()
                .find(|b| &b.digest == d)
                .unwrap_or_else(|| panic!("blob {d} not in the pool"))
                .clone()
        })
        .collect()
}

/// The index entry (descriptor JSON) of child `i` of `index`.
fn entry(index: &FixtureImage, i: usize) -> Value {
    let v: Value = serde_json::from_slice(&index.manifest).expect("index json");
    v["manifests"][i].clone()
}

/// An OCI index of the given children (entries and manifests), blobs gathered from `pools`.
fn index_of(
    repository: &str,
    tag: &str,
    children: &[(Value, FixtureManifest, FixturePlatform)],
    pools: &[&[FixtureBlob]],
) -> FixtureImage {
    let entries: Vec<Value> = children.iter().map(|(e, ..)| e.clone()).collect();
    let manifest = to_bytes(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        Style::Oci,
    );
    let pool: Vec<FixtureBlob> = pools.iter().flat_map(|p| p.iter().cloned()).collect();
    let mut blobs: Vec<FixtureBlob> = Vec::new();
    for (_, m, _) in children {
        for b in blobs_of(&m.bytes, &pool) {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b);
            }
        }
    }
    FixtureImage {
        repository: repository.into(),
        tag: tag.into(),
        media_type: OCI_INDEX.into(),
        digest: sha256_digest(&manifest),
        manifest,
        platforms: children.iter().map(|(.., p)| p.clone()).collect(),
        children: children.iter().map(|(_, m, _)| m.clone()).collect(),
        blobs,
    }
}

/// Child `i` of `index` as (entry, manifest, platform).
fn child(index: &FixtureImage, i: usize) -> (Value, FixtureManifest, FixturePlatform) {
    (
        entry(index, i),
        index.children[i].clone(),
        index.platforms[i].clone(),
    )
}

/// Every shape (same bytes in every run).
pub fn shapes() -> Shapes {
    // One index in two repositories.
    let pause = multi(
        "rancher/mirrored-pause:3.7",
        "pause",
        Style::Oci,
        &[AMD64, ARM64],
        false,
    );
    // One manifest list under two tags of one repository.
    let flannel = multi(
        "rancher/mirrored-flannel-flannel:v0.25.1",
        "flanneld",
        Style::Docker,
        &[AMD64, ARM64, ARMV7],
        false,
    );
    // One image listed twice.
    let nginx = single("library/nginx:1.25", "nginx", Style::OciPretty, &[]);
    // Two indexes sharing their linux/amd64 child.
    let calico_node = multi(
        "rancher/mirrored-calico-node:v3.28.1",
        "calico-node",
        Style::Oci,
        &[AMD64, ARM64],
        false,
    );
    let calico_ctl_arm = multi(
        "rancher/mirrored-calico-ctl:v3.28.1",
        "calicoctl",
        Style::Oci,
        &[ARMV7],
        false,
    );
    let calico_ctl = index_of(
        "rancher/mirrored-calico-ctl",
        "v3.28.1",
        &[child(&calico_node, 0), child(&calico_ctl_arm, 0)],
        &[&calico_node.blobs, &calico_ctl_arm.blobs],
    );
    // An index that holds only an attestation (BuildKit's unknown/unknown entry).
    let attested = multi(
        "rancher/mirrored-sbom-scanner:v1",
        "scanner",
        Style::Oci,
        &[AMD64],
        true,
    );
    let attestation_only = index_of(
        "rancher/mirrored-sbom-scanner",
        "v1",
        &[child(&attested, 1)],
        &[&attested.blobs],
    );
    // A list whose linux/amd64 child is the top-level manifest of the -amd64 tag.
    let coredns = multi(
        "rancher/mirrored-coredns-coredns:1.11.3",
        "coredns",
        Style::Docker,
        &[AMD64, ARM64],
        false,
    );
    let amd64 = &coredns.children[0];
    let coredns_amd64 = FixtureImage {
        repository: "rancher/mirrored-coredns-coredns".into(),
        tag: "1.11.3-amd64".into(),
        media_type: DOCKER_MANIFEST.into(),
        manifest: amd64.bytes.clone(),
        digest: amd64.digest.clone(),
        platforms: vec![coredns.platforms[0].clone()],
        children: Vec::new(),
        blobs: blobs_of(&amd64.bytes, &coredns.blobs),
    };
    assert_eq!(coredns_amd64.media_type, coredns.platforms[0].media_type);
    assert!(
        attestation_only
            .blobs
            .iter()
            .any(|b| b.kind == BlobKind::Layer)
            && attestation_only.platforms[0].attestation
            && attestation_only.children[0].media_type == OCI_MANIFEST
    );

    let list = [
        "rancher/mirrored-pause:3.7",
        "rancher/pause:3.7",
        "rancher/mirrored-flannel-flannel:v0.25.1",
        "rancher/mirrored-flannel-flannel:stable",
        "docker.io/library/nginx:1.25",
        "nginx:1.25",
        "rancher/mirrored-calico-node:v3.28.1",
        "rancher/mirrored-calico-ctl:v3.28.1",
        "rancher/mirrored-sbom-scanner:v1",
        "rancher/mirrored-coredns-coredns:1.11.3",
        "rancher/mirrored-coredns-coredns:1.11.3-amd64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let seeded = vec![
        seeded(&pause, "rancher/mirrored-pause", "3.7"),
        seeded(&pause, "rancher/pause", "3.7"),
        seeded(&flannel, "rancher/mirrored-flannel-flannel", "v0.25.1"),
        seeded(&flannel, "rancher/mirrored-flannel-flannel", "stable"),
        seeded(&nginx, "library/nginx", "1.25"),
        seeded(&calico_node, "rancher/mirrored-calico-node", "v3.28.1"),
        seeded(&calico_ctl, "rancher/mirrored-calico-ctl", "v3.28.1"),
        seeded(&attestation_only, "rancher/mirrored-sbom-scanner", "v1"),
        seeded(&coredns, "rancher/mirrored-coredns-coredns", "1.11.3"),
        seeded(
            &coredns_amd64,
            "rancher/mirrored-coredns-coredns",
            "1.11.3-amd64",
        ),
    ];
    Shapes { list, seeded }
}
