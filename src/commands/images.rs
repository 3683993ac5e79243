//! `ferry images`: the RKE system image list (see [`crate::rke::list`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde::Serialize;

use crate::cli::{ImagesArgs, SelectArgs};
use crate::error::Exit;
use crate::oci::reference::RegistryPrefix;
use crate::rke::list::{self, ImageEntry, ListOptions};
use crate::rke::{Catalog, ClusterConfig};

/// The resolved selection: catalog, versions to walk, cluster, registry prefix.
pub struct Selection {
    /// The catalog in use.
    pub catalog: Catalog,
    /// Versions to list, in output order.
    pub versions: Vec<String>,
    /// The cluster.yml, if given.
    pub cluster: Option<ClusterConfig>,
    /// Include the Windows pause image.
    pub windows: bool,
}

impl Selection {
    /// Loads the catalog and cluster.yml and decides the versions, validating each.
    pub fn resolve(args: &SelectArgs) -> anyhow::Result<Selection> {
        let catalog = Catalog::load(args.catalog.metadata.as_deref(), &args.catalog.rke_version)?;
        for key in catalog.unknown_keys() {
            tracing::warn!(
                "{} has image field {key:?}, which RKE {} does not know; it is ignored",
                catalog.source(),
                catalog.rke_version()
            );
        }
        let cluster = match &args.cluster {
            Some(path) => {
                let c = ClusterConfig::load(path)?;
                for w in &c.warnings {
                    tracing::warn!("{w}");
                }
                Some(c)
            }
            None => None,
        };
        let versions = if args.all {
            catalog.current().to_vec()
        } else if let Some(v) = &args.kubernetes_version {
            list::check_version(&catalog, v, "from --kubernetes-version")?;
            vec![v.clone()]
        } else if let Some(c) = cluster
            .as_ref()
            .filter(|c| !c.kubernetes_version.is_empty())
        {
            let origin = format!("kubernetes_version in {}", c.path.display());
            list::check_version(&catalog, &c.kubernetes_version, &origin)?;
            vec![c.kubernetes_version.clone()]
        } else {
            vec![catalog.default_version().to_string()]
        };
        Ok(Selection {
            catalog,
            versions,
            cluster,
            windows: args.windows,
        })
    }

    /// The list of each selected version, in order; `prefix` rewrites non-overridden images.
    pub fn lists(
        &self,
        prefix: Option<RegistryPrefix>,
    ) -> anyhow::Result<Vec<(String, Vec<ImageEntry>)>> {
        let opts = ListOptions {
            windows: self.windows,
            cluster: self.cluster.as_ref(),
            prefix,
        };
        self.versions
            .iter()
            .map(|v| Ok((v.clone(), list::version_list(&self.catalog, v, &opts)?)))
            .collect()
    }
}

#[derive(Serialize)]
struct JsonList<'a> {
    rke_version: &'a str,
    metadata: String,
    registry: Option<String>,
    kubernetes_versions: &'a [String],
    images: Vec<ImageEntry>,
}

#[derive(Serialize)]
struct UniqueEntry {
    image: String,
    kubernetes_versions: Vec<String>,
    fields: BTreeSet<&'static str>,
}

#[derive(Serialize)]
struct JsonUnique<'a> {
    rke_version: &'a str,
    metadata: String,
    registry: Option<String>,
    kubernetes_versions: &'a [String],
    images: Vec<UniqueEntry>,
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
        crate::rke::MetadataSource::Embedded => "embedded".into(),
        crate::rke::MetadataSource::File(p) => p.display().to_string(),
    }
}

/// Runs `ferry images`.
pub fn run(args: &ImagesArgs) -> anyhow::Result<Exit> {
    let sel = Selection::resolve(&args.select)?;
    let catalog = &sel.catalog;
    if args.list_versions {
        let text = if args.json {
            let j = JsonVersions {
                rke_version: catalog.rke_version(),
                metadata: metadata_name(catalog),
                default: catalog.default_version(),
                current: catalog.current(),
                available: catalog.available(),
            };
            serde_json::to_string_pretty(&j)? + "\n"
        } else if args.select.all {
            lines(catalog.current().iter().map(String::as_str))
        } else {
            lines(std::iter::once(catalog.default_version()))
        };
        super::emit(args.output.as_deref(), &text)?;
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
    let text = if args.unique {
        let mut union: BTreeMap<String, UniqueEntry> = BTreeMap::new();
        for (version, entries) in &lists {
            for e in entries {
                let u = union.entry(e.image.clone()).or_insert_with(|| UniqueEntry {
                    image: e.image.clone(),
                    kubernetes_versions: Vec::new(),
                    fields: BTreeSet::new(),
                });
                if u.kubernetes_versions.last() != Some(version) {
                    u.kubernetes_versions.push(version.clone());
                }
                u.fields.extend(e.fields.iter().copied());
            }
        }
        if args.json {
            let j = JsonUnique {
                rke_version: catalog.rke_version(),
                metadata: metadata_name(catalog),
                registry,
                kubernetes_versions: &sel.versions,
                images: union.into_values().collect(),
            };
            serde_json::to_string_pretty(&j)? + "\n"
        } else {
            lines(union.keys().map(String::as_str))
        }
    } else if args.json {
        let j = JsonList {
            rke_version: catalog.rke_version(),
            metadata: metadata_name(catalog),
            registry,
            kubernetes_versions: &sel.versions,
            images: lists.into_iter().flat_map(|(_, e)| e).collect(),
        };
        serde_json::to_string_pretty(&j)? + "\n"
    } else {
        let mut text = String::new();
        for (version, entries) in &lists {
            if sel.versions.len() > 1 {
                // RKE logs this line before each block; ferry keeps stdout to images only.
                tracing::info!("Generating images list for version [{version}]:");
            }
            text.push_str(&lines(entries.iter().map(|e| e.image.as_str())));
        }
        text
    };
    super::emit(args.output.as_deref(), &text)?;
    if let Some(path) = &args.output {
        tracing::info!("wrote {}", path.display());
    }
    Ok(Exit::Success)
}

fn lines<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut s = String::new();
    for i in items {
        s.push_str(i);
        s.push('\n');
    }
    s
}
