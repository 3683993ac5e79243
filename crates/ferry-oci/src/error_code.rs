//! The `code` of a distribution-spec error body (`{"errors":[{"code","message","detail"}]}`),
//! as one enum for both sides: the registry client reads it from what registries answer and
//! `serve` writes it. The spec's codes (distribution-spec, "Error Codes") are variants, plus
//! the two `serve` answers with beyond them (`UNAVAILABLE`, CNCF distribution's code for a
//! 503, and `NOT_FOUND` for a path outside the API); any other code a real registry sends is
//! kept verbatim in [`ErrorCode::Other`], so reading a body never fails on its code and a
//! message shows the registry's code byte for byte.

use std::fmt;

/// One error code of the distribution API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`: the blob is unknown to the repository.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload failed and cannot proceed.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: the upload session is unknown.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: the digest is malformed or does not match the content.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest pushed references an unknown blob.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest failed validation.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: the manifest (by tag or digest) is unknown to the repository.
    ManifestUnknown,
    /// `NAME_INVALID`: the repository name is malformed.
    NameInvalid,
    /// `NAME_UNKNOWN`: the repository is unknown.
    NameUnknown,
    /// `SIZE_INVALID`: the length does not match the content.
    SizeInvalid,
    /// `UNAUTHORIZED`: authentication required.
    Unauthorized,
    /// `DENIED`: access to the resource denied.
    Denied,
    /// `UNSUPPORTED`: the operation is unsupported.
    Unsupported,
    /// `TOOMANYREQUESTS`: rate limited.
    TooManyRequests,
    /// `UNAVAILABLE`: the service is unavailable for now (CNCF distribution, `serve`'s 503).
    Unavailable,
    /// `NOT_FOUND`: not an API path (`serve`; also Harbor's own API).
    NotFound,
    /// Any other code, exactly as received (empty when the body named none). Build it with
    /// [`ErrorCode::from`], which never puts a known code here.
    Other(String),
}

impl ErrorCode {
    /// Every code with a variant of its own, in the spec's order (then `serve`'s two).
    pub const KNOWN: [ErrorCode; 16] = [
        ErrorCode::BlobUnknown,
        ErrorCode::BlobUploadInvalid,
        ErrorCode::BlobUploadUnknown,
        ErrorCode::DigestInvalid,
        ErrorCode::ManifestBlobUnknown,
        ErrorCode::ManifestInvalid,
        ErrorCode::ManifestUnknown,
        ErrorCode::NameInvalid,
        ErrorCode::NameUnknown,
        ErrorCode::SizeInvalid,
        ErrorCode::Unauthorized,
        ErrorCode::Denied,
        ErrorCode::Unsupported,
        ErrorCode::TooManyRequests,
        ErrorCode::Unavailable,
        ErrorCode::NotFound,
    ];

    /// The code as it is on the wire (`MANIFEST_UNKNOWN`; an [`ErrorCode::Other`] verbatim).
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Other(code) => code,
        }
    }

    /// True for the spec's "does not exist" codes: `BLOB_UNKNOWN`, `BLOB_UPLOAD_UNKNOWN`,
    /// `MANIFEST_BLOB_UNKNOWN`, `MANIFEST_UNKNOWN`, `NAME_UNKNOWN`.
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            ErrorCode::BlobUnknown
                | ErrorCode::BlobUploadUnknown
                | ErrorCode::ManifestBlobUnknown
                | ErrorCode::ManifestUnknown
                | ErrorCode::NameUnknown
        )
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> ErrorCode {
        ErrorCode::KNOWN
            .into_iter()
            .find(|k| k.as_str() == code)
            .unwrap_or_else(|| ErrorCode::Other(code.to_owned()))
    }
}

impl From<String> for ErrorCode {
    fn from(code: String) -> ErrorCode {
        match ErrorCode::from(code.as_str()) {
            ErrorCode::Other(_) => ErrorCode::Other(code),
            known => known,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    /// Any string: a code without a variant becomes [`ErrorCode::Other`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        String::deserialize(d).map(ErrorCode::from)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_known_code_round_trips_as_its_screaming_string() {
        let known = ErrorCode::KNOWN;
        let mut seen = std::collections::BTreeSet::new();
        for code in &known {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(code.to_string(), s);
            assert_eq!(&ErrorCode::from(s), code);
            assert_eq!(&ErrorCode::from(s.to_owned()), code);
            let json = serde_json::to_string(code).expect("serialize");
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(
                &serde_json::from_str::<ErrorCode>(&json).expect("deserialize"),
                code
            );
        }
        assert_eq!(
            ErrorCode::from("MANIFEST_BLOB_UNKNOWN"),
            ErrorCode::ManifestBlobUnknown
        );
        assert_eq!(
            ErrorCode::TooManyRequests.as_str(),
            "TOOMANYREQUESTS",
            "no underscore, as the spec spells it"
        );
    }

    #[test]
    fn an_unknown_code_is_kept_byte_for_byte() {
        for raw in [
            "TAG_INVALID",
            "manifest_unknown",
            "",
            "Ünïcode CODE",
            "UNKNOWN",
        ] {
            let code: ErrorCode = serde_json::from_str(&serde_json::to_string(raw).expect("json"))
                .expect("never fails");
            assert_eq!(code, ErrorCode::Other(raw.to_owned()));
            assert_eq!(code.as_str(), raw);
            assert_eq!(code.to_string(), raw);
            assert_eq!(
                serde_json::to_string(&code).expect("serialize"),
                serde_json::to_string(raw).expect("json")
            );
        }
    }

    #[test]
    fn unknown_means_the_spec_unknown_codes_only() {
        let unknown: Vec<&str> = ErrorCode::KNOWN
            .iter()
            .filter(|c| c.is_unknown())
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(
            unknown,
            [
                "BLOB_UNKNOWN",
                "BLOB_UPLOAD_UNKNOWN",
                "MANIFEST_BLOB_UNKNOWN",
                "MANIFEST_UNKNOWN",
                "NAME_UNKNOWN"
            ]
        );
        assert!(!ErrorCode::NotFound.is_unknown());
        assert!(!ErrorCode::from("TAG_UNKNOWN").is_unknown());
    }
}
