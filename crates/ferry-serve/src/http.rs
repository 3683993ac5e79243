//! The read side of the OCI distribution API, exactly: `GET /v2/`; HEAD/GET of manifests by
//! tag or digest (stored media type, `Docker-Content-Digest`, `Content-Length`, `ETag`);
//! HEAD/GET of blobs with one `Range` (206, 416); `/v2/_catalog` and `/v2/NAME/tags/list` with
//! `n`/`last` pagination and `Link`; errors in the spec's JSON, coded by [`ErrorCode`] (`NAME_UNKNOWN`,
//! `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `UNAUTHORIZED` with `WWW-Authenticate`, `UNSUPPORTED`
//! for every write). Every request gets one access-log line when its body is done, and is
//! counted in [`crate::metrics`] under its route's label (never its path). Outside `/v2/`,
//! `GET /` is the status page ([`crate::status`]) and `GET /metrics` the metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, RANGE};
use hyper::{Method, Request, Response, StatusCode};

use super::Served;
use super::auth::Verdict;
use super::conns::{Refusal, Running};
use ferry_oci::ErrorCode;
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;
use ferry_store::Source;
use ferry_store::stream::verified;

/// A response body: bytes, or an error that cuts the connection.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Chunks of a served blob, and how many are read ahead: a few hundred KiB per transfer,
/// so memory stays flat however many clients pull.
const CHUNK: usize = 64 * 1024;
const AHEAD: usize = 1;

fn full(bytes: impl Into<Bytes>) -> Body {
    BodyExt::boxed_unsync(Full::new(bytes.into()).map_err(|never| match never {}))
}

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn header(r: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// What a path asks for.
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Referrers(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Upload,
    Status,
    Metrics,
    Unknown,
}

impl Route<'_> {
    /// The route's label in the metrics: one of [`crate::metrics::ROUTES`].
    fn label(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags(_) => "tags",
            Route::Manifest(..) => "manifest",
            Route::Referrers(..) => "referrers",
            Route::Blob(..) => "blob",
            Route::Upload => "upload",
            Route::Status => "status",
            Route::Metrics => "metrics",
            Route::Unknown => "other",
        }
    }
}

fn route(path: &str) -> Route<'_> {
    match path {
        "/" | "/index.html" => return Route::Status,
        "/metrics" => return Route::Metrics,
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v2") else {
        return Route::Unknown;
    };
    if rest.is_empty() || rest == "/" {
        return Route::Base;
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Route::Unknown;
    };
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::Tags(name);
    }
    if rest.contains("/blobs/uploads") {
        return Route::Upload;
    }
    if let Some((name, digest)) = rest.rsplit_once("/referrers/")
        && !digest.contains('/')
    {
        return Route::Referrers(name, digest);
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Route::Manifest(name, reference);
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Route::Blob(name, digest);
    }
    Route::Unknown
}

/// `n` and `last` of a paginated list.
fn page(query: Option<&str>) -> (Option<usize>, Option<String>) {
    let mut n = None;
    let mut last = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "n" => n = v.parse().ok(),
            "last" => last = Some(v.into_owned()),
            _ => {}
        }
    }
    (n, last)
}

/// One page of `items` (sorted) after `last`, at most `n`, with the `Link` to the next.
fn paginate(items: Vec<String>, query: Option<&str>, path: &str) -> (Vec<String>, Option<String>) {
    let (n, last) = page(query);
    let after: Vec<String> = items
        .into_iter()
        .filter(|i| last.as_ref().is_none_or(|l| i > l))
        .collect();
    match n {
        Some(n) if after.len() > n => {
            let shown: Vec<String> = after.into_iter().take(n).collect();
            let next = shown.last().map(|l| {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("last", l)
                    .append_pair("n", &n.to_string())
                    .finish();
                format!("<{path}?{q}>; rel=\"next\"")
            });
            (shown, next)
        }
        _ => (after, None),
    }
}

fn json_list(
    key: &str,
    items: Vec<String>,
    name: Option<&str>,
    link: Option<String>,
) -> Response<Body> {
    let body = match name {
        Some(n) => serde_json::json!({"name": n, key: items}),
        None => serde_json::json!({ key: items }),
    };
    let mut r = Response::new(full(body.to_string()));
    header(&mut r, "content-type", "application/json");
    if let Some(l) = link {
        header(&mut r, "link", &l);
    }
    r
}

/// A parsed single `Range: bytes=…` against a blob of `size` bytes: `Ok(None)` for none (or
/// one ferry ignores, such as several ranges: the whole blob is then sent), `Err` when it
/// cannot be satisfied.
fn range(value: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().map_err(|_| ())?, b.parse().map_err(|_| ())?);
            if b < a {
                return Ok(None);
            }
            (a, b.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Logs one line when the response body is done (or dropped): method, path, status, bytes,
/// duration, client.
struct AccessLog {
    method: Method,
    path: String,
    route: &'static str,
    status: u16,
    client: SocketAddr,
    started: Instant,
    bytes: u64,
    style: super::LogStyle,
    metrics: Option<Arc<super::metrics::Metrics>>,
}

impl AccessLog {
    fn count(&mut self, n: usize) {
        self.bytes += n as u64;
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        let took = self.started.elapsed().as_secs_f64();
        if let Some(m) = &self.metrics {
            m.observe(
                super::metrics::method_label(&self.method),
                self.route,
                self.status,
                self.bytes,
                took,
            );
        }
        let ms = took * 1000.0;
        match self.style {
            super::LogStyle::Off => {}
            super::LogStyle::Json => {
                let line = serde_json::json!({
                    "method": self.method.as_str(), "path": self.path, "status": self.status,
                    "bytes": self.bytes, "ms": (ms * 10.0).round() / 10.0,
                    "client": self.client.to_string(),
                });
                eprintln!("{line}");
            }
            super::LogStyle::Text => eprintln!(
                "{} {} {} {} {:.1}ms {}",
                self.method, self.path, self.status, self.bytes, ms, self.client
            ),
        }
    }
}

fn logged(resp: Response<Body>, mut log: AccessLog) -> Response<Body> {
    log.status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let counted = body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            log.count(data.len());
        }
        frame
    });
    Response::from_parts(parts, BodyExt::boxed_unsync(counted))
}

/// Answers one request; `running` holds the connection's slot busy until the response body
/// is done.
pub async fn handle<B>(
    served: Arc<Served>,
    req: Request<B>,
    client: SocketAddr,
    running: Running,
) -> Result<Response<Body>, Infallible> {
    let log = AccessLog {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        route: route(req.uri().path()).label(),
        status: 0,
        client,
        started: Instant::now(),
        bytes: 0,
        style: served.log,
        metrics: served.metrics.clone(),
    };
    let resp = answer(&served, &req, client).await;
    let (parts, body) = logged(resp, log).into_parts();
    let held = body.map_frame(move |frame| {
        let _ = &running;
        frame
    });
    Ok(Response::from_parts(parts, BodyExt::boxed_unsync(held)))
}

/// 503 with `Retry-After`: no slot for this request (every connection is transferring), or
/// too many logins are being checked. Over HTTP/1 the connection is closed after it.
fn unavailable<B>(req: &Request<B>, why: &str) -> Response<Body> {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, why);
    header(&mut r, "retry-after", "1");
    if req.version() < hyper::Version::HTTP_2 {
        header(&mut r, "connection", "close");
    }
    r
}

/// The answer to a request its connection may not make.
pub fn refused<B>(req: &Request<B>, refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::Busy => unavailable(
            req,
            "every connection of this server is transferring; try again in a second",
        ),
        Refusal::Closed => unavailable(req, "this connection is closing; connect again"),
    }
}

async fn answer<B>(served: &Served, req: &Request<B>, client: SocketAddr) -> Response<Body> {
    let path = req.uri().path();
    let head = req.method() == Method::HEAD;
    if let Some(users) = &served.htpasswd {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match users.allows(auth, client.ip()).await {
            Verdict::Allowed => {}
            Verdict::Overloaded => {
                return unavailable(
                    req,
                    "too many logins are being checked at once; try again in a second",
                );
            }
            Verdict::Refused => {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "authentication required",
                );
                header(&mut r, "www-authenticate", "Basic realm=\"ferry serve\"");
                return r;
            }
        }
    }
    let route = route(path);
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let what = if matches!(route, Route::Unknown) {
            "this path"
        } else {
            "this registry"
        };
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unsupported,
            &format!("{what} is read-only: ferry serve serves bundles and takes no writes"),
        );
        header(&mut r, "allow", "GET, HEAD");
        return r;
    }
    let mut resp = match route {
        Route::Base => {
            let mut r = Response::new(full("{}"));
            header(&mut r, "content-type", "application/json");
            r
        }
        Route::Catalog => {
            let (items, link) = paginate(
                served.catalog.repos.keys().cloned().collect(),
                req.uri().query(),
                "/v2/_catalog",
            );
            json_list("repositories", items, None, link)
        }
        Route::Tags(name) => match served.catalog.repos.get(name) {
            None => error(
                StatusCode::NOT_FOUND,
                ErrorCode::NameUnknown,
                "repository name not known to registry",
            ),
            Some(repo) => {
                let (items, link) = paginate(
                    repo.tags.keys().cloned().collect(),
                    req.uri().query(),
                    &format!("/v2/{name}/tags/list"),
                );
                json_list("tags", items, Some(name), link)
            }
        },
        Route::Manifest(name, reference) => manifest(served, name, reference).await,
        Route::Referrers(name, digest) => referrers(served, name, digest, req.uri().query()).await,
        Route::Blob(name, digest) => {
            blob(served, name, digest, req.headers().get(RANGE), head).await
        }
        Route::Upload => error(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unsupported,
            "ferry serve is read-only",
        ),
        Route::Status => {
            let given = req
                .uri()
                .authority()
                .map(|a| a.as_str())
                .or_else(|| req.headers().get("host").and_then(|v| v.to_str().ok()));
            let host = super::status::host(given, served.setup.listen);
            let mut r = Response::new(full(super::status::page(served, &host)));
            header(&mut r, "content-type", "text/html; charset=utf-8");
            header(&mut r, "cache-control", "no-store");
            header(&mut r, "x-content-type-options", "nosniff");
            // Nothing from anywhere else: no script at all, style and images inline only.
            header(
                &mut r,
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
            );
            r
        }
        Route::Metrics => match &served.metrics {
            Some(m) => {
                let mut r = Response::new(full(m.render()));
                header(&mut r, "content-type", super::metrics::CONTENT_TYPE);
                header(&mut r, "cache-control", "no-store");
                r
            }
            None => error(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "metrics are turned off (--no-metrics)",
            ),
        },
        Route::Unknown => error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "not a distribution API path",
        ),
    };
    header(&mut resp, "docker-distribution-api-version", "registry/2.0");
    if head {
        let (parts, _) = resp.into_parts();
        resp = Response::from_parts(parts, full(Bytes::new()));
    }
    resp
}

async fn manifest(served: &Served, name: &str, reference: &str) -> Response<Body> {
    let Some(repo) = served.catalog.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        );
    };
    let digest = match Digest::parse(reference) {
        Ok(d) if repo.objects.contains(&d) && served.catalog.manifests.contains_key(&d) => d,
        Ok(_) => {
            return error(
                StatusCode::NOT_FOUND,
                ErrorCode::ManifestUnknown,
                "manifest unknown",
            );
        }
        Err(_) => match repo.tags.get(reference) {
            Some(d) => d.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    ErrorCode::ManifestUnknown,
                    "manifest unknown",
                );
            }
        },
    };
    let (media_type, bytes) = match manifest_bytes(served, name, &digest).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut r = Response::new(full(bytes.clone()));
    header(&mut r, "content-type", &media_type);
    header(&mut r, "docker-content-digest", digest.as_str());
    header(&mut r, "etag", &format!("\"{digest}\""));
    header(&mut r, "content-length", &bytes.len().to_string());
    r
}

/// The media type and bytes of a served manifest of `name`: from memory, or, past the memory
/// budget, read and checked against its digest for this request.
async fn manifest_bytes(
    served: &Served,
    name: &str,
    digest: &Digest,
) -> Result<(String, Bytes), Response<Body>> {
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            ErrorCode::ManifestUnknown,
            "manifest unknown",
        )
    };
    let Some(served_manifest) = served.catalog.manifests.get(digest) else {
        return Err(unknown());
    };
    let media_type = served_manifest.media_type.clone();
    let bytes = match &served_manifest.bytes {
        // Read and checked at start.
        Some(b) => b.clone(),
        // Past the memory budget: read and checked against its digest per request.
        None => {
            let Ok(at) = Reference::parse(&format!("ferry.invalid/{name}@{digest}")) else {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NameUnknown,
                    "invalid repository name",
                ));
            };
            match served.catalog.set.manifest(&at, Some(digest)).await {
                Ok(m) => m.bytes,
                Err(e) => {
                    tracing::error!("manifest {digest} of {name} cannot be served: {e}");
                    return Err(unknown());
                }
            }
        }
    };
    Ok((media_type, bytes))
}

/// `GET /v2/<name>/referrers/<digest>` (OCI distribution 1.1): the manifests whose `subject`
/// is `digest`, as the bundle carries them under the referrers tag schema (`sha256-<hex>`),
/// each descriptor as written (with its `artifactType` and annotations), then those it carries
/// by digest alone (found through a registry's referrers API), described from their
/// manifests; `?artifactType=`
/// filters, and says so in `OCI-Filters-Applied`. None known: an empty index.
async fn referrers(
    served: &Served,
    name: &str,
    digest: &str,
    query: Option<&str>,
) -> Response<Body> {
    let Some(repo) = served.catalog.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        );
    };
    let Ok(subject) = Digest::parse(digest) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::DigestInvalid,
            "invalid digest",
        );
    };
    let wanted: Option<String> = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "artifactType")
            .map(|(_, v)| v.into_owned())
    });
    let tag = ferry_oci::cosign::Attachment::Referrers.tag_for(&subject);
    let mut manifests: Vec<serde_json::Value> = Vec::new();
    if let Some(index) = repo.tags.get(&tag) {
        let bytes = match manifest_bytes(served, name, index).await {
            Ok((_, b)) => b,
            Err(r) => return r,
        };
        #[derive(serde::Deserialize)]
        struct Listed {
            #[serde(default)]
            manifests: Vec<serde_json::Value>,
        }
        if let Ok(listed) = serde_json::from_slice::<Listed>(&bytes) {
            manifests = listed.manifests;
        }
    }
    // Referrers the bundle carries by digest alone, described as the API describes them.
    for d in repo.referrers.get(&subject).into_iter().flatten() {
        if manifests
            .iter()
            .any(|m| m.get("digest").and_then(|v| v.as_str()) == Some(d.as_str()))
        {
            continue;
        }
        let (media_type, bytes) = match manifest_bytes(served, name, d).await {
            Ok(m) => m,
            Err(r) => return r,
        };
        manifests.push(ferry_oci::referrers::descriptor_for(&bytes, &media_type, d));
    }
    if let Some(w) = &wanted {
        manifests.retain(|m| m.get("artifactType").and_then(|a| a.as_str()) == Some(w.as_str()));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": ferry_oci::media_types::OCI_INDEX,
        "manifests": manifests,
    });
    let mut r = Response::new(full(body.to_string()));
    header(&mut r, "content-type", ferry_oci::media_types::OCI_INDEX);
    if wanted.is_some() {
        header(&mut r, "oci-filters-applied", "artifactType");
    }
    r
}

async fn blob(
    served: &Served,
    name: &str,
    digest: &str,
    range_header: Option<&HeaderValue>,
    head: bool,
) -> Response<Body> {
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            ErrorCode::BlobUnknown,
            "blob unknown to registry",
        )
    };
    let Some(repo) = served.catalog.repos.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        );
    };
    let Ok(digest) = Digest::parse(digest) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::DigestInvalid,
            "provided digest did not match uploaded content",
        );
    };
    if !repo.objects.contains(&digest) {
        return unknown();
    }
    let Some(bundle) = served.catalog.set.holding(&digest) else {
        return unknown();
    };
    let Some(size) = bundle.reader().blob(&digest).map(|l| l.size) else {
        return unknown();
    };
    if let Some(Err(_)) = served.checks.verdict(&digest) {
        return unknown();
    }
    let span = match range(range_header, size) {
        Ok(span) => span,
        Err(()) => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::BlobUnknown,
                "range not satisfiable",
            );
            header(&mut r, "content-range", &format!("bytes */{size}"));
            return r;
        }
    };
    let mut r = if head {
        let mut r = Response::new(full(Bytes::new()));
        header(&mut r, "content-length", &size.to_string());
        r
    } else {
        match span {
            // Part of a blob: sent only once the whole blob is known to be right.
            Some((start, end)) => {
                if served.checks.ensure(&digest).await.is_err() {
                    return unknown();
                }
                let len = end - start + 1;
                let body = bundle.range_with(&digest, start, len, CHUNK, AHEAD);
                let mut r = Response::new(stream_body(body));
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                header(
                    &mut r,
                    "content-range",
                    &format!("bytes {start}-{end}/{size}"),
                );
                header(&mut r, "content-length", &len.to_string());
                r
            }
            None => {
                let whole = bundle.range_with(&digest, 0, size, CHUNK, AHEAD);
                let body = match served.checks.verdict(&digest) {
                    Some(Ok(())) => whole,
                    // Not checked yet: hashed while it streams, its last chunk held back
                    // until it matches; a mismatch cuts the connection.
                    _ => watch(
                        served.checks.clone(),
                        digest.clone(),
                        verified(
                            whole,
                            digest.clone(),
                            size,
                            &format!("bundle {}", bundle.reader().path().display()),
                        ),
                    ),
                };
                let mut r = Response::new(stream_body(body));
                header(&mut r, "content-length", &size.to_string());
                r
            }
        }
    };
    header(&mut r, "docker-content-digest", digest.as_str());
    header(&mut r, "content-type", "application/octet-stream");
    header(&mut r, "accept-ranges", "bytes");
    header(&mut r, "etag", &format!("\"{digest}\""));
    r
}

/// Records the verdict of a blob hashed while it was served.
fn watch(
    checks: Arc<super::check::Checks>,
    digest: Digest,
    s: ferry_store::ByteStream,
) -> ferry_store::ByteStream {
    let mut s = s;
    Box::pin(async_stream(move |tx| async move {
        while let Some(item) = s.next().await {
            let (item, failed) = match item {
                Ok(b) => (Ok(b), None),
                // The verdict keeps the error; the client, whose connection it cuts, gets
                // its kind and text.
                Err(e) => (Err(std::io::Error::new(e.kind(), e.to_string())), Some(e)),
            };
            if tx.send(item).await.is_err() {
                return;
            }
            if let Some(why) = failed {
                checks.record(&digest, Err(super::check::Withdrawn::Served(Arc::new(why))));
                return;
            }
        }
        checks.record(&digest, Ok(()));
    }))
}

/// A stream fed by an async producer through a small channel.
fn async_stream<F, Fut>(produce: F) -> impl futures_util::Stream<Item = std::io::Result<Bytes>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(produce(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
        .fuse()
}

fn stream_body(s: ferry_store::ByteStream) -> Body {
    BodyExt::boxed_unsync(StreamBody::new(s.map(|r| r.map(Frame::data))))
}

#[cfg(test)]
pub(crate) mod tests;
