//! The archive scanner (`store::archive::scan::scan`, then `images::contents`) on
//! arbitrary bytes written to a file, plain or gzip: never panic, never hang, and whatever
//! it accepts is consistent: every metadata file is within the cap, every layer kept in
//! place lies inside the file, every link resolves or is refused, and once the scan is
//! dropped no spool file is left.
//!
//! Input: the archive file's bytes (a leading gzip magic makes it a gzip stream).
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use ferry_store::archive::scan::{self, MAX_METADATA, Where};
use ferry_store::archive::{Options, images};
use libfuzzer_sys::fuzz_target;

/// One scratch dir per fuzzing process: the archive file and a spool dir beside it, under
/// `fuzz/target/` (ignored by git).
fn scratch() -> &'static (PathBuf, PathBuf) {
    static PATHS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PATHS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/scratch")
            .join(format!("archive-{}", std::process::id()));
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).expect("create the scratch dir");
        (dir.join("archive.tar"), spool)
    })
}

fuzz_target!(|data: &[u8]| {
    let (path, spool) = scratch();
    std::fs::write(path, data).expect("write the scratch archive");
    let opts = Options {
        compress: Some(1),
        spool_dir: spool.clone(),
        spool_limit: 64 << 20,
        parallel: 2,
        progress: Arc::new(AtomicU64::new(0)),
    };
    match scan::scan(path, &opts) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(s) => {
            let len = data.len() as u64;
            for (name, bytes) in &s.files {
                assert!(bytes.len() as u64 <= MAX_METADATA, "{name} is within the cap");
            }
            for (name, blob) in &s.blobs {
                if let Where::InPlace(at) = blob.at {
                    assert!(!s.gzip, "{name}: a gzip stream's layers are spooled");
                    let end = at.checked_add(blob.size).expect("no overflow");
                    assert!(end <= len, "{name} at {at}+{} lies inside the file", blob.size);
                }
            }
            for name in s.links.keys() {
                let _ = s.resolve(name);
            }
            match images::contents(&s) {
                Ok((_, c)) => assert!(!c.images.is_empty()),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
    // Every spool file went with the scan.
    let left = std::fs::read_dir(spool).expect("spool dir").count();
    assert_eq!(left, 0, "spool files left behind");
});
