//! Unit tests of `store/registry/ratelimit.rs`: reading `RateLimit-*` headers leniently and
//! the warning for a run that needs more pulls than remain.

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).expect("header value"));
    }
    h
}

#[test]
fn docker_hub_headers() {
    let h = headers(&[
        ("ratelimit-limit", "100;w=21600"),
        ("ratelimit-remaining", "76;w=21600"),
        ("docker-ratelimit-source", "203.0.113.7"),
    ]);
    assert_eq!(
        Quota::from_headers(&h),
        Some(Quota {
            limit: Some(100),
            remaining: Some(76),
            window_seconds: Some(21600),
        })
    );
}

#[test]
fn header_names_are_case_insensitive() {
    let mut h = HeaderMap::new();
    h.insert("RateLimit-Limit", HeaderValue::from_static("200;w=21600"));
    h.insert("RATELIMIT-REMAINING", HeaderValue::from_static("0;w=21600"));
    let q = Quota::from_headers(&h).expect("quota");
    assert_eq!((q.limit, q.remaining), (Some(200), Some(0)));
}

#[test]
fn absent_headers_mean_no_limit_known() {
    assert_eq!(Quota::from_headers(&HeaderMap::new()), None);
    let h = headers(&[("docker-ratelimit-source", "203.0.113.7")]);
    assert_eq!(Quota::from_headers(&h), None);
}

#[test]
fn one_header_alone_is_read() {
    let q = Quota::from_headers(&headers(&[("ratelimit-remaining", "5;w=3600")])).expect("q");
    assert_eq!(
        q,
        Quota {
            limit: None,
            remaining: Some(5),
            window_seconds: Some(3600),
        }
    );
    let q = Quota::from_headers(&headers(&[("ratelimit-limit", "100")])).expect("q");
    assert_eq!(
        q,
        Quota {
            limit: Some(100),
            remaining: None,
            window_seconds: None,
        }
    );
}

#[test]
fn window_comes_from_either_header() {
    let q = Quota::from_headers(&headers(&[
        ("ratelimit-limit", "100"),
        ("ratelimit-remaining", "7;w=600"),
    ]))
    .expect("q");
    assert_eq!(q.window_seconds, Some(600));
}

#[test]
fn lenient_forms() {
    for (value, want) in [
        ("100;w=21600", Some((100, Some(21600)))),
        ("100", Some((100, None))),
        (" 100 ; w = 21600 ", Some((100, Some(21600)))),
        ("100;W=21600", Some((100, Some(21600)))),
        ("100;w=\"21600\"", Some((100, Some(21600)))),
        ("\"100\";w=21600", Some((100, Some(21600)))),
        ("100;comment=\"x\";w=21600", Some((100, Some(21600)))),
        ("100;w=21600;burst=5", Some((100, Some(21600)))),
        ("100;policy", Some((100, None))),
        // The IETF draft's list: the first item is in force; its window is that of the
        // policy with the same count.
        ("10, 10;w=1, 50;w=60", Some((10, Some(1)))),
        ("100, 100;w=21600", Some((100, Some(21600)))),
        ("100;w=21600, 1000;w=86400", Some((100, Some(21600)))),
        ("0;w=21600", Some((0, Some(21600)))),
        // A window that does not read is left out, the count kept.
        ("100;w=soon", Some((100, None))),
        ("100;w=-5", Some((100, None))),
    ] {
        assert_eq!(parse_field(value), want, "{value:?}");
    }
}

#[test]
fn garbage_is_no_count() {
    for value in [
        "",
        " ",
        ";w=21600",
        "abc",
        "-1;w=21600",
        "+5",
        "1.5;w=60",
        "1e3",
        "100 200",
        "99999999999999999999999;w=1",
        "\"",
        ",100",
    ] {
        assert_eq!(parse_field(value), None, "{value:?}");
    }
    let h = headers(&[("ratelimit-limit", "lots"), ("ratelimit-remaining", "some")]);
    assert_eq!(Quota::from_headers(&h), None);
}

#[test]
fn the_first_readable_header_line_wins() {
    let h = headers(&[
        ("ratelimit-remaining", "n/a"),
        ("ratelimit-remaining", "12;w=60"),
        ("ratelimit-remaining", "13;w=60"),
    ]);
    assert_eq!(Quota::from_headers(&h).expect("q").remaining, Some(12));
}

#[test]
fn non_utf8_header_is_ignored() {
    let mut h = HeaderMap::new();
    h.insert(
        "ratelimit-remaining",
        HeaderValue::from_bytes(b"\xff12").expect("opaque bytes"),
    );
    h.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
    let q = Quota::from_headers(&h).expect("q");
    assert_eq!((q.limit, q.remaining), (Some(100), None));
}

#[test]
fn from_the_request_layer_record() {
    let rl = super::super::RateLimit {
        limit: 100,
        remaining: Some(3),
        window_seconds: Some(21600),
        source: Some("203.0.113.7".into()),
    };
    assert_eq!(
        Quota::from_rate_limit(&rl),
        Quota {
            limit: Some(100),
            remaining: Some(3),
            window_seconds: Some(21600),
        }
    );
}

#[test]
fn windows_for_people() {
    assert_eq!(human_window(21600), "6 h");
    assert_eq!(human_window(3600), "1 h");
    assert_eq!(human_window(5400), "90 min");
    assert_eq!(human_window(60), "1 min");
    assert_eq!(human_window(45), "45 s");
    assert_eq!(human_window(3601), "1.0 h");
    assert_eq!(human_window(0), "0 s");
    assert_eq!(
        human_window(u64::MAX),
        format!("{:.1} h", u64::MAX as f64 / 3600.0)
    );
}

const HUB: Quota = Quota {
    limit: Some(100),
    remaining: Some(3),
    window_seconds: Some(21600),
};

fn need(gets: usize) -> Need {
    Need {
        gets,
        at_least: false,
    }
}

#[test]
fn shortfall_compares_with_remaining_then_limit() {
    assert_eq!(shortfall(need(3), &HUB), None, "exactly enough");
    assert_eq!(shortfall(need(4), &HUB), Some(1));
    assert_eq!(shortfall(need(0), &HUB), None);
    let limit_only = Quota {
        remaining: None,
        ..HUB
    };
    assert_eq!(shortfall(need(100), &limit_only), None);
    assert_eq!(shortfall(need(101), &limit_only), Some(1));
    assert_eq!(shortfall(need(usize::MAX), &Quota::default()), None);
    let none_left = Quota {
        remaining: Some(0),
        ..HUB
    };
    assert_eq!(shortfall(need(1), &none_left), Some(1));
}

#[test]
fn warning_names_need_remaining_window_and_what_to_do() {
    let w = warning("this export", need(12), &HUB, false).expect("warns");
    assert!(!w.contains('\n'), "one line: {w}");
    for part in [
        "this export needs 12 manifest GETs but only 3 of 100 remain",
        "resets within 6 h",
        "docker login",
        "--lock",
        "wait",
    ] {
        assert!(w.contains(part), "{part:?} in {w}");
    }
}

#[test]
fn warning_variants() {
    assert_eq!(warning("this export", need(3), &HUB, false), None);
    assert_eq!(
        warning("this export", need(50), &Quota::default(), false),
        None
    );

    let w = warning(
        "this export",
        Need {
            gets: 9,
            at_least: true,
        },
        &HUB,
        false,
    )
    .expect("warns");
    assert!(w.contains("needs at least 9 manifest GETs"), "{w}");

    let w = warning(
        "a real export",
        need(1),
        &Quota {
            remaining: Some(0),
            ..HUB
        },
        false,
    )
    .expect("warns");
    assert!(w.contains("needs 1 manifest GET but"), "singular: {w}");

    let logged_in = warning("this export", need(12), &HUB, true).expect("warns");
    assert!(!logged_in.contains("docker login"), "{logged_in}");
    assert!(logged_in.contains("higher limit"), "{logged_in}");

    let no_window = Quota {
        window_seconds: None,
        ..HUB
    };
    let w = warning("this export", need(12), &no_window, false).expect("warns");
    assert!(w.contains("only 3 of 100 remain."), "{w}");
    assert!(!w.contains("within"), "{w}");

    let remaining_only = Quota { limit: None, ..HUB };
    let w = warning("this export", need(12), &remaining_only, false).expect("warns");
    assert!(w.contains("only 3 remain (resets within 6 h)"), "{w}");

    let limit_only = Quota {
        remaining: None,
        ..HUB
    };
    let w = warning("this export", need(150), &limit_only, false).expect("warns");
    assert!(
        w.contains("needs 150 manifest GETs but Docker Hub allows only 100 per 6 h"),
        "{w}"
    );
}

proptest::proptest! {
    /// No header value makes the parser panic; what it reads back is a plain count.
    #[test]
    fn any_value_parses_without_panic(value in "\\PC{0,40}") {
        if let Some((n, _)) = parse_field(&value) {
            let first = value.split([',', ';']).next().unwrap_or("");
            proptest::prop_assert!(first.contains(&n.to_string()));
        }
    }

    /// What ferry writes itself reads back.
    #[test]
    fn counts_and_windows_round_trip(n in proptest::num::u64::ANY, w in proptest::num::u64::ANY) {
        proptest::prop_assert_eq!(parse_field(&format!("{n};w={w}")), Some((n, Some(w))));
        proptest::prop_assert_eq!(parse_field(&format!("{n}")), Some((n, None)));
    }
}
