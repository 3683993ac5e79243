//! A test-only registry wrapper for protocol lies a real registry will not produce: it serves
//! fixture images over just enough of the distribution API (`GET /v2/`, HEAD/GET manifests,
//! GET blobs; plain HTTP, anonymous, no Range) and tells exactly one [`Lie`] about one
//! target digest. Request heads are parsed with `httparse` (via [`super::http`]); responses
//! are written by hand so headers and bodies can disagree. It counts the body bytes it
//! managed to send about the target, so a test can check a client stopped reading in time.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::fixtures::FixtureImage;
use super::http;
use super::sha256_digest;

/// A body longer than this is never sent, even about an endless one (a client that never
/// stops reading then fails the test instead of hanging it).
const SEND_CAP: u64 = 256 << 20;

/// What the server lies about (always about the target digest only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// HEAD/GET by tag announces a `Docker-Content-Digest` that is not the manifest's.
    TagDigestHeader,
    /// GET by digest: the true bytes, but another `Docker-Content-Digest`.
    ManifestDigestHeader,
    /// GET by digest: other bytes (one byte changed), the header claiming the digest asked for.
    ManifestBytes,
    /// GET of the manifest: 9 MiB, with an honest `Content-Length`.
    HugeManifest,
    /// GET of the manifest: a chunked body that never ends.
    EndlessManifest,
    /// Blob: same length, one byte changed.
    BlobBytes,
    /// Blob: the true bytes plus 4 KiB more, `Content-Length` honest about it.
    LongerBlob,
    /// Blob: `Content-Length` is the true size, but the body is one byte longer (a byte
    /// inserted in front), which also poisons the keep-alive connection.
    LyingContentLength,
    /// Blob: a chunked body that never ends.
    EndlessBlob,
    /// HEAD/GET of the manifest by tag or digest: no `Docker-Content-Digest` (older
    /// registries; the digest is then that of the bytes).
    NoDigestHeader,
    /// GET of the manifest by digest: 404 with a chunked error body that never ends.
    EndlessErrorBody,
    /// Every `/v2/` request without `Authorization` gets a Bearer challenge whose realm (this
    /// server's `/token`) answers 200 with a body that never ends. The target is not used.
    EndlessTokenAnswer,
    /// `GET /v2/<name>/tags/list`: a chunked body that never ends (every other route honest).
    EndlessTagList,
    /// No lie: serves the images and the extra manifests as they are.
    Honest,
}

/// A manifest served besides the fixture images (synthesized by a test), tagged or not.
#[derive(Debug, Clone)]
pub struct Extra {
    /// `(repository, tag)` to tag it with, if any.
    pub tag: Option<(String, String)>,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Content {
    /// (repository, tag) → manifest digest.
    tags: BTreeMap<(String, String), String>,
    /// digest → (media type, bytes).
    manifests: BTreeMap<String, (String, Vec<u8>)>,
    /// digest → bytes.
    blobs: BTreeMap<String, Vec<u8>>,
    /// (repository, subject digest) → the body of `GET /v2/<repo>/referrers/<subject>`; the
    /// route answers 404 (no referrers API) for a repository with none.
    referrers: BTreeMap<(String, String), Vec<u8>>,
}

struct State {
    content: Content,
    lie: Lie,
    target: String,
    sent: AtomicU64,
    log: Mutex<Vec<String>>,
}

/// A running lying registry; stops on Drop.
pub struct LyingRegistry {
    port: u16,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LyingRegistry {
    /// Serves `images` under their own repositories, lying `lie` about `target` (a manifest
    /// digest for the manifest lies, a blob digest for the blob lies).
    pub fn start(images: &[FixtureImage], lie: Lie, target: &str) -> LyingRegistry {
        Self::start_with(images, &[], lie, target)
    }

    /// Like [`LyingRegistry::start`], also serving `extra` manifests.
    pub fn start_with(
        images: &[FixtureImage],
        extra: &[Extra],
        lie: Lie,
        target: &str,
    ) -> LyingRegistry {
        Self::start_with_referrers(images, extra, &[], lie, target)
    }

    /// Like [`LyingRegistry::start_with`], also answering the OCI 1.1 referrers API: each
    /// `(repository, subject, body)` of `referrers` is what `GET
    /// /v2/<repository>/referrers/<subject>` answers (200, an OCI index, whatever the body
    /// says), another subject of such a repository an empty index; a repository without any
    /// answers 404 there, as a registry without the API does.
    pub fn start_with_referrers(
        images: &[FixtureImage],
        extra: &[Extra],
        referrers: &[(String, String, Vec<u8>)],
        lie: Lie,
        target: &str,
    ) -> LyingRegistry {
        let mut content = Content::default();
        for (repo, subject, body) in referrers {
            content
                .referrers
                .insert((repo.clone(), subject.clone()), body.clone());
        }
        for e in extra {
            let digest = sha256_digest(&e.bytes);
            if let Some(t) = &e.tag {
                content.tags.insert(t.clone(), digest.clone());
            }
            content
                .manifests
                .insert(digest, (e.media_type.clone(), e.bytes.clone()));
        }
        for img in images {
            content.tags.insert(
                (img.repository.clone(), img.tag.clone()),
                img.digest.clone(),
            );
            for m in img.all_manifests() {
                content.manifests.insert(m.digest, (m.media_type, m.bytes));
            }
            for b in &img.blobs {
                content.blobs.insert(b.digest.clone(), b.bytes.clone());
            }
        }
        assert!(
            matches!(
                lie,
                Lie::Honest | Lie::EndlessTokenAnswer | Lie::EndlessTagList
            ) || content.manifests.contains_key(target)
                || content.blobs.contains_key(target),
            "the lie's target {target} is not served"
        );
        let state = Arc::new(State {
            content,
            lie,
            target: target.to_string(),
            sent: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let listener = http::bind_loopback();
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stop2) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("lying-registry-{port}"))
            .spawn(move || accept(listener, st, stop2))
            .expect("spawn lying registry");
        LyingRegistry {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// Body bytes sent so far in answers about the target.
    pub fn sent(&self) -> u64 {
        self.state.sent.load(Ordering::SeqCst)
    }
    /// `METHOD PATH` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for LyingRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept(listener: TcpListener, state: Arc<State>, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(tcp) = conn else { continue };
        let (state, stop) = (state.clone(), stop.clone());
        let _ = std::thread::Builder::new()
            .name("lying-registry-conn".into())
            .spawn(move || serve(tcp, &state, &stop));
    }
}

/// What to send: status, headers, and a body (or an endless one).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    /// Counted in [`State::sent`].
    about_target: bool,
}

enum Body {
    Bytes(Vec<u8>),
    Endless,
}

impl Answer {
    fn new(status: u16, body: Vec<u8>) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Length".to_string(), body.len().to_string())],
            body: Body::Bytes(body),
            about_target: false,
        }
    }
    fn header(mut self, k: &str, v: &str) -> Answer {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    fn content_length(mut self, n: usize) -> Answer {
        self.headers.retain(|(k, _)| k != "Content-Length");
        self.header("Content-Length", &n.to_string())
    }
    fn endless(mut self) -> Answer {
        self.headers.retain(|(k, _)| k != "Content-Length");
        self.body = Body::Endless;
        self.header("Transfer-Encoding", "chunked")
    }
}

/// Shrinks the kernel send buffer of `tcp` (and so stops its autotuning), so that the bytes
/// this server manages to write are close to the bytes the client took. `std` has no setter
/// for `SO_SNDBUF`, and the harness has no `libc`/`socket2`: a direct call it is.
#[cfg(target_os = "linux")]
fn small_send_buffer(tcp: &TcpStream) {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn setsockopt(
            fd: i32,
            level: i32,
            name: i32,
            value: *const std::ffi::c_void,
            len: u32,
        ) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_SNDBUF: i32 = 7;
    let size: i32 = 16 * 1024;
    // SAFETY: `tcp` owns a valid socket for the whole call; the value pointer and length
    // describe a live i32.
    let rc = unsafe {
        setsockopt(
            tcp.as_raw_fd(),
            SOL_SOCKET,
            SO_SNDBUF,
            (&raw const size).cast(),
            4,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_SNDBUF)");
}

#[cfg(not(target_os = "linux"))]
fn small_send_buffer(_tcp: &TcpStream) {}

fn serve(tcp: TcpStream, state: &State, stop: &AtomicBool) {
    small_send_buffer(&tcp);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_nodelay(true);
    let Ok(write_half) = tcp.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(tcp);
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(req)) = http::read_request(&mut reader) else {
            break;
        };
        state
            .log
            .lock()
            .unwrap()
            .push(format!("{} {}", req.method, req.path()));
        let answer = if state.lie == Lie::EndlessTokenAnswer {
            token_lie(&req).unwrap_or_else(|| route(state, &req.method, req.path()))
        } else {
            route(state, &req.method, req.path())
        };
        let head_only = req.method == "HEAD";
        let keep = write_answer(&mut writer, &answer, head_only, state);
        if !keep {
            break;
        }
    }
    let _ = writer.shutdown(std::net::Shutdown::Both);
}

/// Writes an answer; `false` when the connection must not be reused.
fn write_answer(w: &mut TcpStream, a: &Answer, head_only: bool, state: &State) -> bool {
    let mut head = format!("HTTP/1.1 {} {}\r\n", a.status, http::reason(a.status));
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if w.write_all(head.as_bytes()).is_err() {
        return false;
    }
    if head_only {
        return w.flush().is_ok();
    }
    let count = |n: usize| {
        if a.about_target {
            state.sent.fetch_add(n as u64, Ordering::SeqCst);
        }
    };
    match &a.body {
        Body::Bytes(b) => {
            if w.write_all(b).is_err() {
                return false;
            }
            count(b.len());
            w.flush().is_ok()
        }
        Body::Endless => {
            let chunk = vec![b'x'; 16 * 1024];
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            let started = Instant::now();
            let mut total = 0u64;
            while total < SEND_CAP && started.elapsed() < Duration::from_secs(60) {
                if w.write_all(&framed).is_err() {
                    break;
                }
                total += chunk.len() as u64;
                count(chunk.len());
            }
            false
        }
    }
}

/// The Bearer challenge and the endless token answer of [`Lie::EndlessTokenAnswer`]; `None`
/// for requests that carry a token (there are none: no token is ever completed).
fn token_lie(req: &http::Request) -> Option<Answer> {
    if req.path().starts_with("/token") {
        return Some(Answer {
            about_target: true,
            ..Answer::new(200, Vec::new())
                .endless()
                .header("Content-Type", "application/json")
        });
    }
    if req.header("authorization").is_some() {
        return None;
    }
    let host = req.header("host").unwrap_or("127.0.0.1");
    Some(
        Answer::new(401, br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec())
            .header("Content-Type", "application/json")
            .header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{host}/token",service="lying""#),
            ),
    )
}

fn not_found(what: &str) -> Answer {
    let body = format!(r#"{{"errors":[{{"code":"NOT_FOUND","message":"{what} unknown"}}]}}"#);
    Answer::new(404, body.into_bytes()).header("Content-Type", "application/json")
}

/// Another digest than any served one (for digest headers that lie).
fn wrong_digest() -> String {
    sha256_digest(b"the lying registry's favourite digest")
}

fn route(state: &State, method: &str, path: &str) -> Answer {
    if path == "/v2/" || path == "/v2" {
        return Answer::new(200, b"{}".to_vec())
            .header("Content-Type", "application/json")
            .header("Docker-Distribution-API-Version", "registry/2.0");
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return not_found("path");
    };
    if method != "GET" && method != "HEAD" {
        return Answer::new(405, Vec::new());
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        return manifest(state, repo, reference);
    }
    if let Some((repo, subject)) = rest.rsplit_once("/referrers/") {
        let subject = subject.split('?').next().unwrap_or(subject);
        return match state
            .content
            .referrers
            .get(&(repo.to_string(), subject.to_string()))
        {
            Some(body) => Answer::new(200, body.clone())
                .header("Content-Type", "application/vnd.oci.image.index.v1+json"),
            // A registry with the API lists no referrers of another subject (200, empty).
            None if state.content.referrers.keys().any(|(r, _)| r == repo) => Answer::new(
                200,
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
                    .to_vec(),
            )
            .header("Content-Type", "application/vnd.oci.image.index.v1+json"),
            None => not_found("path"),
        };
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        return blob(state, digest);
    }
    if rest
        .split('?')
        .next()
        .is_some_and(|p| p.ends_with("/tags/list"))
        && state.lie == Lie::EndlessTagList
    {
        return Answer::new(200, Vec::new())
            .header("Content-Type", "application/json")
            .endless();
    }
    not_found("path")
}

fn manifest(state: &State, repo: &str, reference: &str) -> Answer {
    let c = &state.content;
    let by_tag = !reference.starts_with("sha256:");
    let digest = if by_tag {
        match c.tags.get(&(repo.to_string(), reference.to_string())) {
            Some(d) => d.clone(),
            None => return not_found("manifest"),
        }
    } else if reference == wrong_digest() && state.lie == Lie::TagDigestHeader {
        // The digest the tag lied about: answered with the true bytes.
        state.target.clone()
    } else {
        reference.to_string()
    };
    let Some((media_type, bytes)) = c.manifests.get(&digest) else {
        return not_found("manifest");
    };
    let target = digest == state.target;
    let mut header_digest = digest.clone();
    let mut body = bytes.clone();
    let mut answer = None;
    if target {
        match state.lie {
            Lie::TagDigestHeader => header_digest = wrong_digest(),
            Lie::ManifestDigestHeader if !by_tag => header_digest = wrong_digest(),
            Lie::ManifestBytes if !by_tag => {
                // A space is valid JSON whitespace: the body still parses, the digest does not.
                body.insert(1, b' ');
            }
            Lie::HugeManifest if !by_tag => {
                body = huge_manifest(bytes);
            }
            Lie::EndlessManifest if !by_tag => {
                answer = Some(Answer::new(200, Vec::new()).endless());
            }
            Lie::EndlessErrorBody if !by_tag => {
                return Answer {
                    about_target: true,
                    ..Answer::new(404, Vec::new())
                        .endless()
                        .header("Content-Type", "application/json")
                };
            }
            _ => {}
        }
    }
    let answer = answer
        .unwrap_or_else(|| Answer::new(200, body))
        .header("Content-Type", media_type);
    let answer = if target && state.lie == Lie::NoDigestHeader {
        answer
    } else {
        answer.header("Docker-Content-Digest", &header_digest)
    };
    Answer {
        about_target: target,
        ..answer
    }
}

/// `bytes` (a JSON object) with a 9 MiB annotation added in front.
fn huge_manifest(bytes: &[u8]) -> Vec<u8> {
    let pad = "a".repeat(9 << 20);
    let mut out = format!(r#"{{"annotations":{{"padding":"{pad}"}},"#).into_bytes();
    out.extend_from_slice(&bytes[1..]);
    out
}

fn blob(state: &State, digest: &str) -> Answer {
    let Some(bytes) = state.content.blobs.get(digest) else {
        return not_found("blob");
    };
    let target = digest == state.target;
    let mut body = bytes.clone();
    let mut answer = None;
    if target {
        match state.lie {
            Lie::BlobBytes => {
                let mid = body.len() / 2;
                body[mid] ^= 0x20;
            }
            Lie::LongerBlob => body.extend(std::iter::repeat_n(b'z', 4096)),
            Lie::LyingContentLength => {
                body.insert(0, b'z');
                answer = Some(Answer::new(200, body.clone()).content_length(bytes.len()));
            }
            Lie::EndlessBlob => answer = Some(Answer::new(200, Vec::new()).endless()),
            _ => {}
        }
    }
    let answer = answer.unwrap_or_else(|| Answer::new(200, body));
    Answer {
        about_target: target,
        ..answer
            .header("Content-Type", "application/octet-stream")
            .header("Docker-Content-Digest", digest)
    }
}
