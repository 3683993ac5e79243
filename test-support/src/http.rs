//! Just enough HTTP/1.1 for the harness: a blocking one-shot client (plain or TLS trusting the
//! test CA), request/response head parsing with `httparse`, and a threaded loopback server whose
//! accept loop stops on Drop. Independent of ferry's own HTTP stack on purpose.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::tls;

/// Upper bound on one header block; anything larger is a harness bug or an attack.
const MAX_HEAD: usize = 64 * 1024;

/// A byte stream that is either plain TCP or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    TlsClient(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    TlsServer(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::TlsClient(s) => &s.sock,
            Stream::TlsServer(s) => &s.sock,
        }
    }

    /// Closes both directions of the underlying socket (after flushing TLS, best effort).
    pub fn shutdown(&mut self) {
        match self {
            Stream::Plain(_) => {}
            Stream::TlsClient(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Stream::TlsServer(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::TlsClient(s) => s.read(buf),
            Stream::TlsServer(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::TlsClient(s) => s.write(buf),
            Stream::TlsServer(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::TlsClient(s) => s.flush(),
            Stream::TlsServer(s) => s.flush(),
        }
    }
}

/// Connects to `host:port`; `tls` wraps the stream in TLS trusting only the test CA.
pub fn connect(host: &str, port: u16, tls: bool) -> io::Result<Stream> {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("127.0.0.1:{port}").parse())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    tcp.set_nodelay(true)?;
    if !tls {
        return Ok(Stream::Plain(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(tls::client_config(), name)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Stream::TlsClient(Box::new(rustls::StreamOwned::new(
        conn, tcp,
    ))))
}

/// A complete response read by [`request`].
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response (status {}) is not JSON: {e}: {}",
                self.status,
                self.text()
            )
        })
    }
}

/// First header of that name (case-insensitive) in a header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One request on a fresh connection (`Connection: close`); follows no redirects.
/// `url` is `http://` or `https://` (TLS trusts only the test CA).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let parsed = url::Url::parse(url)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {e}")))?;
    let tls = match parsed.scheme() {
        "http" => false,
        "https" => true,
        s => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("scheme {s}"),
            ));
        }
    };
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut stream = connect(&host, port, tls)?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let raw = read_head(&mut reader)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let (status, headers) = parse_response_head(&raw)?;
    let mut body = Vec::new();
    if method != "HEAD" && status != 204 && status != 304 {
        if header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            read_chunked(&mut reader, &mut body)?;
        } else if let Some(n) = header(&headers, "content-length") {
            let n: u64 = n.trim().parse().map_err(io::Error::other)?;
            reader.by_ref().take(n).read_to_end(&mut body)?;
            if body.len() as u64 != n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body cut at {} of {n} bytes", body.len()),
                ));
            }
        } else {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `GET url` with no extra headers.
pub fn get(url: &str) -> io::Result<Response> {
    request("GET", url, &[], &[])
}

/// Reads one header block (up to and including the blank line). `None` on EOF before any byte.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside HTTP head",
            ));
        }
        let line = &raw[before..];
        if (line == b"\r\n" || line == b"\n") && before > 0 {
            return Ok(Some(raw));
        }
        if line == b"\r\n" || line == b"\n" {
            // Tolerate stray CRLF between messages.
            raw.clear();
        }
        if raw.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP head too large",
            ));
        }
    }
}

/// Parses a response head into status and headers.
pub fn parse_response_head(raw: &[u8]) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut hs = [httparse::EMPTY_HEADER; 96];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "bad response head {other:?}: {}",
                    String::from_utf8_lossy(raw)
                ),
            ));
        }
    }
    let status = resp.code.unwrap_or(0);
    Ok((status, owned_headers(resp.headers)))
}

fn owned_headers(hs: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Decodes a chunked body into `out` (trailers are read and dropped).
pub fn read_chunked(reader: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in chunk size",
            ));
        }
        let size = line.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size, 16).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("chunk size {line:?}: {e}"),
            )
        })?;
        if size == 0 {
            // Trailers until blank line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t)? == 0 || t == "\r\n" || t == "\n" {
                    return Ok(());
                }
            }
        }
        let start = out.len();
        reader.by_ref().take(size).read_to_end(out)?;
        if (out.len() - start) as u64 != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside chunk",
            ));
        }
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
    }
}

/// A request received by a harness server.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/token?service=…`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    /// Percent-decoded query pairs, in order (repeated keys kept).
    pub fn query(&self) -> Vec<(String, String)> {
        match self.target.split_once('?') {
            Some((_, q)) => url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Header list in arrival order.
pub type Headers = Vec<(String, String)>;

/// Parses a request head; returns method, target and headers.
pub fn parse_request_head(raw: &[u8]) -> io::Result<(String, String, Headers)> {
    let mut hs = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "bad request head {other:?}: {}",
                    String::from_utf8_lossy(raw)
                ),
            ));
        }
    }
    Ok((
        req.method.unwrap_or("").to_string(),
        req.path.unwrap_or("").to_string(),
        owned_headers(req.headers),
    ))
}

/// Reads one full request (body by Content-Length or chunked). `None` on clean EOF.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let Some(raw) = read_head(reader)? else {
        return Ok(None);
    };
    let (method, target, headers) = parse_request_head(&raw)?;
    let mut body = Vec::new();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(reader, &mut body)?;
    } else if let Some(n) = header(&headers, "content-length") {
        let n: u64 = n.trim().parse().map_err(io::Error::other)?;
        reader.by_ref().take(n).read_to_end(&mut body)?;
    }
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

/// The usual reason phrase of a status code (enough for the codes the harness sends).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A response a harness server sends.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(value).expect("serialize JSON"))
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
    /// Writes status line, headers (plus Content-Length) and body.
    pub fn write_to(&self, w: &mut impl Write, head_only: bool) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        w.write_all(head.as_bytes())?;
        if !head_only {
            w.write_all(&self.body)?;
        }
        w.flush()
    }
}

/// Binds `127.0.0.1:0` and returns the listener (the port is the OS's choice, so free).
pub fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// Asks the OS for a free loopback port (bind then release). Racy in principle; callers that
/// hand the port to another process retry on "address already in use".
pub fn free_port() -> u16 {
    bind_loopback().local_addr().expect("local_addr").port()
}

/// A loopback accept loop on its own thread, one thread per connection; stops on Drop.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `handler` on `listener`; `tls` makes it HTTPS with the test server certificate.
    /// Connections are keep-alive; the handler sees one full request at a time.
    pub fn spawn<F>(listener: TcpListener, tls: bool, handler: F) -> Server
    where
        F: Fn(&Request) -> Reply + Send + Sync + 'static,
    {
        let addr = listener.local_addr().expect("local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("it-server-{}", addr.port()))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = conn else { continue };
                    let handler = handler.clone();
                    let stop3 = stop2.clone();
                    let _ = std::thread::Builder::new()
                        .name("it-server-conn".into())
                        .spawn(move || serve_conn(tcp, tls, &*handler, &stop3));
                }
            })
            .expect("spawn server thread");
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn serve_conn<F: Fn(&Request) -> Reply>(tcp: TcpStream, tls: bool, handler: &F, stop: &AtomicBool) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_nodelay(true);
    let stream = if tls {
        match rustls::ServerConnection::new(tls::server_config()) {
            Ok(conn) => Stream::TlsServer(Box::new(rustls::StreamOwned::new(conn, tcp))),
            Err(_) => return,
        }
    } else {
        Stream::Plain(tcp)
    };
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::SeqCst) {
        let req = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            _ => break,
        };
        let reply = handler(&req);
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = if close {
            reply.header("Connection", "close")
        } else {
            reply
        };
        if reply
            .write_to(reader.get_mut(), req.method == "HEAD")
            .is_err()
            || close
        {
            break;
        }
    }
    reader.get_mut().shutdown();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
