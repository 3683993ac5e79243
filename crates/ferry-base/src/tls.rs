//! The one TLS crypto provider of the process: rustls on *ring*.
//!
//! ring, not aws-lc-rs: the same TLS 1.2/1.3 suites for what ferry does (HTTPS to registries,
//! `ferry serve`), and no C build of AWS-LC (with cmake, and its own 30-odd seconds) in the
//! way of a first `cargo build --release`. reqwest is built without a provider of its own
//! (`rustls-no-provider`) and takes the process default, which [`install`] sets before any
//! client is built.

use std::sync::{Arc, Once};

/// The provider, for configurations built by hand (`ferry serve`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide default provider (once; harmless when one is already set).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err: another default was installed first (a test harness); it is used instead.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
