//! ferry's test harness, as a dev-only crate (like cargo's `cargo-test-support`): real
//! registries ([`registry`]: CNCF distribution on 127.0.0.1) in every auth mode ferry must
//! handle, with an in-process token server ([`token`]); deterministic fixture images
//! ([`fixtures`], [`blobs`]) and real-world shapes ([`shapes`]) seeded byte-exactly into
//! registry storage ([`seed`]); a fault proxy ([`proxy`]) and a lying registry ([`lying`]) for
//! what a real registry will not do; TLS material ([`tls`]) and a tiny HTTP layer ([`http`]);
//! a runnable busybox image ([`busybox`]) and the engines that pull it ([`engines`]: Docker,
//! containerd's `ctr`, podman).
//!
//! Everything is per test (free loopback ports, temp dirs), and every process or thread it
//! starts stops on Drop. All traffic stays on 127.0.0.1. The integration tests (`tests/it`)
//! and the benchmark environment (`examples/bench_env.rs`) use it.

pub mod blobs;
pub mod busybox;
pub mod docker_archive;
pub mod engines;
pub mod fixtures;
pub mod http;
pub mod lying;
pub mod proxy;
pub mod registry;
pub mod seed;
pub mod shapes;
pub mod static_files;
pub mod tls;
pub mod token;

use sha2::{Digest, Sha256};

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}
