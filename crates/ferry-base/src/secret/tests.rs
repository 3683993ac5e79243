//! Unit tests of `secret.rs`.

use super::*;

#[test]
fn never_prints() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s}"), "<redacted>");
    assert_eq!(format!("{s:?}"), "<redacted>");
    assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
    assert_eq!(s.expose(), "hunter2");
}
