//! [`ensure_repositories`] against a canned local endpoint: the CreateRepository request, each
//! repository once, `RepositoryAlreadyExistsException` as success, and a refusal named.

use url::Url;

use super::keys;
use super::source::FakeEcr;
use crate::registry::ecr::{EcrError, ensure_repositories, http_client, parse_ecr_host};

const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

async fn ensure(
    server: &FakeEcr,
    repositories: &[&str],
) -> crate::registry::ecr::EnsuredRepositories {
    let endpoint = Url::parse(&format!("http://127.0.0.1:{}/", server.port)).unwrap();
    let registry = parse_ecr_host(REGISTRY).unwrap();
    let repositories: Vec<String> = repositories.iter().map(|r| r.to_string()).collect();
    let http = http_client(&[]).unwrap();
    ensure_repositories(&http, &registry, &keys(), Some(&endpoint), &repositories).await
}

#[tokio::test]
async fn creates_each_repository_once() {
    let server = FakeEcr::start(
        200,
        r#"{"repository":{"repositoryName":"x","registryId":"123456789012"}}"#.into(),
    );
    let report = ensure(
        &server,
        &["rancher/rke-tools", "rancher/pause", "rancher/rke-tools"],
    )
    .await;
    assert_eq!(report.created, ["rancher/pause", "rancher/rke-tools"]);
    assert!(report.existing.is_empty() && report.failed.is_empty());
    let mut requests = server.requests();
    assert_eq!(requests.len(), 2, "each repository once");
    requests.sort();
    let request = requests[0].to_ascii_lowercase();
    assert!(
        request.contains("x-amz-target: amazonec2containerregistry_v20150921.createrepository"),
        "{request}"
    );
    assert!(request.contains("content-type: application/x-amz-json-1.1"));
    assert!(request.contains("/eu-west-1/ecr/aws4_request"), "{request}");
    let body = &requests[0][requests[0].find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["registryId"], "123456789012");
    assert!(
        json["repositoryName"]
            .as_str()
            .unwrap()
            .starts_with("rancher/")
    );
}

#[tokio::test]
async fn an_existing_repository_is_fine() {
    let server = FakeEcr::start(
        400,
        r#"{"__type":"RepositoryAlreadyExistsException","message":"The repository with name 'rancher/pause' already exists in the registry with id '123456789012'"}"#.into(),
    );
    let report = ensure(&server, &["rancher/pause"]).await;
    assert_eq!(report.existing, ["rancher/pause"]);
    assert!(report.created.is_empty() && report.failed.is_empty());
}

#[tokio::test]
async fn a_refused_name_is_a_failure_of_that_repository() {
    let server = FakeEcr::start(
        400,
        r#"{"__type":"InvalidParameterException","message":"Invalid parameter at 'repositoryName'"}"#.into(),
    );
    let report = ensure(&server, &["Rancher/Pause"]).await;
    assert!(report.created.is_empty() && report.existing.is_empty());
    let [(repository, e)] = report.failed.as_slice() else {
        panic!("{:?}", report.failed);
    };
    assert_eq!(repository, "Rancher/Pause");
    assert!(matches!(e, EcrError::Repository { .. }));
    let text = e.to_string();
    for expected in [
        "Rancher/Pause",
        REGISTRY,
        "region eu-west-1",
        "does not accept this repository name",
        "--ecr-create-repos=false",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert!(!text.contains(super::SECRET) && !text.contains(super::ID));
}
