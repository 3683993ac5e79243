//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse>), as cosign stores an
//! attestation (`.att` layers of media type `application/vnd.dsse.envelope.v1+json`) and as a
//! sigstore bundle may carry a signature: `{"payloadType", "payload" (base64), "signatures":
//! [{"keyid", "sig" (base64)}]}`. A signature is over the pre-authentication encoding (PAE)
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, never over the JSON itself, so the
//! envelope's own bytes (its whitespace, its key order) do not matter to it.
//!
//! An in-toto statement (`payloadType` `application/vnd.in-toto+json`) names its subjects by
//! digest; [`Statement::names`] says whether one of them is the image being checked.

use base64::Engine as _;
use serde::Deserialize;

use ferry_oci::digest::Digest;

use super::PublicKey;

/// The payload type of an in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The most signatures of one envelope that are tried.
pub const MAX_ENVELOPE_SIGNATURES: usize = 16;

/// The most subjects of one statement that are read.
pub const MAX_SUBJECTS: usize = 1024;

/// Why an envelope or its statement cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsseError {
    /// Not the JSON of an envelope.
    #[error("not a DSSE envelope: {0}")]
    Json(String),
    /// `payload` or a `sig` is not base64.
    #[error("the DSSE envelope's {0} is not base64")]
    Base64(&'static str),
    /// No signature at all.
    #[error("the DSSE envelope has no signature")]
    Unsigned,
    /// The payload is not an in-toto statement.
    #[error("the DSSE payload is not an in-toto statement: {0}")]
    Statement(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    payload_type: String,
    payload: String,
    #[serde(default)]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The signer's hint (often empty).
    pub keyid: String,
    /// The signature bytes.
    pub sig: Vec<u8>,
}

/// A parsed DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What the payload is (`application/vnd.in-toto+json` for an attestation).
    pub payload_type: String,
    /// The payload's bytes, decoded.
    pub payload: Vec<u8>,
    /// Its signatures (at most [`MAX_ENVELOPE_SIGNATURES`]).
    pub signatures: Vec<EnvelopeSignature>,
}

/// Decodes DSSE's base64: the spec allows the standard and the URL-safe alphabet, with or
/// without padding.
fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .ok()
}

/// The pre-authentication encoding a DSSE signature is over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Parses an envelope's JSON (the caller caps its size).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, DsseError> {
        let raw: RawEnvelope =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Json(e.to_string()))?;
        let payload = decode(&raw.payload).ok_or(DsseError::Base64("payload"))?;
        let signatures = raw
            .signatures
            .into_iter()
            .take(MAX_ENVELOPE_SIGNATURES)
            .map(|s| {
                Ok(EnvelopeSignature {
                    keyid: s.keyid,
                    sig: decode(&s.sig).ok_or(DsseError::Base64("signature"))?,
                })
            })
            .collect::<Result<Vec<_>, DsseError>>()?;
        if signatures.is_empty() {
            return Err(DsseError::Unsigned);
        }
        Ok(Envelope {
            payload_type: raw.payload_type,
            payload,
            signatures,
        })
    }

    /// The bytes its signatures are over.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// True when one of its signatures is valid for `key`.
    pub fn verifies(&self, key: &PublicKey) -> bool {
        let message = self.pae();
        self.signatures
            .iter()
            .any(|s| key.verifies(&message, &s.sig))
    }

    /// Its payload read as an in-toto statement.
    pub fn statement(&self) -> Result<Statement, DsseError> {
        if self.payload_type != IN_TOTO {
            return Err(DsseError::Statement(format!(
                "its payload type is {:?}, not {IN_TOTO}",
                self.payload_type
            )));
        }
        Statement::parse(&self.payload)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    predicate_type: String,
    #[serde(default)]
    subject: Vec<RawSubject>,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// What an in-toto statement says, as far as a check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The predicate's type (SLSA provenance, SPDX, CycloneDX, cosign's own sign predicate).
    pub predicate_type: String,
    /// Its subjects: name and sha256 (lowercase hex), at most [`MAX_SUBJECTS`]; subjects
    /// without a sha256 are left out.
    pub subjects: Vec<(String, String)>,
}

impl Statement {
    /// Parses a statement (v0.1 or v1).
    pub fn parse(bytes: &[u8]) -> Result<Statement, DsseError> {
        let raw: RawStatement =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Statement(e.to_string()))?;
        if !raw.kind.starts_with("https://in-toto.io/Statement/") {
            return Err(DsseError::Statement(format!(
                "its _type is {:?}, not https://in-toto.io/Statement/…",
                raw.kind
            )));
        }
        let subjects = raw
            .subject
            .into_iter()
            .take(MAX_SUBJECTS)
            .filter_map(|s| {
                let hex = s.digest.get("sha256")?.to_ascii_lowercase();
                Some((s.name, hex))
            })
            .collect();
        Ok(Statement {
            predicate_type: raw.predicate_type,
            subjects,
        })
    }

    /// True when one of its subjects is `digest`.
    pub fn names(&self, digest: &Digest) -> bool {
        let text = digest.to_string();
        let Some(hex) = text.strip_prefix("sha256:") else {
            return false;
        };
        self.subjects.iter().any(|(_, h)| h == hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_spec_example() {
        // The DSSE protocol document's example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn bad_envelopes_are_named_not_panics() {
        for (bytes, want) in [
            (&b"{"[..], "not a DSSE envelope"),
            (
                br#"{"payloadType":"x","payload":"%%%","signatures":[{"sig":"AA=="}]}"#,
                "payload is not base64",
            ),
            (
                br#"{"payloadType":"x","payload":"AA==","signatures":[{"sig":"%%"}]}"#,
                "signature is not base64",
            ),
            (
                br#"{"payloadType":"x","payload":"AA==","signatures":[]}"#,
                "no signature",
            ),
            (br#"{"payloadType":"x","payload":"AA=="}"#, "no signature"),
            (br#"[1,2]"#, "not a DSSE envelope"),
        ] {
            let e = Envelope::parse(bytes).expect_err("refused");
            assert!(e.to_string().contains(want), "{e} / {want}");
        }
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_read() {
        let e = Envelope::parse(
            br#"{"payloadType":"t","payload":"-_8","signatures":[{"keyid":"k","sig":"-_8="}]}"#,
        )
        .expect("parsed");
        assert_eq!(e.payload, vec![0xfb, 0xff]);
        assert_eq!(e.signatures[0].sig, vec![0xfb, 0xff]);
    }

    #[test]
    fn a_statement_names_its_subjects() {
        let digest: Digest =
            "sha256:7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730"
                .parse()
                .expect("digest");
        let s = Statement::parse(
            br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[{"name":"a","digest":{"sha512":"00"}},{"name":"b","digest":{"sha256":"7D865E959B2466918C9863AFCA942D0FB89D7C9AC0C99BAFC3749504DED97730"}}],"predicate":{}}"#,
        )
        .expect("statement");
        assert_eq!(s.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(s.subjects.len(), 1);
        assert!(s.names(&digest));
        let other: Digest =
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .expect("digest");
        assert!(!s.names(&other));
        let e = Statement::parse(br#"{"_type":"https://example.com/x","subject":[]}"#)
            .expect_err("refused");
        assert!(e.to_string().contains("_type"), "{e}");
    }
}
