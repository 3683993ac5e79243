//! The 41 string fields of RKE's `RKESystemImages` struct (`types/rke_types.go` of RKE
//! v1.6.3), in struct declaration order. That order is the order `rke config
//! --system-images` prints, so it is part of ferry's output contract.

/// One `RKESystemImages` field: its Go name, its `cluster.yml` key and its `data.json` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Go field name, e.g. `NginxProxy`.
    pub go: &'static str,
    /// YAML key under `system_images:` in `cluster.yml`, e.g. `nginx_proxy`.
    pub yaml: &'static str,
    /// JSON key in KDM's `data.json`, e.g. `nginxProxy`.
    pub json: &'static str,
}

impl Field {
    /// The Windows pause image, which `rke config --system-images` leaves out.
    pub fn is_windows(&self) -> bool {
        self.go == "WindowsPodInfraContainer"
    }

    /// Looks a field up by its `cluster.yml` key.
    pub fn by_yaml(key: &str) -> Option<&'static Field> {
        FIELDS.iter().find(|f| f.yaml == key)
    }

    /// Looks a field up by its `data.json` key.
    pub fn by_json(key: &str) -> Option<&'static Field> {
        FIELDS.iter().find(|f| f.json == key)
    }
}

/// All fields in struct declaration order.
#[rustfmt::skip]
pub const FIELDS: [Field; 41] = [
    Field { go: "Etcd", yaml: "etcd", json: "etcd" },
    Field { go: "Alpine", yaml: "alpine", json: "alpine" },
    Field { go: "NginxProxy", yaml: "nginx_proxy", json: "nginxProxy" },
    Field { go: "CertDownloader", yaml: "cert_downloader", json: "certDownloader" },
    Field { go: "KubernetesServicesSidecar", yaml: "kubernetes_services_sidecar", json: "kubernetesServicesSidecar" },
    Field { go: "KubeDNS", yaml: "kubedns", json: "kubedns" },
    Field { go: "DNSmasq", yaml: "dnsmasq", json: "dnsmasq" },
    Field { go: "KubeDNSSidecar", yaml: "kubedns_sidecar", json: "kubednsSidecar" },
    Field { go: "KubeDNSAutoscaler", yaml: "kubedns_autoscaler", json: "kubednsAutoscaler" },
    Field { go: "CoreDNS", yaml: "coredns", json: "coredns" },
    Field { go: "CoreDNSAutoscaler", yaml: "coredns_autoscaler", json: "corednsAutoscaler" },
    Field { go: "Nodelocal", yaml: "nodelocal", json: "nodelocal" },
    Field { go: "Kubernetes", yaml: "kubernetes", json: "kubernetes" },
    Field { go: "Flannel", yaml: "flannel", json: "flannel" },
    Field { go: "FlannelCNI", yaml: "flannel_cni", json: "flannelCni" },
    Field { go: "CalicoNode", yaml: "calico_node", json: "calicoNode" },
    Field { go: "CalicoCNI", yaml: "calico_cni", json: "calicoCni" },
    Field { go: "CalicoControllers", yaml: "calico_controllers", json: "calicoControllers" },
    Field { go: "CalicoCtl", yaml: "calico_ctl", json: "calicoCtl" },
    Field { go: "CalicoFlexVol", yaml: "calico_flexvol", json: "calicoFlexVol" },
    Field { go: "CanalNode", yaml: "canal_node", json: "canalNode" },
    Field { go: "CanalCNI", yaml: "canal_cni", json: "canalCni" },
    Field { go: "CanalControllers", yaml: "canal_controllers", json: "canalControllers" },
    Field { go: "CanalFlannel", yaml: "canal_flannel", json: "canalFlannel" },
    Field { go: "CanalFlexVol", yaml: "canal_flexvol", json: "canalFlexVol" },
    Field { go: "WeaveNode", yaml: "weave_node", json: "weaveNode" },
    Field { go: "WeaveCNI", yaml: "weave_cni", json: "weaveCni" },
    Field { go: "PodInfraContainer", yaml: "pod_infra_container", json: "podInfraContainer" },
    Field { go: "Ingress", yaml: "ingress", json: "ingress" },
    Field { go: "IngressBackend", yaml: "ingress_backend", json: "ingressBackend" },
    Field { go: "IngressWebhook", yaml: "ingress_webhook", json: "ingressWebhook" },
    Field { go: "MetricsServer", yaml: "metrics_server", json: "metricsServer" },
    Field { go: "WindowsPodInfraContainer", yaml: "windows_pod_infra_container", json: "windowsPodInfraContainer" },
    Field { go: "AciCniDeployContainer", yaml: "aci_cni_deploy_container", json: "aciCniDeployContainer" },
    Field { go: "AciHostContainer", yaml: "aci_host_container", json: "aciHostContainer" },
    Field { go: "AciOpflexContainer", yaml: "aci_opflex_container", json: "aciOpflexContainer" },
    Field { go: "AciMcastContainer", yaml: "aci_mcast_container", json: "aciMcastContainer" },
    Field { go: "AciOpenvSwitchContainer", yaml: "aci_ovs_container", json: "aciOvsContainer" },
    Field { go: "AciControllerContainer", yaml: "aci_controller_container", json: "aciControllerContainer" },
    Field { go: "AciGbpServerContainer", yaml: "aci_gbp_server_container", json: "aciGbpServerContainer" },
    Field { go: "AciOpflexServerContainer", yaml: "aci_opflex_server_container", json: "aciOpflexServerContainer" },
];

#[cfg(test)]
mod tests;
