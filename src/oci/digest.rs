//! Content digests: the validated [`Digest`] type (`sha256:<hex>` / `sha512:<hex>`), the
//! incremental [`Hasher`] that produces one, and the streaming [`Verifier`] that checks
//! content against an expected digest and size while it is being transferred.
//!
//! A [`Digest`] can only be built from a string that passed [`Digest::parse`] (or from a
//! [`Hasher`]), so its text is always `<algorithm>:<lowercase hex>` and is safe to use as a
//! file-system path component (see [`Digest::blob_path`]).

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// How many characters of a rejected input an error message quotes.
const MAX_QUOTED_CHARS: usize = 100;

/// Shortens `input` to at most [`MAX_QUOTED_CHARS`] characters (adding `…` when cut), so that
/// error messages stay readable even when the input came from an untrusted, huge document.
pub(crate) fn truncate_for_message(input: &str) -> String {
    match input.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", input.get(..cut).unwrap_or_default()),
        None => input.to_owned(),
    }
}

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

/// Why a string is not a valid digest. Every message quotes the (truncated) input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The input was the empty string.
    #[error("invalid digest \"\": the digest is empty (expected sha256:<64 lowercase hex digits>)")]
    Empty,
    /// The input has no `:` separating the algorithm from the hex.
    #[error(
        "invalid digest {input:?}: missing the \"<algorithm>:\" prefix (expected sha256:<64 lowercase hex digits>)"
    )]
    MissingAlgorithm {
        /// The rejected input, truncated to 100 characters.
        input: String,
    },
    /// The algorithm before the `:` is not `sha256` or `sha512`.
    #[error(
        "invalid digest {input:?}: unsupported algorithm {algorithm:?} (only sha256 and sha512 are supported)"
    )]
    UnsupportedAlgorithm {
        /// The rejected input, truncated to 100 characters.
        input: String,
        /// The algorithm part as written, truncated to 100 characters.
        algorithm: String,
    },
    /// The hex part contains an uppercase hex digit (`A`–`F`); digests are lowercase.
    #[error(
        "invalid digest {input:?}: uppercase hex digit {character:?} at index {index} (digests must be lowercase hex)"
    )]
    Uppercase {
        /// The rejected input, truncated to 100 characters.
        input: String,
        /// The offending character.
        character: char,
        /// Character index of the offending character within the whole input.
        index: usize,
    },
    /// The hex part contains a character that is not a hex digit at all.
    #[error(
        "invalid digest {input:?}: {character:?} at index {index} is not a lowercase hex digit (0-9, a-f)"
    )]
    NotHex {
        /// The rejected input, truncated to 100 characters.
        input: String,
        /// The offending character.
        character: char,
        /// Character index of the offending character within the whole input.
        index: usize,
    },
    /// The hex part has the wrong number of digits for the algorithm.
    #[error(
        "invalid digest {input:?}: {algorithm} digests have exactly {expected} hex digits, found {actual}"
    )]
    WrongLength {
        /// The rejected input, truncated to 100 characters.
        input: String,
        /// The (supported) algorithm the input names.
        algorithm: Algorithm,
        /// The number of hex digits the algorithm requires.
        expected: usize,
        /// The number of characters found after the `:`.
        actual: usize,
    },
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

/// Why streamed content does not match what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// All bytes arrived, but they hash to a different digest.
    #[error("content digest mismatch: expected {expected}, but the content hashes to {actual}")]
    DigestMismatch {
        /// The digest the content should have had.
        expected: Digest,
        /// The digest of the content actually received.
        actual: Digest,
    },
    /// More bytes arrived than the expected size; reported as soon as it happens.
    #[error("content is larger than the expected {expected} bytes")]
    TooLarge {
        /// The expected size in bytes.
        expected: u64,
    },
    /// The content ended with a different size than expected.
    #[error("content size mismatch: expected {expected} bytes, received {actual} bytes")]
    SizeMismatch {
        /// The expected size in bytes.
        expected: u64,
        /// The number of bytes received.
        actual: u64,
    },
}

/// Verifies content against an expected digest (and optionally size) while it streams.
///
/// Feed every chunk to [`Verifier::update`], then call [`Verifier::finish`]. After `update`
/// returned an error the verifier must not be used further (the offending chunk was not
/// consumed).
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Hasher,
    seen: u64,
}

impl Verifier {
    /// A verifier expecting content with digest `expected` and, if given, exactly
    /// `expected_size` bytes.
    pub fn new(expected: Digest, expected_size: Option<u64>) -> Verifier {
        let hasher = Hasher::new(expected.kind());
        Verifier {
            expected,
            expected_size,
            hasher,
            seen: 0,
        }
    }

    /// A verifier that has already consumed everything `prefix` yields, e.g. the partial file
    /// of an interrupted download that is about to be resumed.
    ///
    /// Fails with the reader's error, or with [`io::ErrorKind::InvalidData`] wrapping
    /// [`VerifyError::TooLarge`] if the prefix alone exceeds `expected_size`.
    pub fn with_prefix(
        expected: Digest,
        expected_size: Option<u64>,
        mut prefix: impl Read,
    ) -> io::Result<Verifier> {
        let mut verifier = Verifier::new(expected, expected_size);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match prefix.read(&mut buf) {
                Ok(0) => return Ok(verifier),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = buf.get(..n).unwrap_or(&[]);
            verifier
                .update(chunk)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    /// The digest the content must have.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// The size the content must have, if known.
    pub fn expected_size(&self) -> Option<u64> {
        self.expected_size
    }

    /// Feeds the next chunk. Fails with [`VerifyError::TooLarge`] as soon as the total would
    /// exceed the expected size (the chunk is then not consumed).
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), VerifyError> {
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        let total = self.seen.saturating_add(len);
        if let Some(expected) = self.expected_size
            && total > expected
        {
            return Err(VerifyError::TooLarge { expected });
        }
        self.hasher.update(chunk);
        self.seen = total;
        Ok(())
    }

    /// Number of bytes consumed so far (including any prefix).
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// Checks that the content is complete: the size (if expected) and then the digest.
    pub fn finish(self) -> Result<(), VerifyError> {
        if let Some(expected) = self.expected_size
            && self.seen != expected
        {
            return Err(VerifyError::SizeMismatch {
                expected,
                actual: self.seen,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(VerifyError::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
