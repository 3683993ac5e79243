//! Tests of `ferry images`: golden lists (written by hand from the catalog data, see
//! `golden/derive.py`), every rewrite form, cluster.yml overrides, the real KDM data.json, and
//! every error case.

use std::path::{Path, PathBuf};

use crate::support::ferry;

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn kdm_2022() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kdm-data-2022-11-21.json")
}

/// Runs ferry with `args`, asserts success, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = ferry().args(args).output().expect("run ferry");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ferry {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs ferry with `args`, asserts exit code 2 and a one-paragraph error; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = ferry().args(args).output().expect("run ferry");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "ferry {args:?}: expected exit 2, stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one paragraph: {stderr}"
    );
    stderr
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

fn prefixed(golden_text: &str, prefix: &str) -> String {
    golden_text
        .lines()
        .map(|l| format!("{prefix}/{l}\n"))
        .collect()
}

#[test]
fn default_is_rke_default_version() {
    assert_eq!(ok(&["images"]), golden("v1.30.5-rancher1-1.txt"));
}

#[test]
fn oldest_middle_newest_versions() {
    for v in [
        "v1.8.11-rancher2-1",
        "v1.17.17-rancher2-3",
        "v1.30.5-rancher1-1",
    ] {
        assert_eq!(ok(&["images", "-k", v]), golden(&format!("{v}.txt")), "{v}");
        assert_eq!(
            ok(&["images", "--kubernetes-version", v]),
            golden(&format!("{v}.txt")),
            "{v}"
        );
    }
}

#[test]
fn all_is_current_versions_in_ascending_blocks() {
    assert_eq!(ok(&["images", "--all"]), golden("all-current.txt"));
    assert_eq!(
        ok(&["images", "-a", "--unique"]),
        golden("all-current-unique.txt")
    );
}

#[test]
fn list_versions() {
    assert_eq!(ok(&["images", "--list-versions"]), "v1.30.5-rancher1-1\n");
    assert_eq!(
        ok(&["images", "--list-versions", "--all"]),
        "v1.27.16-rancher1-1\nv1.28.14-rancher1-1\nv1.29.9-rancher1-1\nv1.30.5-rancher1-1\n"
    );
}

#[test]
fn windows_pause_only_with_flag() {
    let plain = golden("v1.17.17-rancher2-3.txt");
    let with: String = plain
        .lines()
        .flat_map(|l| {
            let extra = (l == "rancher/mirrored-metrics-server:v0.3.6")
                .then_some("rancher/kubelet-pause:v0.1.6");
            std::iter::once(l).chain(extra)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        ok(&["images", "-k", "v1.17.17-rancher2-3", "--windows"]),
        with
    );
    // In v1.30.5 the Windows pause image equals the Linux one: nothing is added.
    assert_eq!(
        ok(&["images", "--windows"]),
        golden("v1.30.5-rancher1-1.txt")
    );
}

#[test]
fn registry_rewrite_forms() {
    let g = golden("v1.30.5-rancher1-1.txt");
    for prefix in [
        "registry.com",
        "registry.com:5555",
        "1.1.1.1",
        "1.1.1.1:5555/artifactory",
        "harbor.local/proj/sub",
    ] {
        assert_eq!(
            ok(&["images", "--registry", prefix]),
            prefixed(&g, prefix),
            "{prefix}"
        );
    }
    // The example of the RKE docs.
    let out = ok(&[
        "images",
        "-k",
        "v1.17.17-rancher2-3",
        "--registry",
        "registry.com",
    ]);
    assert!(
        out.lines()
            .any(|l| l == "registry.com/rancher/rke-tools:v0.1.74"),
        "{out}"
    );
}

#[test]
fn bad_registry_urls_are_refused() {
    for bad in ["https://registry.com", "registry.com/", "", "reg istry"] {
        let e = fails(&["images", "--registry", bad]);
        assert!(e.contains("--registry"), "{e}");
    }
}

#[test]
fn cluster_overrides_and_default_registry() {
    let dir = tempfile::tempdir().expect("tmp");
    let cluster = write(
        dir.path(),
        "cluster.yml",
        r#"
nodes:
  - address: 10.0.0.1
    user: ubuntu
    role: [controlplane, etcd, worker]
kubernetes_version: v1.17.17-rancher2-3
system_images:
  etcd: my.registry:5000/custom/etcd:v3.4.3
  kubernetes: ""
private_registries:
  - url: other.registry
    user: someone
    password: not-this-one
  - url: 1.1.1.1:5555/artifactory
    user: admin
    password: Sup3rS3cret!
    is_default: true
  - url: third.registry
    is_default: true
services:
  kube-api:
    service_cluster_ip_range: 10.43.0.0/16
network:
  plugin: canal
"#,
    );
    let g = golden("v1.17.17-rancher2-3.txt");
    let expected: String = g
        .lines()
        .map(|l| {
            if l.starts_with("rancher/mirrored-coreos-etcd:") {
                "my.registry:5000/custom/etcd:v3.4.3\n".to_string()
            } else {
                format!("1.1.1.1:5555/artifactory/{l}\n")
            }
        })
        .collect();
    let c = cluster.to_str().expect("utf-8 path");
    assert_eq!(
        ok(&["images", "--cluster", c, "--include-unused"]),
        expected
    );

    // --registry overrides the cluster's registry but keeps its overrides.
    let out = ok(&[
        "images",
        "--cluster",
        c,
        "--include-unused",
        "--registry",
        "registry.com",
    ]);
    assert!(
        out.starts_with(
            "my.registry:5000/custom/etcd:v3.4.3\nregistry.com/rancher/rke-tools:v0.1.74\n"
        ),
        "{out}"
    );

    // JSON names fields, sources and overrides, and never the password.
    let out = ferry()
        .args([
            "-vvv",
            "images",
            "--cluster",
            c,
            "--include-unused",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("Sup3rS3cret!") && !all.contains("not-this-one"),
        "password leaked: {all}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["registry"], "1.1.1.1:5555/artifactory");
    let images = v["images"].as_array().expect("images");
    assert_eq!(images.len(), g.lines().count());
    assert_eq!(images[0]["overridden"], true);
    assert_eq!(images[0]["fields"][0], "etcd");
    assert_eq!(
        images[1]["image"],
        "1.1.1.1:5555/artifactory/rancher/rke-tools:v0.1.74"
    );
    assert_eq!(images[1]["source"], "rancher/rke-tools:v0.1.74");
    assert_eq!(
        images[1]["fields"],
        serde_json::json!([
            "alpine",
            "nginx_proxy",
            "cert_downloader",
            "kubernetes_services_sidecar"
        ])
    );
    assert_eq!(images[1]["kubernetes_version"], "v1.17.17-rancher2-3");
}

#[test]
fn cluster_without_version_or_default_registry() {
    let dir = tempfile::tempdir().expect("tmp");
    // No kubernetes_version: RKE's default. is_default without url: no rewrite (RKE's quirk).
    let c = write(
        dir.path(),
        "c.yml",
        "private_registries:\n  - user: x\n    password: y\n    is_default: true\n",
    );
    assert_eq!(
        ok(&[
            "images",
            "--cluster",
            c.to_str().expect("path"),
            "--include-unused"
        ]),
        golden("v1.30.5-rancher1-1.txt")
    );
    // An empty file is an empty cluster.yml.
    let c = write(dir.path(), "empty.yml", "");
    assert_eq!(
        ok(&[
            "images",
            "--cluster",
            c.to_str().expect("path"),
            "--include-unused"
        ]),
        golden("v1.30.5-rancher1-1.txt")
    );
    // -k wins over the file's version.
    let c = write(
        dir.path(),
        "v.yml",
        "kubernetes_version: v1.8.11-rancher2-1\n",
    );
    let p = c.to_str().expect("path");
    assert_eq!(
        ok(&["images", "--cluster", p, "--include-unused"]),
        golden("v1.8.11-rancher2-1.txt")
    );
    assert_eq!(
        ok(&[
            "images",
            "--cluster",
            p,
            "--include-unused",
            "-k",
            "v1.30.5-rancher1-1"
        ]),
        golden("v1.30.5-rancher1-1.txt")
    );
}

#[test]
fn camel_case_ecr_key_warns() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = write(
        dir.path(),
        "c.yml",
        "private_registries:\n  - url: 123456789012.dkr.ecr.us-east-1.amazonaws.com\n    is_default: true\n    ecrCredentialPlugin:\n      awsAccessKeyId: AKIAEXAMPLE\n      awsSecretAccessKey: TOPSECRETKEY\n",
    );
    let out = ferry()
        .args(["images", "--cluster", c.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ecr_credential_plugin"), "{stderr}");
    assert!(!stderr.contains("TOPSECRETKEY"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com/rancher/")
    );
}

#[test]
fn real_kdm_data_json() {
    let kdm = kdm_2022();
    let k = kdm.to_str().expect("path");
    assert_eq!(
        ok(&["images", "--metadata", k]),
        golden("kdm-2022-v1.24.8-rancher1-1.txt")
    );
    assert_eq!(
        ok(&["images", "--metadata", k, "--list-versions"]),
        "v1.24.8-rancher1-1\n"
    );
    // RKE's own environment variable works the same way.
    let out = ferry()
        .env("RANCHER_METADATA_URL", k)
        .args(["images"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        golden("kdm-2022-v1.24.8-rancher1-1.txt")
    );
    // A version of the embedded catalog newer than that file is unknown there.
    let e = fails(&["images", "--metadata", k, "-k", "v1.30.5-rancher1-1"]);
    assert!(
        e.contains("v1.30.5-rancher1-1") && e.contains("kdm-data-2022-11-21.json"),
        "{e}"
    );
}

#[test]
fn output_file_and_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("rancher-images.txt");
    let out = ok(&[
        "images",
        "--all",
        "--unique",
        "-o",
        f.to_str().expect("path"),
    ]);
    assert!(out.is_empty());
    assert_eq!(
        std::fs::read_to_string(&f).expect("read"),
        golden("all-current-unique.txt")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "no temp files left behind");

    let v: serde_json::Value =
        serde_json::from_str(&ok(&["images", "--all", "--unique", "--json"])).expect("json");
    let images = v["images"].as_array().expect("array");
    assert_eq!(images.len(), 62);
    // From the catalog: v1.27.16 uses rke-tools v0.1.100, the three newer ones v0.1.103;
    // every current version uses pause 3.7.
    let tools = images
        .iter()
        .find(|i| i["image"] == "rancher/rke-tools:v0.1.103")
        .expect("rke-tools");
    assert_eq!(
        tools["kubernetes_versions"],
        serde_json::json!([
            "v1.28.14-rancher1-1",
            "v1.29.9-rancher1-1",
            "v1.30.5-rancher1-1"
        ])
    );
    let pause = images
        .iter()
        .find(|i| i["image"] == "rancher/mirrored-pause:3.7")
        .expect("pause");
    assert_eq!(
        pause["kubernetes_versions"]
            .as_array()
            .expect("versions")
            .len(),
        4
    );
    assert_eq!(pause["fields"], serde_json::json!(["pod_infra_container"]));

    let v: serde_json::Value =
        serde_json::from_str(&ok(&["images", "--list-versions", "--json"])).expect("json");
    assert_eq!(v["default"], "v1.30.5-rancher1-1");
    assert_eq!(v["available"].as_array().expect("available").len(), 302);
}

#[test]
fn unknown_version_lists_supported_ones() {
    let e = fails(&["images", "-k", "v1.30.99-rancher1-1"]);
    assert!(
        e.contains("v1.27.16-rancher1-1 v1.28.14-rancher1-1 v1.29.9-rancher1-1 v1.30.5-rancher1-1"),
        "{e}"
    );
    assert!(e.contains("--list-versions"), "{e}");
    let e = fails(&["images", "-k", "1.30.5-rancher1-1"]);
    assert!(
        e.contains("v1.30.5-rancher1-1"),
        "suggests the spelling with v: {e}"
    );
}

#[test]
fn broken_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |f: &PathBuf| f.to_str().expect("path").to_string();

    let bad_yaml = write(
        dir.path(),
        "bad.yml",
        "kubernetes_version: v1.30.5-rancher1-1\nsystem_images:\n  etcd: [unclosed\n",
    );
    let e = fails(&["images", "--cluster", &p(&bad_yaml)]);
    assert!(e.contains("bad.yml") && e.contains("line"), "{e}");

    let unknown = write(
        dir.path(),
        "unknown.yml",
        "kubernetes_version: v9.9.9-rancher1-1\n",
    );
    let e = fails(&["images", "--cluster", &p(&unknown)]);
    assert!(
        e.contains("v9.9.9-rancher1-1") && e.contains("unknown.yml"),
        "{e}"
    );

    let bad_override = write(
        dir.path(),
        "o.yml",
        "system_images:\n  kubernetes: \"rancher/Hyperkube:v1\"\n",
    );
    let e = fails(&["images", "--cluster", &p(&bad_override)]);
    assert!(
        e.contains("system_images.kubernetes") && e.contains("lowercase"),
        "{e}"
    );

    let bad_url = write(
        dir.path(),
        "u.yml",
        "private_registries:\n  - url: https://registry.com\n    is_default: true\n",
    );
    let e = fails(&["images", "--cluster", &p(&bad_url)]);
    assert!(e.contains("private_registries[0].url"), "{e}");

    let e = fails(&["images", "--cluster", "/nonexistent/cluster.yml"]);
    assert!(e.contains("/nonexistent/cluster.yml"), "{e}");

    let e = fails(&["images", "--metadata", "/nonexistent/data.json"]);
    assert!(e.contains("/nonexistent/data.json"), "{e}");

    let not_json = write(dir.path(), "data.json", "{ this is not json");
    let e = fails(&["images", "--metadata", &p(&not_json)]);
    assert!(e.contains("data.json") && e.contains("line"), "{e}");

    let wrong_shape = write(dir.path(), "shape.json", r#"{"K8sVersionInfo": {}}"#);
    let e = fails(&["images", "--metadata", &p(&wrong_shape)]);
    assert!(e.contains("K8sVersionRKESystemImages"), "{e}");

    // A URL never downloaded, offline: named, with what to do (no traffic leaves the host).
    let e = fails(&[
        "images",
        "--offline",
        "--metadata",
        "https://releases.rancher.com/kontainer-driver-metadata/release-v2.9/data.json",
    ]);
    assert!(
        e.contains("no cached copy") && e.contains("releases.rancher.com"),
        "{e}"
    );

    let e = fails(&["images", "--rke-version", "banana"]);
    assert!(e.contains("banana"), "{e}");
}

#[test]
fn usage_errors_exit_2() {
    let out = ferry()
        .args(["images", "--all", "-k", "v1.30.5-rancher1-1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = ferry()
        .args(["images", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
