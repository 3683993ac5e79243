//! Renewal of [`EcrCredentialSource`]'s login: a token the registry refused is replaced by
//! exactly one new GetAuthorizationToken call however many requests were refused, a fresh
//! token refused too is not replaced again (no loop), and a token is renewed ahead of its
//! `expiresAt` by an injected clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::source::{FakeEcr, Fixed, REGISTRY, basic, cluster_keys, in_a_day, token_answer};
use crate::registry::ecr::EcrCredentialSource;
use crate::registry::ecr::source::REFRESH_MARGIN;
use crate::registry::{Anonymous, CredentialSource};

#[test]
fn a_refused_token_is_replaced_by_one_new_login() {
    let server = FakeEcr::start(200, token_answer("ecr-token", in_a_day()));
    let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env());
    let token = source.credentials(REGISTRY);
    assert_eq!(token, basic("AWS", "ecr-token"));
    assert_eq!(server.requests().len(), 1);

    // Three requests were refused with this token: each may retry, one login serves them.
    for _ in 0..3 {
        assert!(source.invalidate(REGISTRY, &token));
    }
    assert_eq!(server.requests().len(), 1, "no call until one is needed");
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-token"));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-token"));
    assert_eq!(server.requests().len(), 2, "exactly one new login");

    // The fresh token is refused as well: the login is not what is wrong; no new call.
    assert!(!source.invalidate(REGISTRY, &token));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "ecr-token"));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn refusals_from_many_threads_cause_one_login() {
    let server = FakeEcr::start(200, token_answer("ecr-token", in_a_day()));
    let source = Arc::new(EcrCredentialSource::new(
        Arc::new(Anonymous),
        cluster_keys(),
        server.env(),
    ));
    let token = source.credentials(REGISTRY);
    // Eight requests refused with the same token, then all retrying at once.
    let refused = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (source, token, refused) = (source.clone(), token.clone(), refused.clone());
            std::thread::spawn(move || {
                assert!(source.invalidate(REGISTRY, &token));
                refused.wait();
                source.credentials(REGISTRY)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), basic("AWS", "ecr-token"));
    }
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn other_logins_are_not_renewed() {
    let server = FakeEcr::start(200, token_answer("unused", in_a_day()));
    let source = EcrCredentialSource::new(Arc::new(Fixed(REGISTRY)), cluster_keys(), server.env());
    // A docker login for the ECR registry: the wrapped source's, not renewable.
    let login = source.credentials(REGISTRY);
    assert_eq!(login, basic("someone", "pw"));
    assert!(!source.invalidate(REGISTRY, &login));
    assert!(!source.invalidate("registry.example.com", &login));
    assert_eq!(source.renew_at(REGISTRY), None);
    assert!(server.requests().is_empty());
}

#[test]
fn a_token_is_renewed_ahead_of_its_expiry() {
    const ISSUED: u64 = 1_700_000_000;
    const LIFETIME: u64 = 12 * 3600;
    let server = FakeEcr::start(
        200,
        token_answer("twelve-hours", (ISSUED + LIFETIME) as f64),
    );
    let now = Arc::new(AtomicU64::new(ISSUED));
    let clock = now.clone();
    let source = EcrCredentialSource::new(Arc::new(Anonymous), cluster_keys(), server.env())
        .with_clock(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)));
    assert_eq!(source.credentials(REGISTRY), basic("AWS", "twelve-hours"));
    let renew_at = source.renew_at(REGISTRY).expect("a renewal time");
    let expected: SystemTime = UNIX_EPOCH + Duration::from_secs(ISSUED + LIFETIME) - REFRESH_MARGIN;
    assert_eq!(renew_at, expected, "15 minutes before expiresAt");

    // Eleven hours and 44 minutes later: still the cached token.
    now.store(
        ISSUED + LIFETIME - REFRESH_MARGIN.as_secs() - 60,
        Ordering::SeqCst,
    );
    source.credentials(REGISTRY);
    assert_eq!(server.requests().len(), 1);
    // Inside the last 15 minutes: a new login, once.
    now.store(
        ISSUED + LIFETIME - REFRESH_MARGIN.as_secs() + 60,
        Ordering::SeqCst,
    );
    source.credentials(REGISTRY);
    source.credentials(REGISTRY);
    assert_eq!(server.requests().len(), 2);
}
