//! [`EcrCredentialSource`] against a canned local endpoint: which keys it uses, what it leaves
//! alone, caching, renewal, failures, and calls from inside either tokio runtime flavour.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Capture, b64};
use crate::registry::auth::Credentials;
use crate::registry::ecr::{AwsKeys, EcrCredentialSource, TARGET};
use crate::registry::{Anonymous, CredentialSource};
use ferry_base::secret::Secret;

/// A one-answer-fits-all HTTP server on 127.0.0.1 that records requests; stops on Drop.
pub(super) struct FakeEcr {
    pub(super) port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeEcr {
    pub(super) fn start(status: u16, body: String) -> FakeEcr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => Self::serve(stream, status, &body, &r),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeEcr {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn serve(mut stream: TcpStream, status: u16, body: &str, log: &Mutex<Vec<String>>) {
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break;
                }
            }
        }
        log.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&data).to_string());
        let reason = if status == 200 { "OK" } else { "Error" };
        let answer = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
    }

    pub(super) fn env(&self) -> impl Fn(&str) -> Option<String> + use<> {
        let url = format!("http://127.0.0.1:{}/", self.port);
        move |k: &str| (k == "AWS_ENDPOINT_URL_ECR").then(|| url.clone())
    }

    pub(super) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeEcr {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(super) const REGISTRY: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

pub(super) fn token_answer(password: &str, expires_at: f64) -> String {
    format!(
        r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":{expires_at},"proxyEndpoint":"https://{REGISTRY}"}}]}}"#,
        b64(&format!("AWS:{password}"))
    )
}

pub(super) fn in_a_day() -> f64 {
    (SystemTime::now() + Duration::from_secs(86_400))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub(super) fn cluster_keys() -> Vec<(String, AwsKeys)> {
    vec![(
        format!("{REGISTRY}/rancher"),
        AwsKeys::new("AKIDCLUSTER", Secret::new("cluster-secret-value")),
    )]
}

/// Answers fixed credentials for one registry.
pub(super) struct Fixed(pub(super) &'static str);

impl CredentialSource for Fixed {
    fn credentials(&self, registry: &str) -> Credentials {
        if registry == self.0 {
            Credentials::Basic {
                username: "someone".into(),
                password: Secret::new("pw"),
            }
        } else {
            Credentials::Anonymous
        }
    }
    fn origin(&self, _registry: &str) -> Option<String> {
        Some("docker config auths".into())
    }
}

pub(super) fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: Secret::new(password),
    }
}

#[test]
fn logs_in_with_cluster_keys_once() {
    let server = FakeEcr::start(200, token_answer("ecr-password-1", in_a_day()));
    let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
    assert_eq!(
        source.origin(REGISTRY).as_deref(),
        Some("ECR GetAuthorizationToken (keys from cluster.yml)")
    );
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-password-1"));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-password-1"));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "the token is cached");
    let request = requests[0].to_ascii_lowercase();
    assert!(request.starts_with("post / http/1.1\r\n"), "{request}");
    assert!(request.contains(&format!("x-amz-target: {}", TARGET.to_ascii_lowercase())));
    assert!(request.contains("content-type: application/x-amz-json-1.1"));
    assert!(request.ends_with("\r\n\r\n{}"), "{request}");
    assert!(request.contains("authorization: aws4-hmac-sha256 credential=akidcluster/"));
    assert!(request.contains("/us-west-2/ecr/aws4_request, signedheaders=content-type;host;x-amz-date;x-amz-target, signature="));
    assert!(!request.contains("cluster-secret-value"));
}

#[test]
fn falls_back_to_environment_keys() {
    let server = FakeEcr::start(200, token_answer("ecr-password-2", in_a_day()));
    let endpoint = server.env();
    let env = move |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIDENVIRONMENT".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_string()),
        "AWS_SESSION_TOKEN" => Some("env-session-token".to_string()),
        _ => endpoint(k),
    };
    // cluster.yml keys for another registry do not apply.
    let source = EcrCredentialSource::new(
        Arc::new(Anonymous),
        vec![(
            "999999999999.dkr.ecr.us-west-2.amazonaws.com".into(),
            AwsKeys::new("AKIDOTHER", Secret::new("x")),
        )],
        env,
    );
    assert_eq!(
        source.origin(REGISTRY).as_deref(),
        Some("ECR GetAuthorizationToken (keys from environment)")
    );
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-password-2"));
    let request = server.requests()[0].to_ascii_lowercase();
    assert!(request.contains("credential=akidenvironment/"), "{request}");
    assert!(request.contains("x-amz-security-token: env-session-token"));
}

#[test]
fn leaves_other_registries_and_existing_logins_alone() {
    let server = FakeEcr::start(200, token_answer("unused", in_a_day()));
    let inner = Arc::new(Fixed(REGISTRY));
    let source = EcrCredentialSource::new(inner, cluster_keys(), server.env());
    assert_eq!(source.credentials(REGISTRY), basic("someone", "pw"));
    assert_eq!(
        source.origin(REGISTRY).as_deref(),
        Some("docker config auths")
    );
    assert_eq!(source.credentials("docker.io"), Credentials::Anonymous);
    assert_eq!(
        source.credentials("registry.example.com:5000"),
        Credentials::Anonymous
    );
    // An ECR host without keys anywhere.
    assert_eq!(
        source.credentials("555555555555.dkr.ecr.eu-west-1.amazonaws.com"),
        Credentials::Anonymous
    );
    assert!(server.requests().is_empty());
}

#[test]
fn ignores_plugin_keys_of_non_ecr_urls() {
    let server = FakeEcr::start(200, token_answer("unused", in_a_day()));
    let source = EcrCredentialSource::new(
        Arc::new(Anonymous),
        vec![(
            "registry.example.com".into(),
            AwsKeys::new("AKIDX", Secret::new("x")),
        )],
        server.env(),
    );
    assert_eq!(
        source.credentials("registry.example.com"),
        Credentials::Anonymous
    );
    assert!(server.requests().is_empty());
}

#[test]
fn rejected_keys_warn_once_and_answer_anonymous() {
    let server = FakeEcr::start(
        400,
        r#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#.into(),
    );
    let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(source.credentials(REGISTRY), Credentials::Anonymous);
        assert_eq!(source.credentials(REGISTRY), Credentials::Anonymous);
    });
    assert_eq!(server.requests().len(), 1, "a failure is not retried");
    assert_eq!(source.origin(REGISTRY), None, "the wrapped source's origin");
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
    for expected in [
        REGISTRY,
        "region us-west-2",
        "cluster.yml ecr_credential_plugin",
        "the AWS access key was rejected",
        "UnrecognizedClientException",
        &format!("127.0.0.1:{}", server.port),
    ] {
        assert!(log.contains(expected), "{expected:?} missing from {log}");
    }
    assert!(!log.contains("AKIDCLUSTER") && !log.contains("cluster-secret-value"));
}

#[test]
fn renews_a_token_that_expires() {
    let soon = (SystemTime::now() + Duration::from_millis(800))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let server = FakeEcr::start(200, token_answer("short-lived", soon));
    let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "short-lived"));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "short-lived"));
    assert_eq!(server.requests().len(), 1);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "short-lived"));
    assert_eq!(
        server.requests().len(),
        2,
        "an expired token is fetched again"
    );
}

/// `credentials` is called from async code; neither runtime flavour may panic or hang,
/// even with the only worker blocked in the call.
#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_current_thread_runtime() {
    let server = FakeEcr::start(200, token_answer("ct", in_a_day()));
    let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ct"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn works_inside_a_multi_thread_runtime() {
    let server = FakeEcr::start(200, token_answer("mt", in_a_day()));
    let source = Arc::new(EcrCredentialSource::new(
        Arc::new(Anonymous),
        cluster_keys(),
        server.env(),
    ));
    let s = source.clone();
    let spawned = tokio::spawn(async move { s.credentials(REGISTRY) });
    assert_eq!(spawned.await.unwrap(), basic("AWS", "mt"));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "mt"));
    assert_eq!(server.requests().len(), 1);
}
