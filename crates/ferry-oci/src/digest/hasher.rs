//! [`Hasher`]: computes a [`Digest`] over content fed in any number of chunks.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

use super::{Algorithm, Digest};

#[derive(Clone)]
enum HasherState {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Incrementally computes a [`Digest`] over bytes fed in any number of chunks.
#[derive(Clone)]
pub struct Hasher {
    state: HasherState,
}

impl Hasher {
    /// A hasher for `algorithm`; use `Hasher::new(expected.kind())` to hash content that is
    /// to be compared with an expected digest.
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => HasherState::Sha256(Sha256::new()),
            Algorithm::Sha512 => HasherState::Sha512(Sha512::new()),
        };
        Hasher { state }
    }

    /// A SHA-256 hasher.
    pub fn sha256() -> Hasher {
        Hasher::new(Algorithm::Sha256)
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            HasherState::Sha256(_) => Algorithm::Sha256,
            HasherState::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds more content.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            HasherState::Sha256(h) => h.update(bytes),
            HasherState::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        match self.state {
            HasherState::Sha256(h) => {
                Digest::from_parts(Algorithm::Sha256, hex::encode(h.finalize().as_slice()))
            }
            HasherState::Sha512(h) => {
                Digest::from_parts(Algorithm::Sha512, hex::encode(h.finalize().as_slice()))
            }
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}
