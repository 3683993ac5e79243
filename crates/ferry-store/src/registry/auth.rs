//! Registry authentication: the `WWW-Authenticate` challenge (Basic or Bearer), the token
//! flow of the distribution spec (anonymous or with credentials, several scopes in one
//! request), a token cache with refresh on expiry or `invalid_token`. Token requests are one at
//! a time per registry and name many scopes at once: those of the requests waiting meanwhile
//! and of repositories announced ahead ([`Authenticator::announce`]), so a run over thousands of
//! repositories makes a few dozen token requests, not thousands (`tokens`).
//!
//! The challenge is learned from the first 401 and remembered, so later requests carry their
//! credentials up front. Credentials are looked up when first needed and renewed when their
//! source says they expire or when the registry refuses a login the source can renew
//! (`login`). Tokens and passwords only ever live in [`Secret`]s.

mod login;
mod tokens;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::error::{RegistryError, redact, spec_errors};
use ferry_base::secret::Secret;

/// Credentials for one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: anonymous pulls through the token flow.
    #[default]
    Anonymous,
    /// User name and password (or personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: Secret,
    },
    /// An OAuth2 refresh token from `docker login` (`identitytoken` in config.json).
    IdentityToken {
        /// User name, for messages.
        username: String,
        /// The refresh token.
        token: Secret,
    },
}

impl Credentials {
    /// The user name, for error messages.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Anonymous => None,
            Credentials::Basic { username, .. } | Credentials::IdentityToken { username, .. } => {
                Some(username)
            }
        }
    }

    fn basic_header(&self) -> Option<Secret> {
        match self {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                Some(Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )))
            }
            _ => None,
        }
    }
}

/// An access scope, e.g. `repository:rancher/rke-tools:pull`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Pull access to a repository.
    pub fn pull(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull"))
    }

    /// Pull and push access to a repository.
    pub fn push(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull,push"))
    }

    /// The scope string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic,
    /// Bearer tokens from a token service.
    Bearer {
        /// Token endpoint.
        realm: Url,
        /// `service` parameter.
        service: Option<String>,
        /// `error` parameter of the challenge (`invalid_token`, `insufficient_scope`).
        error: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(value).ok()?;
    for c in &challenges {
        let param = |name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if c.scheme.eq_ignore_ascii_case("bearer") {
            let realm = Url::parse(&param("realm")?).ok()?;
            if !matches!(realm.scheme(), "http" | "https") {
                return None;
            }
            return Some(Challenge::Bearer {
                realm,
                service: param("service"),
                error: param("error"),
            });
        }
        if c.scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
    }
    None
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Where an [`Authenticator`] gets its credentials: asked on first need (and again when they
/// are due or refused and can be renewed), on a blocking thread (a credential helper is a
/// process, an ECR login an HTTPS call), never while a lock other registries' transfers need
/// is held. The first name with credentials wins.
pub struct CredentialLookup {
    /// The source.
    pub source: std::sync::Arc<dyn super::CredentialSource>,
    /// Names to ask for, in order (the endpoint's `host:port`, then the registry name).
    pub names: Vec<String>,
}

/// The most bytes of a token answer read into memory.
const MAX_TOKEN_BODY: usize = 1024 * 1024;

/// The `Authorization` header of one request, and the login it was made from.
pub struct Authorization {
    /// The header value (marked sensitive).
    pub value: HeaderValue,
    /// The generation of credentials sent as Basic auth (`None` for a bearer token).
    login: Option<u64>,
    /// The number of the bearer token sent (`None` for Basic auth).
    token: Option<u64>,
}

/// Authentication state of one registry.
pub struct Authenticator {
    registry: String,
    /// The registry is reached over HTTPS: its token service must be too.
    secure: bool,
    login: login::Login,
    challenge: std::sync::RwLock<Option<Challenge>>,
    /// The cache; locked across a token request, so requests needing a token queue behind
    /// the one in flight (and are covered by it or by the next one).
    tokens: Mutex<tokens::Tokens>,
    /// Scopes of the requests waiting for a token now, with how many wait for each.
    waiting: std::sync::Mutex<BTreeMap<Scope, usize>>,
    /// Scopes announced by [`announce`](Self::announce), not yet handed to the cache.
    announced: std::sync::Mutex<Vec<Scope>>,
}

/// A request's registration among the waiting ones, withdrawn on drop (also when the request
/// is cancelled).
struct Waiting<'a> {
    map: &'a std::sync::Mutex<BTreeMap<Scope, usize>>,
    scopes: &'a [Scope],
}

impl<'a> Waiting<'a> {
    fn register(map: &'a std::sync::Mutex<BTreeMap<Scope, usize>>, scopes: &'a [Scope]) -> Self {
        if let Ok(mut m) = map.lock() {
            for s in scopes {
                *m.entry(s.clone()).or_default() += 1;
            }
        }
        Waiting { map, scopes }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            for s in self.scopes {
                if let Some(n) = m.get_mut(s) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(s);
                    }
                }
            }
        }
    }
}

/// Whether a failed token request that named several scopes is worth repeating with the
/// request's own scopes alone: the token service answered, and refused (some refuse a request
/// naming a scope they do not grant, or a long query).
fn refused_batch(e: &RegistryError) -> bool {
    match e {
        RegistryError::Unauthorized { .. }
        | RegistryError::Denied { .. }
        | RegistryError::Token { .. } => true,
        RegistryError::Status { status, .. } => status.is_client_error() && status.as_u16() != 429,
        _ => false,
    }
}

impl Authenticator {
    /// New state for `registry`, reached over HTTPS when `secure`, with credentials from
    /// `lookup` (not asked until a request needs them).
    pub fn new(registry: &str, secure: bool, lookup: CredentialLookup) -> Authenticator {
        Authenticator {
            registry: registry.to_string(),
            secure,
            login: login::Login::new(registry, lookup),
            challenge: std::sync::RwLock::new(None),
            tokens: Mutex::new(tokens::Tokens::default()),
            waiting: std::sync::Mutex::new(BTreeMap::new()),
            announced: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Announces scopes the run is about to need (the pull scopes of the repositories it will
    /// read): with bearer tokens, token requests then ask for many of them ahead, in the order
    /// announced. A hint: nothing is requested now.
    pub fn announce(&self, scopes: impl IntoIterator<Item = Scope>) {
        if let Ok(mut a) = self.announced.lock() {
            a.extend(scopes);
        }
    }

    /// The credentials' user and their origin, for messages (once they were looked up).
    pub fn user_label(&self) -> Option<String> {
        self.login.label()
    }

    fn challenge(&self) -> Option<Challenge> {
        self.challenge.read().map(|c| c.clone()).unwrap_or(None)
    }

    /// The `Authorization` header for a request needing `scopes`, or `None` while the
    /// registry's challenge is unknown or it needs none.
    pub async fn header(
        &self,
        http: &reqwest::Client,
        opts: &super::ClientOptions,
        scopes: &[Scope],
    ) -> Result<Option<Authorization>, RegistryError> {
        let mut login = None;
        let mut token = None;
        let value = match self.challenge() {
            None => return Ok(None),
            Some(Challenge::Basic) => {
                let resolved = self.login.get().await;
                match resolved.credentials.basic_header() {
                    Some(v) => {
                        login = Some(resolved.generation);
                        v
                    }
                    None => return Ok(None),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                if self.secure && realm.scheme() != "https" {
                    return Err(RegistryError::Token {
                        registry: self.registry.clone(),
                        realm: redact(&realm),
                        detail: "the registry is reached over HTTPS but sends its clients to a token service over plain HTTP, where credentials and tokens would travel unencrypted; ferry sends nothing there. Configure the registry's token realm with https://".into(),
                    });
                }
                let (value, id) = self
                    .token(http, opts, &realm, service.as_deref(), scopes)
                    .await?;
                token = Some(id);
                value
            }
        };
        let mut h = HeaderValue::from_str(value.expose()).map_err(|_| RegistryError::Token {
            registry: self.registry.clone(),
            realm: String::new(),
            detail: "the token contains characters not allowed in an HTTP header".into(),
        })?;
        h.set_sensitive(true);
        Ok(Some(Authorization {
            value: h,
            login,
            token,
        }))
    }

    /// Learns from a 401 to a request that carried `sent`. Returns true when retrying the
    /// request with fresh credentials can help (a new challenge, an expired token, or a
    /// refused login its source renewed); false when the credentials are wrong.
    pub async fn on_unauthorized(
        &self,
        www_authenticate: Option<&str>,
        scopes: &[Scope],
        sent: Option<&Authorization>,
    ) -> bool {
        let had_auth = sent.is_some();
        // A 401 without a challenge to a request that carried Basic credentials: the Basic
        // challenge already known still applies (the credentials were refused).
        let challenge = match www_authenticate.and_then(parse_challenge) {
            Some(c) => c,
            None => match self.challenge() {
                Some(Challenge::Basic) if had_auth => Challenge::Basic,
                _ => return false,
            },
        };
        if let Ok(mut c) = self.challenge.write() {
            *c = Some(challenge.clone());
        }
        match challenge {
            Challenge::Basic => match sent.and_then(|s| s.login) {
                // Credentials we sent were refused: a login that expires (ECR's) can be
                // renewed, once per refused login.
                Some(generation) => self.login.refused(generation).await,
                None => !had_auth && self.login.get().await.credentials.basic_header().is_some(),
            },
            Challenge::Bearer { .. } => {
                // A token we sent was rejected (expired, revoked, or not granting a scope it
                // was only assumed to): drop it and fetch a new one. Either way one more round
                // can help: a first token, or a fresh one. The caller bounds the rounds, so
                // wrong credentials still end in a clear error.
                self.tokens
                    .lock()
                    .await
                    .reject(scopes, sent.and_then(|s| s.token));
                true
            }
        }
    }

    /// The `Bearer …` value for a request needing `scopes`, and the token's number: a cached
    /// token covering them, else a new one, asked for with other scopes too (`tokens`).
    async fn token(
        &self,
        http: &reqwest::Client,
        opts: &super::ClientOptions,
        realm: &Url,
        service: Option<&str>,
        scopes: &[Scope],
    ) -> Result<(Secret, u64), RegistryError> {
        let bearer =
            |t: &tokens::Token| (Secret::new(format!("Bearer {}", t.value.expose())), t.id);
        // Most requests find their token cached: without queueing behind a token request.
        if let Ok(cache) = self.tokens.try_lock()
            && let Some(t) = cache.lookup(scopes, Instant::now())
        {
            return Ok(bearer(&t));
        }
        let _waiting = Waiting::register(&self.waiting, scopes);
        let mut cache = self.tokens.lock().await;
        if let Ok(mut a) = self.announced.lock() {
            cache.announce(a.drain(..));
        }
        let now = Instant::now();
        if let Some(t) = cache.lookup(scopes, now) {
            return Ok(bearer(&t));
        }
        let waiting: Vec<Scope> = self
            .waiting
            .lock()
            .map(|w| w.keys().cloned().collect())
            .unwrap_or_default();
        let mut asked = cache.batch(scopes, &waiting, now);
        let fetched = match self.fetch_token(http, opts, realm, service, &asked).await {
            Ok(t) => t,
            Err(e) if asked.iter().any(|s| !scopes.contains(s)) && refused_batch(&e) => {
                cache.stop_batching(&format!(
                    "a token request naming {} scopes failed ({e})",
                    asked.len()
                ));
                asked = cache.batch(scopes, &[], now);
                self.fetch_token(http, opts, realm, service, &asked).await?
            }
            Err(e) => return Err(e),
        };
        let (value, expires) = fetched;
        let granted = tokens::granted_by(value.expose());
        let t = cache.insert(scopes, asked, value, expires, granted);
        Ok(bearer(&t))
    }

    /// The token request: an OAuth2 refresh-token POST for an identity token, else a GET
    /// with the scopes (and Basic credentials when there are some).
    async fn token_request(
        &self,
        http: &reqwest::Client,
        realm: &Url,
        service: Option<&str>,
        scopes: &[Scope],
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        let fail = |detail: String| RegistryError::Token {
            registry: self.registry.clone(),
            realm: redact(realm),
            detail,
        };
        let mut url = realm.clone();
        let resolved = self.login.get().await;
        Ok(match &resolved.credentials {
            Credentials::IdentityToken { token, .. } => {
                let mut form: Vec<(&str, &str)> = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.expose()),
                    ("client_id", "ferry"),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                let scope = scopes
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" ");
                form.push(("scope", &scope));
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                http.post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            creds => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s.as_str());
                    }
                }
                let mut b = http.get(url);
                if let Some(h) = creds.basic_header() {
                    let mut v = HeaderValue::from_str(h.expose()).map_err(|_| {
                        fail("credentials contain characters not allowed in an HTTP header".into())
                    })?;
                    v.set_sensitive(true);
                    b = b.header(AUTHORIZATION, v);
                }
                b
            }
        })
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        opts: &super::ClientOptions,
        realm: &Url,
        service: Option<&str>,
        scopes: &[Scope],
    ) -> Result<(Secret, Instant), RegistryError> {
        let fail = |detail: String| RegistryError::Token {
            registry: self.registry.clone(),
            realm: redact(realm),
            detail,
        };
        let request = self.token_request(http, realm, service, scopes).await?;
        // The same retry policy as every other request: transport failures, 429 and 5xx
        // are tried again (honouring Retry-After); a refusal is final.
        let what = || format!("the token request to {}", redact(realm));
        let resp = super::request::with_retries(opts, &what, |_| {
            let req = request.try_clone();
            async move {
                let req = req.ok_or_else(|| fail("cannot repeat the token request".into()))?;
                let resp = req.send().await.map_err(|e| {
                    super::request::transport_error(&self.registry, &e.without_url(), realm)
                })?;
                let status = resp.status();
                if status.as_u16() == 429 || matches!(status.as_u16(), 500 | 502 | 503 | 504) {
                    return Err(RegistryError::Status {
                        registry: self.registry.clone(),
                        method: "GET".into(),
                        url: redact(realm),
                        status,
                        retry_after: super::request::parse_retry_after(resp.headers())
                            .map(|d| d.as_secs()),
                        errors: super::request::error_body(resp).await,
                    });
                }
                Ok(resp)
            }
        })
        .await?;
        let status = resp.status();
        let body = super::request::read_capped(resp, MAX_TOKEN_BODY)
            .await
            .map_err(|e| {
                fail(format!(
                    "reading the answer failed: {}",
                    super::request::flatten(&e)
                ))
            })?
            .ok_or_else(|| {
                fail(format!(
                    "its answer is larger than {MAX_TOKEN_BODY} bytes, which no token is; refusing it"
                ))
            })?;
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(RegistryError::Unauthorized {
                registry: self.registry.clone(),
                user: self.user_label(),
                errors: spec_errors(&body),
            });
        }
        if !status.is_success() {
            return Err(fail(format!("it answered {status}")));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("its answer is not a token response: {e}")))?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| fail("its answer has no token".into()))?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
        let expires = Instant::now() + lifetime.mul_f64(0.9);
        tracing::debug!(
            "got a token for {} ({} scope(s) asked: {}{}; valid {} s)",
            self.registry,
            scopes.len(),
            scopes.first().map_or("", Scope::as_str),
            if scopes.len() > 1 { ", …" } else { "" },
            lifetime.as_secs()
        );
        Ok((Secret::new(value), expires))
    }
}

#[cfg(test)]
mod tests;
