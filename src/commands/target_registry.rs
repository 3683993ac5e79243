//! Wiring of the target registry shared by `import` and `verify`: which registry (`--to` or
//! cluster.yml's default), and its registry pool with credentials, first match wins:
//! `--username` with `--password-stdin`, `FERRY_USERNAME`/`FERRY_PASSWORD`, the cluster.yml
//! entries, the docker config, ECR.

use std::io::Read as _;
use std::sync::Arc;

use anyhow::Context;

use super::common;
use crate::cli::{RegistryArgs, TargetArgs};
use crate::target::Target;
use ferry_base::secret::Secret;
use ferry_rke::ClusterConfig;
use ferry_store::registry::{CredentialChain, CredentialSource, Registries};

/// The target the flags name (`None` when they name none), and the cluster.yml if given.
pub fn target_of(args: &TargetArgs) -> anyhow::Result<(Option<Target>, Option<ClusterConfig>)> {
    let cluster = args
        .cluster
        .as_deref()
        .map(ClusterConfig::load)
        .transpose()?;
    let target = match (&args.to, &cluster) {
        (Some(to), _) => Some(Target::parse(to, args.plain_http)?),
        (None, Some(c)) => Some(Target::from_cluster(c, args.plain_http)?),
        (None, None) => None,
    };
    Ok((target, cluster))
}

/// The registry pool for `target`: its endpoint, and its credentials.
pub fn target_registries(
    registry: &RegistryArgs,
    args: &TargetArgs,
    target: &Target,
    cluster: Option<&ClusterConfig>,
) -> anyhow::Result<Registries> {
    let mut b = CredentialChain::builder().target(target.host());
    if let Some(user) = &args.username {
        let mut pw = String::new();
        // A password, not a file: 64 KiB is far past any token.
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut pw)
            .context("cannot read the password from standard input")?;
        let pw = pw.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            anyhow::bail!(
                "--password-stdin: standard input was empty; pipe the password in, e.g. `echo \"$PASS\" | ferry import …`"
            );
        }
        b = b.explicit(target.host(), user, Secret::new(pw));
    }
    if let Some(c) = cluster {
        for r in &c.private_registries {
            b = b.cluster_registry(r.url(), r.user.as_deref().unwrap_or(""), r.password.clone());
        }
    }
    let chain: Arc<dyn CredentialSource> = Arc::new(b.build());
    common::registry_pool(
        registry,
        vec![(target.host().to_string(), target.endpoint.clone())],
        with_ecr(chain, cluster),
    )
}

/// The AWS keys of cluster.yml's `ecr_credential_plugin` entries, as `(url, keys)` (RKE's
/// rule: only entries with both keys).
#[cfg(feature = "ecr")]
pub fn ecr_cluster_keys(
    cluster: Option<&ClusterConfig>,
) -> Vec<(String, ferry_store::ecr::AwsKeys)> {
    use ferry_store::ecr::AwsKeys;
    cluster
        .map(|c| {
            c.private_registries
                .iter()
                .filter_map(|r| {
                    let p = r
                        .ecr_credential_plugin
                        .as_ref()
                        .or(r.ecr_credential_plugin_camel.as_ref())?;
                    AwsKeys::from_plugin(
                        p.aws_access_key_id.as_deref(),
                        &p.aws_secret_access_key,
                        &p.aws_session_token,
                    )
                    .map(|k| (r.url().to_string(), k))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Adds ECR's GetAuthorizationToken for ECR registries nothing else has credentials for:
/// keys from cluster.yml's `ecr_credential_plugin` (RKE's rule: only with both keys), else
/// the `AWS_*` environment. The login is renewed before it expires, and once when the
/// registry refuses it.
#[cfg(feature = "ecr")]
fn with_ecr(
    chain: Arc<dyn CredentialSource>,
    cluster: Option<&ClusterConfig>,
) -> Arc<dyn CredentialSource> {
    use ferry_store::ecr::EcrCredentialSource;
    Arc::new(EcrCredentialSource::new(
        chain,
        ecr_cluster_keys(cluster),
        ferry_base::env_vars::EnvVars::var,
    ))
}

#[cfg(not(feature = "ecr"))]
fn with_ecr(
    chain: Arc<dyn CredentialSource>,
    _cluster: Option<&ClusterConfig>,
) -> Arc<dyn CredentialSource> {
    chain
}
