//! Wiring shared by the commands that talk to registries: registry options from flags, the
//! image list from the RKE selection or a file, progress bars, human-readable sizes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::images::Selection;
use crate::cli::{RegistryArgs, SelectArgs, UpstreamArgs};
use crate::oci::reference::Reference;
use crate::plan::input;
use crate::store::registry::{ClientOptions, CredentialSource, Registries, config};

/// Client options from the registry flags; `endpoints` are where registries are reached
/// (`--upstream`, or the target of an import).
pub fn client_options(
    args: &RegistryArgs,
    endpoints: Vec<(String, url::Url)>,
) -> anyhow::Result<ClientOptions> {
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

/// The endpoints `--upstream` names.
pub fn upstream_endpoints(args: &UpstreamArgs) -> anyhow::Result<Vec<(String, url::Url)>> {
    args.upstream
        .iter()
        .map(|u| config::parse_upstream(u).with_context(|| format!("--upstream {u:?}")))
        .collect()
}

/// The registry pool for a run.
pub fn registries(
    args: &RegistryArgs,
    endpoints: Vec<(String, url::Url)>,
    credentials: Arc<dyn CredentialSource>,
) -> anyhow::Result<Registries> {
    if !args.tls_verify {
        tracing::warn!(
            "--tls-verify=false: TLS certificates are not checked; use this only with test registries"
        );
    }
    Ok(Registries::new(
        client_options(args, endpoints)?,
        credentials,
    )?)
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
    Ok(input::dedupe(out))
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

/// Names, on stderr, the images a command could not handle (`verb`: "locked", "exported"),
/// grouped by cause: each cause once, with the images it hit.
pub fn report_failed<'a>(verb: &str, failures: impl Iterator<Item = (&'a str, &'a str)>) {
    let failures: Vec<(&str, &str)> = failures.collect();
    if failures.is_empty() {
        return;
    }
    let mut text = format!("{} image(s) could not be {verb}:\n", failures.len());
    for (cause, names) in crate::error::group_by_cause(failures) {
        text.push_str(&format!("  {}: {cause}\n", names.join(", ")));
    }
    eprint!("{text}");
}

/// Bytes for people: `1.2 GB`, `340 MB`, `12 kB`.
pub fn human_bytes(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
}

/// Parses a size: `8388608`, `8MiB`, `8M` (MiB), `512KiB`, `1GiB`, `10MB` (decimal).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        anyhow::anyhow!("invalid size {s:?}: write a number with an optional unit, e.g. 8MiB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => anyhow::bail!(
            "invalid size {s:?}: unknown unit {unit:?} (use KiB, MiB, GiB, kB, MB or GB)"
        ),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| anyhow::anyhow!("invalid size {s:?}: must be between 1 byte and 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB").expect("ok"), 8 << 20);
        assert_eq!(parse_size("8M").expect("ok"), 8 << 20);
        assert_eq!(parse_size("10MB").expect("ok"), 10_000_000);
        assert_eq!(parse_size("4096").expect("ok"), 4096);
        for bad in ["", "MiB", "8XB", "0", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
