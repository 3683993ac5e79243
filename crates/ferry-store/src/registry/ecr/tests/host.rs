//! Recognising ECR registry hosts, and the API endpoints (default, FIPS, China, override).

use crate::registry::ecr::{EcrRegistry, default_endpoint, endpoint_from_env, parse_ecr_host};

#[test]
fn parses_ecr_hosts() {
    let r = parse_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
    assert_eq!(
        r,
        EcrRegistry {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            fips: false,
            china: false
        }
    );
    assert_eq!(r.host(), "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    assert_eq!(
        r.api_endpoint().unwrap().as_str(),
        "https://api.ecr.us-east-1.amazonaws.com/"
    );

    let r =
        parse_ecr_host("https://123456789012.dkr.ecr.us-west-2.amazonaws.com/rancher/x").unwrap();
    assert_eq!(
        (r.region.as_str(), r.fips, r.china),
        ("us-west-2", false, false)
    );

    let r = parse_ecr_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").unwrap();
    assert!(r.fips && !r.china);
    assert_eq!(r.region, "us-gov-west-1");
    assert_eq!(
        r.host(),
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"
    );
    assert_eq!(
        r.api_endpoint().unwrap().as_str(),
        "https://ecr-fips.us-gov-west-1.amazonaws.com/"
    );

    let r = parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").unwrap();
    assert!(r.china && !r.fips);
    assert_eq!(r.host(), "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn");
    assert_eq!(
        r.api_endpoint().unwrap().as_str(),
        "https://api.ecr.cn-north-1.amazonaws.com.cn/"
    );

    let r = parse_ecr_host("HTTPS://123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM:443").unwrap();
    assert_eq!(
        (r.account.as_str(), r.region.as_str()),
        ("123456789012", "eu-west-1")
    );

    // RKE's character class, not AWS's 12 digits.
    let r = parse_ecr_host("my_acct-1.dkr.ecr.us-east-1.amazonaws.com").unwrap();
    assert_eq!(r.account, "my_acct-1");
}

#[test]
fn rejects_other_hosts() {
    for host in [
        "",
        "https://",
        "docker.io",
        "registry.example.com:5000",
        "public.ecr.aws",
        "123.ecr.us-east-1.amazonaws.com",
        "123.dkr.ecr.amazonaws.com",
        "123.dkr.ecr..amazonaws.com",
        ".dkr.ecr.us-east-1.amazonaws.com",
        "-123.dkr.ecr.us-east-1.amazonaws.com",
        "123.dkr.ecr.-us-east-1.amazonaws.com",
        "123.dkr.ecr.us.east.amazonaws.com",
        "123.dkr.ecr-fips.amazonaws.com",
        "123.dkr.ecrx.us-east-1.amazonaws.com",
        "123.dkr.ecr.us-east-1.amazonaws.cn",
        "123.dkr.ecr.us-east-1.amazonaws.com.evil.example.org",
        "123.dkr.ecr.us-east-1.amazonaws.com:",
        "123.dkr.ecr.us-east-1.amazonaws.com:https",
        "a.b.dkr.ecr.us-east-1.amazonaws.com",
    ] {
        assert_eq!(parse_ecr_host(host), None, "{host:?}");
    }
}

#[test]
fn default_endpoints() {
    assert_eq!(
        default_endpoint("eu-central-1").unwrap().as_str(),
        "https://api.ecr.eu-central-1.amazonaws.com/"
    );
    assert_eq!(
        default_endpoint("cn-northwest-1").unwrap().as_str(),
        "https://api.ecr.cn-northwest-1.amazonaws.com.cn/"
    );
    assert_eq!(default_endpoint("us east"), None);
    assert_eq!(default_endpoint("evil.com/x"), None);
    assert_eq!(default_endpoint(""), None);
}

#[test]
fn endpoint_override_from_env() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(endpoint_from_env(env(&[])), None);
    assert_eq!(
        endpoint_from_env(env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]))
            .unwrap()
            .as_str(),
        "http://127.0.0.1:5000/"
    );
    assert_eq!(
        endpoint_from_env(env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_ECR", "https://ecr.internal:8443/")
        ]))
        .unwrap()
        .as_str(),
        "https://ecr.internal:8443/"
    );
    assert_eq!(
        endpoint_from_env(env(&[
            ("AWS_ENDPOINT_URL_ECR", "not a url"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
        ]))
        .unwrap()
        .as_str(),
        "http://127.0.0.1:5000/"
    );
    assert_eq!(
        endpoint_from_env(env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
        ])),
        None
    );
    assert_eq!(
        endpoint_from_env(env(&[("AWS_ENDPOINT_URL", "ftp://x/")])),
        None
    );
}
