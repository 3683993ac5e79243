//! `ferry images`: the RKE system image list (see [`ferry_rke::selection`]), trimmed to what
//! `rke up` deploys for a cluster.yml, then the images of the cluster's own addons.

use anyhow::Context;
use serde::Serialize;

use super::printer::Printer;
use crate::cli::ImagesArgs;
use crate::error::Exit;
use ferry_oci::reference::RegistryPrefix;
use ferry_rke::list::ImageEntry;
use ferry_rke::selection::UniqueEntry;
use ferry_rke::{Catalog, MetadataSource, Selection};

#[derive(Serialize)]
struct Json<'a> {
    rke_version: &'a str,
    metadata: String,
    registry: Option<String>,
    kubernetes_versions: &'a [String],
    images: serde_json::Value,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    addon_images: &'a [ferry_rke::user_addons::AddonImage],
}

#[derive(Serialize)]
struct JsonVersions<'a> {
    rke_version: &'a str,
    metadata: String,
    default: &'a str,
    current: &'a [String],
    available: &'a [String],
}

fn metadata_name(c: &Catalog) -> String {
    match c.source() {
        MetadataSource::Embedded => "embedded".into(),
        MetadataSource::File(p) => p.display().to_string(),
        MetadataSource::Url(u) => u.clone(),
    }
}

fn pretty<T: Serialize>(v: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

fn lines<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(|i| format!("{i}\n")).collect()
}

/// Runs `ferry images`.
pub fn run(args: &ImagesArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let sel = super::common::selection(&args.select, printer)?;
    let catalog = &sel.catalog;
    if args.list_versions {
        let text = if printer.is_json() {
            pretty(&JsonVersions {
                rke_version: catalog.rke_version(),
                metadata: metadata_name(catalog),
                default: catalog.default_version(),
                current: catalog.current(),
                available: catalog.available(),
            })?
        } else if args.select.all {
            lines(catalog.current().iter().map(String::as_str))
        } else {
            lines(std::iter::once(catalog.default_version()))
        };
        printer.data(args.output.as_deref(), &text)?;
        return Ok(Exit::Success);
    }
    let prefix = match &args.registry {
        Some(url) => Some(
            RegistryPrefix::parse(url)
                .with_context(|| format!("--registry {url:?} cannot be used as an image prefix; give HOST[:PORT][/PATH] without scheme, e.g. registry.example.com:5000/artifactory"))?,
        ),
        None => match &sel.cluster {
            Some(c) => c.default_prefix()?,
            None => None,
        },
    };
    let registry = prefix.as_ref().map(|p| p.to_string());
    let lists = sel.lists(prefix)?;
    let wrap = |images: serde_json::Value| Json {
        rke_version: catalog.rke_version(),
        metadata: metadata_name(catalog),
        registry: registry.clone(),
        kubernetes_versions: &sel.versions,
        images,
        addon_images: &sel.addon_images,
    };
    let addon_lines = lines(sel.addon_images.iter().map(|a| a.image.as_str()));
    let text = match (args.unique, printer.is_json()) {
        (true, true) => pretty(&wrap(serde_json::to_value(Selection::unique(&lists))?))?,
        (true, false) => {
            lines(
                Selection::unique(&lists)
                    .iter()
                    .map(|u: &UniqueEntry| u.image.as_str()),
            ) + &addon_lines
        }
        (false, true) => pretty(&wrap(serde_json::to_value(
            lists
                .iter()
                .flat_map(|(_, e)| e)
                .collect::<Vec<&ImageEntry>>(),
        )?))?,
        (false, false) => {
            let mut text = String::new();
            for (version, entries) in &lists {
                if sel.versions.len() > 1 {
                    // RKE logs this line before each block; ferry keeps stdout to images only.
                    tracing::info!("Generating images list for version [{version}]:");
                }
                text.push_str(&lines(entries.iter().map(|e| e.image.as_str())));
            }
            text + &addon_lines
        }
    };
    printer.data(args.output.as_deref(), &text)?;
    if let Some(path) = &args.output {
        tracing::info!("wrote {}", path.display());
    }
    Ok(Exit::Success)
}
