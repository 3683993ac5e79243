//! Property tests: generated valid references parse and round-trip, rebasing equals RKE's
//! string concatenation, and no input makes a parser panic.

use proptest::prelude::*;

use crate::reference::{Reference, RegistryPrefix};

/// A path component; without '.' when it could be mistaken for a registry domain.
fn component(allow_dot: bool) -> BoxedStrategy<String> {
    if allow_dot {
        "[a-z0-9]{1,5}(([._]|__|-{1,3})[a-z0-9]{1,5}){0,2}".boxed()
    } else {
        "[a-z0-9]{1,5}(([_]|__|-{1,3})[a-z0-9]{1,5}){0,2}".boxed()
    }
}

fn port() -> impl Strategy<Value = String> {
    (1u32..=65_535).prop_map(|p| p.to_string())
}

fn ipv4() -> impl Strategy<Value = String> {
    proptest::array::uniform4(any::<u8>()).prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"))
}

fn dns_host() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?){1,2}"
}

/// A domain docker recognises as a registry.
fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        dns_host(),
        (dns_host(), port()).prop_map(|(h, p)| format!("{h}:{p}")),
        Just("localhost".to_owned()),
        ("[a-z0-9]{1,8}", port()).prop_map(|(h, p)| format!("{h}:{p}")),
        (ipv4(), proptest::option::of(port()))
            .prop_map(|(h, p)| p.map_or(h.clone(), |p| format!("{h}:{p}"))),
        (
            "\\[[0-9a-f]{0,4}:[0-9a-f:]{0,8}\\]",
            proptest::option::of(port())
        )
            .prop_map(|(h, p)| p.map_or(h.clone(), |p| format!("{h}:{p}"))),
        Just("docker.io".to_owned()),
        Just("index.docker.io".to_owned()),
    ]
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
        1 => "[A-Za-z0-9_][A-Za-z0-9_.-]{127}",
    ]
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}"))
    ]
}

/// (input, expected registry, expected repository, expected written path)
fn valid_reference() -> impl Strategy<Value = (String, String, String, String)> {
    (
        proptest::option::of(domain()),
        component(false),
        proptest::collection::vec(component(true), 0..4),
        proptest::option::of(tag()),
        proptest::option::of(digest()),
    )
        .prop_map(|(domain, first, rest, tag, digest)| {
            // Without a domain, the first component must not look like one.
            let first = if domain.is_none() && first == "localhost" {
                "x".to_owned()
            } else {
                first
            };
            let mut path = first;
            for c in rest {
                path.push('/');
                path.push_str(&c);
            }
            let mut input = match &domain {
                Some(d) => format!("{d}/{path}"),
                None => path.clone(),
            };
            if let Some(t) = tag {
                input.push(':');
                input.push_str(&t);
            }
            if let Some(d) = digest {
                input.push('@');
                input.push_str(&d);
            }
            let registry = match domain.as_deref() {
                None | Some("index.docker.io") => "docker.io".to_owned(),
                Some(d) => d.to_owned(),
            };
            let repository = if registry == "docker.io" && !path.contains('/') {
                format!("library/{path}")
            } else {
                path.clone()
            };
            (input, registry, repository, path)
        })
}

fn registry_prefix() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z][a-z0-9]{0,8}(\\.[a-z0-9]{1,8}){1,2}",
        Just("localhost".to_owned()),
        ipv4(),
    ];
    (
        host,
        proptest::option::of(port()),
        proptest::collection::vec(component(true), 0..3),
    )
        .prop_map(|(host, port, path)| {
            let mut s = host;
            if let Some(p) = port {
                s.push(':');
                s.push_str(&p);
            }
            for c in path {
                s.push('/');
                s.push_str(&c);
            }
            s
        })
}

/// A Docker Hub image as RKE lists them (`rancher/rke-tools:v0.1.103`), sometimes written
/// with an explicit `docker.io/` and sometimes with a digest.
fn docker_hub_image() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("docker.io/"), Just("index.docker.io/")],
        component(false),
        component(true),
        proptest::option::of(tag()),
        proptest::option::of(digest()),
    )
        .prop_map(|(domain, org, name, tag, digest)| {
            let mut s = format!("{domain}{org}/{name}");
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(&d);
            }
            s
        })
}

fn to_fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

proptest! {
    #[test]
    fn valid_references_parse_and_round_trip((input, registry, repository, written) in valid_reference()) {
        let r = Reference::parse(&input).map_err(to_fail)?;
        prop_assert_eq!(r.registry(), registry.as_str());
        prop_assert_eq!(r.repository(), repository.as_str());
        prop_assert_eq!(r.written_path(), written.as_str());
        prop_assert!(r.tag().is_some() || r.digest().is_some());
        let again = Reference::parse(&r.to_string()).map_err(to_fail)?;
        prop_assert_eq!(&again, &r);
        prop_assert_eq!(again.to_string(), r.to_string());
        let familiar = Reference::parse(&r.familiar()).map_err(to_fail)?;
        prop_assert_eq!(familiar, r);
    }

    #[test]
    fn rebase_is_rke_concatenation(image in docker_hub_image(), pre in registry_prefix()) {
        let r = Reference::parse(&image).map_err(to_fail)?;
        let p = RegistryPrefix::parse(&pre).map_err(to_fail)?;
        prop_assert_eq!(p.to_string(), pre.clone());
        let mut written = r.written_path().to_owned();
        if let Some(t) = r.tag() {
            written.push(':');
            written.push_str(t);
        }
        if let Some(d) = r.digest() {
            written.push('@');
            written.push_str(d.as_str());
        }
        let expected = Reference::parse(&format!("{pre}/{written}")).map_err(to_fail)?;
        let rebased = r.rebase(&p);
        prop_assert_eq!(&rebased, &expected);
        prop_assert_eq!(rebased.written_path(), expected.written_path());
        prop_assert_eq!(rebased.to_string(), expected.to_string());
        prop_assert_eq!(rebased.registry(), p.host());
    }

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = Reference::parse(&s);
        let _ = RegistryPrefix::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_reference_alphabet(s in "[a-zA-Z0-9._:/@\\[\\]-]{0,40}") {
        // Whatever parses must round-trip through Display.
        if let Ok(r) = Reference::parse(&s) {
            let again = Reference::parse(&r.to_string()).map_err(to_fail)?;
            prop_assert_eq!(again, r);
        }
        if let Ok(p) = RegistryPrefix::parse(&s) {
            prop_assert_eq!(p.to_string(), s);
        }
    }
}
