//! The `.parts` file of a split bundle ([`PartsFile`]): which files hold the bundle, in
//! order, with each one's size and SHA-256, and the size and SHA-256 of the whole. It is
//! written so that `sha256sum -c` checks the parts without ferry (comment lines are skipped):
//!
//! ```text
//! # ferry split bundle, format 1: rke-images.tar in 3 parts.
//! # Join: cat rke-images.tar.0* > rke-images.tar
//! # Check: sha256sum -c rke-images.tar.parts   (or: ferry verify rke-images.tar.parts)
//! # bundle rke-images.tar 9663676928 sha256:4c1f…
//! # part rke-images.tar.001 4294967295
//! # part rke-images.tar.002 4294967295
//! # part rke-images.tar.003 1074742338
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  rke-images.tar.001
//! …
//! ```
//!
//! The file is untrusted: part names must be plain file names beside it, sizes must add up.

use std::path::{Path, PathBuf};

use super::BundleError;
use ferry_oci::digest::Digest;

/// The suffix of the parts file: `BUNDLE.parts`.
pub const PARTS_SUFFIX: &str = ".parts";

/// Most parts a bundle is split into (three-digit suffixes, so `cat NAME.0*` joins them in
/// order).
pub const MAX_PARTS: u64 = 999;

/// The largest `.parts` file read: 999 parts take about 100 KiB; anything past 1 MiB is not
/// one ferry wrote, and is refused before more of it is read.
pub const MAX_PARTS_FILE: u64 = 1024 * 1024;

/// FAT32's largest file: 4 GiB − 1 byte.
pub const FAT32_MAX_FILE: u64 = (4 << 30) - 1;

/// One part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    /// File name, beside the parts file.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: Digest,
}

/// A parsed `.parts` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsFile {
    /// The joined bundle's file name.
    pub bundle: String,
    /// The joined bundle's size.
    pub size: u64,
    /// SHA-256 of the joined bundle.
    pub sha256: Digest,
    /// The parts, in order.
    pub parts: Vec<PartEntry>,
}

/// Why a `.parts` file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{} is not a usable ferry parts file: {problem}; write it again with `ferry export --split`", path.display())]
pub struct PartsError {
    /// The parts file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: PartsProblem,
}

/// What is wrong with a `.parts` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartsProblem {
    /// The `# bundle` line's size is not a number.
    #[error("line {line}: the bundle size is not a number")]
    BundleSize {
        /// The line, from 1.
        line: usize,
    },
    /// The `# bundle` line's digest is not one.
    #[error("line {line}: the bundle sha256 is malformed")]
    BundleSha256 {
        /// The line, from 1.
        line: usize,
    },
    /// A `# part` line's size is not a number.
    #[error("line {line}: a part size is not a number")]
    PartSize {
        /// The line, from 1.
        line: usize,
    },
    /// A sum line's hex is not a SHA-256.
    #[error("line {line}: not a sha256 sum")]
    Sum {
        /// The line, from 1.
        line: usize,
    },
    /// A file name with a directory in it (or `.`, `..`, empty).
    #[error("line {line}: {name:?} is not a plain file name beside the parts file")]
    NotPlainName {
        /// The line, from 1.
        line: usize,
        /// The name as written.
        name: String,
    },
    /// A line that is none of the above.
    #[error("line {line}: not a line of a parts file")]
    NotALine {
        /// The line, from 1.
        line: usize,
    },
    /// No `# bundle` line at all.
    #[error("it has no `# bundle` line")]
    NoBundleLine,
    /// None, or more than [`MAX_PARTS`], parts.
    #[error("it lists {count} parts (1 to {MAX_PARTS})")]
    PartCount {
        /// How many it lists.
        count: usize,
    },
    /// Size lines and sum lines do not pair up.
    #[error("it gives {sizes} part sizes but {sums} sums")]
    Unpaired {
        /// `# part` lines.
        sizes: usize,
        /// Sum lines.
        sums: usize,
    },
    /// A part not named as ferry names it, or its size and sum lines name different files.
    #[error("part {index} is {name:?} (sum for {sum_name:?}); expected {expected:?}")]
    WrongName {
        /// The part, from 1.
        index: usize,
        /// The name its size line gives.
        name: String,
        /// The name its sum line gives.
        sum_name: String,
        /// The name it should have.
        expected: String,
    },
    /// The part sizes do not fit in 64 bits.
    #[error("the part sizes overflow")]
    SizeOverflow,
    /// The part sizes do not add up to the bundle's.
    #[error("the parts add up to {sum} bytes, the bundle line says {size}")]
    SizeMismatch {
        /// The sum of the part sizes.
        sum: u64,
        /// The bundle line's size.
        size: u64,
    },
}

/// `NAME.001`, `NAME.002`, …: the name of part `index` (from 0) of bundle `name`.
pub fn part_name(bundle: &str, index: usize) -> String {
    format!("{bundle}.{:03}", index + 1)
}

/// `PATH.parts` for the bundle `PATH`.
pub fn parts_path(bundle: &Path) -> PathBuf {
    let mut p = bundle.as_os_str().to_owned();
    p.push(PARTS_SUFFIX);
    PathBuf::from(p)
}

/// The parts file of `path` when `path` names a split bundle: the `.parts` file itself, or
/// a part (`NAME.001`, …) whose `NAME.parts` exists beside it.
pub fn parts_file_for(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(PARTS_SUFFIX) {
        return Some(path.to_path_buf());
    }
    let (base, digits) = name.rsplit_once('.')?;
    if digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let candidate = path.with_file_name(format!("{base}{PARTS_SUFFIX}"));
        return candidate.is_file().then_some(candidate);
    }
    None
}

/// The sizes of the parts of a `total`-byte bundle split every `part_size` bytes.
pub fn split_sizes(total: u64, part_size: u64) -> Vec<u64> {
    let part_size = part_size.max(1);
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(part_size);
        out.push(n);
        left -= n;
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

impl PartsFile {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "# ferry split bundle, format 1: {b} in {n} parts.\n# Join: cat {b}.0* > {b}\n# Check: sha256sum -c {b}{PARTS_SUFFIX}   (or: ferry verify {b}{PARTS_SUFFIX})\n# bundle {b} {size} {sha}\n",
            b = self.bundle,
            n = self.parts.len(),
            size = self.size,
            sha = self.sha256,
        );
        for p in &self.parts {
            s.push_str(&format!("# part {} {}\n", p.name, p.size));
        }
        for p in &self.parts {
            s.push_str(&format!("{}  {}\n", p.sha256.hex(), p.name));
        }
        s
    }

    /// Reads and parses the parts file at `path`, reading at most [`MAX_PARTS_FILE`] bytes
    /// of it: the one way every command reads a `.parts` file.
    pub fn read(path: &Path) -> Result<PartsFile, BundleError> {
        let text = ferry_base::bounded::read(path, MAX_PARTS_FILE).map_err(|e| match e {
            ferry_base::bounded::ReadError::Io(source) => BundleError::Io {
                action: "read the parts file",
                path: path.to_path_buf(),
                source,
            },
            too_large => BundleError::NotABundle {
                path: path.to_path_buf(),
                what: format!("a parts file that {too_large} is not one ferry wrote"),
            },
        })?;
        Ok(PartsFile::parse(&String::from_utf8_lossy(&text), path)?)
    }

    /// Parses the text of the parts file at `path` (for messages).
    pub fn parse(text: &str, path: &Path) -> Result<PartsFile, PartsError> {
        PartsFile::parse_text(text).map_err(|problem| PartsError {
            path: path.to_path_buf(),
            problem,
        })
    }

    fn parse_text(text: &str) -> Result<PartsFile, PartsProblem> {
        use PartsProblem as P;
        let mut bundle = None;
        let mut sizes: Vec<(String, u64)> = Vec::new();
        let mut sums: Vec<(String, Digest)> = Vec::new();
        for (i, text) in text.lines().enumerate() {
            let line = i + 1;
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                ["#", "bundle", name, size, sha] => {
                    let size = size.parse().map_err(|_| P::BundleSize { line })?;
                    let sha = Digest::parse(sha).map_err(|_| P::BundleSha256 { line })?;
                    bundle = Some((plain_name(name, line)?, size, sha));
                }
                ["#", "part", name, size] => {
                    let size = size.parse().map_err(|_| P::PartSize { line })?;
                    sizes.push((plain_name(name, line)?, size));
                }
                ["#", ..] => {}
                [hex, name] => {
                    let sha =
                        Digest::parse(&format!("sha256:{hex}")).map_err(|_| P::Sum { line })?;
                    sums.push((plain_name(name, line)?, sha));
                }
                _ => return Err(P::NotALine { line }),
            }
        }
        let (bundle, size, sha256) = bundle.ok_or(P::NoBundleLine)?;
        if sizes.is_empty() || sizes.len() as u64 > MAX_PARTS {
            return Err(P::PartCount { count: sizes.len() });
        }
        if sizes.len() != sums.len() {
            return Err(P::Unpaired {
                sizes: sizes.len(),
                sums: sums.len(),
            });
        }
        let mut parts = Vec::new();
        for (i, ((name, size), (sum_name, sha))) in sizes.into_iter().zip(sums).enumerate() {
            let expected = part_name(&bundle, i);
            if name != sum_name || name != expected {
                return Err(P::WrongName {
                    index: i + 1,
                    name,
                    sum_name,
                    expected,
                });
            }
            parts.push(PartEntry {
                name,
                size,
                sha256: sha,
            });
        }
        let sum = parts
            .iter()
            .try_fold(0u64, |a, p| a.checked_add(p.size))
            .ok_or(P::SizeOverflow)?;
        if sum != size {
            return Err(P::SizeMismatch { sum, size });
        }
        Ok(PartsFile {
            bundle,
            size,
            sha256,
            parts,
        })
    }
}

/// A file name with no directory in it, on line `line`.
fn plain_name(name: &str, line: usize) -> Result<String, PartsProblem> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0');
    if ok {
        Ok(name.to_string())
    } else {
        Err(PartsProblem::NotPlainName {
            line,
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
