//! `BundleReader::open` on arbitrary bytes written to a file: never panic, never read past
//! the file, and whatever it accepts is consistent: every blob lies inside the file, the
//! metadata it returns is what the file holds, `verify_blob` answers (ok or a corrupt-blob
//! error) for every blob, and reading a blob yields exactly its size.
//!
//! Input: the bundle file's bytes.
#![no_main]

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use ferry_store::bundle::{BundleError, BundleReader, METADATA_FILES};
use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process, rewritten for every input; under `fuzz/target/`
/// (ignored by git, and no litter in the system temp dir after a run).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/scratch");
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        dir.join(format!("bundle-{}.tar", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch bundle");
    let reader = match BundleReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            // Every refusal renders as a message (no panic in Display).
            let _ = e.to_string();
            return;
        }
    };
    let len = data.len() as u64;
    for name in METADATA_FILES {
        if let Some(bytes) = reader.metadata(name) {
            assert!(bytes.len() as u64 <= len, "{name} is inside the file");
            if name == "images.lock"
                && let Ok(text) = std::str::from_utf8(bytes)
            {
                let _ = ferry_plan::LockFile::parse(text, "images.lock");
            }
        }
    }
    assert!(reader.metadata("blobs/").is_none());
    let blobs: Vec<_> = reader.blobs().map(|(d, loc)| (d.clone(), loc)).collect();
    for (digest, loc) in blobs {
        let end = loc.offset.checked_add(loc.size).expect("no overflow");
        assert!(
            end <= len,
            "{digest} at {loc:?} lies inside the {len}-byte file"
        );
        assert_eq!(reader.blob(&digest), Some(loc));
        let blob = data
            .get(loc.offset as usize..end as usize)
            .expect("slice of the input");
        let hashes_to_name = ferry_oci::digest::Digest::sha256_of(blob) == digest;
        match reader.verify_blob(&digest) {
            Ok(()) => assert!(hashes_to_name, "{digest} verified but does not hash to it"),
            Err(BundleError::CorruptBlob { .. }) => {
                assert!(
                    !hashes_to_name,
                    "{digest} hashes to its name but was called corrupt"
                )
            }
            Err(e) => panic!("verify_blob({digest}): unexpected {e}"),
        }
        let mut bytes = Vec::new();
        reader
            .open_blob(&digest)
            .expect("open a listed blob")
            .read_to_end(&mut bytes)
            .expect("read a listed blob");
        assert_eq!(
            bytes, blob,
            "{digest}: positioned reads return the file's bytes"
        );
    }
});
