//! [`DigestError`]: why a string is not a valid digest, quoting the (shortened) input.

/// How many characters of a rejected input an error message quotes.
const MAX_QUOTED_CHARS: usize = 100;

/// Shortens `input` to at most [`MAX_QUOTED_CHARS`] characters (adding `…` when cut), so that
/// error messages stay readable even when the input came from an untrusted, huge document.
pub fn truncate_for_message(input: &str) -> String {
    match input.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", input.get(..cut).unwrap_or_default()),
        None => input.to_owned(),
    }
}

use super::Algorithm;

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
