use super::*;
use crate::lockfile::LockedPlatform;

fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest")
}

fn image(source: &str, d: char, platforms: &[&str], written: Option<char>) -> LockedImage {
    LockedImage {
        name: source.trim_start_matches("docker.io/").into(),
        source: source.into(),
        digest: digest(d),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        size: 10,
        total_size: 100,
        written_digest: written.map(digest),
        platforms: platforms
            .iter()
            .map(|p| LockedPlatform {
                platform: (*p).into(),
                os_version: None,
                digest: digest('f'),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 5,
            })
            .collect(),
        attached_to: None,
    }
}

#[test]
fn identical_sets_are_empty_and_order_does_not_matter() {
    let a = image("docker.io/r/a:1", 'a', &["linux/amd64"], None);
    let b = image("docker.io/r/b:1", 'b', &["linux/amd64"], None);
    let old = LockFile::new(vec![a.clone(), b.clone()], 150);
    let new = LockFile::new(vec![b, a], 150);
    let d = LockDiff::of(&old, &new);
    assert!(d.is_empty());
    assert_eq!(d.unchanged, 2);
    assert_eq!(d.bytes_at_most(), 0);
}

#[test]
fn a_tag_at_another_digest_is_changed_with_its_platforms_and_attestations_are_not_platforms() {
    let old = LockFile::new(
        vec![image(
            "docker.io/r/a:1",
            'a',
            &["linux/amd64", "linux/arm64", "unknown/unknown"],
            None,
        )],
        100,
    );
    let new = LockFile::new(
        vec![
            image(
                "docker.io/r/a:1",
                'b',
                &["linux/amd64", "linux/s390x"],
                None,
            ),
            image("docker.io/r/c:1", 'c', &["linux/amd64"], None),
        ],
        200,
    );
    let d = LockDiff::of(&old, &new);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.changed[0].platforms_added, vec!["linux/s390x"]);
    assert_eq!(d.changed[0].platforms_removed, vec!["linux/arm64"]);
    assert_eq!(d.added.len(), 1);
    assert!(d.removed.is_empty());
    assert_eq!(d.bytes_at_most(), 200);
    // And the other way round.
    let back = LockDiff::of(&new, &old);
    assert_eq!(back.removed[0].source, "docker.io/r/c:1");
}

#[test]
fn the_digest_compared_is_the_one_in_the_bundle() {
    // The same upstream index, filtered by --platform on one side: another digest there.
    let old = LockFile::new(
        vec![image("docker.io/r/a:1", 'a', &["linux/amd64"], None)],
        1,
    );
    let new = LockFile::new(
        vec![image("docker.io/r/a:1", 'a', &["linux/amd64"], Some('d'))],
        1,
    );
    assert_eq!(LockDiff::of(&old, &new).changed.len(), 1);
    assert!(LockDiff::of(&new, &new).is_empty());
}
