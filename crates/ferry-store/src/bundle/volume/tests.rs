//! Unit tests of `store/bundle/volume.rs`: reads and writes across part boundaries.

use std::io::{Read as _, Seek as _, SeekFrom};

use super::*;

/// A volume of parts of these sizes holding `0, 1, 2, …` (mod 251), in a temp dir.
fn parts(sizes: &[u64]) -> (tempfile::TempDir, Volume, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let total: u64 = sizes.iter().sum();
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let mut files = Vec::new();
    let mut at = 0usize;
    for (i, &n) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("b.tar.{:03}", i + 1));
        let n = usize::try_from(n).expect("size");
        std::fs::write(&path, &data[at..at + n]).expect("write");
        at += n;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        files.push((path, file, n as u64));
    }
    (dir, Volume::from_parts(files), data)
}

#[test]
fn reads_across_parts_as_one_file() {
    let (_dir, v, data) = parts(&[7, 1, 0, 13, 5]);
    assert_eq!(v.len(), 26);
    assert!(v.is_split());
    for start in 0..data.len() {
        for len in 0..=data.len() - start {
            let mut buf = vec![0u8; len];
            v.read_exact_at(&mut buf, start as u64).expect("read");
            assert_eq!(buf, data[start..start + len], "{start}+{len}");
        }
    }
    let mut past = [0u8; 2];
    assert_eq!(
        v.read_exact_at(&mut past, 25)
            .expect_err("past the end")
            .kind(),
        io::ErrorKind::UnexpectedEof
    );
    let mut c = v.cursor();
    c.seek(SeekFrom::Start(5)).expect("seek");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("read");
    assert_eq!(rest, data[5..]);
    assert_eq!(c.seek(SeekFrom::End(-1)).expect("seek"), 25);
    assert!(c.seek(SeekFrom::Current(-100)).is_err());
}

#[test]
fn writes_across_parts_and_refuses_past_the_end() {
    let (dir, v, _) = parts(&[4, 4, 4]);
    v.write_all_at(b"abcdefgh", 2).expect("write");
    v.sync_data().expect("sync");
    assert_eq!(
        std::fs::read(dir.path().join("b.tar.001")).expect("read")[2..],
        *b"ab"
    );
    assert_eq!(
        std::fs::read(dir.path().join("b.tar.002")).expect("read"),
        b"cdef"
    );
    assert_eq!(
        std::fs::read(dir.path().join("b.tar.003")).expect("read")[..2],
        *b"gh"
    );
    assert!(v.write_all_at(b"xyz", 10).is_err(), "one byte past the end");
}
