//! Unit tests of `metrics.rs`: bounded labels, the text format.

use super::*;

#[test]
fn any_method_becomes_one_of_a_few_labels() {
    assert_eq!(method_label(&hyper::Method::GET), "GET");
    assert_eq!(method_label(&hyper::Method::OPTIONS), "other");
    let odd = hyper::Method::from_bytes(b"BREW").expect("method");
    assert_eq!(method_label(&odd), "other");
}

#[tokio::test]
async fn counts_requests_bytes_and_durations_in_prometheus_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (catalog, _) = crate::http::tests::corrupt_catalog(dir.path()).await;
    let checks = Arc::new(Checks::new(catalog.clone()));
    let m = Metrics::new(checks, catalog.images());
    m.observe("GET", "manifest", 200, 512, 0.002);
    m.observe("GET", "manifest", 200, 512, 0.003);
    m.observe("HEAD", "blob", 404, 0, 0.001);
    let text = m.render();
    for line in [
        "# TYPE ferry_serve_http_requests_total counter",
        "ferry_serve_http_requests_total{method=\"GET\",route=\"manifest\",status=\"200\"} 2",
        "ferry_serve_http_sent_bytes_total{route=\"manifest\"} 1024",
        "ferry_serve_http_request_duration_seconds_count{route=\"manifest\"} 2",
        "ferry_serve_blobs{state=\"pending\"} 2",
        "ferry_serve_images 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}
