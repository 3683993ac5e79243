//! Test TLS material: one CA per test process, a server leaf for `127.0.0.1`/`localhost`, and a
//! token-signing leaf, all generated with `rcgen`; plus rustls configs that trust the CA.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate and its private key.
pub struct Leaf {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    /// PKCS#8 DER of the private key (ECDSA P-256).
    pub key_pkcs8: Vec<u8>,
}

/// The test CA: every TLS certificate of the harness chains to it.
pub struct TestCa {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn issue(
        &self,
        common_name: &str,
        sans: &[&str],
        eku: Option<ExtendedKeyUsagePurpose>,
    ) -> Leaf {
        let key = KeyPair::generate().expect("generate leaf key");
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku.into_iter().collect();
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_pkcs8: key.serialize_der(),
        }
    }
}

/// The process-wide test CA.
pub fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ferry test CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    })
}

/// The server certificate every TLS listener of the harness uses (SANs `127.0.0.1`, `localhost`).
pub fn server_leaf() -> &'static Leaf {
    static LEAF: OnceLock<Leaf> = OnceLock::new();
    LEAF.get_or_init(|| {
        ca().issue(
            "127.0.0.1",
            &["127.0.0.1", "localhost"],
            Some(ExtendedKeyUsagePurpose::ServerAuth),
        )
    })
}

/// The certificate whose key signs registry tokens (sent in the JWT `x5c` header).
pub fn token_signer() -> &'static Leaf {
    static LEAF: OnceLock<Leaf> = OnceLock::new();
    LEAF.get_or_init(|| ca().issue("ferry test token signer", &[], None))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client config that trusts only the test CA.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(ca().cert_der.clone()))
                .expect("add test CA to roots");
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// A rustls server config presenting [`server_leaf`].
pub fn server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let leaf = server_leaf();
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("TLS versions")
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![
                            CertificateDer::from(leaf.cert_der.clone()),
                            CertificateDer::from(ca().cert_der.clone()),
                        ],
                        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_pkcs8.clone())),
                    )
                    .expect("server TLS config"),
            )
        })
        .clone()
}

/// Writes `ca.crt` (the test CA) into `dir`, the layout skopeo's `--cert-dir` expects.
pub fn write_ca_dir(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create cert dir");
    std::fs::write(dir.join("ca.crt"), &ca().cert_pem).expect("write ca.crt");
}
