//! `ferry import` into an ECR registry name, with moto as the ECR API: repositories created
//! on the way (or a missing one named when the keys may not create it), and a login the
//! registry refuses renewed exactly once.
//!
//! ferry reaches `<account>.dkr.ecr.<region>.amazonaws.com` without leaving 127.0.0.1: it
//! talks plain HTTP to that name through `HTTP_PROXY`, a fault proxy in front of a CNCF
//! distribution registry whose htpasswd user is the login moto's GetAuthorizationToken
//! decodes to (`AWS:<account>-auth-token`); the ECR API is moto, named by
//! `AWS_ENDPOINT_URL` and reached directly (`NO_PROXY=127.0.0.1`).

use std::process::Output;

use ferry_store::ecr::{AwsKeys, ensure_repositories, repository_exists};

use super::{MOTO_PASSWORD, Moto, REGION, client, moto_registry, runtime};
use crate::support::{
    Auth, Fault, FaultProxy, Kind, Match, Sandbox, TestRegistry, fixtures, fixtures_bundle,
};

/// A password-protected registry that accepts moto's ECR login, behind a fault proxy that
/// ferry uses as its HTTP proxy for the ECR registry name.
struct EcrStandIn {
    /// Runs as long as the stand-in lives.
    _registry: TestRegistry,
    proxy: FaultProxy,
}

impl EcrStandIn {
    fn start() -> EcrStandIn {
        let mut registry = TestRegistry::start(Auth::Htpasswd);
        let line = std::process::Command::new("htpasswd")
            .args(["-nbB", "-C", "4", "AWS", MOTO_PASSWORD])
            .output()
            .expect("run htpasswd (apt-get install apache2-utils)");
        assert!(line.status.success(), "htpasswd failed");
        std::fs::write(registry.dir().join("htpasswd"), &line.stdout).expect("write htpasswd");
        registry.restart();
        let proxy = FaultProxy::start(&registry);
        EcrStandIn {
            _registry: registry,
            proxy,
        }
    }

    /// `ferry import` of the fixture bundle into the ECR registry name, with these AWS keys
    /// and the ECR API at `api`.
    fn import(&self, sandbox: &Sandbox, keys: &AwsKeys, api: &str, extra: &[&str]) -> Output {
        let host = moto_registry().host();
        sandbox
            .ferry()
            .arg("import")
            .arg(fixtures_bundle())
            .args(["--to", &format!("http://{host}"), "--json"])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", keys.secret_access_key.expose())
            .env("AWS_ENDPOINT_URL", api)
            .env("HTTP_PROXY", self.proxy.url())
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .output()
            .expect("run ferry import")
    }
}

/// Nothing in ferry's output holds a key or the login token.
fn assert_no_secrets(out: &Output, keys: &AwsKeys) {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"));
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in [
            MOTO_PASSWORD,
            token.as_str(),
            keys.secret_access_key.expose(),
        ] {
            assert!(
                !text.contains(secret),
                "a secret in ferry's output:\n{text}"
            );
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn import_creates_missing_ecr_repositories() {
    let moto = Moto::with_iam(3);
    let rt = runtime();
    let http = client();
    let keys = rt.block_on(moto.user_allowed(
        &http,
        "ferry-importer",
        &[
            "ecr:GetAuthorizationToken",
            "ecr:CreateRepository",
            "ecr:DescribeRepositories",
        ],
    ));
    let stand_in = EcrStandIn::start();
    let sandbox = Sandbox::new();
    let registry = moto_registry();
    let endpoint = moto.endpoint();
    let mut repositories: Vec<String> = fixtures().iter().map(|i| i.repository.clone()).collect();
    repositories.sort();
    repositories.dedup();
    // One of them exists already.
    let made = rt.block_on(ensure_repositories(
        &http,
        &registry,
        &keys,
        Some(&endpoint),
        &repositories[..1],
    ));
    assert_eq!(made.created, repositories[..1], "{:?}", made.failed);

    let out = stand_in.import(&sandbox, &keys, &moto.url(), &["-v"]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\nmoto log:\n{}",
        moto.log_text()
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["pushed"], fixtures().len(), "{summary}");
    let created = &repositories[1..];
    assert!(
        stderr.contains(&format!(
            "created {} ECR repositories in {}: {}",
            created.len(),
            registry.host(),
            created.join(", ")
        )),
        "{stderr}"
    );
    for repository in &repositories {
        let there = rt
            .block_on(repository_exists(
                &http, &registry, &keys, &endpoint, repository,
            ))
            .expect("DescribeRepositories");
        assert!(there, "{repository} was not created");
    }
    // The pushes carried the ECR login, through the registry name.
    let puts: Vec<_> = stand_in
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.target.contains("/manifests/"))
        .collect();
    assert!(!puts.is_empty() && puts.iter().all(|r| r.had_authorization));
    assert!(puts.iter().all(|r| r.target.contains(&registry.host())));
    assert_no_secrets(&out, &keys);

    // Again: everything is there, nothing to create.
    let again = stand_in.import(&sandbox, &keys, &moto.url(), &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        !text(&again.stderr).contains("created"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn import_without_create_permission_names_the_missing_repository() {
    let moto = Moto::with_iam(3);
    let rt = runtime();
    let keys = rt.block_on(moto.user_allowed(
        &client(),
        "ferry-pusher",
        &["ecr:GetAuthorizationToken", "ecr:DescribeRepositories"],
    ));
    let stand_in = EcrStandIn::start();
    let sandbox = Sandbox::new();
    let out = stand_in.import(&sandbox, &keys, &moto.url(), &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["pushed"], 0, "{summary}");
    let repository = &fixtures()[0].repository;
    for expected in [
        format!("ECR repository {repository} does not exist"),
        format!("region {REGION}"),
        "ecr:CreateRepository".to_string(),
        "--ecr-create-repos=false".to_string(),
    ] {
        assert!(
            stderr.contains(&expected),
            "{expected:?} missing from {stderr}"
        );
    }
    // Nothing was pushed, not even blobs.
    assert!(
        stand_in
            .proxy
            .requests()
            .iter()
            .all(|r| r.method == "GET" || r.method == "HEAD"),
        "{:?}",
        stand_in.proxy.requests()
    );
    assert_no_secrets(&out, &keys);

    // With --ecr-create-repos=false ferry does not ask, and distribution (unlike ECR) takes
    // the push.
    let out = stand_in.import(&sandbox, &keys, &moto.url(), &["--ecr-create-repos=false"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The GetAuthorizationToken calls moto received through `counter` (every POST to the ECR API
/// is one when --ecr-create-repos=false).
fn logins(counter: &FaultProxy) -> usize {
    counter.count("POST", Kind::Other)
}

#[test]
fn import_logs_in_again_once_when_the_registry_refuses_the_token() {
    let moto = Moto::with_iam(3);
    let keys = runtime().block_on(moto.user(&client(), "ferry-login", true));
    let counter = FaultProxy::start_to(
        format!("127.0.0.1:{}", moto.port)
            .parse()
            .expect("socket address"),
    );
    let stand_in = EcrStandIn::start();
    // The first manifest PUT is refused as an expired ECR token is (401).
    let refuse = stand_in.proxy.inject(
        Match::any().method("PUT").path_contains("/manifests/"),
        Fault::Status(401),
        1,
    );
    let sandbox = Sandbox::new();
    let out = stand_in.import(
        &sandbox,
        &keys,
        &counter.url(),
        &["--ecr-create-repos=false", "-vv"],
    );
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\nmoto log:\n{}",
        moto.log_text()
    );
    assert_eq!(stand_in.proxy.hits(refuse), 1);
    assert_eq!(
        logins(&counter),
        2,
        "one login, and exactly one more after the refusal"
    );
    assert!(
        stderr.contains("refused the ECR login token (expired or revoked); logging in again"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["pushed"], fixtures().len(), "{summary}");
    assert_no_secrets(&out, &keys);
}

#[test]
fn a_fresh_token_refused_too_is_not_renewed_again() {
    let moto = Moto::with_iam(3);
    let keys = runtime().block_on(moto.user(&client(), "ferry-login", true));
    let counter = FaultProxy::start_to(
        format!("127.0.0.1:{}", moto.port)
            .parse()
            .expect("socket address"),
    );
    let stand_in = EcrStandIn::start();
    // Every manifest PUT is refused: the login is not what is wrong.
    stand_in.proxy.inject(
        Match::any().method("PUT").path_contains("/manifests/"),
        Fault::Status(401),
        usize::MAX,
    );
    let sandbox = Sandbox::new();
    let out = stand_in.import(
        &sandbox,
        &keys,
        &counter.url(),
        &["--ecr-create-repos=false"],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(
        logins(&counter),
        2,
        "one renewal for the whole run, not one per request: {stderr}"
    );
    assert!(stderr.contains("rejected the credentials"), "{stderr}");
    assert_no_secrets(&out, &keys);
}
