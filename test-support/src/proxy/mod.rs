//! A loopback HTTP fault proxy in front of a plain-HTTP registry, with scripted faults.
//!
//! Rules match requests by method, endpoint kind and path substring, and fire for the first N
//! matching requests: answer 429 with `Retry-After`, answer any status, cut the response body
//! after M bytes, stall mid-body, delay, or drop the connection. In redirect mode, blob GETs that
//! the registry would serve are answered with a 307 to a second listener (the "CDN") that
//! streams the bytes from the registry and records whether an `Authorization` header arrived
//! (and, like S3, refuses such requests unless told otherwise). Every request is logged and
//! counted by method and kind. No randomness: behaviour depends only on the request order.
//!
//! Connections are keep-alive on both sides; the `Host` header is forwarded untouched, so the
//! registry's upload `Location`s point back at the proxy.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

mod forward;

use forward::{Ctx, spawn_accept};

use super::http;
use super::registry::TestRegistry;

/// Which distribution endpoint a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `/v2/`
    Base,
    /// `/v2/<name>/manifests/<reference>`
    Manifest,
    /// `/v2/<name>/blobs/<digest>`
    Blob,
    /// `/v2/<name>/blobs/uploads/…`
    Upload,
    /// `/v2/<name>/tags/list`
    Tags,
    /// `/v2/_catalog`
    Catalog,
    Other,
}

impl Kind {
    /// Classifies a request path (query ignored).
    pub fn of(path: &str) -> Kind {
        let path = path.split('?').next().unwrap_or("");
        if path == "/v2/" || path == "/v2" {
            Kind::Base
        } else if path == "/v2/_catalog" {
            Kind::Catalog
        } else if !path.starts_with("/v2/") {
            Kind::Other
        } else if path.contains("/blobs/uploads") {
            Kind::Upload
        } else if path.contains("/manifests/") {
            Kind::Manifest
        } else if path.contains("/blobs/") {
            Kind::Blob
        } else if path.ends_with("/tags/list") {
            Kind::Tags
        } else {
            Kind::Other
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Base => "base",
            Kind::Manifest => "manifests",
            Kind::Blob => "blobs",
            Kind::Upload => "uploads",
            Kind::Tags => "tags",
            Kind::Catalog => "catalog",
            Kind::Other => "other",
        })
    }
}

/// Which requests a rule applies to; every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Match {
    method: Option<String>,
    kind: Option<Kind>,
    path_contains: Option<String>,
}

impl Match {
    /// Every request.
    pub fn any() -> Match {
        Match::default()
    }
    /// Requests of this kind, any method.
    pub fn kind(kind: Kind) -> Match {
        Match {
            kind: Some(kind),
            ..Match::default()
        }
    }
    /// `GET` of this kind.
    pub fn get(kind: Kind) -> Match {
        Match::kind(kind).method("GET")
    }
    /// `HEAD` of this kind.
    pub fn head(kind: Kind) -> Match {
        Match::kind(kind).method("HEAD")
    }
    pub fn method(mut self, method: &str) -> Match {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
    /// The request target (path and query) contains this string, e.g. a repository or digest.
    pub fn path_contains(mut self, s: &str) -> Match {
        self.path_contains = Some(s.to_string());
        self
    }
    fn matches(&self, method: &str, target: &str, kind: Kind) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.kind.is_none_or(|k| k == kind)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|s| target.contains(s))
    }
}

/// What a rule does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer 429 with `Retry-After: secs` and a distribution error body; not forwarded.
    TooManyRequests { retry_after: u64 },
    /// Answer this status with a distribution error body; not forwarded.
    Status(u16),
    /// Forward, then cut the connection after this many bytes of the response body.
    ResetAfter(usize),
    /// Forward; after this many body bytes, pause for `pause`, then go on.
    StallAfter { bytes: usize, pause: Duration },
    /// Wait this long, then forward.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Forward, then answer with this response header set to this value (added when the
    /// registry sent none), or removed when the value is `None`: a registry that lies about
    /// `Docker-Content-Digest`, or omits it.
    SetHeader(String, Option<String>),
}

/// Identifies a rule added with [`FaultProxy::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(usize);

struct Rule {
    matcher: Match,
    fault: Fault,
    remaining: usize,
    hits: usize,
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct ProxyRecord {
    pub method: String,
    pub target: String,
    pub kind: Kind,
    /// Status sent to the client (`None` if the connection was dropped before a head).
    pub status: Option<u16>,
    /// The fault applied, if any (`"redirect"` for a CDN redirect).
    pub fault: Option<String>,
    pub had_authorization: bool,
    /// The `Range` header of the request, if any.
    pub range: Option<String>,
    /// When the request head arrived (to measure waits between attempts).
    pub at: std::time::Instant,
}

/// One request the CDN listener received.
#[derive(Debug, Clone)]
pub struct CdnRecord {
    pub target: String,
    pub had_authorization: bool,
    pub status: u16,
}

struct Ticket {
    target: String,
    authorization: Option<String>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<ProxyRecord>,
    redirect_blobs: bool,
    cdn_reject_authorization: bool,
    cdn_log: Vec<CdnRecord>,
    tickets: HashMap<String, Ticket>,
    next_ticket: u64,
}

struct Listener {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

/// A running fault proxy (and its CDN listener); both stop on Drop.
pub struct FaultProxy {
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    proxy: Listener,
    cdn: Listener,
}

impl FaultProxy {
    /// A proxy in front of a plain-HTTP test registry (panics for TLS modes).
    pub fn start(registry: &TestRegistry) -> FaultProxy {
        assert!(
            !registry.auth().is_tls(),
            "FaultProxy forwards plain HTTP only; registry {} is {:?}",
            registry.url(),
            registry.auth()
        );
        Self::start_to(
            registry
                .host()
                .parse()
                .expect("registry host is a socket address"),
        )
    }

    /// A proxy in front of any plain-HTTP server.
    pub fn start_to(upstream: SocketAddr) -> FaultProxy {
        let state = Arc::new(Mutex::new(State {
            cdn_reject_authorization: true,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let cdn_listener = http::bind_loopback();
        let cdn_addr = cdn_listener.local_addr().expect("local_addr");
        let proxy_listener = http::bind_loopback();
        let proxy_addr = proxy_listener.local_addr().expect("local_addr");
        let ctx = Arc::new(Ctx {
            upstream,
            cdn_addr,
            state: state.clone(),
            stop: stop.clone(),
        });
        let c = ctx.clone();
        let proxy = spawn_accept(proxy_listener, stop.clone(), move |s| c.serve_client(s));
        let c = ctx.clone();
        let cdn = spawn_accept(cdn_listener, stop.clone(), move |s| c.serve_cdn(s));
        FaultProxy {
            upstream,
            state,
            stop,
            proxy: Listener {
                addr: proxy_addr,
                thread: Some(proxy),
            },
            cdn: Listener {
                addr: cdn_addr,
                thread: Some(cdn),
            },
        }
    }

    pub fn port(&self) -> u16 {
        self.proxy.addr.port()
    }
    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }
    /// `http://127.0.0.1:PORT` of the CDN listener.
    pub fn cdn_url(&self) -> String {
        format!("http://{}", self.cdn.addr)
    }
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Applies `fault` to the next `times` requests matching `matcher` (`usize::MAX`: always).
    /// Rules are tried in the order added; the first live matching rule fires.
    pub fn inject(&self, matcher: Match, fault: Fault, times: usize) -> RuleId {
        let mut st = self.state.lock().unwrap();
        st.rules.push(Rule {
            matcher,
            fault,
            remaining: times,
            hits: 0,
        });
        RuleId(st.rules.len() - 1)
    }
    /// How many requests a rule has fired on.
    pub fn hits(&self, rule: RuleId) -> usize {
        self.state.lock().unwrap().rules[rule.0].hits
    }
    /// Disarms every rule (hit counts stay readable).
    pub fn clear_faults(&self) {
        for r in &mut self.state.lock().unwrap().rules {
            r.remaining = 0;
        }
    }
    /// Answer blob GETs the registry would serve with a 307 to the CDN listener.
    pub fn redirect_blobs(&self, on: bool) {
        self.state.lock().unwrap().redirect_blobs = on;
    }
    /// Whether the CDN answers 400 to requests carrying `Authorization` (default: true, as S3).
    pub fn cdn_reject_authorization(&self, reject: bool) {
        self.state.lock().unwrap().cdn_reject_authorization = reject;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxyRecord> {
        self.state.lock().unwrap().log.clone()
    }
    pub fn cdn_requests(&self) -> Vec<CdnRecord> {
        self.state.lock().unwrap().cdn_log.clone()
    }
    /// Requests with this method and kind (`count("HEAD", Kind::Manifest)`).
    pub fn count(&self, method: &str, kind: Kind) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|r| r.method == method && r.kind == kind)
            .count()
    }
    /// Counts by (method, kind).
    pub fn counts(&self) -> BTreeMap<(String, Kind), usize> {
        let mut m = BTreeMap::new();
        for r in &self.state.lock().unwrap().log {
            *m.entry((r.method.clone(), r.kind)).or_insert(0) += 1;
        }
        m
    }
    /// Counts as text, e.g. `GET blobs: 3, HEAD manifests: 5` (sorted; for messages).
    pub fn counts_summary(&self) -> String {
        self.counts()
            .iter()
            .map(|((m, k), n)| format!("{m} {k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// Forgets logged requests (proxy and CDN); rules stay.
    pub fn clear_log(&self) {
        let mut st = self.state.lock().unwrap();
        st.log.clear();
        st.cdn_log.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for l in [&mut self.proxy, &mut self.cdn] {
            let _ = TcpStream::connect_timeout(&l.addr, Duration::from_secs(1));
            if let Some(t) = l.thread.take() {
                let _ = t.join();
            }
        }
    }
}
