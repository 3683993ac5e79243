//! Unit tests of `store/registry/config.rs`.

use super::*;

#[test]
fn endpoints() {
    let mut o = ClientOptions::default();
    assert_eq!(
        o.endpoint("docker.io").expect("url").as_str(),
        "https://registry-1.docker.io/"
    );
    assert_eq!(
        o.endpoint("quay.io").expect("url").as_str(),
        "https://quay.io/"
    );
    o.endpoints
        .push(parse_upstream("docker.io=http://127.0.0.1:5000").expect("ok"));
    assert_eq!(
        o.endpoint("docker.io").expect("url").as_str(),
        "http://127.0.0.1:5000/"
    );
    assert_eq!(
        parse_upstream("index.docker.io=127.0.0.1:5000")
            .expect("ok")
            .0,
        "docker.io"
    );
    for bad in [
        "docker.io",
        "=http://x",
        "docker.io=ftp://x",
        "docker.io=http://u:p@x",
        "docker.io=http://x/path",
    ] {
        assert!(parse_upstream(bad).is_err(), "{bad}");
    }
}
