//! Which RKE images a command works on: the catalog (embedded, or a KDM data.json from a file
//! or a URL), the Kubernetes versions (RKE's default, one, `--all` current ones, or
//! cluster.yml's), the cluster.yml overrides, and the Windows pause image when asked for.
//! With a cluster.yml, only what `rke up` deploys for it ([`crate::usage`]; every system
//! image with `include_unused`), plus the images of its own addons ([`crate::user_addons`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::list::{self, ImageEntry, ListOptions};
use super::usage::{self, Usage};
use super::user_addons::{self, AddonImage};
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
    /// With a cluster.yml: every system image of the version, not only what `rke up` uses.
    pub include_unused: bool,
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
    /// Per version, what `rke up` uses for the cluster.yml (empty: not trimmed).
    pub usages: BTreeMap<String, Usage>,
    /// The images of the cluster.yml's own addons, as written.
    pub addon_images: Vec<AddonImage>,
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
    /// The cluster.yml settings that selected it (empty when not trimmed).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub selected_by: BTreeSet<String>,
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
        let mut usages = BTreeMap::new();
        let mut addon_images = Vec::new();
        if let Some(c) = &cluster {
            if !args.include_unused {
                let mut notes = BTreeSet::new();
                for v in &versions {
                    let u = usage::usage(&catalog, v, c)?;
                    notes.extend(u.notes.iter().cloned());
                    usages.insert(v.clone(), u);
                }
                for n in notes {
                    tracing::warn!("{n}");
                }
            }
            addon_images = user_addons::collect(c, &remote)?;
        }
        let sel = Selection {
            catalog,
            versions,
            cluster,
            windows: args.windows,
            usages,
            addon_images,
        };
        sel.report_left_out();
        sel.report_addon_images();
        Ok(sel)
    }

    /// Logs what the trimmed lists leave out and why (info when it saves images, debug when
    /// the fields' images are listed anyway for other fields).
    fn report_left_out(&self) {
        let Ok(lists) = self.lists(None) else {
            return;
        };
        for (version, entries) in &lists {
            let Some(u) = self.usages.get(version) else {
                continue;
            };
            let Some(images) = self.catalog.images(version) else {
                continue;
            };
            let all: BTreeSet<&str> = images
                .iter()
                .filter(|(f, _)| !f.is_windows())
                .map(|(_, i)| i)
                .collect();
            tracing::info!(
                "Kubernetes {version}: {} of the {} system images are what rke up deploys for {} (--include-unused lists them all)",
                entries.len(),
                all.len(),
                self.cluster
                    .as_ref()
                    .map(|c| c.path.display().to_string())
                    .unwrap_or_default()
            );
            let listed: BTreeSet<&str> = entries.iter().map(|e| e.source.as_str()).collect();
            let on = if self.versions.len() > 1 {
                format!("Kubernetes {version}: ")
            } else {
                String::new()
            };
            // Each image counted once, in the first group that leaves it out.
            let mut counted: BTreeSet<&str> = BTreeSet::new();
            for l in &u.left_out {
                let mut left: Vec<&str> = Vec::new();
                for f in &l.fields {
                    if let Some(i) = images.get(f)
                        && !listed.contains(i)
                        && counted.insert(i)
                    {
                        left.push(i);
                    }
                }
                let fields: Vec<&str> = l.fields.iter().map(|f| f.yaml).collect();
                let n = left.len();
                if n > 0 {
                    let noun = if n == 1 { "image" } else { "images" };
                    tracing::info!(
                        "{on}left out {n} {} {noun}: {} ({})",
                        l.what,
                        l.reason,
                        fields.join(", ")
                    );
                    tracing::debug!("{on}left out {}", left.join(", "));
                } else {
                    tracing::debug!(
                        "{on}left out the {} fields {} ({}); their images are listed, or left out above, for other fields",
                        l.what,
                        fields.join(", "),
                        l.reason
                    );
                }
            }
        }
    }

    /// Says once which images of the user addons rke up pulls as written.
    fn report_addon_images(&self) {
        if self.addon_images.is_empty() {
            return;
        }
        let names: Vec<&str> = self.addon_images.iter().map(|a| a.image.as_str()).collect();
        let registry = self
            .cluster
            .as_ref()
            .and_then(|c| c.default_registry())
            .map(|(_, r)| r.url().to_string())
            .filter(|u| !u.is_empty());
        match registry {
            Some(r) => tracing::warn!(
                "{} image(s) of the cluster's addons are listed as written: rke up applies addons unchanged, so these will not be pulled from the private registry {r}: {}",
                names.len(),
                names.join(", ")
            ),
            None => tracing::warn!(
                "{} image(s) of the cluster's addons are listed as written: rke up applies addons unchanged, so nodes pull them from where they name, never from a private registry: {}",
                names.len(),
                names.join(", ")
            ),
        }
    }

    /// The list of each selected version, in order; `prefix` rewrites non-overridden images.
    pub fn lists(
        &self,
        prefix: Option<RegistryPrefix>,
    ) -> anyhow::Result<Vec<(String, Vec<ImageEntry>)>> {
        self.versions
            .iter()
            .map(|v| {
                let opts = ListOptions {
                    windows: self.windows,
                    cluster: self.cluster.as_ref(),
                    prefix: prefix.clone(),
                    usage: self.usages.get(v),
                };
                Ok((v.clone(), list::version_list(&self.catalog, v, &opts)?))
            })
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
                    selected_by: BTreeSet::new(),
                });
                if u.kubernetes_versions.last() != Some(version) {
                    u.kubernetes_versions.push(version.clone());
                }
                u.fields.extend(e.fields.iter().copied());
                u.selected_by.extend(e.selected_by.iter().cloned());
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
        for a in &self.addon_images {
            if !seen.insert(a.image.clone()) {
                continue;
            }
            let r = Reference::parse(&a.image).with_context(|| {
                format!(
                    "image {:?} of the cluster's addons ({}); fix it in the manifest",
                    a.image,
                    a.selected_by.join(", ")
                )
            })?;
            out.push((a.image.clone(), r));
        }
        Ok(ferry_oci::reference::dedupe(out))
    }
}
