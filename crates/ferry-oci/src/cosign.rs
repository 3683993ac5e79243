//! cosign's formats, as data: the tags it attaches to an image digest (`sha256-<hex>.sig`,
//! `.att`, `.sbom`), the OCI 1.1 referrers tag schema (`sha256-<hex>`, an index of the
//! manifests whose `subject` is that digest, for registries without the referrers API), the
//! media types and annotations of a signature manifest's layers, and
//! the simple-signing payload that a `.sig` layer signs. No cryptography here: checking a
//! signature is `ferry_verify::signature`'s job.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The layer media type of a cosign signature (its blob is the simple-signing payload).
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The layer media type of a cosign attestation (a DSSE envelope).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";

/// The layer annotation that holds the base64 signature over the layer's blob.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The payload's `critical.type` for an image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The largest simple-signing payload read (real ones are about 250 bytes; cosign's optional
/// claims can add a few KiB).
pub const MAX_PAYLOAD: u64 = 64 * 1024;

/// What a cosign tag attaches to its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attachment {
    /// Signatures (`.sig`).
    Sig,
    /// Attestations (`.att`).
    Att,
    /// SBOMs (`.sbom`).
    Sbom,
    /// The OCI 1.1 referrers tag schema (`sha256-<hex>`): an index of the referrers.
    Referrers,
}

impl Attachment {
    /// Every kind, in the order they are looked up.
    pub const ALL: [Attachment; 4] = [
        Attachment::Sig,
        Attachment::Att,
        Attachment::Sbom,
        Attachment::Referrers,
    ];

    /// Its name in the lock: `sig`, `att`, `sbom` or `referrers`.
    pub fn name(self) -> &'static str {
        match self {
            Attachment::Sig => "sig",
            Attachment::Att => "att",
            Attachment::Sbom => "sbom",
            Attachment::Referrers => "referrers",
        }
    }

    /// The tag for this kind attached to `subject`: `sha256-<hex>.sig` (cosign), or
    /// `sha256-<hex>` (the referrers tag schema).
    pub fn tag_for(self, subject: &Digest) -> String {
        match self {
            Attachment::Referrers => format!("{}-{}", subject.algorithm(), subject.hex()),
            k => format!("{}-{}.{}", subject.algorithm(), subject.hex(), k.name()),
        }
    }

    /// The kind and subject a tag names, if it is one of these.
    pub fn parse_tag(tag: &str) -> Option<(Attachment, Digest)> {
        let (stem, kind) = match tag.rsplit_once('.') {
            Some((stem, suffix)) => (
                stem,
                Attachment::ALL
                    .into_iter()
                    .find(|k| *k != Attachment::Referrers && k.name() == suffix)?,
            ),
            None => (tag, Attachment::Referrers),
        };
        let (algorithm, hex) = stem.split_once('-')?;
        let digest = Digest::parse(&format!("{algorithm}:{hex}")).ok()?;
        Some((kind, digest))
    }
}

impl std::fmt::Display for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Attachment::Sig => "signature",
            Attachment::Att => "attestation",
            Attachment::Sbom => "SBOM",
            Attachment::Referrers => "referrers index",
        })
    }
}

/// The parts of a simple-signing payload that verification reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `critical.image.docker-manifest-digest`: the digest the signature is for.
    pub digest: Digest,
    /// `critical.identity.docker-reference`: the repository it was signed under (upstream).
    pub reference: String,
}

/// Why a payload cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of the simple-signing shape.
    #[error("the signed payload is not a cosign simple-signing document: {0}")]
    Shape(String),
    /// Another `critical.type`.
    #[error("the signed payload has type {0:?}, not {SIGNATURE_TYPE:?}")]
    Type(String),
    /// The digest is not a digest.
    #[error("the signed payload names {0:?}, which is not a digest")]
    Digest(String),
}

#[derive(Deserialize)]
struct RawPayload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(default)]
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct Identity {
    #[serde(rename = "docker-reference", default)]
    docker_reference: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl Payload {
    /// Parses the payload bytes (the signed bytes themselves; never re-serialised).
    pub fn parse(bytes: &[u8]) -> Result<Payload, PayloadError> {
        let raw: RawPayload =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Shape(e.to_string()))?;
        if raw.critical.kind != SIGNATURE_TYPE {
            return Err(PayloadError::Type(raw.critical.kind));
        }
        let digest = Digest::parse(&raw.critical.image.docker_manifest_digest)
            .map_err(|_| PayloadError::Digest(raw.critical.image.docker_manifest_digest))?;
        Ok(Payload {
            digest,
            reference: raw.critical.identity.docker_reference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let d = Digest::sha256_of(b"x");
        let tag = Attachment::Sig.tag_for(&d);
        assert_eq!(tag, format!("sha256-{}.sig", d.hex()));
        assert_eq!(
            Attachment::parse_tag(&tag),
            Some((Attachment::Sig, d.clone()))
        );
        assert_eq!(
            Attachment::parse_tag(&Attachment::Sbom.tag_for(&d)),
            Some((Attachment::Sbom, d.clone()))
        );
        let referrers = Attachment::Referrers.tag_for(&d);
        assert_eq!(referrers, format!("sha256-{}", d.hex()));
        assert_eq!(
            Attachment::parse_tag(&referrers),
            Some((Attachment::Referrers, d.clone()))
        );
        assert_eq!(Attachment::parse_tag("v1.2.3"), None);
        assert_eq!(Attachment::parse_tag("latest"), None);
        assert_eq!(Attachment::parse_tag("sha256-zz.sig"), None);
    }

    #[test]
    fn payload_is_read_as_cosign_writes_it() {
        let d = Digest::sha256_of(b"image");
        let text = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"docker.io/rancher/x"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        let p = Payload::parse(text.as_bytes()).expect("payload");
        assert_eq!(p.digest, d);
        assert_eq!(p.reference, "docker.io/rancher/x");
        assert!(matches!(
            Payload::parse(text.replace("cosign container", "other").as_bytes()),
            Err(PayloadError::Type(_))
        ));
        assert!(matches!(Payload::parse(b"[]"), Err(PayloadError::Shape(_))));
    }
}
