//! The signature policy of `verify`, `import` and `serve`, from their flags: `--key FILE`, or
//! keyless (`--trusted-root` with an identity and an issuer). clap keeps the two apart and
//! makes keyless name both an identity and an issuer, as cosign does.

use std::path::Path;

use ferry_verify::signature::{Keyless, Matcher, Policy, PublicKey, TrustedRoot};

use crate::cli::KeylessArgs;

const INCOMPLETE: &str = "--trusted-root needs --certificate-identity (or --certificate-identity-regexp) and --certificate-oidc-issuer (or --certificate-oidc-issuer-regexp): a keyless signature proves who signed only against the identity you expect, as with cosign verify";

fn matcher(
    exact: Option<&String>,
    pattern: Option<&String>,
    flag: &'static str,
) -> anyhow::Result<Matcher> {
    match (exact, pattern) {
        (Some(v), _) => Ok(Matcher::Exact(v.clone())),
        (None, Some(p)) => {
            Matcher::pattern(p).map_err(|detail| anyhow::anyhow!("{flag}: {detail}"))
        }
        (None, None) => anyhow::bail!(INCOMPLETE),
    }
}

/// The policy the flags ask for, or `None` when they ask for none.
pub fn from_flags(key: Option<&Path>, keyless: &KeylessArgs) -> anyhow::Result<Option<Policy>> {
    if let Some(key) = key {
        return Ok(Some(Policy::Key(PublicKey::load(key)?)));
    }
    let Some(root) = keyless.trusted_root.as_deref() else {
        return Ok(None);
    };
    let identity = matcher(
        keyless.certificate_identity.as_ref(),
        keyless.certificate_identity_regexp.as_ref(),
        "--certificate-identity-regexp",
    )?;
    let issuer = matcher(
        keyless.certificate_oidc_issuer.as_ref(),
        keyless.certificate_oidc_issuer_regexp.as_ref(),
        "--certificate-oidc-issuer-regexp",
    )?;
    Ok(Some(Policy::Keyless(Box::new(Keyless {
        root: TrustedRoot::load(root)?,
        identity,
        issuer,
    }))))
}

/// The flag that set the policy, for messages ("--key", "--trusted-root").
pub fn flag(policy: &Policy) -> &'static str {
    match policy {
        Policy::Key(_) => "--key",
        Policy::Keyless(_) => "--trusted-root",
    }
}
