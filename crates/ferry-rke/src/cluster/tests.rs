//! Unit tests of `rke/cluster.rs`.

use super::*;

#[test]
fn reads_the_keys_that_matter_and_ignores_the_rest() {
    let yml = r#"
nodes:
  - address: 1.2.3.4
    user: ubuntu
    role: [controlplane, etcd, worker]
kubernetes_version: v1.29.9-rancher1-1
system_images:
  etcd: my.registry/etcd:v1
  kubedns: ""
  unknown_thing: x
private_registries:
  - url: docker.io
    user: u1
    password: p1
  - url: 1.1.1.1:5555/artifactory
    user: u2
    password: s3cret
    is_default: true
services:
  kube-api:
    service_cluster_ip_range: 10.43.0.0/16
  kubelet:
    extra_env: ["AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b"]
network:
  plugin: canal
"#;
    let c = ClusterConfig::parse(yml, Path::new("cluster.yml")).expect("parses");
    assert_eq!(c.kubernetes_version, "v1.29.9-rancher1-1");
    assert_eq!(c.overrides.len(), 1);
    assert_eq!(c.overrides[0].0.yaml, "etcd");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let (i, r) = c.default_registry().expect("default");
    assert_eq!(i, 1);
    assert_eq!(r.user.as_deref(), Some("u2"));
    assert_eq!(
        c.default_prefix().expect("ok").expect("some").to_string(),
        "1.1.1.1:5555/artifactory"
    );
    assert_eq!(c.kubelet_extra_env.len(), 2);
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "password printed in Debug"
    );
}

#[test]
fn camel_case_ecr_key_is_read_with_a_warning() {
    let yml = "private_registries:\n  - url: 123.dkr.ecr.us-east-1.amazonaws.com\n    is_default: true\n    ecrCredentialPlugin:\n      awsAccessKeyId: AK\n      awsSecretAccessKey: SK\n";
    let c = ClusterConfig::parse(yml, Path::new("c.yml")).expect("parses");
    assert!(
        c.private_registries[0]
            .ecr_credential_plugin_camel
            .is_some()
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("ecr_credential_plugin"))
    );
}

#[test]
fn broken_yaml_names_line_and_column() {
    let e = ClusterConfig::parse(
        "kubernetes_version: [v1\nsystem_images: {",
        Path::new("bad.yml"),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("bad.yml"), "{msg}");
    assert!(msg.contains("line"), "{msg}");
}

#[test]
fn invalid_override_is_named() {
    let e = ClusterConfig::parse(
        "system_images:\n  etcd: \"Rancher/ETCD:v1\"\n",
        Path::new("c.yml"),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("system_images.etcd"), "{msg}");
}

#[test]
fn a_cluster_file_over_the_cap_is_refused_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cluster.yml");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(MAX_CLUSTER_BYTES + 1).expect("sparse");
    let e = ClusterConfig::load(&path).unwrap_err();
    assert!(matches!(e, ClusterError::TooLarge { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("cluster.yml") && msg.contains("4 MiB"),
        "{msg}"
    );

    std::fs::write(&path, b"kubernetes_version: \xff\n").expect("write");
    let e = ClusterConfig::load(&path).unwrap_err();
    assert!(matches!(e, ClusterError::NotText { .. }), "{e}");
}
