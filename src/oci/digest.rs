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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC_SHA512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    fn parse(s: &str) -> Digest {
        match Digest::parse(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish().as_str(), ABC_SHA512);
    }

    #[test]
    fn accessors() {
        let d = parse(EMPTY_SHA256);
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.kind(), Algorithm::Sha256);
        assert_eq!(d.hex(), &EMPTY_SHA256[7..]);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(
            d.blob_path(),
            format!("blobs/sha256/{}", &EMPTY_SHA256[7..])
        );
        let d512 = parse(ABC_SHA512);
        assert_eq!(d512.algorithm(), "sha512");
        assert_eq!(d512.hex().len(), 128);
        assert_eq!(EMPTY_SHA256.parse::<Digest>(), Ok(d));
    }

    #[test]
    fn rejections_are_precise() {
        let hex = &EMPTY_SHA256[7..];
        assert_eq!(Digest::parse(""), Err(DigestError::Empty));
        assert!(matches!(
            Digest::parse(hex),
            Err(DigestError::MissingAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse(&format!("md5:{hex}")),
            Err(DigestError::UnsupportedAlgorithm { algorithm, .. }) if algorithm == "md5"
        ));
        assert!(matches!(
            Digest::parse(&format!("SHA256:{hex}")),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse("sha256:../../etc/passwd"),
            Err(DigestError::NotHex {
                character: '.',
                index: 7,
                ..
            })
        ));
        assert!(matches!(
            Digest::parse(&format!("sha256:{}", hex.to_uppercase())),
            Err(DigestError::Uppercase {
                character: 'E',
                index: 7,
                ..
            })
        ));
        assert!(matches!(
            Digest::parse(&format!("sha512:{hex}")),
            Err(DigestError::WrongLength {
                expected: 128,
                actual: 64,
                ..
            })
        ));
        assert!(matches!(
            Digest::parse("sha256:"),
            Err(DigestError::WrongLength {
                expected: 64,
                actual: 0,
                ..
            })
        ));
        let msg = Digest::parse("sha256:abc")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "invalid digest \"sha256:abc\": sha256 digests have exactly 64 hex digits, found 3"
        );
    }

    #[test]
    fn long_inputs_are_truncated_in_messages() {
        let long = format!("sha256:{}", "z".repeat(10_000));
        let Err(err) = Digest::parse(&long) else {
            panic!("must fail")
        };
        let msg = err.to_string();
        assert!(msg.len() < 300, "{msg}");
        assert!(msg.contains('…'));
        // Truncation is by characters, never splitting a UTF-8 sequence.
        let Err(err) = Digest::parse(&"é".repeat(500)) else {
            panic!("must fail")
        };
        assert!(err.to_string().contains(&format!("{}…", "é".repeat(100))));
    }

    #[test]
    fn serde_round_trip_and_validation() -> Result<(), serde_json::Error> {
        let d = parse(EMPTY_SHA256);
        let json = serde_json::to_string(&d)?;
        assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
        let back: Digest = serde_json::from_str(&json)?;
        assert_eq!(back, d);
        let bad = serde_json::from_str::<Digest>("\"sha256:1234\"");
        assert!(bad.is_err_and(|e| e.to_string().contains("64 hex digits")));
        Ok(())
    }

    #[test]
    fn verifier_basic() {
        let data = b"hello world";
        let d = Digest::sha256_of(data);
        let mut v = Verifier::new(d.clone(), Some(11));
        assert_eq!(v.update(b"hello "), Ok(()));
        assert_eq!(v.update(b"world"), Ok(()));
        assert_eq!(v.bytes_seen(), 11);
        assert_eq!(v.finish(), Ok(()));

        let mut v = Verifier::new(d.clone(), Some(11));
        assert_eq!(
            v.update(b"hello worlds"),
            Err(VerifyError::TooLarge { expected: 11 })
        );

        let mut v = Verifier::new(d.clone(), None);
        assert_eq!(v.update(b"hello"), Ok(()));
        let err = v.finish();
        assert!(
            matches!(&err, Err(VerifyError::DigestMismatch { expected, .. }) if *expected == d)
        );
        let msg = err.map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains(d.as_str()) && msg.contains(Digest::sha256_of(b"hello").as_str()));

        let mut v = Verifier::new(d, Some(11));
        assert_eq!(v.update(b"hello"), Ok(()));
        assert_eq!(
            v.finish(),
            Err(VerifyError::SizeMismatch {
                expected: 11,
                actual: 5
            })
        );
    }

    #[test]
    fn verifier_with_prefix_resumes() -> io::Result<()> {
        let data = b"0123456789abcdef";
        let d512 = {
            let mut h = Hasher::new(Algorithm::Sha512);
            h.update(data);
            h.finish()
        };
        let mut v = Verifier::with_prefix(d512, Some(16), &data[..10])?;
        assert_eq!(v.bytes_seen(), 10);
        assert_eq!(v.update(&data[10..]), Ok(()));
        assert_eq!(v.finish(), Ok(()));

        let err = Verifier::with_prefix(Digest::sha256_of(data), Some(4), &data[..])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        Ok(())
    }

    /// 64 lowercase hex characters.
    fn hex64() -> impl Strategy<Value = String> {
        "[0-9a-f]{64}"
    }

    proptest! {
        #[test]
        fn any_sha256_hex_round_trips(hex in hex64()) {
            let text = format!("sha256:{hex}");
            let d = Digest::parse(&text);
            prop_assert!(d.is_ok());
            let d = d.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(d.as_str(), text.as_str());
            prop_assert_eq!(d.hex(), hex.as_str());
            prop_assert_eq!(d.to_string().parse::<Digest>(), Ok(d.clone()));
        }

        #[test]
        fn any_sha512_hex_round_trips(hex in "[0-9a-f]{128}") {
            let text = format!("sha512:{hex}");
            prop_assert_eq!(Digest::parse(&text).map(|d| d.to_string()), Ok(text));
        }

        #[test]
        fn mutations_are_rejected(hex in hex64(), pos in 0usize..64, kind in 0u8..6) {
            let mut chars: Vec<char> = hex.chars().collect();
            let text = match kind {
                // uppercase character (force a letter)
                0 => { chars[pos] = 'A'; format!("sha256:{}", chars.iter().collect::<String>()) }
                // extra character
                1 => { chars.insert(pos, 'a'); format!("sha256:{}", chars.iter().collect::<String>()) }
                // missing character
                2 => { chars.remove(pos); format!("sha256:{}", chars.iter().collect::<String>()) }
                // wrong prefix
                3 => format!("sha384:{hex}"),
                // slash inside
                4 => { chars[pos] = '/'; format!("sha256:{}", chars.iter().collect::<String>()) }
                // no prefix at all
                _ => hex.clone(),
            };
            prop_assert!(Digest::parse(&text).is_err(), "accepted {}", text);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Digest::parse(&s);
        }

        #[test]
        fn verifier_accepts_any_chunking(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let d = Digest::sha256_of(&data);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            let mut v = Verifier::new(d, Some(data.len() as u64));
            for w in points.windows(2) {
                prop_assert_eq!(v.update(&data[w[0]..w[1]]), Ok(()));
            }
            prop_assert_eq!(v.bytes_seen(), data.len() as u64);
            prop_assert_eq!(v.finish(), Ok(()));
        }

        #[test]
        fn verifier_rejects_corruption(
            data in proptest::collection::vec(any::<u8>(), 1..1024),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let d = Digest::sha256_of(&data);
            let size = Some(data.len() as u64);
            let i = at.index(data.len());

            // one flipped byte
            let mut flipped = data.clone();
            flipped[i] ^= 1 << bit;
            let mut v = Verifier::new(d.clone(), size);
            prop_assert_eq!(v.update(&flipped), Ok(()));
            let flipped_result = v.finish();
            prop_assert!(matches!(flipped_result, Err(VerifyError::DigestMismatch { .. })), "flipped byte accepted");

            // the same corruption without a known size is still caught
            let mut v = Verifier::new(d.clone(), None);
            prop_assert_eq!(v.update(&flipped), Ok(()));
            prop_assert!(v.finish().is_err());

            // one extra byte
            let mut v = Verifier::new(d.clone(), size);
            prop_assert_eq!(v.update(&data), Ok(()));
            prop_assert_eq!(v.update(&[0]), Err(VerifyError::TooLarge { expected: data.len() as u64 }));
            let mut longer = data.clone();
            longer.insert(i, 0);
            let mut v = Verifier::new(d.clone(), None);
            prop_assert_eq!(v.update(&longer), Ok(()));
            prop_assert!(matches!(v.finish(), Err(VerifyError::DigestMismatch { .. })), "wrong content accepted");

            // one missing byte
            let mut shorter = data.clone();
            shorter.remove(i);
            let mut v = Verifier::new(d.clone(), size);
            prop_assert_eq!(v.update(&shorter), Ok(()));
            let short_result = v.finish();
            prop_assert_eq!(
                short_result,
                Err(VerifyError::SizeMismatch { expected: data.len() as u64, actual: data.len() as u64 - 1 })
            );
            let mut v = Verifier::new(d, None);
            prop_assert_eq!(v.update(&shorter), Ok(()));
            prop_assert!(matches!(v.finish(), Err(VerifyError::DigestMismatch { .. })), "wrong content accepted");
        }
    }
}
