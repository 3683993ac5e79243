//! Unit tests of `oci/platform.rs`.

use super::*;

#[test]
fn parse_and_match() {
    let arm = Platform::parse("linux/arm/v7").expect("parses");
    assert_eq!(arm.to_string(), "linux/arm/v7");
    let filter = Platform::parse("linux/arm").expect("parses");
    assert!(arm.matches(&filter));
    assert!(!filter.matches(&arm));
    for bad in ["linux", "linux/", "a/b/c/d", "lin ux/amd64", ""] {
        assert!(Platform::parse(bad).is_err(), "{bad}");
    }
}
