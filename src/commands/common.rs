//! Wiring shared by the commands that talk to registries: registry options from flags, the
//! image list from the RKE selection or a file, progress bars, human-readable sizes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::images::Selection;
use crate::cli::{RegistryArgs, SelectArgs};
use crate::oci::reference::Reference;
use crate::plan::input;
use crate::store::registry::{ClientOptions, CredentialSource, Registries, config};

/// Client options from the registry flags.
pub fn client_options(args: &RegistryArgs) -> anyhow::Result<ClientOptions> {
    let mut endpoints = Vec::new();
    for u in &args.upstream {
        endpoints.push(config::parse_upstream(u).with_context(|| format!("--upstream {u:?}"))?);
    }
    Ok(ClientOptions {
        endpoints,
        tls_verify: args.tls_verify,
        ca_files: args.ca_file.clone(),
        jobs: args.jobs as usize,
        per_host: args.per_host as usize,
        attempts: args.retries,
        stall_timeout: Duration::from_secs(args.stall_timeout),
        ..ClientOptions::default()
    })
}

/// The registry pool for a run.
pub fn registries(
    args: &RegistryArgs,
    credentials: Arc<dyn CredentialSource>,
) -> anyhow::Result<Registries> {
    if !args.tls_verify {
        tracing::warn!(
            "--tls-verify=false: TLS certificates are not checked; use this only with test registries"
        );
    }
    Ok(Registries::new(client_options(args)?, credentials)?)
}

/// The images to work on: `--images FILE`, or the RKE selection (its unique union, as the
/// catalog names them, with cluster.yml overrides; never rewritten onto a private registry,
/// since these are the images to fetch from upstream).
pub fn image_list(
    select: &SelectArgs,
    images_file: Option<&std::path::Path>,
) -> anyhow::Result<Vec<(String, Reference)>> {
    if let Some(path) = images_file {
        return Ok(input::read_image_list(path)?);
    }
    let sel = Selection::resolve(select)?;
    let mut out: Vec<(String, Reference)> = Vec::new();
    for (_, entries) in sel.lists(None)? {
        for e in entries {
            if out.iter().any(|(n, _)| *n == e.image) {
                continue;
            }
            let r = Reference::parse(&e.image).with_context(|| {
                format!(
                    "catalog image {:?} of Kubernetes {}",
                    e.image, e.kubernetes_version
                )
            })?;
            out.push((e.image, r));
        }
    }
    Ok(out)
}

/// A progress bar on stderr, drawn only on a terminal and never with `--json` or `-q`.
pub fn progress_bar(len: u64, json: bool, template: &str) -> ProgressBar {
    use std::io::IsTerminal as _;
    let visible =
        !json && std::io::stderr().is_terminal() && tracing::enabled!(tracing::Level::WARN);
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Bytes for people: `1.2 GB`, `340 MB`, `12 kB`.
pub fn human_bytes(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
}
