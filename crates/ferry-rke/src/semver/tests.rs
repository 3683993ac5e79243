use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

#[test]
fn prerelease_orders_as_blang() {
    assert!(v("1.21.0-rancher0") < v("1.21.0-rancher1-1"));
    assert!(v("1.21.0-rancher1-1") < v("1.21.0"));
    assert!(v("1.16.0-alpha") < v("1.16.0-rancher1-1"));
    assert!(v("1.15.12-rancher1-1") < v("1.15.12-rancher2-2"));
    assert!(v("1.2.3-1") < v("1.2.3-a"));
    assert!(v("1.2.3-a.1") < v("1.2.3-a.1.0"));
    assert_eq!(v("1.2.3+build").cmp(&v("1.2.3")), Ordering::Equal);
    assert!(Version::parse("1.2").is_err());
    assert!(Version::parse("01.2.3").is_err());
    assert!(Version::kubernetes("v1.30.5-rancher1-1").is_ok());
}

#[test]
fn ranges_as_kdm_writes_them() {
    let r = Range::parse(">=1.27.11-rancher1-1 < 1.27.15-rancher1-1").unwrap();
    assert!(r.contains(&v("1.27.11-rancher1-1")));
    assert!(r.contains(&v("1.27.14-rancher1-1")));
    assert!(!r.contains(&v("1.27.15-rancher1-1")));
    assert!(!r.contains(&v("1.27.10-rancher1-1")));
    let r = Range::parse(">=1.14.0-rancher0 <=1.14.6-rancher1-1").unwrap();
    assert!(r.contains(&v("1.14.6-rancher1-1")));
    assert!(!r.contains(&v("1.14.6-rancher2")));
    let r = Range::parse("<1.2.0 || >=2.0.0").unwrap();
    assert!(r.contains(&v("1.1.9")) && r.contains(&v("2.0.0")) && !r.contains(&v("1.5.0")));
    assert!(Range::parse("").is_err());
    assert!(Range::parse("|| >1.0.0").is_err());
    assert!(Range::parse("~>1.0.0").is_err());
    assert!(Range::parse(">=1.x").is_err());
}
