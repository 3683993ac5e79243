//! A real, runnable image made of the host's static busybox (Debian's `busybox-static`):
//! one layer holding `bin/busybox` (mode 0755), a config whose entrypoint runs it, a Docker
//! schema 2 manifest. `docker run` of it prints [`GREETING`]; nothing needs a network.

use serde_json::json;

use super::blobs::layer_of_tar;
use super::fixtures::{
    BlobKind, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, FixtureBlob, FixtureImage,
    FixturePlatform,
};
use super::sha256_digest;

/// Where Debian's static busybox is.
pub const BUSYBOX: &str = "/bin/busybox";
/// What the image says when run without arguments.
pub const GREETING: &str = "hello from a ferry bundle";

/// The image, named `repository:tag`. Panics when busybox is not installed (apt-get install
/// busybox-static).
pub fn busybox(reference: &str) -> FixtureImage {
    let (repository, tag) = reference.rsplit_once(':').expect("repo:tag");
    let bin = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("cannot read {BUSYBOX} (apt-get install busybox-static): {e}"));
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_path("bin/").expect("path");
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    dir.set_cksum();
    b.append(&dir, std::io::empty()).expect("dir");
    let mut h = tar::Header::new_ustar();
    h.set_path("bin/busybox").expect("path");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(bin.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, bin.as_slice()).expect("busybox");
    let layer = layer_of_tar(b.into_inner().expect("tar"));
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/busybox"], "Cmd": ["echo", GREETING]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "COPY busybox /bin/busybox"}],
    }))
    .expect("config");
    let blobs = vec![
        FixtureBlob {
            digest: sha256_digest(&config),
            media_type: DOCKER_CONFIG.into(),
            kind: BlobKind::Config,
            bytes: config.clone(),
        },
        FixtureBlob {
            digest: layer.digest.clone(),
            media_type: DOCKER_LAYER_GZIP.into(),
            kind: BlobKind::Layer,
            bytes: layer.gz.clone(),
        },
    ];
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": blobs[0].digest},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": layer.gz.len(), "digest": layer.digest}],
    }))
    .expect("manifest");
    let digest = sha256_digest(&manifest);
    FixtureImage {
        repository: repository.into(),
        tag: tag.into(),
        media_type: DOCKER_MANIFEST.into(),
        platforms: vec![FixturePlatform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            os_version: None,
            digest: digest.clone(),
            media_type: DOCKER_MANIFEST.into(),
            attestation: false,
        }],
        manifest,
        digest,
        children: Vec::new(),
        blobs,
    }
}
