//! Bounded reads of files ferry does not control the size of (`--metadata FILE`, cluster.yml,
//! `--metadata-ca-file`, the metadata cache, a `.parts` file, an htpasswd file, image lists,
//! locks, docker's config.json, CA files; [`crate::fsutil::read_small`] for io errors): the size on disk is checked against the cap
//! before anything is read, and the read itself stops one byte past the cap, so a file that
//! grows meanwhile, or one whose size says nothing (`/dev/zero`, a FIFO), costs no more.

use std::io::Read as _;
use std::path::Path;

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be opened or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file holds more than the cap.
    #[error("it is larger than {}", size_text(*cap))]
    TooLarge {
        /// Its size on disk when known (more than `cap`); `None` when the read went past.
        size: Option<u64>,
        /// The cap, in bytes.
        cap: u64,
    },
}

/// `64 MiB`, `512 KiB` or `100 bytes`.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The whole of `path`, at most `cap` bytes.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > cap {
        return Err(ReadError::TooLarge {
            size: Some(len),
            cap,
        });
    }
    // `len` is at most `cap` here, so this allocation is bounded.
    let mut buf = Vec::with_capacity(len as usize);
    file.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(ReadError::TooLarge { size: None, cap });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_cap_and_refuses_past_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").expect("write");
        assert_eq!(read(&p, 5).expect("at the cap"), b"12345");
        let e = read(&p, 4).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::TooLarge {
                    size: Some(5),
                    cap: 4
                }
            ),
            "{e:?}"
        );
        // A size that says nothing: the read stops one byte past the cap.
        let e = read(Path::new("/dev/zero"), 1 << 10).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { size: None, .. }), "{e:?}");
        assert_eq!(e.to_string(), "it is larger than 1 KiB");
    }
}
