//! TLS for `ferry serve`: a certificate and key from PEM files (`--tls-cert`, `--tls-key`),
//! or `--tls-self-signed DIR`: a CA (kept in DIR and reused, so nodes that trust it keep
//! trusting it) and a server certificate for the `--hostname`s, signed by it.
//!
//! DIR holds only `ca.crt`, so it is itself a valid `--cert-dir` for skopeo and podman (which
//! take every `*.key` there for a client key); the keys and the server certificate live in
//! `DIR/private/` (mode 0700, keys 0600).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The files `--tls-self-signed DIR` holds.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The CA certificate nodes must trust.
    pub ca: PathBuf,
    /// The server certificate (leaf, then CA).
    pub cert: PathBuf,
    /// The server key.
    pub key: PathBuf,
}

/// Writes (or reuses) a CA in `dir` and issues a server certificate for `hostnames`.
pub fn self_signed(dir: &Path, hostnames: &[String]) -> anyhow::Result<SelfSigned> {
    let private = dir.join("private");
    std::fs::create_dir_all(&private)
        .with_context(|| format!("cannot create {}", private.display()))?;
    restrict(&private, 0o700)?;
    let files = SelfSigned {
        ca: dir.join("ca.crt"),
        cert: private.join("server.crt"),
        key: private.join("server.key"),
    };
    let ca_key_path = private.join("ca.key");
    // The CA's name and usages are always these, so a CA kept from an earlier run signs with
    // the same issuer name (and, from its key, the same key identifier).
    let ca_params = || -> anyhow::Result<CertificateParams> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ferry serve CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(params)
    };
    let (ca_key, ca_pem) = if files.ca.exists() && ca_key_path.exists() {
        let key_pem = ferry_base::fsutil::read_small(&ca_key_path, 1 << 20)
            .with_context(|| format!("cannot read {}", ca_key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{} is not a private key", ca_key_path.display()))?;
        let pem = ferry_base::fsutil::read_small(&files.ca, 1 << 20)
            .with_context(|| format!("cannot read {}", files.ca.display()))?;
        (key, pem)
    } else {
        let key = KeyPair::generate().context("cannot generate a CA key")?;
        let cert = ca_params()?
            .self_signed(&key)
            .context("cannot sign the CA")?;
        ferry_base::fsutil::write_atomic(&ca_key_path, key.serialize_pem().as_bytes())?;
        restrict(&ca_key_path, 0o600)?;
        ferry_base::fsutil::write_atomic(&files.ca, cert.pem().as_bytes())?;
        (key, cert.pem())
    };
    let issuer = Issuer::new(ca_params()?, ca_key);
    let key = KeyPair::generate().context("cannot generate a server key")?;
    let mut params = CertificateParams::new(hostnames.to_vec())
        .context("a --hostname is neither a DNS name nor an IP address")?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        hostnames.first().map_or("ferry serve", String::as_str),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer)
        .context("cannot sign the server certificate")?;
    ferry_base::fsutil::write_atomic(&files.cert, format!("{}{ca_pem}", cert.pem()).as_bytes())?;
    ferry_base::fsutil::write_atomic(&files.key, key.serialize_pem().as_bytes())?;
    restrict(&files.key, 0o600)?;
    Ok(files)
}

/// Sets the permission bits of a private file or directory.
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))
}

/// A TLS acceptor for the certificate chain and key in these PEM files (HTTP/2 and 1.1).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(ferry_base::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not go together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
