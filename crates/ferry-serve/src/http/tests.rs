//! Unit tests of `serve/http.rs`: routes, ranges and pagination.

use super::*;
use crate::conns::Running;

#[test]
fn routes_names_with_slashes() {
    assert!(matches!(route("/v2/"), Route::Base));
    assert!(matches!(route("/v2"), Route::Base));
    assert!(matches!(route("/v2/_catalog"), Route::Catalog));
    assert!(matches!(
        route("/v2/rancher/rke-tools/tags/list"),
        Route::Tags("rancher/rke-tools")
    ));
    assert!(matches!(
        route("/v2/a/b/c/manifests/v1"),
        Route::Manifest("a/b/c", "v1")
    ));
    assert!(matches!(
        route("/v2/a/blobs/sha256:x"),
        Route::Blob("a", "sha256:x")
    ));
    assert!(matches!(route("/v2/a/blobs/uploads/"), Route::Upload));
    assert!(matches!(route("/v1/x"), Route::Unknown));
}

#[test]
fn single_ranges() {
    let h = |s: &str| HeaderValue::from_str(s).expect("header");
    assert_eq!(range(None, 10), Ok(None));
    assert_eq!(range(Some(&h("bytes=0-0")), 10), Ok(Some((0, 0))));
    assert_eq!(range(Some(&h("bytes=5-")), 10), Ok(Some((5, 9))));
    assert_eq!(range(Some(&h("bytes=-3")), 10), Ok(Some((7, 9))));
    assert_eq!(range(Some(&h("bytes=2-100")), 10), Ok(Some((2, 9))));
    assert_eq!(range(Some(&h("bytes=10-")), 10), Err(()));
    assert_eq!(range(Some(&h("bytes=0-0")), 0), Err(()));
    assert_eq!(
        range(Some(&h("bytes=0-1,3-4")), 10),
        Ok(None),
        "several: the whole"
    );
    assert_eq!(range(Some(&h("items=0-1")), 10), Ok(None));
}

#[test]
fn pages_with_links() {
    let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let (p, link) = paginate(items.clone(), Some("n=2"), "/v2/_catalog");
    assert_eq!(p, ["a", "b"]);
    assert_eq!(
        link.as_deref(),
        Some("</v2/_catalog?last=b&n=2>; rel=\"next\"")
    );
    let (p, link) = paginate(items.clone(), Some("n=2&last=b"), "/v2/_catalog");
    assert_eq!(p, ["c", "d"]);
    assert_eq!(link, None);
    let (p, _) = paginate(items, None, "/v2/_catalog");
    assert_eq!(p.len(), 4);
}

/// A bundle of one image (`docker.io/rancher/big:v1`, a config and a 1 MiB layer) whose layer
/// has one byte flipped on disk; returns the catalog over it and the layer's digest.
pub(crate) async fn corrupt_catalog(
    dir: &std::path::Path,
) -> (Arc<crate::catalog::Catalog>, Digest) {
    use ferry_store::bundle::testutil::{bytes, digest_of, write_sequentially};
    use ferry_store::bundle::{BundleReader, Plan};
    use ferry_store::bundle::{DockerEntry, docker_manifest_json, index_json, oci_layout_bytes};
    let layer = bytes(1 << 20, 7);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": ferry_oci::media_types::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": digest_of(&config).to_string()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": layer.len(), "digest": digest_of(&layer).to_string()}],
    }))
    .expect("manifest");
    let blobs = vec![manifest.clone(), config.clone(), layer.clone()];
    let descriptor = ferry_oci::manifest::Descriptor {
        media_type: ferry_oci::media_types::OCI_MANIFEST.to_owned(),
        digest: digest_of(&manifest),
        size: manifest.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    let metadata = vec![
        (
            "manifest.json",
            docker_manifest_json(&[DockerEntry {
                repo_tags: vec!["rancher/big:v1".to_owned()],
                config: digest_of(&config),
                layers: vec![digest_of(&layer)],
            }]),
        ),
        ("images.lock", lock(&manifest).into_bytes()),
        (
            "index.json",
            index_json(&[("docker.io/rancher/big:v1".to_owned(), descriptor)]),
        ),
        ("oci-layout", oci_layout_bytes()),
    ];
    let list: Vec<(Digest, u64)> = blobs
        .iter()
        .map(|b| (digest_of(b), b.len() as u64))
        .collect();
    let plan = Plan::new(metadata, list).expect("plan");
    let mut tar = write_sequentially(&plan, &blobs);
    let at = tar
        .windows(64)
        .position(|w| w == &layer[..64])
        .expect("layer in the tar");
    tar[at + (1 << 19)] ^= 0xff;
    let path = dir.join("corrupt.tar");
    std::fs::write(&path, &tar).expect("write");
    let source = ferry_store::bundle::BundleSource::new(BundleReader::open(&path).expect("open"));
    let set = ferry_store::bundle::BundleSet::new(vec![source]);
    let catalog = crate::catalog::Catalog::build(set, "", 2, &Default::default())
        .await
        .expect("catalog");
    (Arc::new(catalog), digest_of(&layer))
}

/// The lock of that one image.
fn lock(manifest: &[u8]) -> String {
    use ferry_plan::lockfile::{LOCK_VERSION, LockFile, LockedImage, LockedPlatform};
    let digest = Digest::sha256_of(manifest);
    let media_type = ferry_oci::media_types::OCI_MANIFEST.to_owned();
    LockFile {
        version: LOCK_VERSION,
        generator: "test".into(),
        total_size: 0,
        images: vec![LockedImage {
            name: "rancher/big:v1".into(),
            source: "docker.io/rancher/big:v1".into(),
            digest: digest.clone(),
            media_type: media_type.clone(),
            size: manifest.len() as u64,
            total_size: 0,
            written_digest: None,
            platforms: vec![LockedPlatform {
                platform: "linux/amd64".into(),
                os_version: None,
                digest,
                media_type,
                size: manifest.len() as u64,
            }],
            attached_to: None,
        }],
    }
    .to_yaml()
    .expect("yaml")
}

#[tokio::test]
async fn a_corrupt_blob_served_before_its_check_is_cut_short_then_withdrawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (catalog, layer) = corrupt_catalog(dir.path()).await;
    let served = Arc::new(Served {
        catalog: catalog.clone(),
        checks: Arc::new(crate::check::Checks::new(catalog)),
        htpasswd: None,
        log: crate::LogStyle::Off,
        setup: crate::status::Setup::plain("127.0.0.1:5000".parse().expect("addr")),
        metrics: None,
    });
    let client: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let get = || {
        Request::get(format!("/v2/rancher/big/blobs/{layer}"))
            .body(())
            .expect("request")
    };

    // Not checked yet: served, hashed on the way, and the stream fails before its end.
    let resp = handle(served.clone(), get(), client, Running::detached())
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut got = 0usize;
    let failed = loop {
        match body.frame().await {
            None => break false,
            Some(Ok(frame)) => got += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => break true,
        }
    };
    assert!(
        failed,
        "the stream ends in an error, so the connection is cut"
    );
    assert!(
        got < 1 << 20,
        "the client never holds the whole wrong blob ({got} bytes)"
    );

    // Now known corrupt: withdrawn.
    assert!(matches!(served.checks.verdict(&layer), Some(Err(_))));
    let resp = handle(served.clone(), get(), client, Running::detached())
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&body).contains(ErrorCode::BlobUnknown.as_str()));

    // A range waits for the check rather than serving unchecked bytes.
    let ranged = Request::get(format!("/v2/rancher/big/blobs/{layer}"))
        .header("range", "bytes=0-9")
        .body(())
        .expect("request");
    let resp = handle(served, ranged, client, Running::detached())
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// The wire bytes of an error body, pinned: the keys in this order, `detail` null.
#[tokio::test]
async fn error_bodies_are_the_spec_json_byte_for_byte() {
    for (code, wire) in [
        (ErrorCode::NameUnknown, "NAME_UNKNOWN"),
        (ErrorCode::ManifestUnknown, "MANIFEST_UNKNOWN"),
        (ErrorCode::BlobUnknown, "BLOB_UNKNOWN"),
        (ErrorCode::DigestInvalid, "DIGEST_INVALID"),
        (ErrorCode::Unauthorized, "UNAUTHORIZED"),
        (ErrorCode::Unsupported, "UNSUPPORTED"),
        (ErrorCode::Unavailable, "UNAVAILABLE"),
        (ErrorCode::NotFound, "NOT_FOUND"),
    ] {
        let r = error(StatusCode::NOT_FOUND, code, "why \"quoted\"");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["content-type"], "application/json");
        let body = r.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!(
                r#"{{"errors":[{{"code":"{wire}","message":"why \"quoted\"","detail":null}}]}}"#
            )
        );
    }
}
