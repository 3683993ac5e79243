//! `PartsFile::read` on arbitrary bytes written to a file: never panic, read at most
//! `MAX_PARTS_FILE` bytes, and whatever it accepts is consistent: 1 to `MAX_PARTS` parts,
//! each a plain file name beside the parts file, named in order, sizes adding up to the
//! bundle's.
//!
//! Input: the `.parts` file's bytes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ferry_store::bundle::{MAX_PARTS, PartsFile, part_name};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/scratch");
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        dir.join(format!("bundle-{}.tar.parts", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch parts file");
    let parts = match PartsFile::read(path) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!((1..=MAX_PARTS as usize).contains(&parts.parts.len()));
    let mut sum = 0u64;
    for (i, p) in parts.parts.iter().enumerate() {
        assert_eq!(p.name, part_name(&parts.bundle, i));
        assert!(!p.name.contains('/') && !p.name.contains('\0'));
        sum = sum.checked_add(p.size).expect("sizes checked for overflow");
    }
    assert_eq!(sum, parts.size);
});
