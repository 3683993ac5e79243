//! Unit tests of `auth/tokens.rs`: what a token covers (exact set, single scopes, claims,
//! expiry), what a token request asks for (own scopes first, then waiting, expired siblings and
//! announced ones, within the bounds), and the fallbacks to one scope set per request.

use std::time::{Duration, Instant};

use base64::Engine as _;

use super::*;

fn pull(repo: &str) -> Scope {
    Scope::pull(repo)
}

fn repos(n: usize) -> Vec<Scope> {
    (0..n).map(|i| pull(&format!("scale/app-{i:05}"))).collect()
}

/// A JWT (unsigned: only its claims are read) granting `access` entries (type, name, actions).
fn jwt(access: &[(&str, &str, &[&str])]) -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    let access: Vec<serde_json::Value> = access
        .iter()
        .map(|(t, n, a)| serde_json::json!({"type": t, "name": n, "actions": a}))
        .collect();
    format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "ES256", "typ": "JWT"})),
        b64(serde_json::json!({"iss": "i", "access": access}))
    )
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(300)
}

#[test]
fn reads_grants_from_jwt_claims_and_not_from_opaque_tokens() {
    let g = granted_by(&jwt(&[
        ("repository", "a/b", &["pull", "push"]),
        ("repository", "c", &["*"]),
    ]))
    .expect("a JWT with access claims");
    assert!(g.contains("repository:a/b:pull") && g.contains("repository:a/b:push"));
    assert!(g.contains("repository:c:*"));
    assert_eq!(granted_by("opaque-token-value"), None);
    assert_eq!(granted_by("a.b.c"), None, "not base64 JSON");
    // A JWT without `access` says nothing about what it grants.
    let no_access = format!(
        "e30.{}.c2ln",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"{\"iss\":\"x\"}")
    );
    assert_eq!(granted_by(&no_access), None);
}

#[test]
fn a_batch_token_covers_every_scope_it_grants() {
    let mut t = Tokens::default();
    let asked = repos(3);
    let token = jwt(&[
        ("repository", "scale/app-00000", &["pull"]),
        ("repository", "scale/app-00001", &["pull"]),
        ("repository", "scale/app-00002", &["pull"]),
    ]);
    let granted = granted_by(&token);
    let id = t
        .insert(
            &asked[..1],
            asked.clone(),
            Secret::new(token),
            later(),
            granted,
        )
        .id;
    let now = Instant::now();
    for s in &asked {
        assert_eq!(
            t.lookup(std::slice::from_ref(s), now).map(|t| t.id),
            Some(id)
        );
    }
    assert!(
        t.lookup(&asked[1..], now).is_some(),
        "two scopes of one token"
    );
    assert!(t.lookup(&[pull("other")], now).is_none());
    assert!(
        t.lookup(&[Scope::push("scale/app-00001")], now).is_none(),
        "pull was granted, not push"
    );
    assert!(
        t.lookup(&asked[..1], now + Duration::from_secs(301))
            .is_none(),
        "expired"
    );
}

#[test]
fn a_wildcard_action_covers_push_and_pull() {
    let mut t = Tokens::default();
    let own = [Scope::push("a")];
    let token = jwt(&[("repository", "a", &["*"])]);
    t.insert(
        &own,
        own.to_vec(),
        Secret::new(token.clone()),
        later(),
        granted_by(&token),
    );
    assert!(t.lookup(&[pull("a")], Instant::now()).is_some());
}

#[test]
fn asks_for_own_scopes_first_then_waiting_then_announced_in_order() {
    let mut t = Tokens::default();
    let all = repos(10);
    t.announce(all[3..].iter().cloned());
    t.announce(all[3..5].iter().cloned()); // announced twice: once
    let got = t.batch(&all[..1], &[all[2].clone(), all[0].clone()], Instant::now());
    let mut want = vec![all[0].clone(), all[2].clone()];
    want.extend(all[3..].iter().cloned());
    assert_eq!(got, want);
    // Handed out: not asked for again.
    assert_eq!(
        t.batch(&all[1..2], &[], Instant::now()),
        vec![all[1].clone()]
    );
}

#[test]
fn a_batch_stays_within_its_bounds_and_keeps_the_rest_for_later() {
    let mut t = Tokens::default();
    let all = repos(130);
    t.announce(all[1..].iter().cloned());
    let first = t.batch(&all[..1], &[], Instant::now());
    assert_eq!(first.len(), MAX_BATCH);
    assert_eq!(first[1], all[1]);
    let second = t.batch(&[pull("x")], &[], Instant::now());
    assert_eq!(second.len(), MAX_BATCH);
    assert_eq!(
        second[1], all[MAX_BATCH],
        "continues where the first stopped"
    );

    // Long names: the query bound comes first.
    let mut t = Tokens::default();
    let long: Vec<Scope> = (0..50)
        .map(|i| pull(&format!("{}/{i}", "n".repeat(200))))
        .collect();
    t.announce(long[1..].iter().cloned());
    let b = t.batch(&long[..1], &[], Instant::now());
    let bytes: usize = b.iter().map(query_bytes).sum();
    assert!(b.len() > 1 && b.len() < 50, "{}", b.len());
    assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
    assert_eq!(
        t.batch(&[pull("y")], &[], Instant::now())[1],
        long[b.len()],
        "the scope that did not fit is kept for the next batch"
    );
}

#[test]
fn scopes_a_valid_token_covers_are_not_asked_again() {
    let mut t = Tokens::default();
    let all = repos(4);
    let token = jwt(&[("repository", "scale/app-00001", &["pull"])]);
    t.insert(
        &all[1..2],
        all[1..2].to_vec(),
        Secret::new(token.clone()),
        later(),
        granted_by(&token),
    );
    t.announce(all.iter().cloned());
    assert_eq!(
        t.batch(&all[..1], &[all[1].clone()], Instant::now()),
        vec![all[0].clone(), all[2].clone(), all[3].clone()]
    );
}

#[test]
fn an_expired_batch_is_renewed_together() {
    let mut t = Tokens::default();
    let all = repos(5);
    let soon = Instant::now() + Duration::from_millis(1);
    t.insert(&all[..1], all.clone(), Secret::new("opaque"), soon, None);
    std::thread::sleep(Duration::from_millis(5));
    let now = Instant::now();
    assert!(t.lookup(&all[2..3], now).is_none());
    assert_eq!(t.batch(&all[2..3], &[], now).len(), 5, "all five again");
}

#[test]
fn a_server_granting_only_some_scopes_gets_the_rest_asked_alone() {
    let mut t = Tokens::default();
    let all = repos(4);
    // Granted: the own scope and one other.
    let token = jwt(&[
        ("repository", "scale/app-00000", &["pull"]),
        ("repository", "scale/app-00001", &["pull"]),
    ]);
    t.insert(
        &all[..1],
        all.clone(),
        Secret::new(token.clone()),
        later(),
        granted_by(&token),
    );
    let now = Instant::now();
    assert!(t.lookup(&all[1..2], now).is_some());
    assert!(
        t.lookup(&all[2..3], now).is_none(),
        "not granted: not covered"
    );
    assert!(t.batching(), "some extras were granted: keep batching");

    // A server that grants only what each request needs (one scope per token).
    let mut t = Tokens::default();
    let token = jwt(&[("repository", "scale/app-00000", &["pull"])]);
    t.announce(all[1..].iter().cloned());
    let asked = t.batch(&all[..1], &[], now);
    assert_eq!(asked.len(), 4);
    t.insert(
        &all[..1],
        asked,
        Secret::new(token.clone()),
        later(),
        granted_by(&token),
    );
    assert!(!t.batching());
    assert_eq!(t.batch(&all[1..2], &all[2..], now), vec![all[1].clone()]);
}

#[test]
fn a_refused_scope_of_an_opaque_batch_token_stops_batching() {
    let mut t = Tokens::default();
    let all = repos(3);
    let id = t
        .insert(&all[..1], all.clone(), Secret::new("opaque"), later(), None)
        .id;
    let now = Instant::now();
    assert_eq!(t.lookup(&all[1..2], now).map(|t| t.id), Some(id), "assumed");
    // A 401 for the request's own scope (expired, revoked): forget it, keep batching.
    t.reject(&all[..1], Some(id));
    assert!(t.lookup(&all[..1], now).is_none());
    assert!(t.batching());
    // A 401 for a scope only assumed covered: the server does not honour batches.
    t.reject(&all[1..2], Some(id));
    assert!(t.lookup(&all[1..2], now).is_none());
    assert!(!t.batching());
    assert_eq!(t.batch(&all[1..2], &all, now), vec![all[1].clone()]);
}

#[test]
fn a_late_refusal_of_a_replaced_token_keeps_the_new_one() {
    let mut t = Tokens::default();
    let all = repos(2);
    let old = t
        .insert(
            &all[..1],
            all.clone(),
            Secret::new("opaque-1"),
            later(),
            None,
        )
        .id;
    let new = t
        .insert(
            &all[1..],
            all.clone(),
            Secret::new("opaque-2"),
            later(),
            None,
        )
        .id;
    t.reject(&all[..1], Some(old));
    assert_eq!(
        t.lookup(&all[..1], Instant::now()).map(|t| t.id),
        Some(new),
        "the token filed since is kept"
    );
    assert!(t.batching(), "the refused token was not the one filed");
}

#[test]
fn mount_scopes_are_one_set() {
    let mut t = Tokens::default();
    let own = [Scope::push("target/a"), pull("target/b")];
    t.insert(&own, own.to_vec(), Secret::new("opaque"), later(), None);
    let now = Instant::now();
    assert!(t.lookup(&own, now).is_some());
    assert!(
        t.lookup(&[pull("target/b"), Scope::push("target/a")], now)
            .is_some()
    );
    assert_eq!(
        scope_key(&[pull("b"), Scope::push("a"), pull("b")]),
        "repository:a:pull,push repository:b:pull"
    );
}
