//! Unit tests of `plan/input.rs`.

use super::*;

#[test]
fn rancher_images_txt_shape() {
    let text = "# mirror list\n\nrancher/rke-tools:v0.1.103\nINFO[0000] Generating images list for version [v1.30.5-rancher1-1]:\nrancher/mirrored-pause:3.7  # pause\nrancher/rke-tools:v0.1.103\n";
    let l = parse_image_list(text, "list.txt").expect("parses");
    assert_eq!(l.len(), 2);
    let twice =
        parse_image_list("nginx:1.25\ndocker.io/library/nginx:1.25\nnginx\n", "l").expect("ok");
    let names: Vec<&str> = twice.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["nginx:1.25", "nginx"],
        "two spellings of one image are one"
    );
    assert_eq!(l[1].1.to_string(), "docker.io/rancher/mirrored-pause:3.7");
    let e = parse_image_list("ok/image:1\nBad Line\n", "l.txt").unwrap_err();
    assert!(e.to_string().starts_with("l.txt:2:"), "{e}");
    assert!(matches!(
        parse_image_list("# nothing\n", "l"),
        Err(InputError::Empty { .. })
    ));
}
