//! Everything ferry knows about Rancher RKE: the system-image catalog (embedded, or a KDM
//! `data.json` from a file or a URL, cached), RKE's version filtering rules, `cluster.yml`, and
//! how `rke config --system-images` and `rke up` turn those into an image list.
//!
//! Reference: `RKE.md` in the shared docs (RKE v1.6.3, KDM release-v2.9).

pub mod catalog;
pub mod cluster;
pub mod fields;
pub mod goversion;
pub mod list;
pub mod remote;
pub mod selection;

pub use catalog::{Catalog, MetadataError, MetadataSource};
pub use cluster::{ClusterConfig, ClusterError, PrivateRegistry};
pub use list::{ImageEntry, ListError, ListOptions};
pub use remote::{RemoteError, RemoteOptions};
pub use selection::{Select, Selection};

/// The RKE release whose behaviour ferry reproduces by default.
pub const DEFAULT_RKE_VERSION: &str = "v1.6.3";
