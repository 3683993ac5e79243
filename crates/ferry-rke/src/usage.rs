//! Which system-image fields `rke up` (RKE v1.6.3) really uses for a cluster.yml, and why
//! each of the others is left out (`cluster/defaults.go`, `cluster/network.go`,
//! `cluster/addons.go`, `cluster/plan.go`, `cluster/validation.go`; the table of RKE.md §5).
//!
//! - Always: `kubernetes`, the rke-tools fields (`alpine`, `cert_downloader`,
//!   `kubernetes_services_sidecar`, `nginx_proxy`) and `pod_infra_container` (replaced by
//!   `services.kubelet.infra_container_image` when that is set).
//! - `etcd` unless `services.etcd.external_urls` is non-empty.
//! - One network plugin (`network.plugin`, default canal; none deploys nothing), one DNS
//!   provider (`dns.provider`, default coredns from k8s 1.14, kube-dns before; none), NodeLocal
//!   DNS with `dns.nodelocal.ip_address`, nginx ingress (`ingress.provider`, default nginx;
//!   none) and metrics-server (`monitoring.provider`, default; none). For each, the fields
//!   are the ones the version's template renders ([`crate::addons`]), with its conditions
//!   decided from the cluster.yml (`ingress.default_backend`, …).

use std::collections::BTreeMap;

use super::addons::{self, AddonTemplates, TemplateError, addon_title};
use super::catalog::Catalog;
use super::cluster::ClusterConfig;
use super::fields::{FIELDS, Field};
use super::semver::Version;

/// Why a cluster.yml cannot be deployed as written (RKE refuses it the same way).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// `network.plugin` is not one RKE knows.
    #[error(
        "{path}: network.plugin is {plugin:?}, and RKE refuses it (Network plugin [{plugin}] is not supported); use canal, flannel, calico, weave, aci or none"
    )]
    UnknownNetworkPlugin {
        /// The cluster.yml.
        path: String,
        /// The value.
        plugin: String,
    },
    /// weave on Kubernetes 1.30 or newer.
    #[error(
        "{path}: network.plugin weave is not supported by RKE v1.6.3 for Kubernetes {version} (weave was removed for 1.30 and newer); choose another plugin, e.g. canal or calico, or an older kubernetes_version"
    )]
    WeaveRemoved {
        /// The cluster.yml.
        path: String,
        /// The Kubernetes version.
        version: String,
    },
    /// aci without its provider block.
    #[error(
        "{path}: network.plugin is aci, but network.aci_network_provider is missing, and RKE refuses the cluster without it; add the aci_network_provider block (system_id, apic_hosts, token, …) as the RKE docs for Cisco ACI describe"
    )]
    AciWithoutProvider {
        /// The cluster.yml.
        path: String,
    },
    /// `ingress.provider` is not one RKE knows.
    #[error(
        "{path}: ingress.provider is {provider:?}, and RKE refuses it (ingress controller {provider} is incorrect); use nginx or none"
    )]
    UnknownIngress {
        /// The cluster.yml.
        path: String,
        /// The value.
        provider: String,
    },
    /// The addon templates cannot answer.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Fields left out for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// What they belong to, e.g. `ACI`, `etcd`, `calico`.
    pub what: String,
    /// The fields.
    pub fields: Vec<&'static Field>,
    /// Why, e.g. `network.plugin is calico`.
    pub reason: String,
}

/// The fields one version's `rke up` uses for a cluster.yml.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Go field name → the settings that select it, first first.
    pub used: BTreeMap<&'static str, Vec<String>>,
    /// Go field name → the image that replaces the catalog's (verbatim), e.g. the kubelet's
    /// `infra_container_image`.
    pub replaced: BTreeMap<&'static str, String>,
    /// What is left out and why, in decision order.
    pub left_out: Vec<LeftOut>,
    /// Things RKE only warns about.
    pub notes: Vec<String>,
}

const NETWORK: [&str; 5] = ["canal", "flannel", "calico", "weave", "aci"];

fn by_yaml(yaml: &str) -> &'static Field {
    Field::by_yaml(yaml).unwrap_or_else(|| panic!("unknown field {yaml}"))
}

impl Usage {
    fn use_field(&mut self, field: &'static Field, why: &str) {
        let reasons = self.used.entry(field.go).or_default();
        if !reasons.iter().any(|r| r == why) {
            reasons.push(why.to_string());
        }
    }

    fn leave_out(&mut self, what: &str, field: &'static Field, reason: String) {
        if let Some(l) = self
            .left_out
            .iter_mut()
            .find(|l| l.what == what && l.reason == reason)
        {
            if !l.fields.contains(&field) {
                l.fields.push(field);
            }
            return;
        }
        self.left_out.push(LeftOut {
            what: what.to_string(),
            fields: vec![field],
            reason,
        });
    }

    /// Every field of `addon` (by RKE's variable mapping), left out for `reason`.
    fn leave_out_addon(&mut self, addon: &str, reason: &str) {
        for f in addon_fields(addon) {
            self.leave_out(addon_title(addon), f, reason.to_string());
        }
    }
}

/// The fields RKE passes to an addon's template, in struct order.
pub fn addon_fields(addon: &str) -> Vec<&'static Field> {
    let Some(vars) = addons::var_map().vars.get(addon) else {
        return Vec::new();
    };
    FIELDS
        .iter()
        .filter(|f| vars.values().any(|(v, _)| v.go == f.go))
        .filter(|f| !(f.yaml == "alpine" && addon == "nginxIngress"))
        .collect()
}

struct Ctx<'a> {
    catalog: &'a Catalog,
    templates: &'a AddonTemplates,
    version: &'a str,
    k8s: Version,
    cluster: &'a ClusterConfig,
}

fn at_least(v: &Version, release: &str) -> bool {
    v.release() >= Version::parse(release).expect("constant version")
}

impl Ctx<'_> {
    /// Decides a named condition; `None` when ferry does not know it (then the image is kept).
    fn condition(&self, name: &str) -> Option<(bool, String)> {
        let aci = |key: &str, default: &str| {
            self.cluster
                .aci_network_provider
                .as_ref()
                .and_then(|a| a.get(key))
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| default.to_string())
        };
        Some(match name {
            "default_backend" => match self.cluster.ingress_default_backend {
                Some(b) => (b, format!("ingress.default_backend={b}")),
                None => {
                    let cut = Version::parse("1.21.0-rancher0").expect("constant");
                    let b = self.k8s < cut;
                    let rel = if b { "<" } else { ">=" };
                    (
                        b,
                        format!("ingress.default_backend unset ({b} for Kubernetes {rel} 1.21)"),
                    )
                }
            },
            "ingress_version < 0.16.0" => {
                let image = self
                    .cluster
                    .override_for(by_yaml("ingress"))
                    .map(str::to_string)
                    .or_else(|| {
                        self.catalog
                            .images(self.version)
                            .and_then(|i| i.get(by_yaml("ingress")).map(str::to_string))
                    })
                    .unwrap_or_default();
                let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
                let parts: Vec<&str> = tag.split('-').collect();
                let v = if parts.len() == 2 {
                    parts[0]
                } else {
                    parts.get(1).copied().unwrap_or(parts[0])
                };
                (
                    !tag.is_empty() && v < "0.16.0",
                    format!("ingress image version {v:?} < \"0.16.0\""),
                )
            }
            "calico_cloud_provider != none" => {
                let v = self
                    .cluster
                    .network_options
                    .get("calico_cloud_provider")
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| "none".into());
                (
                    v != "none",
                    format!("network.options.calico_cloud_provider={v}"),
                )
            }
            "opflex_mode != overlay" => {
                let v = aci("opflex_mode", "");
                (
                    v != "overlay",
                    format!("network.aci_network_provider.opflex_mode={v:?}"),
                )
            }
            "run_gbp_container == true" => {
                let v = aci("run_gbp_container", "false");
                (
                    v == "true",
                    format!("network.aci_network_provider.run_gbp_container={v}"),
                )
            }
            "run_opflex_server_container == true" => {
                let v = aci("run_opflex_server_container", "false");
                (
                    v == "true",
                    format!("network.aci_network_provider.run_opflex_server_container={v}"),
                )
            }
            _ => return None,
        })
    }

    /// Uses the fields `addon`'s template renders, selected by `setting`.
    fn deploy(&self, u: &mut Usage, addon: &str, setting: &str) -> Result<(), UsageError> {
        let title = addon_title(addon);
        let Some(t) = self.templates.lookup(addon, self.version)? else {
            return Err(TemplateError::NoTemplate {
                source_name: self.templates.source_name.clone(),
                addon: addon.to_string(),
                version: self.version.to_string(),
                setting: setting.to_string(),
            }
            .into());
        };
        let fields = t.fields.as_ref().map_err(|e| TemplateError::BadTemplate {
            source_name: self.templates.source_name.clone(),
            addon: addon.to_string(),
            key: t.key.clone(),
            version: self.version.to_string(),
            problem: e.clone(),
        })?;
        let mut rendered = Vec::new();
        for tf in fields {
            rendered.push(tf.field.go);
            if tf.condition().is_none() {
                u.use_field(tf.field, setting);
                continue;
            }
            // OR of ANDs; an unknown condition counts as true (keep the image).
            let mut chosen: Option<String> = None;
            let mut against = Vec::new();
            for all in &tf.when {
                let mut ok = true;
                let mut why = Vec::new();
                for c in all {
                    match self.condition(c) {
                        Some((b, text)) => {
                            ok &= b;
                            why.push(text);
                        }
                        None => {
                            u.notes.push(format!(
                                "the {title} template {} renders {} only when {c:?}, a condition ferry does not know; the image is kept",
                                t.key, tf.field.yaml
                            ));
                            why.push(c.clone());
                        }
                    }
                }
                if ok && chosen.is_none() {
                    chosen = Some(why.join(", "));
                } else if !ok {
                    against.push(why.join(", "));
                }
            }
            match chosen {
                Some(why) => u.use_field(tf.field, &why),
                None => u.leave_out(
                    title,
                    tf.field,
                    format!(
                        "rendered by the template {} only when {} ({})",
                        t.key,
                        tf.condition().unwrap_or_default(),
                        against.join("; ")
                    ),
                ),
            }
        }
        for f in addon_fields(addon) {
            if !rendered.contains(&f.go) {
                u.leave_out(title, f, format!("not rendered by the template {}", t.key));
            }
        }
        Ok(())
    }
}

/// What `rke up` uses of Kubernetes `version`'s system images for `cluster` (see the module
/// docs); `catalog` gives the images and the addon templates.
pub fn usage(
    catalog: &Catalog,
    version: &str,
    cluster: &ClusterConfig,
) -> Result<Usage, UsageError> {
    let templates = catalog.addon_templates();
    let k8s = Version::kubernetes(version).map_err(|source| TemplateError::BadVersion {
        version: version.to_string(),
        source,
    })?;
    let cx = Ctx {
        catalog,
        templates,
        version,
        k8s,
        cluster,
    };
    let path = cluster.path.display().to_string();
    let mut u = Usage::default();
    for f in [
        "kubernetes",
        "alpine",
        "cert_downloader",
        "kubernetes_services_sidecar",
        "nginx_proxy",
    ] {
        u.use_field(by_yaml(f), "always");
    }
    let pause = by_yaml("pod_infra_container");
    if cluster.infra_container_image.is_empty() {
        u.use_field(pause, "always");
    } else {
        u.use_field(pause, "services.kubelet.infra_container_image");
        u.replaced
            .insert(pause.go, cluster.infra_container_image.clone());
    }
    let etcd = by_yaml("etcd");
    if cluster.etcd_external_urls.is_empty() {
        u.use_field(etcd, "always (no services.etcd.external_urls)");
    } else {
        u.leave_out("etcd", etcd, "services.etcd.external_urls is set".into());
    }

    // Network.
    let (plugin, setting) = match cluster.network_plugin.as_str() {
        "" => ("canal", "network.plugin=canal (default)".to_string()),
        p => (p, format!("network.plugin={p}")),
    };
    if plugin != "none" && !NETWORK.contains(&plugin) {
        return Err(UsageError::UnknownNetworkPlugin {
            path,
            plugin: plugin.to_string(),
        });
    }
    if plugin == "weave" && at_least(&cx.k8s, "1.30.0") {
        return Err(UsageError::WeaveRemoved {
            path,
            version: version.to_string(),
        });
    }
    if plugin == "aci" && cluster.aci_network_provider.is_none() {
        return Err(UsageError::AciWithoutProvider { path });
    }
    match cluster.ingress_provider.as_str() {
        "" | "nginx" | "none" => {}
        p => {
            return Err(UsageError::UnknownIngress {
                path,
                provider: p.to_string(),
            });
        }
    }
    if plugin != "none" {
        cx.deploy(&mut u, plugin, &setting)?;
    }
    for other in NETWORK.iter().filter(|p| **p != plugin) {
        u.leave_out_addon(other, &format!("network.plugin is {plugin}"));
    }

    // DNS.
    let (dns, setting) = match cluster.dns_provider.as_str() {
        "" if at_least(&cx.k8s, "1.14.0") => {
            ("coredns", "dns.provider=coredns (default)".to_string())
        }
        "" => ("kube-dns", "dns.provider=kube-dns (default)".to_string()),
        p => (p, format!("dns.provider={p}")),
    };
    let dns_addon = match dns {
        "coredns" => Some("coreDNS"),
        "kube-dns" => Some("kubeDNS"),
        "none" => None,
        other => {
            u.notes.push(format!(
                "{path}: dns.provider {other:?} is not coredns, kube-dns or none; rke up only warns and deploys no DNS"
            ));
            None
        }
    };
    if let Some(a) = dns_addon {
        cx.deploy(&mut u, a, &setting)?;
    }
    for a in ["coreDNS", "kubeDNS"] {
        if Some(a) != dns_addon {
            u.leave_out_addon(a, &format!("dns.provider is {dns}"));
        }
    }
    match (&dns_addon, cluster.nodelocal_ip.as_str()) {
        (_, "") => u.leave_out_addon("nodelocal", "dns.nodelocal.ip_address is not set"),
        (None, _) => u.leave_out_addon("nodelocal", &format!("dns.provider is {dns}")),
        (Some(_), ip) => cx.deploy(
            &mut u,
            "nodelocal",
            &format!("dns.nodelocal.ip_address={ip}"),
        )?,
    }

    // Ingress.
    match cluster.ingress_provider.as_str() {
        "none" => u.leave_out_addon("nginxIngress", "ingress.provider is none"),
        p => {
            let setting = if p.is_empty() {
                "ingress.provider=nginx (default)"
            } else {
                "ingress.provider=nginx"
            };
            cx.deploy(&mut u, "nginxIngress", setting)?;
        }
    }

    // Monitoring.
    match cluster.monitoring_provider.as_str() {
        "" => cx.deploy(
            &mut u,
            "metricsServer",
            "monitoring.provider=metrics-server (default)",
        )?,
        "metrics-server" => cx.deploy(
            &mut u,
            "metricsServer",
            "monitoring.provider=metrics-server",
        )?,
        "none" => u.leave_out_addon("metricsServer", "monitoring.provider is none"),
        other => {
            u.notes.push(format!(
                "{path}: monitoring.provider {other:?} is not metrics-server or none; rke up deploys no monitoring addon for it"
            ));
            u.leave_out_addon("metricsServer", &format!("monitoring.provider is {other}"));
        }
    }
    // A field used for one reason is not left out for another (alpine, shared images).
    for l in &mut u.left_out {
        l.fields.retain(|f| !u.used.contains_key(f.go));
    }
    u.left_out.retain(|l| !l.fields.is_empty());
    Ok(u)
}

#[cfg(test)]
mod tests;
