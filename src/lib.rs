//! ferry carries container images across an air gap.
//!
//! The pipeline, and the module that owns each stage:
//!
//! ```text
//! rke (image list) ─▶ plan (resolve to digests, images.lock) ─▶ copy (engine) ─▶ store (registry | bundle)
//!                                                              verify (lock vs a store)
//! ```
//!
//! Layering rules (kept by review, visible in `use` lines):
//! - [`oci`] is the pure model (references, digests, manifests, platforms, the platform
//!   filter); it does no I/O.
//! - [`rke`] knows RKE: the system-image catalog, `cluster.yml`, how RKE lists and rewrites,
//!   and which images a command works on.
//! - [`store`] speaks content: [`store::Source`] and [`store::Destination`] over descriptors,
//!   implemented where each backend lives (`store::registry`, `store::bundle`); it depends on
//!   `oci` only.
//! - [`plan`], [`copy`] and [`verify`] depend on `oci` and the store traits, never on a concrete
//!   backend (except [`verify::bundle`], the checks only a bundle file needs).
//! - [`commands`] is the only place where concrete stores are chosen and wired together;
//!   [`target`] names where images land, [`env_vars`] every environment variable.
//! - `main.rs` only parses arguments, runs a command and maps the result to an exit code.
#![deny(missing_docs)]

pub mod bounded;
pub mod chain;
pub mod cli;
pub mod commands;
pub mod copy;
pub mod env_vars;
pub mod error;
pub mod fsutil;
pub mod oci;
pub mod plan;
pub mod progress;
pub mod rke;
pub mod secret;
pub mod serve;
pub mod store;
pub mod target;
pub mod tls;
pub mod verify;
