//! Unit tests of `status.rs`: which `Host` is believed, and escaping.

use super::*;

#[test]
fn only_a_plain_host_and_port_is_taken_from_the_request() {
    let listen: SocketAddr = "0.0.0.0:5000".parse().expect("addr");
    assert_eq!(host(Some("registry.lan:5000"), listen), "registry.lan:5000");
    assert_eq!(host(Some("Registry.LAN"), listen), "registry.lan:5000");
    assert_eq!(host(Some("10.0.0.7:443"), listen), "10.0.0.7:443");
    assert_eq!(host(Some("[::1]:8443"), listen), "[::1]:8443");
    assert_eq!(host(Some("[::1]"), listen), "[::1]:5000");
    for hostile in [
        "<script>alert(1)</script>",
        "a b",
        "host:99999",
        "host:0",
        "host:",
        "host:12ab",
        "[::zz]:1",
        "[::1]x",
        "a..b",
        "\"quoted\"",
        "",
        &"a".repeat(10_000),
        &format!("{}.lan", "a".repeat(64)),
    ] {
        assert_eq!(host(Some(hostile), listen), "0.0.0.0:5000", "{hostile:?}");
    }
    assert_eq!(host(None, listen), "0.0.0.0:5000");
}

#[test]
fn escapes_markup_and_quotes() {
    assert_eq!(
        html::esc("<a href=\"x\" onclick='y'>&</a>"),
        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(html::bytes(999), "999 B");
    assert_eq!(html::bytes(1_500_000), "1.5 MB");
}

#[tokio::test]
async fn the_page_names_the_withdrawn_blob_and_the_image_it_breaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (catalog, layer) = crate::http::tests::corrupt_catalog(dir.path()).await;
    let checks = std::sync::Arc::new(crate::check::Checks::new(catalog.clone()));
    let served = Served {
        catalog: catalog.clone(),
        checks: checks.clone(),
        htpasswd: None,
        log: crate::LogStyle::Off,
        setup: Setup::plain("127.0.0.1:5000".parse().expect("addr")),
        metrics: None,
    };
    let before = page(&served, "registry.lan:5000");
    assert!(before.contains("Checked 0 / 2 blobs"), "{before}");
    assert!(
        before.contains("http-equiv=\"refresh\""),
        "reloads while checking"
    );
    assert_eq!(checks.all(1).await, 1);
    let after = page(&served, "registry.lan:5000");
    assert!(after.contains("Checked 2 / 2 blobs"), "{after}");
    assert!(after.contains(layer.as_str()), "{after}");
    assert!(
        after.contains("<span class=\"tag\">rancher/big:v1</span>"),
        "{after}"
    );
    assert!(
        after.contains("- url: registry.lan:5000\n    is_default: true"),
        "{after}"
    );
    assert!(!after.contains("http-equiv=\"refresh\""), "done: no reload");
    assert!(!after.contains("<script"), "no script");
}
