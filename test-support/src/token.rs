//! A token server like Docker Hub's `auth.docker.io`, in-process on loopback threads.
//!
//! `GET /token?service=…&scope=…&scope=…` (optional Basic credentials) answers
//! `{"token","access_token","expires_in","issued_at"}` with an ES256 JWT that distribution 2.8
//! accepts: `iss`, `aud` as a plain string, `nbf` back-dated, `exp`, `jti`, `access`, and an `x5c`
//! header holding the signing certificate (which chains to the test CA, the registry's
//! `rootcertbundle`). Anonymous callers get `pull` on public repositories and nothing on private
//! ones; correct credentials get every action they ask for; wrong credentials get a 401.
//! The minimal OAuth2 form (`POST /token`, `grant_type=password|refresh_token`) is also served.
//! Every request is logged for tests to assert on; `GET /stats` answers the counts
//! (`{"requests","scopes","granted"}`) for tools outside the process (scripts/bench.sh).
//! [`TokenSettings::max_scopes`] makes it grant only the first scopes of a request, like a
//! server that does not honour several `scope=` at once.
//!
//! Expiry: Debian's distribution 2.8.2 allows 60 s of leeway on both `exp` and `nbf` (measured),
//! so a token with `expires_in: 2` is still accepted for about a minute. A short `expires_in`
//! shows whether a client *asks* for a new token in time (see the request log); to make the
//! registry *refuse* a token, issue it with `clock_skew` ≤ -(expires_in + 61).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use super::http::{self, Reply, Request, Server};
use super::tls;

/// How far `nbf` (and `iat`) are back-dated, in case a registry without leeway checks them.
const BACKDATE_SECS: u64 = 10;

/// Settings of a token server; all but `tls` can be changed while it runs.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `service` the registry expects as `aud` (`auth.token.service`).
    pub service: String,
    /// `iss` the registry expects (`auth.token.issuer`).
    pub issuer: String,
    pub username: String,
    pub password: String,
    /// `expires_in` of issued tokens, seconds (also their real lifetime).
    pub expires_in: u64,
    /// Repositories anonymous callers get nothing for.
    pub private_repos: BTreeSet<String>,
    /// Serve HTTPS with the test server certificate.
    pub tls: bool,
    /// Seconds added to the token server's clock for `iat`/`nbf`/`exp`/`issued_at` (negative:
    /// tokens that are already expired when issued).
    pub clock_skew: i64,
    /// Grant at most this many scopes per token (the first ones asked for; the others are left
    /// out of `access`, as a server that honours one `scope=` per request does). `None`: all.
    pub max_scopes: Option<usize>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            service: "registry.ferry.test".into(),
            issuer: "ferry-test-token-issuer".into(),
            username: super::registry::USERNAME.into(),
            password: super::registry::PASSWORD.into(),
            expires_in: 300,
            private_repos: BTreeSet::new(),
            tls: false,
            clock_skew: 0,
            max_scopes: None,
        }
    }
}

/// One `access` entry of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// One request the token server received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub method: String,
    /// `service` the client asked for (`None` if absent).
    pub service: Option<String>,
    /// Every `scope` as sent (`repository:rancher/x:pull,push`).
    pub scopes: Vec<String>,
    /// The account named in Basic credentials or the OAuth2 form, right or wrong.
    pub account: Option<String>,
    /// Credentials were presented and correct.
    pub authenticated: bool,
    /// Answered 401 (wrong credentials or bad refresh token).
    pub rejected: bool,
    /// OAuth2 `grant_type` for POST requests.
    pub grant_type: Option<String>,
    /// What the issued token grants (empty when rejected).
    pub granted: Vec<Access>,
}

/// Counts over the request log (see [`TokenServer::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TokenStats {
    /// Token requests (GET and POST, refused ones too).
    pub requests: usize,
    /// `scope` values asked for, over all requests.
    pub scopes: usize,
    /// `access` entries granted, over all tokens issued.
    pub granted: usize,
}

fn stats(log: &[TokenRequest]) -> TokenStats {
    TokenStats {
        requests: log.len(),
        scopes: log.iter().map(|r| r.scopes.len()).sum(),
        granted: log.iter().map(|r| r.granted.len()).sum(),
    }
}

struct State {
    settings: TokenSettings,
    log: Vec<TokenRequest>,
    next_jti: u64,
}

/// A running token server; stops on Drop.
pub struct TokenServer {
    server: Server,
    state: Arc<Mutex<State>>,
    tls: bool,
}

impl TokenServer {
    pub fn start(settings: TokenSettings) -> TokenServer {
        let tls = settings.tls;
        let state = Arc::new(Mutex::new(State {
            settings,
            log: Vec::new(),
            next_jti: 1,
        }));
        let st = state.clone();
        let server = Server::spawn(http::bind_loopback(), tls, move |req| handle(&st, req));
        TokenServer { server, state, tls }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http(s)://127.0.0.1:PORT/token`, the `realm` of the registry's challenge.
    pub fn realm(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/token", self.port())
    }

    pub fn settings(&self) -> TokenSettings {
        self.state.lock().unwrap().settings.clone()
    }
    pub fn service(&self) -> String {
        self.settings().service
    }
    pub fn issuer(&self) -> String {
        self.settings().issuer
    }

    /// Lifetime (and `expires_in`) of tokens issued from now on.
    pub fn set_expires_in(&self, secs: u64) {
        self.state.lock().unwrap().settings.expires_in = secs;
    }

    /// Shifts the clock of tokens issued from now on (see [`TokenSettings::clock_skew`]).
    pub fn set_clock_skew(&self, secs: i64) {
        self.state.lock().unwrap().settings.clock_skew = secs;
    }

    /// Grants at most `max` scopes per token from now on (see [`TokenSettings::max_scopes`]).
    pub fn set_max_scopes(&self, max: Option<usize>) {
        self.state.lock().unwrap().settings.max_scopes = max;
    }

    /// Marks a repository private (anonymous callers get no access to it) or public.
    pub fn set_private(&self, repository: &str, private: bool) {
        let mut st = self.state.lock().unwrap();
        if private {
            st.settings.private_repos.insert(repository.to_string());
        } else {
            st.settings.private_repos.remove(repository);
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().log.clone()
    }
    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// (requests, scopes asked for, access entries granted) so far; what `GET /stats` answers.
    pub fn stats(&self) -> TokenStats {
        stats(&self.state.lock().unwrap().log)
    }

    /// Signs a token directly (for tests that need one without HTTP), as if `authenticated`.
    pub fn issue(&self, scopes: &[&str], authenticated: bool) -> String {
        let mut st = self.state.lock().unwrap();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let access = grant(&st.settings, &scopes, authenticated);
        let service = st.settings.service.clone();
        let account = authenticated.then(|| st.settings.username.clone());
        let (token, _) = sign(&mut st, &service, account.as_deref(), &access);
        token
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Splits `type:name:actions` (the name may not contain `:`, the type may carry `(class)`).
pub fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let kind = kind.split('(').next().unwrap_or(kind).to_string();
    let actions = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    Some((kind, name.to_string(), actions))
}

fn grant(settings: &TokenSettings, scopes: &[String], authenticated: bool) -> Vec<Access> {
    let mut out: Vec<Access> = Vec::new();
    let honoured = settings.max_scopes.unwrap_or(usize::MAX);
    for scope in scopes.iter().flat_map(|s| s.split(' ')).take(honoured) {
        let Some((kind, name, actions)) = parse_scope(scope) else {
            continue;
        };
        let allowed: Vec<String> = if authenticated {
            actions
        } else if kind == "repository" && !settings.private_repos.contains(&name) {
            actions.into_iter().filter(|a| a == "pull").collect()
        } else {
            Vec::new()
        };
        if allowed.is_empty() {
            continue;
        }
        match out.iter_mut().find(|a| a.kind == kind && a.name == name) {
            Some(a) => {
                for act in allowed {
                    if !a.actions.contains(&act) {
                        a.actions.push(act);
                    }
                }
            }
            None => out.push(Access {
                kind,
                name,
                actions: allowed,
            }),
        }
    }
    out
}

/// Signs an ES256 JWT; returns it and the `issued_at` unix time.
fn sign(st: &mut State, audience: &str, account: Option<&str>, access: &[Access]) -> (String, u64) {
    let leaf = tls::token_signer();
    let issued = now().saturating_add_signed(st.settings.clock_skew);
    let jti = st.next_jti;
    st.next_jti += 1;
    let header = json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [STANDARD.encode(&leaf.cert_der)],
    });
    let access: Vec<serde_json::Value> = access
        .iter()
        .map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions}))
        .collect();
    let claims = json!({
        "iss": st.settings.issuer,
        "sub": account.unwrap_or(""),
        "aud": audience,
        "exp": issued + st.settings.expires_in,
        "nbf": issued - BACKDATE_SECS,
        "iat": issued - BACKDATE_SECS,
        "jti": format!("ferry-test-{jti}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &leaf.key_pkcs8, &rng)
        .expect("token signing key");
    let sig = key
        .sign(&rng, signing_input.as_bytes())
        .expect("sign token");
    (
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())),
        issued,
    )
}

/// Decodes the claims of a JWT without checking it (for assertions in tests).
pub fn decode_claims(token: &str) -> serde_json::Value {
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token:?}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("JWT payload not base64url: {e}"));
    serde_json::from_slice(&bytes).expect("JWT claims are JSON")
}

/// RFC 3339 UTC time of a unix timestamp (`2024-01-02T03:04:05Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn unauthorized(detail: &str) -> Reply {
    Reply::json(
        401,
        &json!({
            "details": detail,
            "errors": [{"code": "UNAUTHORIZED", "message": detail}],
        }),
    )
    .header(
        "WWW-Authenticate",
        "Basic realm=\"ferry test token server\"",
    )
}

fn handle(state: &Mutex<State>, req: &Request) -> Reply {
    if req.path() == "/stats" && req.method == "GET" {
        let s = stats(&state.lock().unwrap().log);
        return Reply::json(200, &serde_json::to_value(s).expect("stats as JSON"));
    }
    if req.path() != "/token" {
        return Reply::json(404, &json!({"details": "not found"}));
    }
    match req.method.as_str() {
        "GET" => handle_get(state, req),
        "POST" => handle_post(state, req),
        _ => Reply::json(405, &json!({"details": "method not allowed"})),
    }
}

fn handle_get(state: &Mutex<State>, req: &Request) -> Reply {
    let query = req.query();
    let service = query
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    let scopes: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let basic = req
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut st = state.lock().unwrap();
    let (account, authenticated, rejected) = match &basic {
        None => (None, false, false),
        Some(pair) => {
            let (user, pass) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
            let ok = user == st.settings.username && pass == st.settings.password;
            (Some(user.to_string()), ok, !ok)
        }
    };
    let mut entry = TokenRequest {
        method: "GET".into(),
        service: service.clone(),
        scopes: scopes.clone(),
        account: account.clone(),
        authenticated,
        rejected,
        grant_type: None,
        granted: Vec::new(),
    };
    if rejected {
        st.log.push(entry);
        return unauthorized("incorrect username or password");
    }
    let access = grant(&st.settings, &scopes, authenticated);
    let audience = service.unwrap_or_else(|| st.settings.service.clone());
    let (token, issued) = sign(&mut st, &audience, account.as_deref(), &access);
    let expires_in = st.settings.expires_in;
    entry.granted = access;
    st.log.push(entry);
    Reply::json(
        200,
        &json!({
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": rfc3339(issued),
        }),
    )
}

fn handle_post(state: &Mutex<State>, req: &Request) -> Reply {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let grant_type = field("grant_type");
    let service = field("service");
    let scopes: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let mut st = state.lock().unwrap();
    let (account, ok) = match grant_type.as_deref() {
        Some("password") => {
            let user = field("username").unwrap_or_default();
            let ok = user == st.settings.username
                && field("password").as_deref() == Some(st.settings.password.as_str());
            (Some(user), ok)
        }
        Some("refresh_token") => {
            let expected = refresh_token_for(&st.settings.username);
            let ok = field("refresh_token").as_deref() == Some(expected.as_str());
            (ok.then(|| st.settings.username.clone()), ok)
        }
        _ => (None, false),
    };
    let mut entry = TokenRequest {
        method: "POST".into(),
        service: service.clone(),
        scopes: scopes.clone(),
        account: account.clone(),
        authenticated: ok,
        rejected: !ok,
        grant_type: grant_type.clone(),
        granted: Vec::new(),
    };
    if !ok {
        st.log.push(entry);
        return unauthorized("invalid grant");
    }
    let access = grant(&st.settings, &scopes, true);
    let audience = service.unwrap_or_else(|| st.settings.service.clone());
    let (token, issued) = sign(&mut st, &audience, account.as_deref(), &access);
    let expires_in = st.settings.expires_in;
    let refresh = refresh_token_for(&st.settings.username);
    entry.granted = access;
    st.log.push(entry);
    Reply::json(
        200,
        &json!({
            "access_token": token,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "issued_at": rfc3339(issued),
            "scope": scopes.join(" "),
        }),
    )
}

fn refresh_token_for(user: &str) -> String {
    format!("ferry-test-refresh-{user}")
}
