//! A static-file server on 127.0.0.1 (HTTPS with the test CA, or plain HTTP) that behaves like
//! a CDN for one small set of files: a strong `ETag` per file, `304 Not Modified` for a
//! matching `If-None-Match`, optional Basic auth, `302` redirects to any URL (another server,
//! plain HTTP), and a log of every request it answered. It
//! stands in for releases.rancher.com in the KDM metadata tests. Stops on Drop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use super::http::{Reply, Request, Server, bind_loopback};

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// The `If-None-Match` header, if sent.
    pub if_none_match: Option<String>,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Vec<u8>>,
    log: Vec<Logged>,
    basic: Option<String>,
    /// Path → the `Location` a `302 Found` sends.
    redirects: BTreeMap<String, String>,
}

/// The server; see the module docs.
pub struct StaticServer {
    state: Arc<Mutex<State>>,
    server: Server,
    tls: bool,
}

/// The strong ETag of `body`: its sha256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", super::sha256_hex(body))
}

fn handle(state: &Mutex<State>, req: &Request) -> Reply {
    let mut st = state.lock().expect("static server state");
    let inm = req.header("if-none-match").map(str::to_string);
    let authorization = req.header("authorization").map(str::to_string);
    let reply = if !matches!(req.method.as_str(), "GET" | "HEAD") {
        Reply::new(405)
    } else if st
        .basic
        .as_ref()
        .is_some_and(|want| authorization.as_deref() != Some(want.as_str()))
    {
        Reply::new(401).header("WWW-Authenticate", "Basic realm=\"files\"")
    } else if let Some(location) = st.redirects.get(req.path()) {
        Reply::new(302).header("Location", location)
    } else {
        match st.files.get(req.path()) {
            None => Reply::new(404),
            Some(body) => {
                let etag = etag_of(body);
                let matches = inm
                    .as_deref()
                    .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
                if matches {
                    Reply::new(304).header("ETag", &etag)
                } else {
                    Reply::new(200)
                        .header("Content-Type", "application/json")
                        .header("ETag", &etag)
                        .body(body.clone())
                }
            }
        }
    };
    st.log.push(Logged {
        method: req.method.clone(),
        target: req.target.clone(),
        if_none_match: inm,
        authorization,
        status: reply.status,
    });
    reply
}

impl StaticServer {
    /// Serves `files` (path such as `/data.json` → bytes) over HTTPS with the test CA's
    /// server certificate (`tls`), or plain HTTP.
    pub fn start(files: &[(&str, Vec<u8>)], tls: bool) -> StaticServer {
        let state = Arc::new(Mutex::new(State {
            files: files
                .iter()
                .map(|(p, b)| (p.to_string(), b.clone()))
                .collect(),
            ..State::default()
        }));
        let st = state.clone();
        let server = Server::spawn(bind_loopback(), tls, move |req| handle(&st, req));
        StaticServer { state, server, tls }
    }

    /// Requires Basic auth with these credentials from now on (401 otherwise).
    pub fn require_basic(&self, user: &str, password: &str) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.state.lock().expect("state").basic = Some(format!("Basic {token}"));
    }

    /// Replaces (or adds) a file; its ETag changes with its bytes.
    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.state
            .lock()
            .expect("state")
            .files
            .insert(path.to_string(), body);
    }

    /// Answers `path` with `302 Found` and `Location: location` from now on (before any file).
    pub fn redirect(&self, path: &str, location: &str) {
        self.state
            .lock()
            .expect("state")
            .redirects
            .insert(path.to_string(), location.to_string());
    }

    /// The URL of `path` (`https://127.0.0.1:PORT/path`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.server.addr())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Every request answered so far, in order.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().expect("state").log.clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_log(&self) {
        self.state.lock().expect("state").log.clear();
    }
}
