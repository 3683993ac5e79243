//! [`Verifier`]: checks content against an expected digest and size while it streams, and
//! [`VerifyError`], what it finds when they differ.

use std::io::{self, Read};

use super::{Digest, Hasher};

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
