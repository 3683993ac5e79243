//! ECR against moto, a local AWS emulator (`python3 -m moto.server`, installed by
//! `scripts/test.sh`): `get_authorization_token` used as a library, the
//! `EcrCredentialSource` that puts it in the credential chain, `ensure_repositories`
//! (CreateRepository, DescribeRepositories), and `ferry import` into an ECR-named registry:
//! repositories created on the way, and a login the registry refuses renewed once.
//! The import tests are in `ecr/import.rs`.
//!
//! moto checks nothing by default, so [`Moto::with_iam`] turns its IAM enforcement on
//! (`INITIAL_NO_AUTH_ACTION_COUNT`): after a few unauthenticated set-up calls (a user, its
//! access key, a policy) moto re-computes every request's SigV4 signature with the user's
//! secret key and refuses a mismatch, so a broken signer fails here too.

#![cfg(feature = "ecr")]

use std::fs::File;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_base::secret::Secret;
use ferry_store::ecr::{
    AwsKeys, EcrCredentialSource, EcrError, EcrRegistry, EnsuredRepositories, ensure_repositories,
    get_authorization_token, parse_ecr_host, repository_exists,
};
use ferry_store::registry::{Anonymous, CredentialSource, Credentials};
use url::Url;

use crate::support::{Sandbox, http};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const REGION: &str = "eu-west-1";
/// moto's default account.
const ACCOUNT: &str = "123456789012";

/// A moto server on a free loopback port; killed and waited for on Drop.
struct Moto {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    /// Holds the log; removed after the process is gone.
    _sandbox: Sandbox,
}

impl Moto {
    /// moto accepting any keys.
    fn start() -> Moto {
        Self::launch(None)
    }

    /// moto enforcing IAM (signatures and policies) after `free_calls` unauthenticated calls.
    fn with_iam(free_calls: u32) -> Moto {
        Self::launch(Some(free_calls))
    }

    fn launch(free_calls: Option<u32>) -> Moto {
        let check = Sandbox::new()
            .command("python3")
            .args(["-c", "import moto.server"])
            .output();
        match check {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "moto is not installed (python3 cannot import moto.server: {}); run scripts/test.sh, which installs it (python3 -m pip install 'moto[server]>=5,<6')",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("no message")
            ),
            Err(e) => panic!(
                "cannot run python3 ({e}); the ECR tests need python3 with moto: run scripts/test.sh"
            ),
        }
        for attempt in 0.. {
            let sandbox = Sandbox::new();
            let log = sandbox.work().join("moto.log");
            let port = http::free_port();
            let out = File::create(&log).expect("create moto log");
            let mut cmd = sandbox.command("python3");
            cmd.args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(out.try_clone().expect("clone log handle"))
            .stderr(out)
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .env_remove("MOTO_PORT");
            if let Some(n) = free_calls {
                cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
            }
            let child = cmd.spawn().expect("spawn python3 -m moto.server");
            let mut moto = Moto {
                child: Some(child),
                port,
                log,
                _sandbox: sandbox,
            };
            match moto.wait_ready() {
                Ok(()) => return moto,
                Err(msg) if attempt < 4 && msg.contains("in use") => continue,
                Err(msg) => panic!("{msg}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let probe = format!("{}moto-api/data.json", self.url());
        loop {
            let child = self.child.as_mut().expect("moto running");
            if let Some(status) = child.try_wait().expect("try_wait moto") {
                self.child = None;
                return Err(format!(
                    "moto (port {}) exited with {status} while starting; log:\n{}",
                    self.port,
                    self.log_text()
                ));
            }
            // The answer must come from our moto: a port picked free can be taken by another
            // test's moto in between, and then ours exits "in use" while the other answers.
            // Only ours writes our log, and werkzeug logs the address once it has bound it.
            let ours = self
                .log_text()
                .contains(&format!("Running on http://127.0.0.1:{}", self.port));
            let last = match http::get(&probe) {
                Ok(r) if r.status == 200 && ours => return Ok(()),
                Ok(r) if r.status == 200 => "answered 200, but not from this moto yet".to_string(),
                Ok(r) => format!("answered {}", r.status),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "moto (port {}) not ready after {START_TIMEOUT:?} (last probe: {last}); log:\n{}",
                    self.port,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn endpoint(&self) -> Url {
        Url::parse(&self.url()).expect("moto url")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One IAM query-protocol call, before IAM enforcement starts (moto reads the service from
    /// the credential scope, and checks no signature yet). Returns the XML answer.
    async fn iam(&self, http: &reqwest::Client, params: &[(&str, &str)]) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().copied())
            .append_pair("Version", "2010-05-08")
            .finish();
        let answer = http
            .post(self.url())
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDSETUP/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("IAM call to moto");
        let status = answer.status();
        let text = answer.text().await.expect("IAM answer");
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }

    /// A user with an access key, allowed `ecr:GetAuthorizationToken` when `allowed`. Uses two
    /// unauthenticated calls, three when `allowed`.
    async fn user(&self, http: &reqwest::Client, name: &str, allowed: bool) -> AwsKeys {
        let actions: &[&str] = if allowed {
            &["ecr:GetAuthorizationToken"]
        } else {
            &[]
        };
        self.user_allowed(http, name, actions).await
    }

    /// A user with an access key, allowed `actions` (on every resource). Uses two
    /// unauthenticated calls, three with actions.
    async fn user_allowed(&self, http: &reqwest::Client, name: &str, actions: &[&str]) -> AwsKeys {
        self.iam(http, &[("Action", "CreateUser"), ("UserName", name)])
            .await;
        let xml = self
            .iam(http, &[("Action", "CreateAccessKey"), ("UserName", name)])
            .await;
        let field = |tag: &str| {
            let open = format!("<{tag}>");
            let start = xml.find(&open).expect(tag) + open.len();
            let end = xml[start..].find('<').expect(tag) + start;
            xml[start..end].to_string()
        };
        if !actions.is_empty() {
            let policy = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            })
            .to_string();
            let policy = policy.as_str();
            self.iam(
                http,
                &[
                    ("Action", "PutUserPolicy"),
                    ("UserName", name),
                    ("PolicyName", "ecr-login"),
                    ("PolicyDocument", policy),
                ],
            )
            .await;
        }
        AwsKeys::new(field("AccessKeyId"), Secret::new(field("SecretAccessKey")))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn client() -> reqwest::Client {
    ferry_base::tls::install();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

fn fake_keys() -> AwsKeys {
    AwsKeys::new("AKIAFERRYFAKEKEY0001", Secret::new("fake/secret+key"))
}

#[test]
fn gets_a_token_from_moto() {
    let moto = Moto::start();
    let token = runtime()
        .block_on(get_authorization_token(
            &client(),
            REGION,
            &fake_keys(),
            Some(&moto.endpoint()),
        ))
        .unwrap_or_else(|e| panic!("{e}; moto log:\n{}", moto.log_text()));
    assert_eq!(token.username, "AWS");
    assert!(!token.password.is_empty());
    assert!(token.expires_at.is_some(), "moto sends expiresAt");
}

#[test]
fn moto_checks_the_signature_and_the_policy() {
    // Five unauthenticated calls: two users, two keys, one policy.
    let moto = Moto::with_iam(5);
    let rt = runtime();
    let http = client();
    let (allowed, denied) = rt.block_on(async {
        (
            moto.user(&http, "ferry-ecr", true).await,
            moto.user(&http, "ferry-nothing", false).await,
        )
    });
    let endpoint = moto.endpoint();
    let call = |keys: &AwsKeys| {
        rt.block_on(get_authorization_token(
            &http,
            REGION,
            keys,
            Some(&endpoint),
        ))
    };

    // Correct keys: moto re-derived our signature with the user's secret and agreed.
    let token = call(&allowed).unwrap_or_else(|e| panic!("{e}; moto log:\n{}", moto.log_text()));
    assert_eq!(token.username, "AWS");
    assert!(!token.password.is_empty());

    let rejected = |keys: &AwsKeys, code: &str, meaning: &str| {
        let e = call(keys).expect_err("moto must refuse");
        let text = e.to_string();
        assert!(matches!(e, EcrError::Rejected { .. }), "{text}");
        assert_eq!(e.code(), Some(code), "{text}");
        assert!(text.contains(meaning), "{text}");
        assert!(text.contains(REGION), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{}", moto.port)), "{text}");
        assert!(!text.contains(keys.secret_access_key.expose()), "{text}");
        assert!(!text.contains(&keys.access_key_id), "{text}");
    };
    // The right key id with a wrong secret: only a real signature check notices.
    let wrong_secret = AwsKeys::new(
        allowed.access_key_id.clone(),
        Secret::new("not-the-secret-key"),
    );
    rejected(
        &wrong_secret,
        "SignatureDoesNotMatch",
        "the AWS secret access key does not match the access key id",
    );
    rejected(
        &fake_keys(),
        "InvalidClientTokenId",
        "the AWS access key was rejected",
    );
    rejected(
        &denied,
        "AccessDenied",
        "not allowed ecr:GetAuthorizationToken",
    );
}

#[test]
fn credential_source_logs_into_ecr_through_moto() {
    let moto = Moto::start();
    let registry = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com");
    let url = moto.url();
    let env = move |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIAFERRYENVKEY00001".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("env/secret".to_string()),
        "AWS_ENDPOINT_URL" => Some(url.clone()),
        _ => None,
    };
    let source = Arc::new(EcrCredentialSource::new(
        Arc::new(Anonymous),
        vec![(
            format!("https://{registry}/rancher"),
            AwsKeys::new("AKIAFERRYCLUSTERKEY1", Secret::new("cluster/secret")),
        )],
        env,
    ));
    assert_eq!(
        source.origin(&registry).as_deref(),
        Some("ECR GetAuthorizationToken (keys from cluster.yml)")
    );
    // As ferry calls it: synchronously, from a task of the multi-thread runtime.
    let rt = runtime();
    let (s, r) = (source.clone(), registry.clone());
    let credentials = rt
        .block_on(rt.spawn(async move { s.credentials(&r) }))
        .expect("task");
    let Credentials::Basic { username, password } = credentials else {
        panic!(
            "expected an ECR login, got {credentials:?}; moto log:\n{}",
            moto.log_text()
        );
    };
    assert_eq!(username, "AWS");
    assert!(!password.is_empty());

    // Environment keys for an ECR registry without a cluster.yml entry.
    let other = format!("210987654321.dkr.ecr.{REGION}.amazonaws.com");
    assert_eq!(
        source.origin(&other).as_deref(),
        Some("ECR GetAuthorizationToken (keys from environment)")
    );
    assert!(matches!(
        source.credentials(&other),
        Credentials::Basic { .. }
    ));
    // Not ECR: untouched.
    assert_eq!(source.credentials("docker.io"), Credentials::Anonymous);
}

/// The ECR registry of moto's default account.
fn moto_registry() -> EcrRegistry {
    parse_ecr_host(&format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com")).expect("ECR host")
}

/// What moto's GetAuthorizationToken decodes to: `AWS` and this password.
const MOTO_PASSWORD: &str = "123456789012-auth-token";

#[test]
fn ensure_repositories_creates_missing_ones_through_moto() {
    // Nine unauthenticated calls: three users, three keys, three policies.
    let moto = Moto::with_iam(9);
    let rt = runtime();
    let http = client();
    let (admin, pusher, login_only) = rt.block_on(async {
        (
            moto.user_allowed(
                &http,
                "ferry-admin",
                &[
                    "ecr:GetAuthorizationToken",
                    "ecr:CreateRepository",
                    "ecr:DescribeRepositories",
                ],
            )
            .await,
            // What AmazonEC2ContainerRegistryPowerUser allows: no CreateRepository.
            moto.user_allowed(
                &http,
                "ferry-pusher",
                &["ecr:GetAuthorizationToken", "ecr:DescribeRepositories"],
            )
            .await,
            moto.user_allowed(&http, "ferry-login-only", &["ecr:GetAuthorizationToken"])
                .await,
        )
    });
    let registry = moto_registry();
    let endpoint = moto.endpoint();
    let ensure = |keys: &AwsKeys, repositories: &[&str]| -> EnsuredRepositories {
        let repositories: Vec<String> = repositories.iter().map(|r| r.to_string()).collect();
        rt.block_on(ensure_repositories(
            &http,
            &registry,
            keys,
            Some(&endpoint),
            &repositories,
        ))
    };
    let exists = |repository: &str| {
        rt.block_on(repository_exists(
            &http, &registry, &admin, &endpoint, repository,
        ))
        .unwrap_or_else(|e| panic!("{e}; moto log:\n{}", moto.log_text()))
    };

    let first = ensure(&admin, &["rancher/existing"]);
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert_eq!(first.created, ["rancher/existing"]);
    assert!(!exists("rancher/new"));

    // A missing one is created (once, though named twice); an existing one is fine.
    let second = ensure(&admin, &["rancher/new", "rancher/existing", "rancher/new"]);
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!(second.created, ["rancher/new"]);
    assert_eq!(second.existing, ["rancher/existing"]);
    assert!(exists("rancher/new"));

    // Keys that may not create repositories: an existing one is still fine (it is looked
    // up), a missing one is a clear error.
    let third = ensure(&pusher, &["rancher/existing", "rancher/missing"]);
    assert!(third.created.is_empty());
    assert_eq!(third.existing, ["rancher/existing"]);
    let [(repository, e)] = third.failed.as_slice() else {
        panic!("{:?}", third.failed);
    };
    assert_eq!(repository, "rancher/missing");
    assert!(matches!(e, EcrError::RepositoryMissing { .. }), "{e}");
    let text = e.to_string();
    for expected in [
        "ECR repository rancher/missing does not exist",
        &registry.host(),
        &format!("region {REGION}"),
        "not allowed ecr:CreateRepository",
        "grant the IAM identity of these AWS keys ecr:CreateRepository",
        "--ecr-create-repos=false",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert!(!text.contains(pusher.secret_access_key.expose()), "{text}");
    assert!(!text.contains(&pusher.access_key_id), "{text}");
    assert!(!exists("rancher/missing"));

    // Neither call allowed: whether it exists is unknown; the error says what to grant.
    let fourth = ensure(&login_only, &["rancher/existing"]);
    let [(_, e)] = fourth.failed.as_slice() else {
        panic!("{:?}", fourth.failed);
    };
    assert!(matches!(e, EcrError::Repository { .. }), "{e}");
    let text = e.to_string();
    for expected in [
        "rancher/existing",
        &format!("region {REGION}"),
        "ecr:CreateRepository",
        "--ecr-create-repos=false",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
}

mod import;
