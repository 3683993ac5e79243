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
#[error("{} is not a usable ferry parts file: {detail}; write it again with `ferry export --split`", path.display())]
pub struct PartsError {
    /// The parts file.
    pub path: PathBuf,
    /// What is wrong.
    pub detail: String,
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
        let bad = |detail: String| PartsError {
            path: path.to_path_buf(),
            detail,
        };
        let mut bundle = None;
        let mut sizes: Vec<(String, u64)> = Vec::new();
        let mut sums: Vec<(String, Digest)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let at = |what: &str| bad(format!("line {}: {what}", i + 1));
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                ["#", "bundle", name, size, sha] => {
                    let size = size
                        .parse()
                        .map_err(|_| at("the bundle size is not a number"))?;
                    let sha =
                        Digest::parse(sha).map_err(|_| at("the bundle sha256 is malformed"))?;
                    bundle = Some((plain_name(name).map_err(|e| at(&e))?, size, sha));
                }
                ["#", "part", name, size] => {
                    let size = size
                        .parse()
                        .map_err(|_| at("a part size is not a number"))?;
                    sizes.push((plain_name(name).map_err(|e| at(&e))?, size));
                }
                ["#", ..] => {}
                [hex, name] => {
                    let sha = Digest::parse(&format!("sha256:{hex}"))
                        .map_err(|_| at("not a sha256 sum"))?;
                    sums.push((plain_name(name).map_err(|e| at(&e))?, sha));
                }
                _ => return Err(at("not a line of a parts file")),
            }
        }
        let (bundle, size, sha256) =
            bundle.ok_or_else(|| bad("it has no `# bundle` line".into()))?;
        if sizes.is_empty() || sizes.len() as u64 > MAX_PARTS {
            return Err(bad(format!(
                "it lists {} parts (1 to {MAX_PARTS})",
                sizes.len()
            )));
        }
        if sizes.len() != sums.len() {
            return Err(bad(format!(
                "it gives {} part sizes but {} sums",
                sizes.len(),
                sums.len()
            )));
        }
        let mut parts = Vec::new();
        for (i, ((name, size), (sum_name, sha))) in sizes.into_iter().zip(sums).enumerate() {
            if name != sum_name || name != part_name(&bundle, i) {
                return Err(bad(format!(
                    "part {} is {name:?} (sum for {sum_name:?}); expected {:?}",
                    i + 1,
                    part_name(&bundle, i)
                )));
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
            .ok_or_else(|| bad("the part sizes overflow".into()))?;
        if sum != size {
            return Err(bad(format!(
                "the parts add up to {sum} bytes, the bundle line says {size}"
            )));
        }
        Ok(PartsFile {
            bundle,
            size,
            sha256,
            parts,
        })
    }
}

/// A file name with no directory in it.
fn plain_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0');
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a plain file name beside the parts file"
        ))
    }
}

#[cfg(test)]
mod tests;
