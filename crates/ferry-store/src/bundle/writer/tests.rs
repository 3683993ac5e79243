//! Tests of the writer through the reader: concurrent filling, determinism, readability by
//! the system `tar`, resuming after an interruption, and refusals.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::bundle::testutil::{
    digest_of, fill, fill_until, sample_blobs, sample_plan, write_sequentially,
};
use crate::bundle::{BundleError, BundleReader, BundleWriter, INDEX_JSON, OCI_LAYOUT, Plan};

/// Writes the sample bundle to `path`, filling blobs from one thread each in an order
/// shuffled by `seed`.
fn write_concurrently(path: &Path, blobs: &[Vec<u8>], seed: u64) {
    let writer = Arc::new(BundleWriter::create(path, sample_plan(blobs)).expect("create"));
    assert!(!writer.resumed());
    let mut order: Vec<usize> = (0..blobs.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    std::thread::scope(|s| {
        for i in order {
            let writer = Arc::clone(&writer);
            let blob = &blobs[i];
            s.spawn(move || fill(&writer, blob));
        }
    });
    let writer = Arc::into_inner(writer).expect("sole owner");
    assert!(writer.missing().is_empty());
    writer.finish().expect("finish");
}

fn side_files_exist(path: &Path) -> (bool, bool) {
    let with = |s: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(s);
        Path::new(&p).exists()
    };
    (with(".partial"), with(".journal"))
}

#[test]
fn concurrent_fills_give_identical_files_that_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    write_concurrently(&a, &blobs, 1);
    write_concurrently(&b, &blobs, 2);
    let bytes = std::fs::read(&a).expect("read a");
    assert_eq!(bytes, std::fs::read(&b).expect("read b"), "byte-identical");
    assert_eq!(bytes, write_sequentially(&sample_plan(&blobs), &blobs));
    assert_eq!(side_files_exist(&a), (false, false));

    let reader = Arc::new(BundleReader::open(&a).expect("open"));
    assert_eq!(
        reader.metadata(OCI_LAYOUT),
        Some(&br#"{"imageLayoutVersion":"1.0.0"}"#[..])
    );
    assert!(reader.metadata(INDEX_JSON).is_some());
    assert_eq!(reader.blobs().count(), blobs.len());
    std::thread::scope(|s| {
        for blob in &blobs {
            let reader = Arc::clone(&reader);
            s.spawn(move || {
                let d = digest_of(blob);
                let mut back = Vec::new();
                let mut r = reader.open_blob(&d).expect("open blob");
                std::io::Read::read_to_end(&mut r, &mut back).expect("read");
                assert_eq!(&back, blob);
                reader.verify_blob(&d).expect("verifies");
            });
        }
    });
}

#[test]
fn system_tar_reads_the_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    write_concurrently(&path, &blobs, 3);
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&path)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    let plan = sample_plan(&blobs);
    let planned: Vec<String> = plan.entries().map(|e| e.name().to_owned()).collect();
    assert_eq!(names, planned);
    assert_eq!(
        &names[..6],
        [
            "oci-layout",
            "index.json",
            "images.lock",
            "manifest.json",
            "blobs/",
            "blobs/sha256/"
        ]
    );
    let first = listing.lines().next().unwrap_or_default();
    assert!(first.starts_with("-rw-r--r-- 0/0"), "{first}");
    assert!(first.contains("1970-01-01"), "{first}");

    let out_dir = dir.path().join("x");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&path)
        .arg("-C")
        .arg(&out_dir)
        .status()
        .expect("run tar");
    assert!(status.success());
    for blob in &blobs {
        let extracted = std::fs::read(out_dir.join(digest_of(blob).blob_path())).expect("blob");
        assert_eq!(&extracted, blob);
    }
}

#[test]
fn an_interrupted_export_resumes_and_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    let big = &blobs[6]; // 300 000 bytes
    {
        let mut writer = BundleWriter::create(&path, sample_plan(&blobs)).expect("create");
        writer.set_checkpoint_interval(64 * 1024);
        for blob in &blobs[..4] {
            fill(&writer, blob);
        }
        fill_until(&writer, big, 200_000);
        // Dropped here, as by a crash: no finish, the big blob half written.
    }
    assert!(!path.exists());
    assert_eq!(side_files_exist(&path), (true, true));
    let mut journal_path = path.as_os_str().to_owned();
    journal_path.push(".journal");
    let journal = std::fs::read_to_string(&journal_path).expect("journal");
    assert!(
        journal.starts_with("ferry-bundle-journal 1 plan sha256:"),
        "{journal}"
    );
    assert_eq!(journal.matches("\ndone ").count(), 4, "{journal}");
    assert!(
        journal.contains(&format!("progress {} ", digest_of(big))),
        "{journal}"
    );
    // A crash mid-line leaves a torn last line; it must be ignored.
    std::fs::write(&journal_path, format!("{journal}done sha256:0123")).expect("tear");

    let writer = BundleWriter::create(&path, sample_plan(&blobs)).expect("resume");
    assert!(writer.resumed());
    assert_eq!(writer.missing().len(), blobs.len() - 4);
    assert!(writer.is_done(&digest_of(&blobs[0])));
    let sink = writer.blob_sink(&digest_of(big)).expect("sink");
    let have = sink.written();
    assert!(
        (64 * 1024..=200_000).contains(&have),
        "checkpoint at {have}"
    );
    drop(sink);
    for blob in &blobs[4..] {
        fill(&writer, blob); // re-hashes the prefix, then continues
    }
    writer.finish().expect("finish");
    assert_eq!(side_files_exist(&path), (false, false));
    let resumed = std::fs::read(&path).expect("read");
    assert_eq!(resumed, write_sequentially(&sample_plan(&blobs), &blobs));
}

#[test]
fn a_different_plan_starts_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    {
        let writer = BundleWriter::create(&path, sample_plan(&blobs[..5])).expect("create");
        fill(&writer, &blobs[0]);
        fill(&writer, &blobs[1]);
    }
    let writer = BundleWriter::create(&path, sample_plan(&blobs)).expect("create");
    assert!(!writer.resumed());
    assert_eq!(writer.missing().len(), blobs.len());
    for blob in &blobs {
        fill(&writer, blob);
    }
    writer.finish().expect("finish");
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(bytes, write_sequentially(&sample_plan(&blobs), &blobs));
}

#[test]
fn finish_refuses_while_blobs_are_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    let writer = BundleWriter::create(&path, sample_plan(&blobs)).expect("create");
    for blob in &blobs[1..] {
        fill(&writer, blob);
    }
    let err = writer.finish().expect_err("incomplete");
    assert!(
        matches!(err, BundleError::Incomplete { missing: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("1 of 8 blobs"), "{err}");
    assert!(!path.exists());
    assert_eq!(side_files_exist(&path), (true, true));
}

#[test]
fn slot_sinks_enforce_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    let writer = BundleWriter::create(&path, sample_plan(&blobs)).expect("create");
    let d = digest_of(&blobs[2]); // 511 bytes
    let unknown = digest_of(b"not planned");
    assert!(matches!(
        writer.blob_sink(&unknown),
        Err(BundleError::NotPlanned { .. })
    ));
    let mut sink = writer.blob_sink(&d).expect("sink");
    assert!(matches!(
        writer.blob_sink(&d),
        Err(BundleError::SlotBusy { .. })
    ));
    sink.append(&blobs[2][..100]).expect("append");
    assert!(sink.commit().is_err(), "short blob committed");
    assert!(sink.append(&[0; 500]).is_err(), "overflow accepted");
    sink.append(&blobs[2][100..]).expect("append");
    sink.commit().expect("commit");
    assert!(writer.is_done(&d));
    sink.reset().expect("reset");
    assert!(!writer.is_done(&d));
    assert_eq!(sink.written(), 0);
    sink.append(&blobs[2]).expect("append");
    sink.abort();
    assert!(!writer.is_done(&d));
    for blob in &blobs {
        if digest_of(blob) != d {
            fill(&writer, blob);
        }
    }
    sink.append(&blobs[2]).expect("append");
    sink.commit().expect("commit");
    assert!(writer.missing().is_empty());
    // `finish` waits for every sink to be dropped.
    let writer = match writer.finish() {
        Err(BundleError::StillWriting { open: 1, .. }) => {
            BundleWriter::create(&path, sample_plan(&blobs)).expect("resume")
        }
        other => panic!("finish with an open sink: {other:?}"),
    };
    drop(sink);
    assert!(writer.resumed() && writer.missing().is_empty());
    writer.finish().expect("finish");
    assert!(BundleReader::open(&path).is_ok());
}

#[test]
fn metadata_only_plan_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.tar");
    let plan = Plan::new([(OCI_LAYOUT, b"{}".to_vec())], []).expect("plan");
    BundleWriter::create(&path, plan)
        .expect("create")
        .finish()
        .expect("finish");
    let reader = BundleReader::open(&path).expect("open");
    assert_eq!(reader.metadata(OCI_LAYOUT), Some(&b"{}"[..]));
    assert_eq!(reader.blobs().count(), 0);
}

/// Every part of a split bundle read back in order.
fn joined(dir: &Path, name: &str, parts: usize) -> Vec<u8> {
    (0..parts)
        .flat_map(|i| {
            std::fs::read(dir.join(crate::bundle::parts::part_name(name, i))).expect("part")
        })
        .collect()
}

#[test]
fn a_split_bundle_is_the_same_tar_in_parts_and_reads_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let whole = write_sequentially(&sample_plan(&blobs), &blobs);
    // 100 000 bytes: the 300 000-byte blob spans four parts.
    for split in [100_000u64, 512, 1_000_000] {
        let path = dir.path().join(format!("b{split}.tar"));
        let writer =
            BundleWriter::create_split(&path, sample_plan(&blobs), Some(split)).expect("create");
        for blob in &blobs {
            fill(&writer, blob);
        }
        let parts = writer.finish().expect("finish").expect("a split bundle");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let count = whole.len().div_ceil(split as usize);
        assert_eq!(parts.parts.len(), count);
        assert_eq!(joined(dir.path(), &name, count), whole, "split {split}");
        assert_eq!(parts.sha256, digest_of(&whole));
        assert!(!path.exists(), "no unsplit file");
        let listed = crate::bundle::parts::parts_path(&path);
        let text = std::fs::read_to_string(&listed).expect("parts file");
        assert_eq!(text, parts.render());

        let reader = BundleReader::open(&listed).expect("open the parts");
        assert_eq!(reader.volume().parts().len(), count);
        for blob in &blobs {
            reader
                .verify_blob(&digest_of(blob))
                .expect("verifies across parts");
        }
        // The first part names the bundle too.
        let first = dir.path().join(crate::bundle::parts::part_name(&name, 0));
        assert_eq!(BundleReader::open(&first).expect("open").path(), listed);
    }
}

#[test]
fn an_interrupted_split_export_resumes_to_the_same_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    let split = Some(100_000);
    {
        let mut writer =
            BundleWriter::create_split(&path, sample_plan(&blobs), split).expect("create");
        writer.set_checkpoint_interval(64 * 1024);
        for blob in &blobs[..4] {
            fill(&writer, blob);
        }
        fill_until(&writer, &blobs[6], 200_000);
    }
    assert!(dir.path().join("bundle.tar.001.partial").exists());
    // The same plan and split: resumed.
    let writer = BundleWriter::create_split(&path, sample_plan(&blobs), split).expect("resume");
    assert!(writer.resumed());
    assert_eq!(writer.missing().len(), blobs.len() - 4);
    for blob in &blobs[4..] {
        fill(&writer, blob);
    }
    let parts = writer.finish().expect("finish").expect("split");
    let whole = write_sequentially(&sample_plan(&blobs), &blobs);
    assert_eq!(joined(dir.path(), "bundle.tar", parts.parts.len()), whole);
    assert!(!dir.path().join("bundle.tar.001.partial").exists());
    assert!(!dir.path().join("bundle.tar.journal").exists());

    // A coarser split later removes the parts it no longer has.
    let writer =
        BundleWriter::create_split(&path, sample_plan(&blobs), Some(1_000_000)).expect("create");
    assert!(!writer.resumed());
    for blob in &blobs {
        fill(&writer, blob);
    }
    let parts = writer.finish().expect("finish").expect("split");
    assert_eq!(parts.parts.len(), 1);
    assert!(
        !dir.path().join("bundle.tar.002").exists(),
        "stale part removed"
    );
    assert_eq!(joined(dir.path(), "bundle.tar", 1), whole);
}

#[test]
fn too_many_parts_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = sample_blobs();
    let path = dir.path().join("bundle.tar");
    let err = BundleWriter::create_split(&path, sample_plan(&blobs), Some(100))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("999") && err.contains("--split"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
