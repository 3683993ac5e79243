//! Unit tests of `rke/list.rs`.

use super::*;

fn catalog() -> Catalog {
    Catalog::load(None, "v1.6.3").expect("catalog")
}

#[test]
fn default_version_has_26_lines() {
    let c = catalog();
    let l = version_list(&c, c.default_version(), &ListOptions::default()).expect("list");
    assert_eq!(l.len(), 26);
    assert_eq!(l[1].image, "rancher/rke-tools:v0.1.103");
    assert_eq!(
        l[1].fields,
        vec![
            "alpine",
            "nginx_proxy",
            "cert_downloader",
            "kubernetes_services_sidecar"
        ]
    );
}

#[test]
fn all_current_is_110_lines_62_distinct() {
    let c = catalog();
    let mut total = 0;
    let mut distinct = std::collections::BTreeSet::new();
    for v in c.current() {
        let l = version_list(&c, v, &ListOptions::default()).expect("list");
        total += l.len();
        distinct.extend(l.into_iter().map(|e| e.image));
    }
    assert_eq!(total, 110);
    assert_eq!(distinct.len(), 62);
}

#[test]
fn unknown_version_lists_current_ones() {
    let c = catalog();
    let e = version_list(&c, "v1.30.99-rancher1-1", &ListOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(
            "v1.27.16-rancher1-1 v1.28.14-rancher1-1 v1.29.9-rancher1-1 v1.30.5-rancher1-1"
        ),
        "{msg}"
    );
    assert!(msg.contains("v1.30.5-rancher1-1"), "{msg}");
}
