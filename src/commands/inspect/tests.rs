use super::{html, markdown};

#[test]
fn html_escaping_leaves_no_markup_and_no_control_characters() {
    let e = html::esc("<script>a&b</script>\"'\u{7}");
    assert_eq!(e, "&lt;script&gt;a&amp;b&lt;/script&gt;&quot;&#39;\u{FFFD}");
}

#[test]
fn markdown_escaping_keeps_a_name_inside_its_table_cell() {
    let e = markdown::esc("a|b*c_d[e](f)<g>`h`\nx");
    assert_eq!(e, "a\\|b\\*c\\_d\\[e\\]\\(f\\)&lt;g&gt;\\`h\\` x");
}

#[test]
fn short_forms() {
    let d = ferry_oci::digest::Digest::sha256_of(b"x");
    assert_eq!(super::short_digest(&d).len(), "sha256:".len() + 12);
    assert_eq!(
        super::short_media_type("application/vnd.oci.image.index.v1+json"),
        "oci-index"
    );
    assert_eq!(super::short_media_type("text/plain"), "text/plain");
}
