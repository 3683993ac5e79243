//! `--http 1.1|2`: the same bytes either way, and the protocol asked for is the one used
//! (distribution's access log names it per request).

use crate::support::*;

fn export_with(http: &str, reg: &TestRegistry, images: &[FixtureImage]) -> (String, String) {
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), images, &[]);
    let out_path = sandbox.work().join("bundle.tar");
    let since = reg.log().len();
    let out = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(upstream_args(&reg.url(), reg))
        .args(["--http", http, "-o"])
        .arg(&out_path)
        .output()
        .expect("run ferry");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sha = sha256_hex(&std::fs::read(&out_path).expect("bundle"));
    (sha, reg.log()[since..].to_string())
}

#[test]
fn http_1_1_and_http_2_give_the_same_bundle_over_the_protocol_asked_for() {
    let images = fixtures();
    let reg = TestRegistry::builder(Auth::TlsToken).access_log().start();
    seed(&reg, &images);
    let (h1, log1) = export_with("1.1", &reg, &images);
    let (h2, log2) = export_with("2", &reg, &images);
    assert_eq!(h1, h2, "byte-identical bundles");
    let blob_gets = |log: &str, proto: &str| {
        log.lines()
            .filter(|l| l.contains("/blobs/sha256:") && l.contains(proto))
            .count()
    };
    assert!(blob_gets(&log1, "HTTP/1.1") > 0, "HTTP/1.1 run: {log1}");
    assert_eq!(blob_gets(&log1, "HTTP/2.0"), 0);
    assert!(blob_gets(&log2, "HTTP/2.0") > 0, "HTTP/2 run: {log2}");
    assert_eq!(blob_gets(&log2, "HTTP/1.1"), 0);
}
