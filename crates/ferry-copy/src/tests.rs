//! The engine on in-memory stores (as oras-go's `copy_test.go`): de-duplication across images,
//! mounts before uploads, failures not cached, children before parents, a shared child written
//! once, a tag per name, and the re-import check.

use super::*;
use ferry_oci::media_types::{OCI_INDEX, OCI_MANIFEST};
use ferry_plan::resolve::Resolver;
use ferry_store::memory::{Call, MemoryStore};

struct Quiet;
impl Reporter for Quiet {}

/// Puts an image of `layers` (each a distinct blob unless shared by content) into `repo`,
/// tagged `tag`; returns its manifest bytes.
fn image(store: &MemoryStore, repo: &str, tag: Option<&str>, layers: &[&[u8]]) -> Vec<u8> {
    let ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::sha256_of(l).to_string())
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"diff_ids":{:?}}}}}"#,
        ids
    );
    let cd = store.put_blob(repo, config.as_bytes());
    let layer_descs: Vec<String> = layers
        .iter()
        .map(|l| {
            let d = store.put_blob(repo, l);
            format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{}}}"#, l.len())
        })
        .collect();
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layer_descs.join(",")
    );
    store.put_manifest(repo, OCI_MANIFEST, m.as_bytes(), tag);
    m.into_bytes()
}

/// An index of `children` (manifest bytes) in `repo`, tagged `tag`.
fn index(store: &MemoryStore, repo: &str, tag: &str, children: &[&[u8]]) -> Digest {
    let entries: Vec<String> = children
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"arch{i}"}}}}"#,
                Digest::sha256_of(c),
                c.len()
            )
        })
        .collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    );
    store.put_manifest(repo, OCI_INDEX, body.as_bytes(), Some(tag))
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

/// Jobs for `names` (`repo:tag` in the source), landing under the same names.
async fn jobs(source: &MemoryStore, names: &[&str]) -> Vec<Job> {
    let inputs: Vec<(String, Reference)> = names
        .iter()
        .map(|n| (n.to_string(), reference(n)))
        .collect();
    Resolver::new(source)
        .resolve_all(&inputs, 4, &|_, _| {})
        .await
        .into_iter()
        .zip(inputs)
        .map(|(r, (_, at))| Job::new(r.expect("resolves"), at))
        .collect()
}

fn pushes(dest: &MemoryStore) -> Vec<Digest> {
    dest.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::PushBlob(_, d) => Some(d),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_blob_shared_by_images_moves_once_per_repository() {
    let src = MemoryStore::new(false);
    image(&src, "r/a", Some("1"), &[b"base", b"app-a"]);
    image(&src, "r/a", Some("2"), &[b"base", b"app-b"]);
    let dest = MemoryStore::new(false);
    let work = jobs(&src, &["r/a:1", "r/a:2"]).await;
    let engine = Engine::new(&src, &dest, &Quiet);
    let results = engine.copy_all(&work, 2).await;
    assert!(results.iter().all(Result::is_ok));
    let base = Digest::sha256_of(b"base");
    assert_eq!(pushes(&dest).iter().filter(|d| **d == base).count(), 1);
    let moved: u64 = results
        .iter()
        .map(|r| r.as_ref().expect("ok").blobs_moved)
        .sum();
    assert_eq!(moved, 5, "two configs, base once, two apps");
    assert_eq!(dest.tag("r/a", "1"), src.tag("r/a", "1"));
    assert_eq!(dest.tag("r/a", "2"), src.tag("r/a", "2"));
}

#[tokio::test]
async fn a_blob_another_repository_received_is_mounted_not_pushed() {
    let src = MemoryStore::new(false);
    image(&src, "r/a", Some("1"), &[b"base", b"app-a"]);
    image(&src, "r/b", Some("1"), &[b"base", b"app-b"]);
    let dest = MemoryStore::new(true);
    let work = jobs(&src, &["r/a:1", "r/b:1"]).await;
    let engine = Engine::new(&src, &dest, &Quiet);
    let results = engine.copy_all(&work, 2).await;
    let base = Digest::sha256_of(b"base");
    assert_eq!(pushes(&dest).iter().filter(|d| **d == base).count(), 1);
    assert!(dest.has("r/a", &base) && dest.has("r/b", &base));
    let mounted: u64 = results
        .iter()
        .map(|r| r.as_ref().expect("ok").blobs_mounted)
        .sum();
    assert_eq!(mounted, 1);
    assert!(
        dest.calls().iter().any(
            |c| matches!(c, Call::Mount(to, d, _) if d == &base && (to == "r/a" || to == "r/b"))
        )
    );
}

#[tokio::test]
async fn a_failure_is_not_cached() {
    let src = MemoryStore::new(false);
    image(&src, "r/a", Some("1"), &[b"flaky"]);
    let dest = MemoryStore::new(false);
    dest.fail_pushes(&Digest::sha256_of(b"flaky"), 1);
    let work = jobs(&src, &["r/a:1"]).await;
    let engine = Engine::new(&src, &dest, &Quiet);
    let first = engine.copy_all(&work, 1).await;
    let err = first[0].as_ref().expect_err("the first push fails");
    assert_eq!(err.image, "r/a:1");
    assert!(err.to_string().contains("scripted failure"), "{err}");
    assert!(dest.tag("r/a", "1").is_none(), "no tag over missing blobs");
    let second = engine.copy_all(&work, 1).await;
    assert!(second[0].is_ok(), "the same engine tries again");
    assert_eq!(dest.tag("r/a", "1"), src.tag("r/a", "1"));
}

#[tokio::test]
async fn children_before_parents_and_a_shared_child_written_once() {
    let src = MemoryStore::new(false);
    let shared = image(&src, "r/m", None, &[b"amd64"]);
    let arm = image(&src, "r/m", None, &[b"arm64"]);
    let other = image(&src, "r/m", None, &[b"s390x"]);
    let one = index(&src, "r/m", "one", &[&shared, &arm]);
    let two = index(&src, "r/m", "two", &[&shared, &other]);
    let dest = MemoryStore::new(false);
    let work = jobs(&src, &["r/m:one", "r/m:two"]).await;
    let engine = Engine::new(&src, &dest, &Quiet);
    assert!(engine.copy_all(&work, 2).await.iter().all(Result::is_ok));
    let calls = dest.calls();
    let shared_d = Digest::sha256_of(&shared);
    let written: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c, Call::PushManifest(_, d, _) if d == &shared_d))
        .collect();
    assert_eq!(written.len(), 1, "the shared child once: {calls:?}");
    // Every push of an index comes after its children and blobs (the store refuses it else).
    let at = |d: &Digest| {
        calls
            .iter()
            .position(|c| matches!(c, Call::PushManifest(_, x, _) if x == d))
    };
    assert!(at(&one) > at(&shared_d) && at(&two) > at(&shared_d));
    assert_eq!(dest.tag("r/m", "one"), Some(one));
    assert_eq!(dest.tag("r/m", "two"), Some(two));
}

#[tokio::test]
async fn two_names_of_one_digest_get_both_tags_and_complete_knows_them() {
    let src = MemoryStore::new(false);
    let m = image(&src, "r/p", Some("3.7"), &[b"pause"]);
    src.put_manifest("r/p", OCI_MANIFEST, &m, Some("latest"));
    let dest = MemoryStore::new(false);
    let work = jobs(&src, &["r/p:3.7", "r/p:latest"]).await;
    let engine = Engine::new(&src, &dest, &Quiet);
    let before = engine.complete(&work, 4).await;
    assert!(before.iter().all(|c| matches!(c, Ok(false))));
    assert!(engine.copy_all(&work, 2).await.iter().all(Result::is_ok));
    let d = Digest::sha256_of(&m);
    assert_eq!(dest.tag("r/p", "3.7"), Some(d.clone()));
    assert_eq!(dest.tag("r/p", "latest"), Some(d));
    let after = Engine::new(&src, &dest, &Quiet).complete(&work, 4).await;
    assert!(after.iter().all(|c| matches!(c, Ok(true))));
}

#[tokio::test]
async fn a_corrupt_source_blob_never_lands() {
    let src = MemoryStore::new(false);
    image(&src, "r/a", Some("1"), &[b"good"]);
    let dest = MemoryStore::new(false);
    let work = jobs(&src, &["r/a:1"]).await;
    let good = Digest::sha256_of(b"good");
    src.corrupt(&good, b"gold");
    let engine = Engine::new(&src, &dest, &Quiet);
    let r = engine.copy_all(&work, 1).await;
    let err = r[0].as_ref().expect_err("refused");
    assert!(err.source.is_corrupt(), "{err}");
    assert!(!dest.has("r/a", &good), "{err}");
    assert!(dest.tag("r/a", "1").is_none());
}
