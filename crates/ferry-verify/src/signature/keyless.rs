//! Keyless signatures, checked offline against a site's own trust root, as `cosign verify
//! --trusted-root … --certificate-identity … --certificate-oidc-issuer …` does:
//!
//! 1. the signing certificate's key verifies the signature;
//! 2. a Rekor entry of a log in the trust root vouches for it: its signed entry timestamp
//!    (SET) verifies with that log's key over the RFC 8785 canonical JSON of
//!    `{"body","integratedTime","logIndex","logID"}`, its inclusion proof (when the bundle has
//!    one) leads to a checkpoint signed by the same key, and its body names this very
//!    signature and certificate (so a SET of another entry does not pass); its
//!    `integratedTime` is the signing time;
//! 3. the certificate chains, with the code-signing EKU, to a CA of the trust root that was
//!    valid at the signing time, every certificate being within its own validity then
//!    (rustls-webpki);
//! 4. where the trust root names CT logs, an embedded SCT (RFC 6962, over the precertificate:
//!    the TBS without the SCT extension, and the issuer's key hash) verifies with one of them;
//! 5. the certificate's identity (its SAN: email or URI) and its OIDC issuer (Fulcio's
//!    extension `1.3.6.1.4.1.57264.1.8`, or the older `.1.1`) are the ones asked for.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest as _;
use x509_cert::der::asn1::OctetString;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::PublicKey;
use super::dsse::Envelope;
use super::sigstore::{RekorBody, TlogEntry};
use super::trust::{Log, TrustedRoot, rfc3339};

/// Fulcio's OIDC issuer extension (a DER UTF8String).
const FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's older OIDC issuer extension (the raw string).
const FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// RFC 6962's embedded SCT list.
const SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// subjectAltName.
const SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), as the DER value rustls-webpki compares.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// The most SCTs of one certificate that are tried.
const MAX_SCTS: usize = 16;

/// How an identity or issuer is matched: exactly, or by a regular expression that matches
/// anywhere in the value (Go's `regexp.MatchString`, as cosign's `-regexp` flags do; anchor
/// it with `^…$` to match the whole value).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The value itself.
    Exact(String),
    /// A pattern.
    Pattern(regex_lite::Regex),
}

impl Matcher {
    /// A pattern; the error is a sentence.
    pub fn pattern(text: &str) -> Result<Matcher, String> {
        regex_lite::Regex::new(text)
            .map(Matcher::Pattern)
            .map_err(|e| format!("{text:?} is not a regular expression: {e}"))
    }

    /// True when `value` is wanted.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(v) => v == value,
            Matcher::Pattern(p) => p.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(v) => write!(f, "{v:?}"),
            Matcher::Pattern(p) => write!(f, "/{}/", p.as_str()),
        }
    }
}

/// Why a keyless signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeylessError {
    /// The certificate cannot be read.
    #[error("the signing certificate cannot be read: {0}")]
    Certificate(String),
    /// The certificate's key did not make the signature.
    #[error("the signature was not made by the key of its certificate")]
    Signature,
    /// No Rekor entry at all.
    #[error(
        "it has no Rekor entry, so its signing time cannot be proved offline (sign with the transparency log of your sigstore)"
    )]
    NoTlogEntry,
    /// No Rekor entry passed.
    #[error("no Rekor entry vouches for it: {0}")]
    Tlog(String),
    /// No CA of the root was valid at the signing time.
    #[error(
        "no certificate authority of the trusted root {root} was valid at the signing time {time} (Rekor's integratedTime)"
    )]
    NoAuthorityAt {
        /// The trust root file.
        root: String,
        /// The signing time.
        time: String,
    },
    /// The chain does not lead to a CA of the root.
    #[error(
        "the signing certificate does not chain to a certificate authority of the trusted root {root} at the signing time {time}: {detail}"
    )]
    Chain {
        /// The trust root file.
        root: String,
        /// The signing time.
        time: String,
        /// rustls-webpki's reasons, per CA.
        detail: String,
    },
    /// The root names CT logs and no SCT verified.
    #[error("the signing certificate has no valid SCT of a CT log of the trusted root: {0}")]
    Sct(String),
    /// Another identity.
    #[error("the certificate's identity is {found}, not {wanted} (--certificate-identity)")]
    Identity {
        /// What the certificate names.
        found: String,
        /// What was asked for.
        wanted: String,
    },
    /// Another issuer.
    #[error("the certificate's OIDC issuer is {found}, not {wanted} (--certificate-oidc-issuer)")]
    Issuer {
        /// What the certificate names.
        found: String,
        /// What was asked for.
        wanted: String,
    },
}

/// What a certificate's key signed.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// A DSSE envelope (a sigstore bundle of cosign 3); any of its signatures may be the one.
    Dsse(&'a Envelope),
    /// A blob and its signature (a legacy `.sig` layer: the simple-signing payload).
    Blob {
        /// The signed bytes.
        payload: &'a [u8],
        /// The signature.
        signature: &'a [u8],
    },
}

/// The keyless policy: a trust root and who must have signed.
#[derive(Debug, Clone)]
pub struct Keyless {
    /// The CAs and logs.
    pub root: TrustedRoot,
    /// The certificate's identity (SAN).
    pub identity: Matcher,
    /// The certificate's OIDC issuer.
    pub issuer: Matcher,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(bytes).to_vec()
}

/// The DER of a PEM certificate (a Rekor entry's verifier), if it is one.
fn pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem)
        .ok()
        .map(|c| c.as_ref().to_vec())
}

/// The SET's message: the canonical JSON (RFC 8785) of the entry's payload.
fn set_message(entry: &TlogEntry) -> Vec<u8> {
    use base64::Engine as _;
    let payload = serde_json::json!({
        "body": base64::engine::general_purpose::STANDARD.encode(&entry.body),
        "integratedTime": entry.integrated_time,
        "logIndex": entry.log_index,
        "logID": hex::encode(&entry.log_id),
    });
    // Only strings and integers: canonicalisation cannot fail.
    serde_json_canonicalizer::to_vec(&payload).unwrap_or_default()
}

/// Checks that `body` logs this signature `sig` by the certificate `leaf` over `signed`.
fn binds(body: &RekorBody, signed: &Signed<'_>, sig: &[u8], leaf: &[u8]) -> Result<(), String> {
    let verifier_is_leaf = |pem: &[u8]| pem_certificate(pem).is_some_and(|der| der == leaf);
    match (body, signed) {
        (
            RekorBody::HashedRekord {
                sha256: hash,
                signature,
                verifier,
            },
            Signed::Blob { payload, .. },
        ) => {
            if *hash != hex::encode(sha256(payload)) {
                return Err("the Rekor entry is for another payload".into());
            }
            if signature != sig {
                return Err("the Rekor entry holds another signature".into());
            }
            if !verifier_is_leaf(verifier) {
                return Err("the Rekor entry names another certificate".into());
            }
            Ok(())
        }
        (
            RekorBody::Dsse {
                payload_sha256,
                signatures,
            },
            Signed::Dsse(envelope),
        ) => {
            if *payload_sha256 != hex::encode(sha256(&envelope.payload)) {
                return Err("the Rekor entry is for another DSSE payload".into());
            }
            if !signatures
                .iter()
                .any(|(s, v)| s == sig && verifier_is_leaf(v))
            {
                return Err(
                    "the Rekor entry does not hold this signature by this certificate".into(),
                );
            }
            Ok(())
        }
        (RekorBody::HashedRekord { .. }, Signed::Dsse(_)) => {
            Err("the Rekor entry is a hashedrekord, but the signature is a DSSE envelope".into())
        }
        (RekorBody::Dsse { .. }, Signed::Blob { .. }) => {
            Err("the Rekor entry is a dsse entry, but the signature is over a blob".into())
        }
    }
}

impl Keyless {
    /// Checks a keyless signature: `certificates` (DER, the leaf first, then any
    /// intermediates that came with it), the Rekor `entries`, and what was `signed`.
    pub fn check(
        &self,
        certificates: &[Vec<u8>],
        entries: &[TlogEntry],
        signed: Signed<'_>,
    ) -> Result<(), KeylessError> {
        let leaf_der = certificates
            .first()
            .ok_or_else(|| KeylessError::Certificate("there is none".into()))?;
        let leaf = x509_cert::Certificate::from_der(leaf_der)
            .map_err(|e| KeylessError::Certificate(e.to_string()))?;
        let spki = leaf
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeylessError::Certificate(e.to_string()))?;
        let key = PublicKey::from_spki_der(&spki, "the signing certificate's key")
            .map_err(KeylessError::Certificate)?;

        // 1. The signature, by the certificate's key.
        let sig: Vec<u8> = match signed {
            Signed::Dsse(envelope) => {
                let message = envelope.pae();
                envelope
                    .signatures
                    .iter()
                    .find(|s| key.verifies(&message, &s.sig))
                    .map(|s| s.sig.clone())
                    .ok_or(KeylessError::Signature)?
            }
            Signed::Blob { payload, signature } => {
                if !key.verifies(payload, signature) {
                    return Err(KeylessError::Signature);
                }
                signature.to_vec()
            }
        };

        if !code_signing(&leaf) {
            return Err(KeylessError::Certificate(
                "it lacks the code-signing extended key usage a Fulcio certificate has".into(),
            ));
        }

        // 2. The Rekor entry: the signing time.
        let time = self.signing_time(entries, &signed, &sig, leaf_der)?;

        // 3. The chain, at that time.
        let issuer_spki = self.chain(leaf_der, &certificates[1..], time)?;

        // 4. The SCT, where the root names CT logs.
        if !self.root.ctlogs.is_empty() {
            check_sct(&leaf, &issuer_spki, &self.root.ctlogs).map_err(KeylessError::Sct)?;
        }

        // 5. Who.
        let identities = identities(&leaf);
        if !identities.iter().any(|i| self.identity.matches(i)) {
            return Err(KeylessError::Identity {
                found: if identities.is_empty() {
                    "empty (no email or URI SAN)".into()
                } else {
                    identities
                        .iter()
                        .map(|i| format!("{i:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                wanted: self.identity.to_string(),
            });
        }
        match oidc_issuer(&leaf) {
            Some(issuer) if self.issuer.matches(&issuer) => Ok(()),
            found => Err(KeylessError::Issuer {
                found: found
                    .map(|i| format!("{i:?}"))
                    .unwrap_or_else(|| "absent (no Fulcio issuer extension)".into()),
                wanted: self.issuer.to_string(),
            }),
        }
    }

    /// The integrated time of the first entry whose SET verifies with a log of the root and
    /// whose body logs this signature.
    fn signing_time(
        &self,
        entries: &[TlogEntry],
        signed: &Signed<'_>,
        sig: &[u8],
        leaf: &[u8],
    ) -> Result<i64, KeylessError> {
        if entries.is_empty() {
            return Err(KeylessError::NoTlogEntry);
        }
        let mut reasons = Vec::new();
        for entry in entries {
            let Some(log) = self.root.tlogs.iter().find(|l| l.key_id == entry.log_id) else {
                reasons.push(format!(
                    "entry {} is in the log {}, which the trusted root does not name",
                    entry.log_index,
                    hex::encode(&entry.log_id)
                ));
                continue;
            };
            let Some(set) = &entry.set else {
                reasons.push(format!(
                    "entry {} has no signed entry timestamp (inclusionPromise), which an offline check needs",
                    entry.log_index
                ));
                continue;
            };
            if !log.key.verifies(&set_message(entry), set) {
                reasons.push(format!(
                    "the signed entry timestamp of entry {} does not verify with the key of the log {}",
                    entry.log_index, log.url
                ));
                continue;
            }
            if !log.valid.contains(entry.integrated_time) {
                reasons.push(format!(
                    "entry {} was integrated at {}, outside the validity of the log {}'s key ({})",
                    entry.log_index,
                    rfc3339(entry.integrated_time),
                    log.url,
                    log.valid
                ));
                continue;
            }
            if let Err(e) = check_inclusion(entry, log) {
                reasons.push(format!("entry {}: {e}", entry.log_index));
                continue;
            }
            match RekorBody::parse(&entry.body).and_then(|b| binds(&b, signed, sig, leaf)) {
                Ok(()) => return Ok(entry.integrated_time),
                Err(e) => reasons.push(format!("entry {}: {e}", entry.log_index)),
            }
        }
        Err(KeylessError::Tlog(reasons.join("; ")))
    }

    /// Chains `leaf` (with the `extra` intermediates) to a CA of the root valid at `time`;
    /// returns the DER SubjectPublicKeyInfo of the leaf's issuer.
    fn chain(&self, leaf: &[u8], extra: &[Vec<u8>], time: i64) -> Result<Vec<u8>, KeylessError> {
        let when = || rfc3339(time);
        let root = || self.root.path.display().to_string();
        let at = u64::try_from(time)
            .map(|t| UnixTime::since_unix_epoch(Duration::from_secs(t)))
            .map_err(|_| KeylessError::NoAuthorityAt {
                root: root(),
                time: when(),
            })?;
        let leaf_der = CertificateDer::from(leaf);
        let end_entity = webpki::EndEntityCert::try_from(&leaf_der)
            .map_err(|e| KeylessError::Certificate(format!("rustls-webpki cannot read it: {e}")))?;
        let mut reasons = Vec::new();
        let mut any = false;
        for ca in self
            .root
            .authorities
            .iter()
            .filter(|a| a.valid.contains(time))
        {
            any = true;
            let Some((anchor_der, ca_intermediates)) = ca.certificates.split_last() else {
                continue;
            };
            let anchor = match webpki::anchor_from_trusted_cert(anchor_der) {
                Ok(a) => a,
                Err(e) => {
                    reasons.push(format!("{}: its root cannot be read ({e})", ca.uri));
                    continue;
                }
            };
            let intermediates: Vec<CertificateDer<'_>> = ca_intermediates
                .iter()
                .cloned()
                .chain(extra.iter().map(|c| CertificateDer::from(c.as_slice())))
                .collect();
            let anchors = [anchor];
            match end_entity.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                at,
                webpki::KeyUsage::required_if_present(CODE_SIGNING),
                None,
                None,
            ) {
                Ok(path) => return Ok(path.issuer_spki().as_ref().to_vec()),
                Err(e) => reasons.push(format!("{}: {}", ca.uri, chain_reason(&e))),
            }
        }
        if !any {
            return Err(KeylessError::NoAuthorityAt {
                root: root(),
                time: when(),
            });
        }
        Err(KeylessError::Chain {
            root: root(),
            time: when(),
            detail: reasons.join("; "),
        })
    }
}

fn extension<'c>(
    cert: &'c x509_cert::Certificate,
    oid: &ObjectIdentifier,
) -> Option<&'c x509_cert::ext::Extension> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| &e.extn_id == oid)
}

/// The most signature lines of a checkpoint that are tried.
const MAX_CHECKPOINT_SIGNATURES: usize = 16;

/// The root an RFC 6962 audit path leads to from `leaf` at `index` in a tree of `size`
/// (RFC 9162 section 2.1.3.2); `None` when the path does not fit the tree.
fn merkle_root(index: u64, size: u64, leaf: &[u8], path: &[Vec<u8>]) -> Option<Vec<u8>> {
    if index >= size {
        return None;
    }
    let node = |left: &[u8], right: &[u8]| {
        let mut h = sha2::Sha256::new();
        h.update([0x01]);
        h.update(left);
        h.update(right);
        h.finalize().to_vec()
    };
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf.to_vec();
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// Checks an entry's inclusion proof, when it has one: the audit path from the entry's leaf
/// hash leads to the proof's root, and the checkpoint (a signed note: origin, tree size,
/// base64 root, then `— name base64(key hint ‖ signature)` lines) names that size and root
/// and is signed by the log's key.
fn check_inclusion(entry: &TlogEntry, log: &Log) -> Result<(), String> {
    let Some(proof) = &entry.proof else {
        return Ok(());
    };
    let mut leaf = vec![0u8];
    leaf.extend_from_slice(&entry.body);
    let leaf = sha256(&leaf);
    match merkle_root(proof.index, proof.tree_size, &leaf, &proof.hashes) {
        Some(root) if root == proof.root_hash => {}
        Some(_) => return Err("its inclusion proof does not lead to the proof's root hash".into()),
        None => return Err("its inclusion proof does not fit its tree size".into()),
    }
    let Some(checkpoint) = &proof.checkpoint else {
        return Ok(());
    };
    let bad = |why: &str| format!("its checkpoint {why}");
    let (note, signatures) = checkpoint
        .split_once("\n\n")
        .ok_or_else(|| bad("is not a signed note"))?;
    let mut lines = note.lines();
    let (_origin, size, root) = (lines.next(), lines.next(), lines.next());
    if size.and_then(|s| s.parse::<u64>().ok()) != Some(proof.tree_size) {
        return Err(bad("names another tree size"));
    }
    let root = root.and_then(|r| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(r).ok()
    });
    if root.as_deref() != Some(proof.root_hash.as_slice()) {
        return Err(bad("names another root hash"));
    }
    let signed = format!("{note}\n");
    let valid = signatures
        .lines()
        .take(MAX_CHECKPOINT_SIGNATURES)
        .filter_map(|line| {
            use base64::Engine as _;
            let rest = line.strip_prefix("\u{2014} ")?;
            let (_, b64) = rest.rsplit_once(' ')?;
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .any(|raw| {
            raw.len() > 4
                && log.key_id.get(..4) == Some(&raw[..4])
                && log.key.verifies(signed.as_bytes(), &raw[4..])
        });
    if !valid {
        return Err(bad(&format!("is not signed by the log {}", log.url)));
    }
    Ok(())
}

/// rustls-webpki's reason, in words.
fn chain_reason(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnknownIssuer => {
            "its issuer is not this CA nor an intermediate of it (unknown issuer)".into()
        }
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            "a certificate of the chain was not valid at the signing time".into()
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "a certificate of the chain does not allow code signing (extended key usage)".into()
        }
        webpki::Error::InvalidSignatureForPublicKey => {
            "a certificate's signature does not verify with its issuer's key".into()
        }
        other => format!("{other:?}"),
    }
}

/// True when the certificate's extended key usage includes code signing.
fn code_signing(cert: &x509_cert::Certificate) -> bool {
    let eku = ObjectIdentifier::new_unwrap("2.5.29.37");
    let code_signing = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
    extension(cert, &eku)
        .and_then(|e| {
            x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok()
        })
        .is_some_and(|u| u.0.contains(&code_signing))
}

/// The certificate's email and URI SANs.
pub fn identities(cert: &x509_cert::Certificate) -> Vec<String> {
    let Some(ext) = extension(cert, &SAN) else {
        return Vec::new();
    };
    let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|n| match n {
            GeneralName::Rfc822Name(s) => Some(s.to_string()),
            GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// The certificate's OIDC issuer: Fulcio's `.1.8` (a DER UTF8String), else the older `.1.1`
/// (the raw string).
pub fn oidc_issuer(cert: &x509_cert::Certificate) -> Option<String> {
    if let Some(ext) = extension(cert, &FULCIO_ISSUER_V2) {
        return String::from_der(ext.extn_value.as_bytes()).ok();
    }
    extension(cert, &FULCIO_ISSUER_V1)
        .and_then(|ext| String::from_utf8(ext.extn_value.as_bytes().to_vec()).ok())
}

/// A reader of TLS-encoded (RFC 8446 section 3) data.
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the SCT list is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn vector(&mut self, len_bytes: usize) -> Result<&'a [u8], String> {
        let n = self.uint(len_bytes)? as usize;
        self.take(n)
    }
}

/// One SCT, as RFC 6962 section 3.2 encodes it.
#[derive(Debug)]
struct Sct<'a> {
    log_id: &'a [u8],
    timestamp: u64,
    extensions: &'a [u8],
    signature: &'a [u8],
}

/// Parses a `SignedCertificateTimestampList` (at most [`MAX_SCTS`]).
fn scts(list: &[u8]) -> Result<Vec<Sct<'_>>, String> {
    let mut outer = Tls(list);
    let mut inner = Tls(outer.vector(2)?);
    let mut out = Vec::new();
    while !inner.0.is_empty() && out.len() < MAX_SCTS {
        let mut one = Tls(inner.vector(2)?);
        let version = one.uint(1)?;
        if version != 0 {
            return Err(format!("an SCT has version {version}, not 1 (0)"));
        }
        let log_id = one.take(32)?;
        let timestamp = one.uint(8)?;
        let extensions = one.vector(2)?;
        let _hash_and_signature_algorithm = one.take(2)?;
        let signature = one.vector(2)?;
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            signature,
        });
    }
    Ok(out)
}

/// Checks the certificate's embedded SCTs: one must verify with a CT log of `logs`.
fn check_sct(
    cert: &x509_cert::Certificate,
    issuer_spki: &[u8],
    logs: &[Log],
) -> Result<(), String> {
    let ext = extension(cert, &SCT_LIST).ok_or("it has no embedded SCT")?;
    let list = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("the SCT extension is not an OCTET STRING: {e}"))?;
    let scts = scts(list.as_bytes())?;
    if scts.is_empty() {
        return Err("its SCT list is empty".into());
    }
    // The precertificate's TBS: the certificate's, without the SCT list.
    let mut tbs = cert.tbs_certificate.clone();
    if let Some(exts) = tbs.extensions.as_mut() {
        exts.retain(|e| e.extn_id != SCT_LIST);
        if exts.is_empty() {
            tbs.extensions = None;
        }
    }
    let tbs = tbs.to_der().map_err(|e| e.to_string())?;
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|n| *n < 1 << 24)
        .ok_or("the certificate is too large for an SCT")?;
    let issuer_key_hash = sha256(issuer_spki);
    let mut reasons = Vec::new();
    for sct in scts {
        let Some(log) = logs.iter().find(|l| l.key_id == sct.log_id) else {
            reasons.push(format!(
                "an SCT is by the CT log {}, which the trusted root does not name",
                hex::encode(sct.log_id)
            ));
            continue;
        };
        let mut signed = Vec::with_capacity(tbs.len() + 64);
        signed.push(0); // version v1
        signed.push(0); // signature_type certificate_timestamp
        signed.extend_from_slice(&sct.timestamp.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
        signed.extend_from_slice(&issuer_key_hash);
        signed.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
        signed.extend_from_slice(sct.extensions);
        if !log.key.verifies(&signed, sct.signature) {
            reasons.push(format!(
                "the SCT of the CT log {} does not verify with its key",
                log.url
            ));
            continue;
        }
        let seconds = i64::try_from(sct.timestamp / 1000).unwrap_or(i64::MAX);
        if !log.valid.contains(seconds) {
            reasons.push(format!(
                "the SCT of the CT log {} was made at {}, outside its key's validity ({})",
                log.url,
                rfc3339(seconds),
                log.valid
            ));
            continue;
        }
        return Ok(());
    }
    Err(reasons.join("; "))
}

#[cfg(test)]
mod tests;
