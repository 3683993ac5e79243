//! `ferry images --cluster`: only what `rke up` deploys. The expected lists are
//! `golden/trim-<version>-<case>.txt`, derived by hand (`golden/trim.py`: the field set of
//! each case written from RKE's rules and the versions' template field lists) — never from
//! ferry's output. Versions: the embedded default v1.30.5, and v1.19.16-rancher2-1 and
//! v1.14.10-rancher1-1 from the 2022 KDM data.json (`--metadata`, so the field lists come
//! from that file's template text), where flexvol, calico_ctl, controllers, the webhook and
//! the default backend differ.

use std::path::{Path, PathBuf};

use ferry_test_support::static_files::StaticServer;

use crate::kdm::Env;
use crate::support::ferry;

const ACI_BLOCK: &str = r#"
  aci_network_provider:
    system_id: rke
    apic_hosts: ["10.1.1.1"]
    token: abc
    apic_user_name: admin
    apic_user_key: key
    apic_user_crt: crt
    encap_type: vxlan
    mcast_range_start: 225.20.1.1
    mcast_range_end: 225.20.255.255
    aep: rke-aep
    vrf_name: rke-vrf
    vrf_tenant: common
    l3out: l3out
    node_subnet: 10.1.0.1/16
    l3out_external_networks: ["ext"]
    kube_api_vlan: "4001"
    service_vlan: "4003"
    infra_vlan: "4093"
"#;

fn case_yaml(case: &str) -> String {
    match case {
        "defaults" => String::new(),
        "calico-kubedns-none" => "network: {plugin: calico}\ndns: {provider: kube-dns}\ningress: {provider: none}\nmonitoring: {provider: none}\n".into(),
        "flannel-nodelocal" => "network: {plugin: flannel}\ndns:\n  nodelocal: {ip_address: 169.254.20.10}\n".into(),
        "aci" => format!("network:\n  plugin: aci{ACI_BLOCK}"),
        "none-none" => "network: {plugin: none}\ndns: {provider: none}\n".into(),
        "default-backend" => "ingress: {provider: nginx, default_backend: true}\n".into(),
        "external-etcd" => "services:\n  etcd:\n    external_urls: [\"https://etcd1.example.com:2379\"]\n    ca_cert: x\n".into(),
        "calico-cloud" => "network:\n  plugin: calico\n  options: {calico_cloud_provider: aws, mtu: 1450}\n".into(),
        other => panic!("{other}"),
    }
}

const CASES: [&str; 8] = [
    "defaults",
    "calico-kubedns-none",
    "flannel-nodelocal",
    "aci",
    "none-none",
    "default-backend",
    "external-etcd",
    "calico-cloud",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kdm() -> String {
    root()
        .join("tests/data/kdm-data-2022-11-21.json")
        .to_string_lossy()
        .into_owned()
}

fn golden(name: &str) -> Option<String> {
    std::fs::read_to_string(root().join("tests/it/golden").join(name)).ok()
}

fn cluster(dir: &Path, name: &str, version: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!("kubernetes_version: {version}\nnodes: [{{address: 1.2.3.4, role: [etcd]}}]\nunknown_key: {{anything: 1}}\n{body}"),
    )
    .expect("write");
    p
}

fn run(args: &[&str]) -> std::process::Output {
    ferry().args(args).output().expect("run ferry")
}

fn stdout_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every case on every version: the hand-derived list, or RKE's refusal where a version
/// has no template for the addon asked for.
#[test]
fn every_case_on_three_versions() {
    let dir = tempfile::tempdir().expect("tmp");
    let kdm = kdm();
    for (version, metadata) in [
        ("v1.30.5-rancher1-1", None),
        ("v1.19.16-rancher2-1", Some(kdm.as_str())),
        ("v1.14.10-rancher1-1", Some(kdm.as_str())),
    ] {
        for case in CASES {
            let c = cluster(
                dir.path(),
                &format!("{case}.yml"),
                version,
                &case_yaml(case),
            );
            let mut args = vec!["images", "--cluster", c.to_str().expect("path")];
            if let Some(m) = metadata {
                args.extend(["--metadata", m]);
            }
            match golden(&format!("trim-{version}-{case}.txt")) {
                Some(want) => assert_eq!(stdout_ok(&args), want, "{version} {case}"),
                None => {
                    let out = run(&args);
                    assert_eq!(out.status.code(), Some(2), "{version} {case}");
                    let e = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        e.contains("template for Kubernetes v1.14.10-rancher1-1"),
                        "{e}"
                    );
                    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
                }
            }
        }
    }
}

/// The issue's case: 26 images listed, 11 deployed; -v says what was left out and why,
/// --json which setting selected each image; --include-unused is the rke config -s list.
#[test]
fn calico_kubedns_without_ingress_or_monitoring() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = "v1.30.5-rancher1-1";
    let c = cluster(dir.path(), "c.yml", v, &case_yaml("calico-kubedns-none"));
    let c = c.to_str().expect("path");
    let all = golden("v1.30.5-rancher1-1.txt").expect("golden");
    assert_eq!(all.lines().count(), 26);
    assert_eq!(stdout_ok(&["images", "-c", c, "--include-unused"]), all);
    let trimmed = golden("trim-v1.30.5-rancher1-1-calico-kubedns-none.txt").expect("golden");
    assert_eq!(trimmed.lines().count(), 11);

    let out = run(&["-v", "images", "-c", c]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), trimmed);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("left out 5 ACI images: network.plugin is calico"),
        "{e}"
    );
    assert!(
        e.contains("left out 3 nginx ingress images: ingress.provider is none"),
        "{e}"
    );
    assert!(e.contains("11 of the 26 system images"), "{e}");

    let j: serde_json::Value =
        serde_json::from_str(&stdout_ok(&["images", "-c", c, "--json"])).expect("json");
    let images = j["images"].as_array().expect("images");
    assert_eq!(images.len(), 11);
    let by = |img: &str| {
        images
            .iter()
            .find(|i| i["image"] == img)
            .unwrap_or_else(|| panic!("{img}"))["selected_by"]
            .clone()
    };
    assert_eq!(
        by("rancher/mirrored-calico-node:v3.28.1"),
        serde_json::json!(["network.plugin=calico"])
    );
    assert_eq!(
        by("rancher/hyperkube:v1.30.5-rancher1"),
        serde_json::json!(["always"])
    );
    assert_eq!(
        by("rancher/mirrored-k8s-dns-kube-dns:1.23.0"),
        serde_json::json!(["dns.provider=kube-dns"])
    );
    // The autoscaler image is shared by kube-dns and CoreDNS; kube-dns selected it.
    assert_eq!(
        images
            .iter()
            .find(|i| i["image"] == "rancher/mirrored-cluster-proportional-autoscaler:v1.8.9")
            .expect("autoscaler")["fields"],
        serde_json::json!(["kubedns_autoscaler"])
    );
}

/// Overrides, the registry rewrite, the kubelet's infra image, unknown settings and refusals.
#[test]
fn rewrites_overrides_and_refusals() {
    let dir = tempfile::tempdir().expect("tmp");
    let v = "v1.30.5-rancher1-1";
    let c = cluster(
        dir.path(),
        "c.yml",
        v,
        "private_registries: [{url: reg.example.com:5000, is_default: true}]\nsystem_images: {calico_node: my/calico-node:1, canal_node: my/canal-node:1}\nservices: {kubelet: {infra_container_image: my/pause:9}}\n",
    );
    let out = stdout_ok(&["images", "-c", c.to_str().expect("path")]);
    let want: String = golden("trim-v1.30.5-rancher1-1-defaults.txt")
        .expect("golden")
        .lines()
        .map(|l| match l {
            "rancher/mirrored-calico-node:v3.28.1" => "my/canal-node:1\n".to_string(),
            "rancher/mirrored-pause:3.7" => "my/pause:9\n".to_string(),
            l => format!("reg.example.com:5000/{l}\n"),
        })
        .collect();
    assert_eq!(out, want);
    assert!(
        !out.contains("my/calico-node"),
        "an override of an unused plugin changes nothing"
    );

    for (body, needle) in [
        (
            "network: {plugin: cilium}\n",
            "Network plugin [cilium] is not supported",
        ),
        (
            "ingress: {provider: traefik}\n",
            "ingress controller traefik is incorrect",
        ),
        ("network: {plugin: weave}\n", "weave"),
        ("network: {plugin: aci}\n", "aci_network_provider"),
    ] {
        let c = cluster(dir.path(), "bad.yml", v, body);
        let out = run(&["images", "-c", c.to_str().expect("path")]);
        assert_eq!(out.status.code(), Some(2), "{body}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(needle) && e.contains("bad.yml"), "{e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    }
    // weave is still fine before 1.30; an unknown DNS provider only warns, as in RKE.
    let c = cluster(
        dir.path(),
        "w.yml",
        "v1.29.9-rancher1-1",
        "network: {plugin: weave}\ndns: {provider: bind}\n",
    );
    let out = run(&["images", "-c", c.to_str().expect("path")]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("weave-kube") && !s.contains("coredns"), "{s}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("dns.provider \"bind\""));
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      initContainers: [{name: i, image: \"busybox:1.36\"}]\n      containers: [{name: c, image: \"example.com/team/app:1\"}]\n";

/// User addons: inline, an included local file (relative to the cluster.yml), an included
/// https:// URL served by the harness, listed as written after the system images, named once
/// on stderr; a broken file is a clear error naming it and the line.
#[test]
fn user_addons_inline_file_and_url() {
    let env = Env::new();
    let dir = env.sandbox.path().join("site");
    std::fs::create_dir_all(dir.join("manifests")).expect("mkdir");
    std::fs::write(
        dir.join("manifests/job.yaml"),
        "apiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: j, image: \"alpine:3.19\"}]\n---\nkind: List\nitems:\n- kind: Pod\n  spec: {containers: [{name: p, image: \"busybox:1.36\"}], ephemeralContainers: [{name: d, image: \"nicolaka/netshoot:v0.11\"}]}\n",
    )
    .expect("write");
    let server = StaticServer::start(&[("/addon.yaml", b"kind: DaemonSet\nspec: {template: {spec: {containers: [{name: d, image: \"quay.io/x/agent:2\"}]}}}\n".to_vec())], true);
    let url = server.url("/addon.yaml");
    let inline = DEPLOY.replace('\n', "\n    ");
    let c = cluster(
        &dir,
        "cluster.yml",
        "v1.30.5-rancher1-1",
        &format!(
            "private_registries: [{{url: reg.example.com, is_default: true}}]\naddons: |-\n    {inline}\naddons_include:\n  - manifests/job.yaml\n  - {url}\n"
        ),
    );
    let c = c.to_str().expect("path");
    let (out, err) = env.images(&["-c", c]);
    let system: String = golden("trim-v1.30.5-rancher1-1-defaults.txt")
        .expect("golden")
        .lines()
        .map(|l| format!("reg.example.com/{l}\n"))
        .collect();
    let addons = "busybox:1.36\nexample.com/team/app:1\nalpine:3.19\nnicolaka/netshoot:v0.11\nquay.io/x/agent:2\n";
    assert_eq!(out, format!("{system}{addons}"));
    assert_eq!(
        err.matches("will not be pulled from the private registry reg.example.com")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("quay.io/x/agent:2"), "{err}");

    let (json, _) = env.images(&["-c", c, "--json"]);
    let j: serde_json::Value = serde_json::from_str(&json).expect("json");
    let a = j["addon_images"].as_array().expect("addon_images");
    assert_eq!(a.len(), 5);
    assert_eq!(
        a[0]["selected_by"],
        serde_json::json!(["addons", "addons_include: manifests/job.yaml"])
    );

    // --offline: the URL from the cache, with the server gone.
    drop(server);
    let (again, _) = env.images(&["-c", c, "--offline"]);
    assert_eq!(again, out);

    // A broken included file: one paragraph naming the file and the line.
    std::fs::write(
        dir.join("manifests/job.yaml"),
        "kind: Pod\nspec:\n  containers: [\n  - {image: a\n",
    )
    .expect("write");
    let out = env.run(&["images", "-c", c, "--offline"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("manifests/job.yaml cannot be parsed as YAML") && e.contains("line"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    // A missing one names it too.
    std::fs::remove_file(dir.join("manifests/job.yaml")).expect("rm");
    let out = env.run(&["images", "-c", c, "--offline"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifests/job.yaml"));
}
