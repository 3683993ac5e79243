//! The registry client used as a library against a real registry: blob streams that resume
//! with `Range` after a broken body or from an offset, checked by their consumer, refusing
//! corrupt or oversized content.

use std::sync::Arc;

use ferry_oci::digest::Digest;
use ferry_store::StoreError;
use ferry_store::registry::{Anonymous, ClientOptions, Registries, RegistryError, config};
use ferry_store::stream::collect_verified;

use crate::support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn registries(url: &str) -> Registries {
    let opts = ClientOptions {
        endpoints: vec![config::parse_upstream(&format!("docker.io={url}")).expect("upstream")],
        backoff: std::time::Duration::from_millis(20),
        ..ClientOptions::default()
    };
    Registries::new(opts, Arc::new(Anonymous)).expect("client")
}

/// The largest layer of the fixtures, with its image.
fn big_layer() -> (FixtureImage, FixtureBlob) {
    let images = fixtures();
    let (img, blob) = images
        .iter()
        .flat_map(|i| i.blobs.iter().map(move |b| (i.clone(), b.clone())))
        .max_by_key(|(_, b)| b.bytes.len())
        .expect("a blob");
    assert!(blob.bytes.len() > 4096, "fixture layer big enough to cut");
    (img, blob)
}

#[test]
fn broken_body_resumes_with_range() {
    let (img, blob) = big_layer();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&img));
    let proxy = FaultProxy::start(&reg);
    let half = blob.bytes.len() / 2;
    proxy.inject(Match::get(Kind::Blob), Fault::ResetAfter(half), 1);
    let digest = Digest::parse(&blob.digest).expect("digest");
    let got = runtime().block_on(async {
        let regs = registries(&proxy.url());
        let r = regs.get("docker.io").expect("registry");
        let size = blob.bytes.len() as u64;
        let s = r.blob_stream(&img.repository, &digest, size, 0);
        collect_verified(s, &digest, size, "test")
            .await
            .expect("download")
    });
    assert_eq!(got, blob.bytes);
    let gets: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.kind == Kind::Blob)
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    let range = gets[1]
        .range
        .clone()
        .expect("second GET resumes with Range");
    let start: usize = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .expect("range start");
    assert!(
        start > 0 && start <= half,
        "resumed at {start}, cut at {half}"
    );
}

#[test]
fn a_stream_opened_at_an_offset_asks_for_the_rest_only() {
    let (img, blob) = big_layer();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&img));
    let proxy = FaultProxy::start(&reg);
    let third = blob.bytes.len() / 3;
    let digest = Digest::parse(&blob.digest).expect("digest");
    let got = runtime().block_on(async {
        let regs = registries(&proxy.url());
        let r = regs.get("docker.io").expect("registry");
        let s = r.blob_stream(
            &img.repository,
            &digest,
            blob.bytes.len() as u64,
            third as u64,
        );
        ferry_store::stream::collect_unchecked(s)
            .await
            .expect("download")
    });
    assert_eq!(got, blob.bytes[third..]);
    let gets: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.kind == Kind::Blob)
        .collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(
        gets[0].range.as_deref(),
        Some(format!("bytes={third}-").as_str())
    );
}

#[test]
fn corrupt_blob_is_refused_and_nothing_is_kept() {
    let (img, blob) = big_layer();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&img));
    let mut bad = blob.bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    reg.storage().overwrite_blob_data(&blob.digest, &bad);
    let digest = Digest::parse(&blob.digest).expect("digest");
    let err = runtime().block_on(async {
        let regs = registries(&reg.url());
        let r = regs.get("docker.io").expect("registry");
        let size = blob.bytes.len() as u64;
        let s = r.blob_stream(&img.repository, &digest, size, 0);
        collect_verified(s, &digest, size, "registry docker.io")
            .await
            .expect_err("must refuse")
    });
    assert!(err.is_corrupt(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&blob.digest) && msg.contains("corrupt"),
        "{msg}"
    );
}

#[test]
fn body_longer_than_descriptor_is_refused() {
    let (img, blob) = big_layer();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, std::slice::from_ref(&img));
    let digest = Digest::parse(&blob.digest).expect("digest");
    let err = runtime().block_on(async {
        let regs = registries(&reg.url());
        let r = regs.get("docker.io").expect("registry");
        let s = r.blob_stream(&img.repository, &digest, 100, 0);
        ferry_store::stream::collect_unchecked(s)
            .await
            .expect_err("must refuse")
    });
    let err = StoreError::from_stream(err, || "reading".into());
    assert!(
        matches!(err, StoreError::Registry(RegistryError::Integrity { .. })),
        "{err}"
    );
}

#[test]
fn manifest_by_digest_keeps_exact_bytes_and_head_resolves_tags() {
    let img = fixture(HYPERKUBE);
    let reg = TestRegistry::start(Auth::Token);
    seed(&reg, std::slice::from_ref(&img));
    runtime().block_on(async {
        let regs = registries(&reg.url());
        let r = regs.get("docker.io").expect("registry");
        let m = r
            .get_manifest(&img.repository, &img.digest)
            .await
            .expect("manifest");
        assert_eq!(&m.bytes[..], &img.manifest[..], "bytes untouched");
        assert_eq!(m.media_type, img.media_type);
        let head = r
            .head_manifest(&img.repository, &img.tag)
            .await
            .expect("head")
            .expect("exists");
        assert_eq!(head.digest.expect("digest header").to_string(), img.digest);
        assert!(
            r.head_manifest(&img.repository, "nope")
                .await
                .expect("head")
                .is_none()
        );
    });
}
