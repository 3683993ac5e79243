//! Two image sets compared by their locks ([`LockDiff`]): images added, removed and changed
//! (the same source reference at another digest, with the platforms that came and went).
//! Images are matched by their full source reference; an image is the same when its digest
//! in the bundle and the mirror ([`LockedImage::bundle_digest`]) is. What the new set needs
//! beyond the old one in bytes is not here: it takes both sets' manifests, and is
//! [`crate::delta::select`]'s to say, as `export --since` says it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::lockfile::{LockFile, LockedImage};
use ferry_oci::digest::Digest;

/// An image only one side has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OneSide {
    /// As listed.
    pub name: String,
    /// The full reference.
    pub source: String,
    /// Its digest.
    pub digest: Digest,
    /// Its platforms (attestations not included).
    pub platforms: Vec<String>,
    /// Its unique bytes, as its lock gives them.
    pub bytes: u64,
}

/// An image both sides have, at different digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// As listed (by the new side).
    pub name: String,
    /// The full reference.
    pub source: String,
    /// The old digest.
    pub old_digest: Digest,
    /// The new digest.
    pub new_digest: Digest,
    /// Platforms the new image has and the old one has not.
    pub platforms_added: Vec<String>,
    /// Platforms the old image has and the new one has not.
    pub platforms_removed: Vec<String>,
    /// The old image's bytes.
    pub old_bytes: u64,
    /// The new image's bytes.
    pub new_bytes: u64,
}

/// How two locks differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockDiff {
    /// Images only the new side has.
    pub added: Vec<OneSide>,
    /// Images only the old side has.
    pub removed: Vec<OneSide>,
    /// Images at another digest.
    pub changed: Vec<Changed>,
    /// Images at the same digest on both sides.
    pub unchanged: usize,
}

fn platforms(i: &LockedImage) -> Vec<String> {
    i.platforms
        .iter()
        .filter(|p| p.platform != "unknown/unknown")
        .map(|p| p.platform.clone())
        .collect()
}

fn one_side(i: &LockedImage) -> OneSide {
    OneSide {
        name: i.name.clone(),
        source: i.source.clone(),
        digest: i.bundle_digest().clone(),
        platforms: platforms(i),
        bytes: i.total_size,
    }
}

impl LockDiff {
    /// `new` compared with `old`, each list sorted by source.
    pub fn of(old: &LockFile, new: &LockFile) -> LockDiff {
        let olds: BTreeMap<&str, &LockedImage> =
            old.images.iter().map(|i| (i.source.as_str(), i)).collect();
        let news: BTreeMap<&str, &LockedImage> =
            new.images.iter().map(|i| (i.source.as_str(), i)).collect();
        let mut diff = LockDiff {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            unchanged: 0,
        };
        for (src, n) in &news {
            match olds.get(src) {
                None => diff.added.push(one_side(n)),
                Some(o) if o.bundle_digest() == n.bundle_digest() => diff.unchanged += 1,
                Some(o) => {
                    let (op, np) = (platforms(o), platforms(n));
                    let (os, ns): (BTreeSet<&String>, BTreeSet<&String>) =
                        (op.iter().collect(), np.iter().collect());
                    diff.changed.push(Changed {
                        name: n.name.clone(),
                        source: n.source.clone(),
                        old_digest: o.bundle_digest().clone(),
                        new_digest: n.bundle_digest().clone(),
                        platforms_added: np.iter().filter(|p| !os.contains(p)).cloned().collect(),
                        platforms_removed: op.iter().filter(|p| !ns.contains(p)).cloned().collect(),
                        old_bytes: o.total_size,
                        new_bytes: n.total_size,
                    });
                }
            }
        }
        for (src, o) in &olds {
            if !news.contains_key(src) {
                diff.removed.push(one_side(o));
            }
        }
        diff
    }

    /// Whether the two sets are the same images at the same digests.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// An upper bound of what the new set needs beyond the old one, from the locks alone:
    /// the added and changed images whole.
    pub fn bytes_at_most(&self) -> u64 {
        self.added
            .iter()
            .map(|a| a.bytes)
            .chain(self.changed.iter().map(|c| c.new_bytes))
            .fold(0u64, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests;
