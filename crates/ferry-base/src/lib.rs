//! The ground every ferry layer stands on, and nothing else: [`secret`] (credentials that
//! never print), [`tls`] (the one process-wide rustls provider), [`env_vars`] (every
//! environment variable ferry reads, declared once), [`bounded`] and [`fsutil`] (small file
//! reads with a cap, atomic writes), and [`chain`] (an error and its sources as one line).
//!
//! Nothing here knows images, stores or RKE; see ARCHITECTURE.md for the layers above.
#![deny(missing_docs)]

pub mod bounded;
pub mod chain;
pub mod env_vars;
pub mod fsutil;
pub mod secret;
pub mod tls;
