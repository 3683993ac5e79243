//! The proxy's moving parts: accept loops, request forwarding with body faults, the CDN.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use super::{CdnRecord, Fault, Kind, ProxyRecord, State, Ticket};
use crate::http::{self, Reply};

pub(super) fn spawn_accept<F>(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    serve: F,
) -> JoinHandle<()>
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    std::thread::Builder::new()
        .name("it-proxy-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
                let _ = tcp.set_nodelay(true);
                let serve = serve.clone();
                let _ = std::thread::Builder::new()
                    .name("it-proxy-conn".into())
                    .spawn(move || serve(tcp));
            }
        })
        .expect("spawn proxy thread")
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilEof,
}

fn request_framing(headers: &[(String, String)]) -> Framing {
    if http::header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else {
        match http::header(headers, "content-length").and_then(|v| v.trim().parse().ok()) {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    }
}

fn response_framing(method: &str, status: u16, headers: &[(String, String)]) -> Framing {
    if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        Framing::None
    } else if http::header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else {
        match http::header(headers, "content-length").and_then(|v| v.trim().parse().ok()) {
            Some(n) => Framing::Length(n),
            None => Framing::UntilEof,
        }
    }
}

/// A writer that applies a body fault: cut after `cut` bytes, or pause once after `stall.0`.
struct Tap<'a, W: Write> {
    inner: &'a mut W,
    written: usize,
    cut: Option<usize>,
    stall: Option<(usize, Duration)>,
}

impl<W: Write> Write for Tap<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut n = buf.len();
        if let Some(cut) = self.cut {
            if self.written >= cut {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "fault: reset",
                ));
            }
            n = n.min(cut - self.written);
        }
        if let Some((at, pause)) = self.stall {
            if self.written >= at {
                self.inner.flush()?;
                std::thread::sleep(pause);
                self.stall = None;
            } else {
                n = n.min(at - self.written);
            }
        }
        let n = self.inner.write(&buf[..n])?;
        self.written += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies one body from `from` to `to` as framed (chunk framing is copied verbatim).
fn relay_body(from: &mut impl BufRead, to: &mut impl Write, framing: Framing) -> io::Result<()> {
    match framing {
        Framing::None => Ok(()),
        Framing::Length(n) => {
            let copied = io::copy(&mut from.take(n), to)?;
            if copied != n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "body ended early",
                ));
            }
            Ok(())
        }
        Framing::UntilEof => io::copy(from, to).map(|_| ()),
        Framing::Chunked => loop {
            let mut line = String::new();
            if from.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF in chunk size",
                ));
            }
            to.write_all(line.as_bytes())?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    if from.read_line(&mut t)? == 0 {
                        return Ok(());
                    }
                    to.write_all(t.as_bytes())?;
                    if t == "\r\n" || t == "\n" {
                        return Ok(());
                    }
                }
            }
            relay_body(from, to, Framing::Length(size + 2))?;
        },
    }
}

fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"errors": [{"code": code, "message": message, "detail": null}]}),
    )
}

struct Upstream {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

pub(super) struct Ctx {
    pub(super) upstream: SocketAddr,
    pub(super) cdn_addr: SocketAddr,
    pub(super) state: Arc<Mutex<State>>,
    pub(super) stop: Arc<AtomicBool>,
}

impl Ctx {
    fn connect_upstream(&self) -> io::Result<Upstream> {
        let s = TcpStream::connect_timeout(&self.upstream, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.set_nodelay(true)?;
        Ok(Upstream {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    fn record(&self, rec: ProxyRecord) -> usize {
        let mut st = self.state.lock().unwrap();
        st.log.push(rec);
        st.log.len() - 1
    }

    fn set_status(&self, idx: usize, status: u16) {
        if let Some(r) = self.state.lock().unwrap().log.get_mut(idx) {
            r.status = Some(status);
        }
    }

    fn take_fault(&self, method: &str, target: &str, kind: Kind) -> Option<Fault> {
        let mut st = self.state.lock().unwrap();
        let rule = st
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.matcher.matches(method, target, kind))?;
        rule.remaining -= 1;
        rule.hits += 1;
        Some(rule.fault.clone())
    }

    pub(super) fn serve_client(&self, client: TcpStream) {
        let _ = self.client_loop(client);
    }

    fn client_loop(&self, client: TcpStream) -> io::Result<()> {
        let mut reader = BufReader::new(client.try_clone()?);
        let mut writer = client;
        let mut upstream: Option<Upstream> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let Some(raw) = http::read_head(&mut reader)? else {
                return Ok(());
            };
            let (method, target, headers) = http::parse_request_head(&raw)?;
            let kind = Kind::of(&target);
            let authorization = http::header(&headers, "authorization").map(str::to_string);
            let fault = self.take_fault(&method, &target, kind);
            let idx = self.record(ProxyRecord {
                method: method.clone(),
                target: target.clone(),
                kind,
                status: None,
                fault: fault.as_ref().map(|f| format!("{f:?}")),
                had_authorization: authorization.is_some(),
                range: http::header(&headers, "range").map(str::to_string),
                at: std::time::Instant::now(),
            });
            let req_framing = request_framing(&headers);
            let client_close = http::header(&headers, "connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let expects_continue = http::header(&headers, "expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));

            // Faults answered locally (the request body is read and dropped).
            let local = match &fault {
                Some(Fault::TooManyRequests { retry_after }) => Some(
                    error_reply(429, "TOOMANYREQUESTS", "fault proxy: too many requests")
                        .header("Retry-After", &retry_after.to_string()),
                ),
                Some(Fault::Status(s)) => Some(error_reply(
                    *s,
                    if *s == 503 { "UNAVAILABLE" } else { "UNKNOWN" },
                    "fault proxy: injected status",
                )),
                Some(Fault::Drop) => {
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
                _ => None,
            };
            if let Some(reply) = local {
                if !expects_continue {
                    relay_body(&mut reader, &mut io::sink(), req_framing)?;
                }
                let reply = if expects_continue || client_close {
                    reply.header("Connection", "close")
                } else {
                    reply
                };
                reply.write_to(&mut writer, method == "HEAD")?;
                self.set_status(idx, reply.status);
                if expects_continue || client_close {
                    return Ok(());
                }
                continue;
            }
            if let Some(Fault::Delay(d)) = &fault {
                std::thread::sleep(*d);
            }

            // Redirect mode: blob GETs the registry would answer 200 go to the CDN.
            if method == "GET" && kind == Kind::Blob && self.state.lock().unwrap().redirect_blobs {
                let auth: Vec<(&str, &str)> = authorization
                    .as_deref()
                    .map(|a| vec![("Authorization", a)])
                    .unwrap_or_default();
                let probe = http::request(
                    "HEAD",
                    &format!("http://{}{target}", self.upstream),
                    &auth,
                    &[],
                );
                if probe.is_ok_and(|r| r.status == 200) {
                    let ticket = {
                        let mut st = self.state.lock().unwrap();
                        st.next_ticket += 1;
                        let id = st.next_ticket.to_string();
                        st.tickets.insert(
                            id.clone(),
                            Ticket {
                                target: target.clone(),
                                authorization: authorization.clone(),
                            },
                        );
                        id
                    };
                    let digest = target.rsplit('/').next().unwrap_or("");
                    let location = format!("http://{}/cdn/{ticket}/{digest}", self.cdn_addr);
                    let mut st = self.state.lock().unwrap();
                    if let Some(r) = st.log.get_mut(idx) {
                        r.fault = Some("redirect".into());
                        r.status = Some(307);
                    }
                    drop(st);
                    Reply::new(307)
                        .header("Location", &location)
                        .write_to(&mut writer, false)?;
                    if client_close {
                        return Ok(());
                    }
                    continue;
                }
            }

            // Forward.
            if upstream.is_none() {
                upstream = Some(self.connect_upstream()?);
            }
            let up = upstream.as_mut().unwrap();
            let mut head = format!("{method} {target} HTTP/1.1\r\n");
            for (k, v) in &headers {
                if k.eq_ignore_ascii_case("expect") {
                    continue;
                }
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            up.writer.write_all(head.as_bytes())?;
            if expects_continue {
                writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            relay_body(&mut reader, &mut up.writer, req_framing)?;
            up.writer.flush()?;

            let (status, resp_headers, resp_raw) = loop {
                let raw = http::read_head(&mut up.reader)?.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed")
                })?;
                let (status, hs) = http::parse_response_head(&raw)?;
                if (100..200).contains(&status) {
                    continue; // 100 Continue already sent (or not wanted).
                }
                break (status, hs, raw);
            };
            self.set_status(idx, status);
            match &fault {
                Some(Fault::SetHeader(name, value)) => {
                    let mut head = String::from_utf8_lossy(&resp_raw)
                        .lines()
                        .next()
                        .unwrap_or("HTTP/1.1 200 OK")
                        .to_string();
                    head.push_str("\r\n");
                    for (k, v) in &resp_headers {
                        if !k.eq_ignore_ascii_case(name) {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                    }
                    if let Some(v) = value {
                        head.push_str(&format!("{name}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    writer.write_all(head.as_bytes())?;
                }
                _ => writer.write_all(&resp_raw)?,
            }
            let framing = response_framing(&method, status, &resp_headers);
            let mut tap = Tap {
                inner: &mut writer,
                written: 0,
                cut: match &fault {
                    Some(Fault::ResetAfter(n)) => Some(*n),
                    _ => None,
                },
                stall: match &fault {
                    Some(Fault::StallAfter { bytes, pause }) => Some((*bytes, *pause)),
                    _ => None,
                },
            };
            let relayed = relay_body(&mut up.reader, &mut tap, framing);
            if let Err(e) = relayed {
                let _ = tap.flush();
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Err(e);
            }
            if matches!(fault, Some(Fault::ResetAfter(_))) {
                // The body was shorter than the cut point: still drop the connection.
                writer.flush()?;
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            writer.flush()?;
            let upstream_close = matches!(framing, Framing::UntilEof)
                || http::header(&resp_headers, "connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if upstream_close {
                upstream = None;
            }
            if client_close || matches!(framing, Framing::UntilEof) {
                return Ok(());
            }
        }
        Ok(())
    }

    pub(super) fn serve_cdn(&self, client: TcpStream) {
        let _ = self.cdn_once(client);
    }

    /// One request per connection: look up the ticket, stream the blob from the registry.
    fn cdn_once(&self, client: TcpStream) -> io::Result<()> {
        let mut reader = BufReader::new(client.try_clone()?);
        let mut writer = client;
        let Some(req) = http::read_request(&mut reader)? else {
            return Ok(());
        };
        let had_authorization = req.header("authorization").is_some();
        let (ticket, reject_auth) = {
            let st = self.state.lock().unwrap();
            let id = req
                .path()
                .strip_prefix("/cdn/")
                .and_then(|r| r.split('/').next());
            (
                id.and_then(|id| st.tickets.get(id))
                    .map(|t| (t.target.clone(), t.authorization.clone())),
                st.cdn_reject_authorization,
            )
        };
        let log = |status: u16| {
            self.state.lock().unwrap().cdn_log.push(CdnRecord {
                target: req.target.clone(),
                had_authorization,
                status,
            });
        };
        let Some((target, authorization)) = ticket else {
            log(404);
            return Reply::new(404)
                .header("Connection", "close")
                .write_to(&mut writer, req.method == "HEAD");
        };
        if had_authorization && reject_auth {
            log(400);
            let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query \
string parameter or the Authorization header should be specified</Message></Error>";
            return Reply::new(400)
                .header("Content-Type", "application/xml")
                .header("Connection", "close")
                .body(body.to_vec())
                .write_to(&mut writer, req.method == "HEAD");
        }
        let mut up = self.connect_upstream()?;
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            if req.method == "HEAD" { "HEAD" } else { "GET" },
            self.upstream
        );
        if let Some(a) = authorization {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        if let Some(r) = req.header("range") {
            head.push_str(&format!("Range: {r}\r\n"));
        }
        head.push_str("\r\n");
        up.writer.write_all(head.as_bytes())?;
        let raw = http::read_head(&mut up.reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))?;
        let (status, hs) = http::parse_response_head(&raw)?;
        log(status);
        writer.write_all(&raw)?;
        relay_body(
            &mut up.reader,
            &mut writer,
            response_framing(&req.method, status, &hs),
        )?;
        writer.flush()?;
        let _ = writer.shutdown(std::net::Shutdown::Both);
        Ok(())
    }
}
