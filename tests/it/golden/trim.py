#!/usr/bin/env python3
"""Independent derivation of the trimmed (`images --cluster`) golden lists, not ferry: the
field set of each case below is written by hand from RKE v1.6.3's rules (RKE.md section 5)
and the template field lists of tests/data/addon-templates.json for the template each
version's ranges pick (named in the comments); this script only looks the images of those
fields up (struct order, duplicates dropped, as rke config -s prints) and writes
trim-<version>-<case>.txt. `--check` (the default) fails if a file differs."""
import json, pathlib, sys

here = pathlib.Path(__file__).parent
root = here.parents[2]
emb = json.load(open(root / "crates/ferry-rke/data/system-images.json"))
kdm = json.load(open(root / "tests/data/kdm-data-2022-11-21.json"))
order = [f["json"] for f in emb["system_image_fields"]]
yaml2json = {f["yaml"]: f["json"] for f in emb["system_image_fields"]}

ALWAYS = ["alpine", "nginx_proxy", "cert_downloader", "kubernetes_services_sidecar", "kubernetes", "pod_infra_container"]
COREDNS = ["coredns", "coredns_autoscaler"]
KUBEDNS = ["kubedns", "dnsmasq", "kubedns_sidecar", "kubedns_autoscaler"]
ACI6 = ["aci_cni_deploy_container", "aci_host_container", "aci_opflex_container", "aci_mcast_container", "aci_ovs_container", "aci_controller_container"]

VERSIONS = {
    # embedded (KDM release-v2.9): canal-v3.28.1, calico-v3.28.1, flannel-v0.25.1, aci-v6.x
    # (mcast: opflex_mode is empty), nginxingress >= v1.x (webhook; backend only if
    # default_backend, default false for >= 1.21), nodelocal-v1.21, metricsserver.
    "v1.30.5-rancher1-1": dict(
        images=emb["k8s_version_rke_system_images"]["v1.30.5-rancher1-1"],
        canal=["canal_node", "canal_cni", "canal_controllers", "canal_flannel"],
        calico=["calico_node", "calico_cni", "calico_controllers"],
        flannel=["flannel", "flannel_cni"],
        aci=ACI6,
        nginx=["ingress", "ingress_webhook"], backend_default=False, backend_rendered_always=False,
        nodelocal=True,
    ),
    # 2022 data: canal-v3.16.5 and calico-v3.16.5 (flexvol), flannel-v1.16, aci-v5.0.0 (gbp and
    # opflex-server only when run_*_container is "true"), nginxingress-v1.2.0-rancher1
    # (webhook; backend default true for < 1.21), nodelocal-v1.15, coredns-v1.17.
    "v1.19.16-rancher2-1": dict(
        images=kdm["K8sVersionRKESystemImages"]["v1.19.16-rancher2-1"],
        canal=["canal_node", "canal_cni", "canal_controllers", "canal_flannel", "canal_flexvol"],
        calico=["calico_node", "calico_cni", "calico_controllers", "calico_flexvol"],
        flannel=["flannel", "flannel_cni"],
        aci=ACI6,
        nginx=["ingress", "ingress_webhook"], backend_default=True, backend_rendered_always=False,
        nodelocal=True,
    ),
    # 2022 data: canal-v1.13 (no controllers, no flexvol), calico-v1.13 (calico_ctl only if
    # calico_cloud_provider is not none), flannel-v1.8, nginxingress-v1.15 (default backend
    # rendered unconditionally, no webhook), coredns-v1.8 (>= 1.14), no aci and no nodelocal
    # template (rke up fails on them).
    "v1.14.10-rancher1-1": dict(
        images=kdm["K8sVersionRKESystemImages"]["v1.14.10-rancher1-1"],
        canal=["canal_node", "canal_cni", "canal_flannel"],
        calico=["calico_node", "calico_cni"],
        flannel=["flannel", "flannel_cni"],
        aci=None,
        nginx=["ingress"], backend_default=True, backend_rendered_always=True,
        nodelocal=False,
    ),
}

def case_fields(v, case):
    V = VERSIONS[v]
    f = list(ALWAYS)
    if case != "external-etcd":
        f.append("etcd")
    net = {"calico-kubedns-none": "calico", "calico-cloud": "calico", "flannel-nodelocal": "flannel", "aci": "aci", "none-none": "none"}.get(case, "canal")
    if net == "aci" and V["aci"] is None:
        return None
    if net != "none":
        f += V[net]
    if case == "calico-cloud" and v == "v1.14.10-rancher1-1":
        f.append("calico_ctl")
    dns = {"calico-kubedns-none": KUBEDNS, "none-none": []}.get(case, COREDNS)
    f += dns
    if case == "flannel-nodelocal":
        if not V["nodelocal"]:
            return None
        f.append("nodelocal")
    if case != "calico-kubedns-none":
        f += V["nginx"]
        backend = True if case == "default-backend" else V["backend_default"]
        if backend or V["backend_rendered_always"]:
            f.append("ingress_backend")
        f.append("metrics_server")
    return f

def listing(v, fields):
    imgs = VERSIONS[v]["images"]
    want = {yaml2json[x] for x in fields}
    out = []
    for j in order:
        i = imgs.get(j, "")
        if j in want and i and i not in out:
            out.append(i)
    return out

CASES = ["defaults", "calico-kubedns-none", "flannel-nodelocal", "aci", "none-none", "default-backend", "external-etcd", "calico-cloud"]
bad = 0
for v in VERSIONS:
    for c in CASES:
        fields = case_fields(v, c)
        if fields is None:
            continue
        text = "".join(i + "\n" for i in listing(v, fields))
        p = here / f"trim-{v}-{c}.txt"
        if "--write" in sys.argv:
            p.write_text(text)
        elif not p.exists() or p.read_text() != text:
            print("differs:", p.name); bad += 1
        print(v, c, len(text.splitlines()))
sys.exit(1 if bad else 0)
