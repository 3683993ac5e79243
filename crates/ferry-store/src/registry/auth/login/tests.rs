//! Unit tests of `auth/login.rs`: one lookup for concurrent requests, one renewal for many
//! refused requests (and none for a late refusal of a login already replaced), no renewal of
//! credentials their source cannot renew, and renewal when the source says they are due.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::Login;
use crate::registry::CredentialSource;
use crate::registry::auth::{CredentialLookup, Credentials};
use ferry_base::secret::Secret;

const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

/// A login source: `token-N` on its Nth lookup, each lookup slow enough for callers to pile up.
#[derive(Default)]
struct Renewing {
    lookups: AtomicUsize,
    invalidations: AtomicUsize,
    /// `invalidate` answers this (a source that can log in again).
    renewable: bool,
    /// What `renew_at` answers.
    renew_at: Mutex<Option<SystemTime>>,
}

impl CredentialSource for Renewing {
    fn credentials(&self, registry: &str) -> Credentials {
        if registry != REGISTRY {
            return Credentials::Anonymous;
        }
        let n = self.lookups.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(Duration::from_millis(30));
        Credentials::Basic {
            username: "AWS".into(),
            password: Secret::new(format!("token-{n}")),
        }
    }

    fn renew_at(&self, _registry: &str) -> Option<SystemTime> {
        *self.renew_at.lock().unwrap()
    }

    fn invalidate(&self, _registry: &str, _refused: &Credentials) -> bool {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        self.renewable
    }
}

fn login(source: &Arc<Renewing>) -> Arc<Login> {
    Arc::new(Login::new(
        REGISTRY,
        CredentialLookup {
            source: source.clone(),
            names: vec!["127.0.0.1:5000".into(), REGISTRY.into()],
        },
    ))
}

fn password(c: &Credentials) -> String {
    match c {
        Credentials::Basic { password, .. } => password.expose().to_string(),
        other => panic!("expected Basic credentials, got {other:?}"),
    }
}

/// Runs `n` copies of `f` at once and collects their results.
async fn at_once<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_lookup() {
    let source = Arc::new(Renewing::default());
    let login = login(&source);
    let got = at_once(16, || {
        let login = login.clone();
        async move { login.get().await }
    })
    .await;
    assert_eq!(source.lookups.load(Ordering::SeqCst), 1);
    assert!(got.iter().all(|r| password(&r.credentials) == "token-1"));
    assert!(got.iter().all(|r| r.generation == 0));
    assert_eq!(
        login.label().as_deref(),
        Some("\"AWS\""),
        "the user, never the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_refused_requests_renew_the_login_once() {
    let source = Arc::new(Renewing {
        renewable: true,
        ..Renewing::default()
    });
    let login = login(&source);
    let first = login.get().await;
    assert_eq!(password(&first.credentials), "token-1");

    // Sixteen requests sent token-1 and were refused at about the same time; each retries.
    let retried = at_once(16, || {
        let login = login.clone();
        async move {
            assert!(login.refused(0).await, "a renewable login is worth a retry");
            login.get().await
        }
    })
    .await;
    assert_eq!(
        source.lookups.load(Ordering::SeqCst),
        2,
        "one new login between them"
    );
    assert!(
        retried
            .iter()
            .all(|r| password(&r.credentials) == "token-2")
    );
    assert!(retried.iter().all(|r| r.generation == 1));

    // A refusal that arrives late, for the login already replaced: retry, renew nothing.
    let asked = source.invalidations.load(Ordering::SeqCst);
    assert!(login.refused(0).await);
    assert_eq!(source.invalidations.load(Ordering::SeqCst), asked);
    assert_eq!(password(&login.get().await.credentials), "token-2");
    assert_eq!(source.lookups.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_source_cannot_renew_stay_refused() {
    let source = Arc::new(Renewing::default());
    let login = login(&source);
    let first = login.get().await;
    assert!(!login.refused(first.generation).await);
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 1);
    assert_eq!(password(&login.get().await.credentials), "token-1");
    assert_eq!(source.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_is_not_renewed() {
    let source = Arc::new(Renewing::default());
    let login = Login::new(
        "registry.example.com",
        CredentialLookup {
            source: source.clone(),
            names: vec!["registry.example.com".into()],
        },
    );
    let r = login.get().await;
    assert_eq!(r.credentials, Credentials::Anonymous);
    assert!(!login.refused(r.generation).await);
    assert_eq!(source.invalidations.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_due_for_renewal_are_looked_up_again_once() {
    let source = Arc::new(Renewing::default());
    *source.renew_at.lock().unwrap() = Some(SystemTime::now() + Duration::from_millis(200));
    let login = Arc::new(
        Login::new(
            REGISTRY,
            CredentialLookup {
                source: source.clone(),
                names: vec![REGISTRY.into()],
            },
        )
        .with_min_renewal(Duration::ZERO),
    );
    assert_eq!(password(&login.get().await.credentials), "token-1");
    assert_eq!(password(&login.get().await.credentials), "token-1");
    assert_eq!(source.lookups.load(Ordering::SeqCst), 1, "not due yet");
    *source.renew_at.lock().unwrap() = Some(SystemTime::now() + Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = at_once(16, || {
        let login = login.clone();
        async move { login.get().await }
    })
    .await;
    assert_eq!(source.lookups.load(Ordering::SeqCst), 2, "one renewal");
    assert!(got.iter().all(|r| password(&r.credentials) == "token-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_time_already_past_is_not_a_lookup_per_request() {
    let source = Arc::new(Renewing::default());
    *source.renew_at.lock().unwrap() = Some(SystemTime::now() - Duration::from_secs(1));
    let login = login(&source);
    for _ in 0..5 {
        assert_eq!(password(&login.get().await.credentials), "token-1");
    }
    assert_eq!(source.lookups.load(Ordering::SeqCst), 1);
}
