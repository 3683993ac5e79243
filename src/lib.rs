//! ferry carries container images across an air gap. This crate is the command line: it
//! parses arguments ([`cli`]), chooses and wires concrete stores for each command
//! ([`commands`]), names where images land ([`target`]) and turns errors into messages and
//! exit codes ([`error`]). Everything else lives in the layer crates under `crates/`, lowest
//! first:
//!
//! ```text
//! ferry-base ─▶ ferry-oci ─▶ ferry-rke            (RKE's image lists)
//!                        └─▶ ferry-store ─▶ ferry-plan ─▶ ferry-copy | ferry-verify | ferry-serve
//! ```
//!
//! ARCHITECTURE.md at the repository root is the map: what each crate owns, the invariants,
//! and where to start reading for each command.
#![deny(missing_docs)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod target;
