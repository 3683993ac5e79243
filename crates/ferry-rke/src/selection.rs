//! Which RKE system images a command works on: the catalog (embedded, or a KDM data.json from
//! a file or a URL), the Kubernetes versions (RKE's default, one, `--all` current ones, or
//! cluster.yml's), the cluster.yml overrides, and the Windows pause image when asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::list::{self, ImageEntry, ListOptions};
use super::{Catalog, ClusterConfig, RemoteOptions};
use ferry_oci::reference::{Reference, RegistryPrefix};

/// What to select (the `images`, `lock` and `export` flags).
#[derive(Debug, Clone, Default)]
pub struct Select<'a> {
    /// A KDM data.json instead of the embedded catalog: a file, or an `http(s)://` URL.
    pub metadata: Option<&'a str>,
    /// CA certificates (PEM) to trust for a metadata URL, on top of the system roots.
    pub metadata_ca_files: &'a [std::path::PathBuf],
    /// Take a metadata URL from the cache only; never download it.
    pub offline: bool,
    /// The RKE release whose rules apply.
    pub rke_version: &'a str,
    /// One Kubernetes version.
    pub kubernetes_version: Option<&'a str>,
    /// Every current version.
    pub all: bool,
    /// The Windows pause image too.
    pub windows: bool,
    /// A cluster.yml.
    pub cluster: Option<&'a Path>,
}

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

/// One image of the union of several versions' lists.
#[derive(Debug, Serialize)]
pub struct UniqueEntry {
    /// The image.
    pub image: String,
    /// The versions that list it.
    pub kubernetes_versions: Vec<String>,
    /// The fields of RKE's system image struct it fills.
    pub fields: BTreeSet<&'static str>,
}

impl Selection {
    /// Loads the catalog and cluster.yml and decides the versions, validating each.
    pub fn resolve(args: &Select<'_>) -> anyhow::Result<Selection> {
        let remote = RemoteOptions::new(args.metadata_ca_files.to_vec(), args.offline);
        let catalog = Catalog::load_with(args.metadata, args.rke_version, &remote)?;
        // One line however many there are: a hostile file can hold millions.
        let unknown = catalog.unknown_fields();
        if unknown.count > 0 {
            let first: Vec<String> = unknown.first.iter().map(|n| format!("{n:?}")).collect();
            let (what, first_word) = if unknown.count == 1 {
                ("image field", "")
            } else {
                ("image fields", "first: ")
            };
            tracing::warn!(
                "{} has {} {what} that RKE {} does not know ({first_word}{}); ignored",
                catalog.source(),
                super::thousands(unknown.count),
                catalog.rke_version(),
                first.join(", ")
            );
        }
        let cluster = match args.cluster {
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
        } else if let Some(v) = args.kubernetes_version {
            list::check_version(&catalog, v, "from --kubernetes-version")?;
            vec![v.to_string()]
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

    /// The sorted union of `lists`, with the versions and fields of each image.
    pub fn unique(lists: &[(String, Vec<ImageEntry>)]) -> Vec<UniqueEntry> {
        let mut union: BTreeMap<String, UniqueEntry> = BTreeMap::new();
        for (version, entries) in lists {
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
        union.into_values().collect()
    }

    /// The images to fetch from upstream: the union of the lists, as the catalog names them
    /// (with cluster.yml overrides, never rewritten onto a private registry), each once.
    pub fn images_to_fetch(&self) -> anyhow::Result<Vec<(String, Reference)>> {
        let mut out: Vec<(String, Reference)> = Vec::new();
        let mut seen = BTreeSet::new();
        for (_, entries) in self.lists(None)? {
            for e in entries {
                if !seen.insert(e.image.clone()) {
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
        Ok(ferry_oci::reference::dedupe(out))
    }
}
