//! Unit tests of `error.rs`.

use super::*;

#[test]
fn one_cause_is_said_once() {
    let f = [
        ("a", "registry down"),
        ("b", "not found"),
        ("c", "registry down"),
    ];
    assert_eq!(
        causes_line(f),
        "registry down (2 images: a, c); b: not found"
    );
}
