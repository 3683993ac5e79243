use std::path::Path;

use super::*;

fn cluster(yml: &str) -> ClusterConfig {
    ClusterConfig::parse(yml, Path::new("cluster.yml")).unwrap()
}

fn used(yml: &str, version: &str) -> Vec<&'static str> {
    let catalog = Catalog::load(None, "v1.6.3").unwrap();
    let u = usage(&catalog, version, &cluster(yml)).unwrap();
    FIELDS
        .iter()
        .filter(|f| u.used.contains_key(f.go))
        .map(|f| f.yaml)
        .collect()
}

#[test]
fn defaults_on_v1_30() {
    assert_eq!(
        used("", "v1.30.5-rancher1-1"),
        [
            "etcd",
            "alpine",
            "nginx_proxy",
            "cert_downloader",
            "kubernetes_services_sidecar",
            "coredns",
            "coredns_autoscaler",
            "kubernetes",
            "canal_node",
            "canal_cni",
            "canal_controllers",
            "canal_flannel",
            "pod_infra_container",
            "ingress",
            "ingress_webhook",
            "metrics_server",
        ]
    );
}

#[test]
fn old_version_defaults_use_flexvol_and_backend() {
    // v1.17.17: canal-v3.16.0-ish template renders flexvol; k8s < 1.21 defaults the backend on.
    let got = used("network: {plugin: calico}\n", "v1.17.17-rancher2-3");
    assert!(got.contains(&"calico_flexvol"), "{got:?}");
    assert!(got.contains(&"ingress_backend"), "{got:?}");
    assert!(!got.contains(&"calico_ctl"), "{got:?}");
}

#[test]
fn left_out_says_why() {
    let catalog = Catalog::load(None, "v1.6.3").unwrap();
    let c = cluster(
        "network: {plugin: calico}\ndns: {provider: kube-dns}\ningress: {provider: none}\nmonitoring: {provider: none}\n",
    );
    let u = usage(&catalog, "v1.30.5-rancher1-1", &c).unwrap();
    let aci = u.left_out.iter().find(|l| l.what == "ACI").unwrap();
    assert_eq!(aci.reason, "network.plugin is calico");
    assert_eq!(aci.fields.len(), 8);
    assert!(u.left_out.iter().any(|l| {
        l.what == "calico"
            && l.reason
                .contains("not rendered by the template calico-v3.28.1")
            && l.fields.iter().any(|f| f.yaml == "calico_flexvol")
    }));
}

#[test]
fn rke_refusals() {
    let catalog = Catalog::load(None, "v1.6.3").unwrap();
    let err = |yml: &str| {
        usage(&catalog, "v1.30.5-rancher1-1", &cluster(yml))
            .unwrap_err()
            .to_string()
    };
    assert!(
        err("network: {plugin: cilium}\n").contains("Network plugin [cilium] is not supported")
    );
    assert!(err("network: {plugin: weave}\n").contains("weave"));
    assert!(err("network: {plugin: aci}\n").contains("aci_network_provider"));
    assert!(
        err("ingress: {provider: traefik}\n").contains("ingress controller traefik is incorrect")
    );
    assert!(
        usage(
            &catalog,
            "v1.29.9-rancher1-1",
            &cluster("network: {plugin: weave}\n")
        )
        .is_ok()
    );
}
