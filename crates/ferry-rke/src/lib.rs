//! Everything ferry knows about Rancher RKE: the system-image catalog (embedded, or a KDM
//! `data.json` from a file or a URL, cached), RKE's version filtering rules, `cluster.yml`, and
//! how `rke config --system-images` and `rke up` turn those into an image list. Every file
//! or answer read here is untrusted and read under a cap ([`ferry_base::bounded`], [`remote::MAX_BYTES`],
//! the catalog's version and field caps).
//!
//! The rules follow RKE v1.6.3 and KDM release-v2.9 (`rancher/rke`, `rancher/kontainer-driver-metadata`).

#![deny(missing_docs)]

pub mod addons;
pub mod catalog;
pub mod cluster;
pub mod fields;
pub mod gotemplate;
pub mod goversion;
pub mod list;
pub mod remote;
pub mod selection;
pub mod semver;
pub mod usage;
pub mod user_addons;

pub use catalog::{Catalog, MetadataError, MetadataSource};
pub use cluster::{ClusterConfig, ClusterError, PrivateRegistry};
pub use list::{ImageEntry, ListError, ListOptions};
pub use remote::{RemoteError, RemoteOptions};
pub use selection::{Select, Selection};

/// The RKE release whose behaviour ferry reproduces by default.
pub const DEFAULT_RKE_VERSION: &str = "v1.6.3";

/// `4500000` as `4,500,000`, for counts in messages.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
