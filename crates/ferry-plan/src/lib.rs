//! From an image list to a resolved plan: [`input`] reads image lists, [`resolve`] turns each
//! reference into digests and platforms through any [`ferry_store::Source`], and
//! [`lockfile`] reads and writes `images.lock`, the contract between export, import and verify;
//! [`inventory`] says what a bundle or lock holds, and [`diff`] how two locks differ.

#![deny(missing_docs)]

pub mod attached;
pub mod bundle;
pub mod delta;
pub mod diff;
pub mod image;
pub mod input;
pub mod inventory;
pub mod lockfile;
pub mod resolve;

pub use lockfile::{
    AttachedTo, InvalidSource, LockFile, LockedImage, LockedPlatform, ManifestCounts, Pin,
};
