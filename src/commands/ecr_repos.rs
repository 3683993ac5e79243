//! `ferry import` into Amazon ECR: ECR refuses a push into a repository that does not exist,
//! so before the copy starts the repositories the push needs are created
//! (`--ecr-create-repos`, on by default). This acts only when the target's host is an ECR
//! registry (`<account>.dkr.ecr.<region>.amazonaws.com`) and AWS keys are at hand (the
//! cluster.yml `ecr_credential_plugin` entry of that registry, else `AWS_ACCESS_KEY_ID` and
//! friends), the same keys ferry logs in with. An image whose repository cannot be made sure
//! of is a failure that names the repository, the region and the fix; the others are pushed.

use super::common::Failure;
use super::printer::Printer;
use crate::cli::ImportArgs;
use crate::target::Target;
use ferry_copy::Job;
use ferry_rke::ClusterConfig;

/// The jobs of `todo` whose repositories exist (creating the missing ones); the others are
/// added to `failed`. Returns `todo` untouched with `--ecr-create-repos=false`, for a target
/// that is not ECR, or without AWS keys.
#[cfg(feature = "ecr")]
pub async fn prepare(
    args: &ImportArgs,
    target: &Target,
    cluster: Option<&ClusterConfig>,
    todo: Vec<Job>,
    failed: &mut Vec<Failure>,
    printer: &Printer,
) -> anyhow::Result<Vec<Job>> {
    use ferry_store::ecr::{
        endpoint_from_env, ensure_repositories, http_client, keys_for_registry, parse_ecr_host,
    };

    let host = target.host();
    let Some(registry) = parse_ecr_host(host) else {
        return Ok(todo);
    };
    if !args.ecr_create_repos || todo.is_empty() {
        return Ok(todo);
    }
    let env = ferry_base::env_vars::EnvVars::var;
    let cluster_keys = super::target_registry::ecr_cluster_keys(cluster);
    let Some(keys) = keys_for_registry(&cluster_keys, host, env) else {
        tracing::info!(
            "registry {host}: no AWS keys (cluster.yml ecr_credential_plugin or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), so ferry cannot create missing ECR repositories; a push into a repository that does not exist will fail"
        );
        return Ok(todo);
    };
    let repositories: Vec<String> = todo.iter().map(|j| j.to.repository().to_string()).collect();
    let http = http_client(&[])
        .map_err(|e| anyhow::anyhow!("cannot set up HTTPS for the ECR API: {e}"))?;
    let endpoint = endpoint_from_env(env);
    let report =
        ensure_repositories(&http, &registry, &keys, endpoint.as_ref(), &repositories).await;
    for repository in &report.created {
        tracing::info!("registry {host}: created ECR repository {repository}");
    }
    if !report.created.is_empty() {
        printer.say(format!(
            "created {} ECR repositor{} in {host}: {}",
            report.created.len(),
            if report.created.len() == 1 {
                "y"
            } else {
                "ies"
            },
            report.created.join(", ")
        ));
    }
    if report.failed.is_empty() {
        return Ok(todo);
    }
    let (mut ready, mut missing) = (Vec::new(), Vec::new());
    for job in todo {
        match report
            .failed
            .iter()
            .find(|(r, _)| r.as_str() == job.to.repository())
        {
            Some((_, e)) => missing.push(Failure {
                name: job.name().to_string(),
                error: format!("{e}; nothing of this image was pushed"),
            }),
            None => ready.push(job),
        }
    }
    failed.append(&mut missing);
    Ok(ready)
}

/// Without ECR support: `todo` untouched.
#[cfg(not(feature = "ecr"))]
pub async fn prepare(
    _args: &ImportArgs,
    _target: &Target,
    _cluster: Option<&ClusterConfig>,
    todo: Vec<Job>,
    _failed: &mut Vec<Failure>,
    _printer: &Printer,
) -> anyhow::Result<Vec<Job>> {
    Ok(todo)
}
