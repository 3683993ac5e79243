//! Unit tests of `rke/goversion.rs`.

use super::*;
use Ordering::*;

#[test]
fn normalize_matches_go_version() {
    // Cases from go-version's normalize_test.go and its README.
    assert_eq!(normalize("1.0.0"), "1.0.0.0");
    assert_eq!(normalize("1.2.3.4"), "1.2.3.4");
    assert_eq!(normalize("1.0.0RC1dev"), "1.0.0.0-RC1-dev");
    assert_eq!(normalize("1.0.0-rC15-dev"), "1.0.0.0-RC15-dev");
    assert_eq!(normalize("1.0.0.RC.15-dev"), "1.0.0.0-RC15-dev");
    assert_eq!(normalize("1.0.0-rc1"), "1.0.0.0-RC1");
    assert_eq!(normalize("1.0.0-pl3"), "1.0.0.0-patch3");
    assert_eq!(normalize("1.0-dev"), "1.0.0.0-dev");
    assert_eq!(normalize("10.4.13-b"), "10.4.13.0-beta");
    assert_eq!(normalize("v1.0.0"), "1.0.0.0");
    assert_eq!(normalize("2010.01"), "2010-01");
    assert_eq!(normalize("2010.01.02"), "2010-01-02");
    assert_eq!(normalize("20100102-203040"), "20100102-203040");
    assert_eq!(normalize("master"), "9999999-dev");
    assert_eq!(normalize("dev-master"), "9999999-dev");
    assert_eq!(normalize("dev-feature-foo"), "dev-feature-foo");
    assert_eq!(normalize("1.x-dev"), "1.9999999.9999999.9999999-dev");
    // The shapes RKE feeds it.
    assert_eq!(normalize("v1.6.3"), "1.6.3.0");
    assert_eq!(normalize("1.6.0-rc0"), "1.6.0.0-RC0");
    assert_eq!(normalize("v1.30.5-rancher1-1"), "v1.30.5-rancher1-1");
}

#[test]
fn compare_matches_go_version() {
    assert_eq!(compare("1.0-dev", "1.0"), Less);
    assert_eq!(compare("1.0rc1", "1.0"), Less);
    assert_eq!(compare("1.0", "1.0b1"), Greater);
    assert_eq!(compare("1.2", "1.0.1"), Greater);
    assert_eq!(compare("2.3.4", "v3.1.2"), Less);
    assert_eq!(compare("v1.6.3", "1.5.99"), Greater);
    assert_eq!(compare("v1.6.3", "1.6.0-rc0"), Greater);
    assert_eq!(compare("v1.6.3", "1.6.99"), Less);
    assert_eq!(
        compare("v1.27.16-rancher1-1", "v1.27.9-rancher1-1"),
        Greater
    );
    assert_eq!(compare("v1.27.16-rancher1-1", "v1.27.16-rancher1-2"), Less);
    assert_eq!(
        compare("v1.27.16-rancher2-1", "v1.27.16-rancher1-2"),
        Greater
    );
    assert_eq!(compare("v1.10.0-rancher1-1", "v1.9.7-rancher2-2"), Greater);
    assert_eq!(compare("v1.30.5-rancher1-1", "v1.30.5-rancher1-1"), Equal);
}
