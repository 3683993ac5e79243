//! The bearer tokens of one registry ([`Tokens`]): which cached token covers which scopes, and
//! which scopes to ask for when none does.
//!
//! One token request may name many scopes (the token spec repeats `scope=`; Docker Hub honours
//! it), so a run over thousands of repositories need not make one token request per
//! repository. When a request needs a token that no cached one covers, the request for it
//! also names, up to [`MAX_BATCH`] scopes and [`MAX_BATCH_BYTES`] of query:
//!
//! 1. the scopes other requests are waiting for at that moment (they queue behind the one
//!    token request in flight);
//! 2. the other scopes of the expired token being replaced (a long run renews them together);
//! 3. scopes announced ahead ([`Tokens::announce`], from `Registries::expect_pulls`: the
//!    repositories a run is about to read), in the order announced.
//!
//! A token is filed under the exact scope set it was fetched for (as before batching) and
//! under every single scope it grants: read from its `access` claims when it is a JWT (what
//! the server really granted, which may be fewer than asked), else assumed to be all it was
//! asked for. Fallbacks: a scope the claims leave out is not batched again (it gets a token of
//! its own when needed); a server that grants none of the extra scopes, or refuses a batched
//! request, or answers 401 to a request whose scope was only assumed covered, gets one token
//! request per scope set from then on, as before.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use serde::Deserialize;

use super::Scope;
use ferry_base::secret::Secret;

/// The most scopes one token request names.
pub const MAX_BATCH: usize = 50;
/// The most bytes of `scope=` parameters one token request carries (URL-encoded), well under
/// the 8 KiB request lines that common proxies accept; the token itself grows with its grants
/// and travels in every later request's header.
pub const MAX_BATCH_BYTES: usize = 4096;

/// One cached token.
pub struct Token {
    /// Numbers tokens, so a 401 can be traced to the token that was sent.
    pub id: u64,
    /// The token.
    pub value: Secret,
    /// When to stop using it (a little before the server's expiry).
    pub expires: Instant,
    /// What it grants: single scopes `type:name:action` (`type:name:*` grants every action).
    grants: HashSet<String>,
    /// `grants` was read from the token's claims (false: assumed from what was asked).
    known: bool,
    /// [`scope_key`] of the scopes of the request it was fetched for.
    own: String,
    /// Every scope asked for it (renewed together when it expires).
    asked: Vec<Scope>,
}

impl Token {
    fn grants(&self, single: &str) -> bool {
        if self.grants.contains(single) {
            return true;
        }
        match single.rsplit_once(':') {
            Some((resource, _)) => self.grants.contains(&format!("{resource}:*")),
            None => false,
        }
    }

    fn covers(&self, scopes: &[Scope]) -> bool {
        scopes.iter().flat_map(singles).all(|s| self.grants(&s))
    }
}

/// The cache and the batching state of one registry.
pub struct Tokens {
    /// By the exact scope set of the request each was fetched for.
    exact: HashMap<String, Arc<Token>>,
    /// By single scope: the newest token granting it.
    single: HashMap<String, Arc<Token>>,
    /// Scopes announced ahead and not yet asked for, in order.
    expected: VecDeque<Scope>,
    /// Every scope ever announced (each is announced once).
    announced: HashSet<Scope>,
    /// False once the server showed it does not honour several scopes per request.
    batching: bool,
    next_id: u64,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            exact: HashMap::new(),
            single: HashMap::new(),
            expected: VecDeque::new(),
            announced: HashSet::new(),
            batching: true,
            next_id: 1,
        }
    }
}

/// A scope's set as one string: sorted, without duplicates (the key of the exact cache).
pub fn scope_key(scopes: &[Scope]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
    s.sort_unstable();
    s.dedup();
    s.join(" ")
}

/// `repository:x:pull,push` → `repository:x:pull`, `repository:x:push`.
fn singles(scope: &Scope) -> Vec<String> {
    match scope.as_str().rsplit_once(':') {
        Some((resource, actions)) => actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| format!("{resource}:{a}"))
            .collect(),
        None => vec![scope.as_str().to_string()],
    }
}

/// The bytes `scope` adds to a token request's query (`&scope=` and the URL-encoded value).
fn query_bytes(scope: &Scope) -> usize {
    "&scope=".len()
        + url::form_urlencoded::byte_serialize(scope.as_str().as_bytes())
            .map(str::len)
            .sum::<usize>()
}

#[derive(Deserialize)]
struct Claims {
    access: Option<Vec<ClaimedAccess>>,
}

#[derive(Deserialize)]
struct ClaimedAccess {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

/// What a token grants, from the `access` claims of a JWT (unverified: only to know what to
/// ask for next; the registry checks the token). `None` when the token is not a JWT with
/// `access` claims (an opaque token).
pub fn granted_by(token: &str) -> Option<HashSet<String>> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .access?
            .into_iter()
            .flat_map(|a| {
                a.actions
                    .into_iter()
                    .map(move |act| format!("{}:{}:{act}", a.kind, a.name))
            })
            .collect(),
    )
}

impl Tokens {
    /// Announces scopes the run is about to need, to be asked for ahead in batches.
    pub fn announce(&mut self, scopes: impl IntoIterator<Item = Scope>) {
        for s in scopes {
            if self.announced.insert(s.clone()) {
                self.expected.push_back(s);
            }
        }
    }

    /// Whether several scopes are still asked for per request.
    #[cfg(test)]
    pub fn batching(&self) -> bool {
        self.batching
    }

    /// From now on, one token request per scope set.
    pub fn stop_batching(&mut self, why: &str) {
        if self.batching {
            tracing::debug!("one token per scope set from now on: {why}");
        }
        self.batching = false;
        self.expected.clear();
    }

    /// A token, valid at `now`, for a request needing `scopes`.
    pub fn lookup(&self, scopes: &[Scope], now: Instant) -> Option<Arc<Token>> {
        if let Some(t) = self.exact.get(&scope_key(scopes))
            && t.expires > now
        {
            return Some(t.clone());
        }
        let first = scopes.iter().flat_map(singles).next()?;
        let t = self.single.get(&first)?;
        (t.expires > now && t.covers(scopes)).then(|| t.clone())
    }

    /// The scopes to ask for in the token request of a request needing `own`: `own` first,
    /// then (while batching) the scopes `waiting` requests need, the other scopes of the
    /// expired token `own` had, and the announced ones, as many as fit and none a valid token
    /// already covers.
    pub fn batch(&mut self, own: &[Scope], waiting: &[Scope], now: Instant) -> Vec<Scope> {
        let mut out: Vec<Scope> = Vec::new();
        for s in own {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        if !self.batching {
            return out;
        }
        let mut taken: HashSet<Scope> = out.iter().cloned().collect();
        let mut bytes: usize = out.iter().map(query_bytes).sum();
        // Adds `s` unless taken or covered; false once the batch is full.
        let mut add = |out: &mut Vec<Scope>, s: &Scope, tokens: &Tokens| -> bool {
            if out.len() >= MAX_BATCH {
                return false;
            }
            if taken.contains(s) || tokens.lookup(std::slice::from_ref(s), now).is_some() {
                return true;
            }
            let b = query_bytes(s);
            if bytes + b > MAX_BATCH_BYTES {
                return false;
            }
            bytes += b;
            taken.insert(s.clone());
            out.push(s.clone());
            true
        };
        for s in waiting {
            if !add(&mut out, s, self) {
                return out;
            }
        }
        let expired: Vec<Arc<Token>> = own
            .iter()
            .flat_map(singles)
            .filter_map(|s| self.single.get(&s).cloned())
            .filter(|t| t.expires <= now)
            .collect();
        for t in &expired {
            for s in &t.asked {
                if !add(&mut out, s, self) {
                    return out;
                }
            }
        }
        while let Some(s) = self.expected.pop_front() {
            if !add(&mut out, &s, self) {
                self.expected.push_front(s);
                break;
            }
        }
        out
    }

    /// Files a token fetched for a request needing `own`, asked with the scopes `asked`
    /// (`own` first); `granted` from its claims when they could be read. Returns it.
    pub fn insert(
        &mut self,
        own: &[Scope],
        asked: Vec<Scope>,
        value: Secret,
        expires: Instant,
        granted: Option<HashSet<String>>,
    ) -> Arc<Token> {
        let id = self.next_id;
        self.next_id += 1;
        let known = granted.is_some();
        let grants = granted.unwrap_or_else(|| asked.iter().flat_map(singles).collect());
        let token = Arc::new(Token {
            id,
            value,
            expires,
            grants,
            known,
            own: scope_key(own),
            asked,
        });
        let extras: Vec<&Scope> = token.asked.iter().filter(|s| !own.contains(s)).collect();
        if known && !extras.is_empty() {
            let granted = extras
                .iter()
                .filter(|s| token.covers(std::slice::from_ref(**s)))
                .count();
            if granted == 0 {
                self.stop_batching(&format!(
                    "the token service granted none of the {} other scopes asked for",
                    extras.len()
                ));
            } else if granted < extras.len() {
                tracing::debug!(
                    "the token service granted {granted} of {} other scopes asked for; the others get tokens of their own",
                    extras.len()
                );
            }
        }
        self.exact.insert(token.own.clone(), token.clone());
        for s in token.asked.iter().flat_map(singles) {
            if token.grants(&s) {
                self.single.insert(s, token.clone());
            }
        }
        token
    }

    /// A request needing `scopes` was answered 401 with the token numbered `sent`: forget
    /// that token for these scopes. If it covered them only by assumption (an opaque token
    /// fetched for other scopes), the server does not honour batches: stop batching.
    pub fn reject(&mut self, scopes: &[Scope], sent: Option<u64>) {
        let key = scope_key(scopes);
        self.exact.remove(&key);
        let Some(sent) = sent else {
            return;
        };
        for s in scopes.iter().flat_map(singles) {
            let Some(t) = self.single.get(&s) else {
                continue;
            };
            if t.id != sent {
                continue;
            }
            if !t.known && t.own != key {
                self.stop_batching("a scope an opaque token was asked for was refused");
            }
            self.single.remove(&s);
        }
    }
}

#[cfg(test)]
mod tests;
