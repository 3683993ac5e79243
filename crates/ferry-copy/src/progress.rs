//! The [`Reporter`] the copy engine calls as work progresses. The library only emits events;
//! the CLI renders them (indicatif bars on a terminal, nothing when piped), and tests can
//! record them.

use ferry_oci::digest::Digest;

/// Receives progress events. Every method has an empty default.
pub trait Reporter: Send + Sync {
    /// The work is known: this many blobs and bytes may need to move.
    fn planned(&self, _blobs: u64, _bytes: u64) {}
    /// A blob transfer started.
    fn started(&self, _digest: &Digest, _size: u64) {}
    /// New bytes arrived (for any transfer, including a resumed prefix).
    fn bytes(&self, _n: u64) {}
    /// A blob transfer finished (`moved` false when it was already present and skipped).
    fn finished(&self, _digest: &Digest, _size: u64, _moved: bool) {}
    /// An image is complete (or failed).
    fn image(&self, _name: &str, _ok: bool) {}
}
