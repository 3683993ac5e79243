//! Unit tests of `store/bundle/parts.rs`: the `.parts` file, round trip and refusals.

use super::*;

fn sample() -> PartsFile {
    PartsFile {
        bundle: "rke-images.tar".into(),
        size: 10,
        sha256: Digest::sha256_of(b"whole"),
        parts: vec![
            PartEntry {
                name: "rke-images.tar.001".into(),
                size: 6,
                sha256: Digest::sha256_of(b"one"),
            },
            PartEntry {
                name: "rke-images.tar.002".into(),
                size: 4,
                sha256: Digest::sha256_of(b"two"),
            },
        ],
    }
}

#[test]
fn round_trips_and_reads_as_sha256sum_input() {
    let p = sample();
    let text = p.render();
    assert_eq!(
        PartsFile::parse(&text, Path::new("x.parts")).expect("parse"),
        p
    );
    let sums: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        sums,
        [
            format!("{}  rke-images.tar.001", Digest::sha256_of(b"one").hex()),
            format!("{}  rke-images.tar.002", Digest::sha256_of(b"two").hex())
        ]
    );
    assert!(text.contains("cat rke-images.tar.0* > rke-images.tar"));
}

#[test]
fn refuses_names_outside_its_directory_and_sizes_that_do_not_add_up() {
    let good = sample().render();
    for (bad, why) in [
        (
            good.replace("# part rke-images.tar.001", "# part ../etc/passwd"),
            "plain file name",
        ),
        (
            good.replace("  rke-images.tar.002", "  /tmp/x"),
            "plain file name",
        ),
        (
            good.replace("# bundle rke-images.tar 10", "# bundle rke-images.tar 11"),
            "add up to 10",
        ),
        (
            good.replace("# part rke-images.tar.002 4\n", ""),
            "sizes but",
        ),
        (
            good.replace("rke-images.tar.002", "rke-images.tar.003"),
            "expected",
        ),
        (good.replace("# bundle", "# nothing"), "no `# bundle` line"),
        (format!("{good}garbage line here\n"), "not a line"),
    ] {
        let err = PartsFile::parse(&bad, Path::new("x.parts"))
            .expect_err(why)
            .to_string();
        assert!(err.contains(why) && err.contains("x.parts"), "{why}: {err}");
    }
}

#[test]
fn splits_sizes_and_finds_the_parts_file() {
    assert_eq!(split_sizes(10, 4), [4, 4, 2]);
    assert_eq!(split_sizes(8, 4), [4, 4]);
    assert_eq!(split_sizes(3, 4), [3]);
    assert_eq!(part_name("b.tar", 0), "b.tar.001");
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = dir.path().join("b.tar.parts");
    std::fs::write(&parts, "x").expect("write");
    assert_eq!(
        parts_file_for(&dir.path().join("b.tar.001")),
        Some(parts.clone())
    );
    assert_eq!(parts_file_for(&parts), Some(parts));
    assert_eq!(parts_file_for(&dir.path().join("b.tar")), None);
    assert_eq!(parts_file_for(&dir.path().join("c.tar.001")), None);
}
