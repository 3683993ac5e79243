//! Content digests: the validated [`Digest`] type (`sha256:<hex>` / `sha512:<hex>`), the
//! incremental [`Hasher`] that produces one, and the streaming [`Verifier`] that checks
//! content against an expected digest and size while it is being transferred.
//!
//! A [`Digest`] can only be built from a string that passed [`Digest::parse`] (or from a
//! [`Hasher`]), so its text is always `<algorithm>:<lowercase hex>` and is safe to use as a
//! file-system path component (see [`Digest::blob_path`]).

mod error;
mod hasher;
mod verifier;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use error::DigestError;
pub use error::truncate_for_message;
pub use hasher::Hasher;
pub use verifier::{Verifier, VerifyError};

/// A digest algorithm that ferry can compute and verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256: `sha256:` followed by 64 lowercase hex digits. The OCI default.
    Sha256,
    /// SHA-512: `sha512:` followed by 128 lowercase hex digits.
    Sha512,
}

impl Algorithm {
    /// The algorithm identifier as it appears before the `:` of a digest (`sha256`, `sha512`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters an encoded digest of this algorithm has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_id(id: &str) -> Option<Algorithm> {
        match id {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated content digest such as `sha256:e3b0c442…b855`.
///
/// Invariant: the text is `sha256:` followed by exactly 64, or `sha512:` followed by exactly
/// 128, lowercase hex digits. Ordering and equality are those of the text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Digest {
    value: String,
}

impl Digest {
    /// Parses and validates a digest string.
    ///
    /// Accepts `sha256:` + 64 lowercase hex digits and `sha512:` + 128 lowercase hex digits;
    /// everything else is rejected with a [`DigestError`] saying what is wrong.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        if input.is_empty() {
            return Err(DigestError::Empty);
        }
        let Some((alg_id, hex)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                input: truncate_for_message(input),
            });
        };
        let Some(algorithm) = Algorithm::from_id(alg_id) else {
            return Err(DigestError::UnsupportedAlgorithm {
                input: truncate_for_message(input),
                algorithm: truncate_for_message(alg_id),
            });
        };
        let offset = alg_id.len() + 1; // the algorithm id is ASCII, so bytes == chars
        for (i, c) in hex.chars().enumerate() {
            if c.is_ascii_digit() || ('a'..='f').contains(&c) {
                continue;
            }
            let input = truncate_for_message(input);
            let index = offset + i;
            return Err(if ('A'..='F').contains(&c) {
                DigestError::Uppercase {
                    input,
                    character: c,
                    index,
                }
            } else {
                DigestError::NotHex {
                    input,
                    character: c,
                    index,
                }
            });
        }
        // All characters are ASCII hex now, so the byte length is the digit count.
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::WrongLength {
                input: truncate_for_message(input),
                algorithm,
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        Ok(Digest {
            value: input.to_owned(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::sha256();
        hasher.update(bytes);
        hasher.finish()
    }

    /// The algorithm of this digest.
    pub fn kind(&self) -> Algorithm {
        if self.value.starts_with("sha512:") {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        }
    }

    /// The algorithm identifier: `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.kind().as_str()
    }

    /// The lowercase hex part after the `:`.
    pub fn hex(&self) -> &str {
        self.value.split_once(':').map_or("", |(_, hex)| hex)
    }

    /// The full digest text, e.g. `sha256:e3b0…`.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The relative path of this blob in an OCI image layout: `blobs/<algorithm>/<hex>`.
    ///
    /// Safe to join onto a directory: validation guarantees the parts contain only
    /// `[a-z0-9]`, so there is no `/`, `..` or other special component.
    pub fn blob_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm(), self.hex())
    }

    /// The 32 bytes of a SHA-256 digest (`None` for another algorithm): a compact key that
    /// sorts like the text.
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        match self.kind() {
            Algorithm::Sha256 => hex::decode_to_slice(self.hex(), &mut out)
                .ok()
                .map(|()| out),
            Algorithm::Sha512 => None,
        }
    }

    /// The SHA-256 digest whose bytes are `bytes` (the inverse of [`Digest::sha256_bytes`]).
    pub fn from_sha256_bytes(bytes: &[u8; 32]) -> Digest {
        Digest::from_parts(Algorithm::Sha256, hex::encode(bytes))
    }

    fn from_parts(algorithm: Algorithm, hex: String) -> Digest {
        Digest {
            value: format!("{}:{hex}", algorithm.as_str()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
