//! Many repositories on a token registry: token requests name many scopes at once, so their
//! number does not grow with the repositories a run reads (`store/registry/auth/tokens.rs`),
//! and a token service that grants one scope per token still serves every image.

use std::sync::Arc;

use ferry_oci::reference::Reference;
use ferry_plan::resolve::Resolver;
use ferry_store::registry::{Anonymous, ClientOptions, Registries, config};

use crate::support::*;

/// Repositories in each test: more than the per-host concurrency, fewer than one batch.
const REPOS: usize = 36;

fn repository(i: usize) -> String {
    format!("scale/app-{i:05}")
}

/// A token registry with the same small image in `REPOS` repositories, `scale/app-NNNNN:v1`.
fn registry_with_many_repositories() -> (TestRegistry, FixtureImage) {
    let reg = TestRegistry::start(Auth::Token);
    let image = fixture(PAUSE);
    for i in 0..REPOS {
        seed_as(&reg, &image, &repository(i), "v1");
    }
    (reg, image)
}

fn references() -> Vec<(String, Reference)> {
    (0..REPOS)
        .map(|i| {
            let name = format!("{}:v1", repository(i));
            let r = Reference::parse(&name).expect("reference");
            (name, r)
        })
        .collect()
}

/// Resolves every image the way `ferry lock` and `ferry export` do (the same resolver, 16 at
/// a time), after announcing them to the registry pool when `announce`.
fn resolve_all(reg: &TestRegistry, announce: bool) {
    let images = references();
    let opts = ClientOptions {
        endpoints: vec![
            config::parse_upstream(&format!("docker.io={}", reg.url())).expect("upstream"),
        ],
        backoff: std::time::Duration::from_millis(20),
        ..ClientOptions::default()
    };
    let registries = Registries::new(opts, Arc::new(Anonymous)).expect("client");
    if announce {
        registries.expect_pulls(images.iter().map(|(_, r)| r));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(Resolver::new(&registries).resolve_all(&images, 16, &|_, _| {}));
    for r in results {
        if let Err(e) = r {
            panic!("{}: {}", e.name(), e.cause());
        }
    }
}

fn export_all(reg: &TestRegistry) -> serde_json::Value {
    let sandbox = Sandbox::new();
    let list = sandbox.work().join("images.txt");
    let text: String = references().iter().map(|(n, _)| format!("{n}\n")).collect();
    std::fs::write(&list, text).expect("write list");
    let bundle = sandbox.work().join("bundle.tar");
    let out = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(upstream_args(&reg.url(), reg))
        .arg("-o")
        .arg(&bundle)
        .arg("--json")
        .output()
        .expect("run ferry");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["exported"], REPOS, "{summary}");
    summary
}

#[test]
fn announced_repositories_share_one_token_request() {
    let (reg, _) = registry_with_many_repositories();
    let tokens = reg.token_server().expect("token server");
    resolve_all(&reg, true);
    let requests = tokens.requests();
    assert!(
        !requests.is_empty() && requests.len() <= 2,
        "{} token requests for {REPOS} repositories: {:?}",
        requests.len(),
        requests.iter().map(|r| r.scopes.len()).collect::<Vec<_>>()
    );
    assert_eq!(
        requests[0].scopes.len(),
        REPOS,
        "the first token request names every announced repository"
    );
    assert_eq!(requests[0].granted.len(), REPOS);
}

#[test]
fn a_token_service_granting_one_scope_per_token_still_serves_every_repository() {
    let (reg, _) = registry_with_many_repositories();
    let tokens = reg.token_server().expect("token server");
    tokens.set_max_scopes(Some(1));
    resolve_all(&reg, true);
    let requests = tokens.requests();
    assert!(requests[0].scopes.len() > 1, "a batch was tried first");
    assert!(
        requests[1..].iter().all(|r| r.scopes.len() == 1),
        "then one scope per request: {:?}",
        requests.iter().map(|r| r.scopes.len()).collect::<Vec<_>>()
    );
    // One token per repository, none asked twice.
    assert_eq!(requests.len(), REPOS, "{requests:?}");
}

#[test]
fn export_makes_no_more_token_requests_than_repositories() {
    let (reg, _) = registry_with_many_repositories();
    let tokens = reg.token_server().expect("token server");
    export_all(&reg);
    let n = tokens.request_count();
    eprintln!("ferry export: {n} token requests for {REPOS} repositories");
    assert!(n > 0 && n <= REPOS, "{n} token requests");
}

#[test]
fn export_from_a_token_service_granting_one_scope_per_token() {
    let (reg, _) = registry_with_many_repositories();
    let tokens = reg.token_server().expect("token server");
    tokens.set_max_scopes(Some(1));
    export_all(&reg);
    let requests = tokens.requests();
    let granted: std::collections::BTreeSet<&str> = requests
        .iter()
        .flat_map(|r| r.granted.iter().map(|a| a.name.as_str()))
        .collect();
    assert_eq!(granted.len(), REPOS, "a token for every repository");
}

/// `ferry export` announces its images before resolving (`Registries::expect_pulls`), so one
/// or two token requests cover every repository.
#[test]
fn export_makes_far_fewer_token_requests_than_repositories() {
    let (reg, _) = registry_with_many_repositories();
    let tokens = reg.token_server().expect("token server");
    export_all(&reg);
    let n = tokens.request_count();
    assert!(n <= 2, "{n} token requests for {REPOS} repositories");
}
