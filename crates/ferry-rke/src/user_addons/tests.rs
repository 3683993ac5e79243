use super::*;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: i, image: "busybox:1.36"}]
  containers: [{name: c, image: nginx:1.25}]
---
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: a
          image: registry.example.com/team/app:2
---
# a comment-only document
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: j, image: "alpine:3.19"}]
          ephemeralContainers: [{name: dbg, image: "busybox:1.36"}]
---
apiVersion: v1
kind: List
items:
  - kind: DaemonSet
    spec: {template: {spec: {containers: [{name: d, image: quay.io/x/y@sha256:0000000000000000000000000000000000000000000000000000000000000000}]}}}
---
apiVersion: example.com/v1
kind: Widget
spec:
  podTemplate:
    spec: {containers: [{name: w, image: "ghcr.io/w/widget:1"}]}
  schema:
    spec: {containers: "not a list"}
---
apiVersion: v1
kind: ConfigMap
data: {image: "not-an-image-field:1"}
"#;

#[test]
fn finds_every_pod_spec_by_shape() {
    let got = images_in(MANIFESTS, "test").unwrap();
    assert_eq!(
        got,
        [
            "busybox:1.36",
            "nginx:1.25",
            "registry.example.com/team/app:2",
            "alpine:3.19",
            "quay.io/x/y@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "ghcr.io/w/widget:1",
        ]
    );
}

#[test]
fn broken_yaml_names_source_and_line() {
    let e = images_in(
        "kind: Pod\nspec:\n  containers: [\n    {image: a\n",
        "addons_include file x.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("addons_include file x.yaml cannot be parsed as YAML"),
        "{e}"
    );
    assert!(e.contains("line"), "{e}");
    let many = "---\n".repeat(MAX_DOCUMENTS + 1);
    assert!(matches!(
        images_in(&many, "m"),
        Err(AddonError::TooManyDocuments { .. })
    ));
}
