//! Unit tests of `plan/lockfile.rs`.

use super::*;

fn d(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest")
}

#[test]
fn round_trips_and_sorts() {
    let img = |name: &str, src: &str| LockedImage {
        name: name.into(),
        source: src.into(),
        digest: d('a'),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        size: 10,
        total_size: 100,
        written_digest: None,
        platforms: vec![LockedPlatform {
            platform: "windows/amd64".into(),
            os_version: Some("10.0.17763.1".into()),
            digest: d('b'),
            media_type: "m".into(),
            size: 5,
        }],
        attached_to: None,
    };
    let lock = LockFile::new(
        vec![
            img("z/z:1", "docker.io/z/z:1"),
            img("a/a:1", "docker.io/a/a:1"),
        ],
        200,
    );
    assert_eq!(lock.images[0].name, "a/a:1");
    let yaml = lock.to_yaml().expect("yaml");
    let (z, a) = (
        img("z/z:1", "docker.io/z/z:1"),
        img("a/a:1", "docker.io/a/a:1"),
    );
    assert_eq!(
        LockFile::yaml_of([&z, &a], 200).expect("yaml"),
        yaml,
        "the borrowed view writes the same text"
    );
    assert!(yaml.starts_with("# images.lock"));
    let back = LockFile::parse(&yaml, "t").expect("parses");
    assert_eq!(back, lock);
}

#[test]
fn rejects_bad_input() {
    assert!(matches!(
        LockFile::parse("version: 7\nimages: []\n", "x"),
        Err(LockError::Version { found: 7, .. })
    ));
    assert!(matches!(
        LockFile::parse("[[[", "x"),
        Err(LockError::Parse { .. })
    ));
    let twice = "version: 1\ngenerator: x\ntotal_size: 1\nimages:\n- name: a\n  source: docker.io/a:1\n  digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  media_type: m\n  size: 1\n  total_size: 1\n  platforms: []\n- name: b\n  source: docker.io/a:1\n  digest: sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n  media_type: m\n  size: 1\n  total_size: 1\n  platforms: []\n";
    let e = LockFile::parse(twice, "x").unwrap_err();
    assert!(e.to_string().contains("lists docker.io/a:1 twice"), "{e}");
    let bad_digest = "version: 1\ngenerator: x\ntotal_size: 1\nimages:\n- name: a\n  source: a\n  digest: sha256:../../etc\n  media_type: m\n  size: 1\n  total_size: 1\n  platforms: []\n";
    assert!(matches!(
        LockFile::parse(bad_digest, "x"),
        Err(LockError::Parse { .. })
    ));
}

#[test]
fn inputs_pin_to_the_digest_asked_for() {
    let img = |name: &str, written: Option<Digest>| LockedImage {
        name: name.into(),
        source: format!("docker.io/{name}"),
        digest: d('a'),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        size: 10,
        total_size: 100,
        written_digest: written,
        platforms: Vec::new(),
        attached_to: None,
    };
    let lock = LockFile::new(vec![img("a/a:1", None), img("b/b:1", Some(d('c')))], 200);
    let pinned = |pin| -> Vec<String> {
        lock.inputs(pin)
            .expect("inputs")
            .into_iter()
            .map(|(n, r)| format!("{n} {r}"))
            .collect()
    };
    let (a, c) = ("a".repeat(64), "c".repeat(64));
    assert_eq!(
        pinned(Pin::Upstream),
        [
            format!("a/a:1 docker.io/a/a:1@sha256:{a}"),
            format!("b/b:1 docker.io/b/b:1@sha256:{a}")
        ]
    );
    assert_eq!(
        pinned(Pin::Bundle),
        [
            format!("a/a:1 docker.io/a/a:1@sha256:{a}"),
            format!("b/b:1 docker.io/b/b:1@sha256:{c}")
        ]
    );
    let mut bad = lock.clone();
    bad.images[0].source = "UPPER/Case:x".into();
    let e = bad.inputs(Pin::Bundle).expect_err("invalid source");
    assert_eq!(e.to_string(), "lock entry \"a/a:1\" has an invalid source");
}
