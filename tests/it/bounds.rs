//! Bounded work on hostile registries: an index naming one child index 25,000 times (which
//! names one manifest 25,000 times), an index with more distinct children than any image
//! has, a layer of absurd size, an error body and a token answer that never end. Each of
//! these would hang ferry, or grow its memory without end, without its bound; each run here
//! has a deadline so that a regression fails instead of hanging the suite.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fixtures::{BlobKind, OCI_INDEX, OCI_MANIFEST};
use crate::support::lying::{Extra, Lie, LyingRegistry};
use crate::support::*;

/// Entries naming the same child over and over.
pub const FANOUT: usize = 25_000;
/// How long a bounded run may take here (debug build, loaded machine); unbounded ones take hours.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A compact OCI index of these entries.
pub fn index_of(entries: impl Iterator<Item = Value>) -> Vec<u8> {
    let entries: Vec<Value> = entries.collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
        .expect("index")
}

/// (top, child): `top` names `child` [`FANOUT`] times; `child` names `leaf` [`FANOUT`] times.
/// Both stay under distribution's 4 MiB manifest limit.
pub fn fanout(leaf: &FixtureImage) -> (Vec<u8>, Vec<u8>) {
    let leaf_entry =
        json!({"mediaType": leaf.media_type, "digest": leaf.digest, "size": leaf.manifest.len()});
    let child = index_of(std::iter::repeat_n(leaf_entry, FANOUT));
    let child_entry =
        json!({"mediaType": OCI_INDEX, "digest": sha256_digest(&child), "size": child.len()});
    let top = index_of(std::iter::repeat_n(child_entry, FANOUT));
    assert!(top.len() < 4 << 20 && child.len() < 4 << 20);
    (top, child)
}

/// An OCI manifest with `image`'s config and one layer that claims `size` bytes.
pub fn manifest_with_layer_size(image: &FixtureImage, size: u64) -> Vec<u8> {
    let config = image
        .blobs
        .iter()
        .find(|b| b.kind == BlobKind::Config)
        .expect("config");
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.bytes.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256_digest(b"absurd"), "size": size}],
    }))
    .expect("manifest")
}

fn tagged(repo: &str, tag: &str, media_type: &str, bytes: Vec<u8>) -> Extra {
    Extra {
        tag: Some((repo.into(), tag.into())),
        media_type: media_type.into(),
        bytes,
    }
}

/// `ferry lock` of `list` against `reg`, with a deadline.
fn lock(sandbox: &Sandbox, reg: &LyingRegistry, list: &[&str]) -> std::process::Output {
    let file = sandbox.work().join("images.txt");
    std::fs::write(&file, list.join("\n") + "\n").expect("list");
    sandbox
        .ferry()
        .args(["lock", "--retries", "2", "--images"])
        .arg(&file)
        .args(["--upstream", &format!("docker.io={}", reg.url()), "-o"])
        .arg(sandbox.work().join("images.lock"))
        .timeout(DEADLINE)
        .output()
        .expect("run ferry lock")
}

fn gets_of(reg: &LyingRegistry, digest: &str) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with(digest))
        .count()
}

#[test]
fn an_index_naming_one_child_index_25000_times_is_walked_once() {
    let pause = fixture(PAUSE);
    let (top, child) = fanout(&pause);
    let extra = [
        tagged("rancher/fanout", "v1", OCI_INDEX, top),
        Extra {
            tag: None,
            media_type: OCI_INDEX.into(),
            bytes: child.clone(),
        },
    ];
    let reg = LyingRegistry::start_with(std::slice::from_ref(&pause), &extra, Lie::Honest, "");
    let sandbox = Sandbox::new();
    let out = lock(&sandbox, &reg, &["rancher/fanout:v1"]);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Each manifest fetched once, however many entries name it.
    assert_eq!(gets_of(&reg, &sha256_digest(&child)), 1);
    assert_eq!(gets_of(&reg, &pause.digest), 1);
    let lock = std::fs::read_to_string(sandbox.work().join("images.lock")).expect("lock");
    assert_eq!(lock.matches(&sha256_digest(&child)).count(), FANOUT);
}

#[test]
fn an_index_with_more_distinct_children_than_any_image_is_refused_before_fetching_them() {
    let pause = fixture(PAUSE);
    let entries = (0..12_000).map(|i| {
        json!({"mediaType": OCI_MANIFEST, "digest": sha256_digest(format!("child {i}").as_bytes()), "size": 500})
    });
    let extra = [tagged("rancher/wide", "v1", OCI_INDEX, index_of(entries))];
    let reg = LyingRegistry::start_with(&[pause], &extra, Lie::Honest, "");
    let sandbox = Sandbox::new();
    let out = lock(&sandbox, &reg, &["rancher/wide:v1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rancher/wide:v1") && stderr.contains("more than 10000"),
        "{stderr}"
    );
    let manifest_gets = reg
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 1, "only the index itself was fetched");
}

#[test]
fn a_layer_of_absurd_size_is_a_clear_error() {
    let pause = fixture(PAUSE);
    let extra = [tagged(
        "rancher/absurd",
        "v1",
        OCI_MANIFEST,
        manifest_with_layer_size(&pause, 1 << 62),
    )];
    let reg = LyingRegistry::start_with(&[pause], &extra, Lie::Honest, "");
    let sandbox = Sandbox::new();
    let out = lock(&sandbox, &reg, &["rancher/absurd:v1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("absurd") && stderr.contains("4611686018427387904"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_endless_error_body_is_read_no_further_than_a_bound() {
    let pause = fixture(PAUSE);
    let reg = LyingRegistry::start(
        std::slice::from_ref(&pause),
        Lie::EndlessErrorBody,
        &pause.digest,
    );
    let sandbox = Sandbox::new();
    let out = lock(&sandbox, &reg, &[PAUSE]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    assert!(
        reg.sent() < 1 << 20,
        "ferry stopped reading the error body early, not after {} bytes",
        reg.sent()
    );
}

#[test]
fn an_endless_token_answer_is_refused() {
    let pause = fixture(PAUSE);
    let reg = LyingRegistry::start(&[pause], Lie::EndlessTokenAnswer, "");
    let sandbox = Sandbox::new();
    let out = lock(&sandbox, &reg, &[PAUSE]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("token service") && stderr.contains("larger than"),
        "{stderr}"
    );
    assert!(
        reg.sent() < 4 << 20,
        "ferry stopped reading the token answer early, not after {} bytes",
        reg.sent()
    );
}
