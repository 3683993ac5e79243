//! Hostile peers of `ferry serve` and of split bundles, each the worst a peer would send:
//! thousands of silent sockets and idle TLS connections while a real client asks; one byte of
//! the HTTP/2 preface; HTTP/1 keep-alive and HTTP/2 pings that never make a request; one
//! address taking every slot; timing that tells which user names exist; a flood of wrong
//! passwords in front of a real login; a `.parts` file of a gigabyte.

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ferry_test_support::http as h;

use crate::serve::{Server, bundle_of};
use crate::support::*;

/// A TCP connection to `server` from the loopback address `from`.
fn connect_from(from: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())?;
    socket.connect_timeout(&server.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

fn addr_of(server: &Server) -> SocketAddr {
    server.host.parse().expect("host:port")
}

/// The `n`th of many loopback client addresses (127.0.B.C), spread so that none holds more
/// than a few connections.
fn loopback(block: u8, n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, block, (n / 250) as u8, (n % 250) as u8 + 2)
}

/// Whether the server closes `s` before `deadline`: a read sees EOF or a reset.
fn closed_within(mut s: &TcpStream, deadline: Duration) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A small bundle to serve, made once per test.
fn small_bundle(sandbox: &Sandbox) -> std::path::PathBuf {
    bundle_of(sandbox, &[fixture("rancher/rke-tools:v0.1.103")], "peers")
}

/// The harness CA's server certificate, for `--tls-cert`/`--tls-key`.
fn tls_files(sandbox: &Sandbox) -> (String, String) {
    let leaf = ferry_test_support::tls::server_leaf();
    let cert = sandbox.work().join("server.crt");
    let key = sandbox.work().join("server.key");
    std::fs::write(&cert, &leaf.cert_pem).expect("cert");
    std::fs::write(&key, &leaf.key_pem).expect("key");
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// `GET /v2/` over TLS from 127.0.0.1: the status, and how long it took.
fn real_client(server: &Server) -> (Option<u16>, Duration) {
    let addr = addr_of(server);
    let start = Instant::now();
    let status = (|| {
        let mut s = h::connect("127.0.0.1", addr.port(), true).ok()?;
        s.tcp()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .ok()?;
        s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut reader = std::io::BufReader::new(s);
        let head = h::read_head(&mut reader).ok()??;
        h::parse_response_head(&head).ok().map(|(status, _)| status)
    })();
    (status, start.elapsed())
}

#[test]
fn thousands_of_idle_sockets_and_tls_connections_never_lock_out_a_real_client() {
    let sandbox = Sandbox::new();
    let bundle = small_bundle(&sandbox);
    let (cert, key) = tls_files(&sandbox);
    let server = Server::start(
        &sandbox,
        &[&bundle],
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let addr = addr_of(&server);
    let (status, took) = real_client(&server);
    assert_eq!(status, Some(200), "served before the flood");
    assert!(took < Duration::from_secs(1));

    // 2,000 sockets that say nothing, from 2,000 addresses (no per-client share helps).
    let silent: Vec<TcpStream> = (0..2000)
        .filter_map(|i| connect_from(loopback(10, i), addr).ok())
        .collect();
    assert!(
        silent.len() > 1900,
        "opened {} silent sockets",
        silent.len()
    );
    // 2,000 TLS handshakes completed, then silence: four threads, 500 each.
    let tls: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                scope.spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..500 {
                        let Ok(tcp) = connect_from(loopback(20, t * 500 + i), addr) else {
                            continue;
                        };
                        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
                            .expect("name")
                            .to_owned();
                        let Ok(mut conn) = rustls::ClientConnection::new(
                            ferry_test_support::tls::client_config(),
                            name,
                        ) else {
                            continue;
                        };
                        let mut tcp = tcp;
                        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                        while conn.is_handshaking() {
                            if conn.complete_io(&mut tcp).is_err() {
                                break;
                            }
                        }
                        held.push((conn, tcp));
                    }
                    held
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("tls worker"))
            .collect()
    });
    assert!(tls.len() > 1900, "opened {} TLS connections", tls.len());

    let (status, took) = real_client(&server);
    let peak_mib = peak_rss_kib(server.pid()) / 1024;
    let held = (silent.len(), tls.len());
    drop((silent, tls));
    let (_, log) = server.stop();
    eprintln!(
        "held {} silent + {} TLS connections; real client: {status:?} in {took:?}; ferry serve peak RSS {peak_mib} MiB",
        held.0, held.1
    );
    assert_eq!(status, Some(200), "the real client was not served:\n{log}");
    assert!(
        took < Duration::from_secs(1),
        "the real client waited {took:?}"
    );
    assert!(peak_mib < 64, "ferry serve peaked at {peak_mib} MiB");
    assert!(
        log.contains("silent connections closed to make room"),
        "running out of pending slots is reported:\n{log}"
    );
    let reports = log.matches("connection slots ran out").count();
    assert!(
        (1..=3).contains(&reports),
        "reported {reports} times, not once per interval:\n{log}"
    );
}

/// An HTTP/2 client that only answers the server's SETTINGS and PINGs and sends PINGs of
/// its own every 300 ms, after making `requests` requests; true when the server closed it
/// before `deadline`.
fn h2_pinger(addr: SocketAddr, requests: u32, deadline: Duration) -> bool {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("preface");
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).expect("settings");
    for n in 0..requests {
        // GET /v2/ on stream 2n+1: :method GET, :scheme http, :path "/v2/", :authority.
        let mut block = vec![0x82, 0x86, 0x44, 4];
        block.extend_from_slice(b"/v2/");
        block.extend_from_slice(&[0x41, 9]);
        block.extend_from_slice(b"127.0.0.1");
        let mut frame = vec![0, 0, block.len() as u8, 1, 0x5];
        frame.extend_from_slice(&(2 * n + 1).to_be_bytes());
        frame.extend_from_slice(&block);
        s.write_all(&frame).expect("headers");
    }
    let mut writer = s.try_clone().expect("clone");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pings = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
                if writer.write_all(&ping).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        if start.elapsed() > deadline {
            break false;
        }
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break true,
        }
        while pending.len() >= 9 {
            let len = usize::from(pending[0]) << 16
                | usize::from(pending[1]) << 8
                | usize::from(pending[2]);
            if pending.len() < 9 + len {
                break;
            }
            let (kind, flags) = (pending[3], pending[4]);
            let payload = pending[9..9 + len].to_vec();
            pending.drain(..9 + len);
            let reply: Option<Vec<u8>> = match (kind, flags & 1) {
                (4, 0) => Some(vec![0, 0, 0, 4, 1, 0, 0, 0, 0]),
                (6, 0) => Some([&[0, 0, 8, 6, 1, 0, 0, 0, 0][..], &payload].concat()),
                _ => None,
            };
            if let Some(r) = reply {
                let _ = s.write_all(&r);
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = pings.join();
    closed
}

#[test]
fn silent_half_open_and_idle_connections_are_closed_on_their_deadlines() {
    let sandbox = Sandbox::new();
    let bundle = small_bundle(&sandbox);
    let server = Server::start(
        &sandbox,
        &[&bundle],
        &["--first-request-timeout", "1", "--idle-timeout", "2"],
    );
    let addr = addr_of(&server);
    let grace = Duration::from_secs(5);
    std::thread::scope(|scope| {
        let silent = scope.spawn(|| {
            let s = TcpStream::connect(addr).expect("connect");
            closed_within(&s, grace)
        });
        let one_byte = scope.spawn(|| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"P").expect("one byte of the HTTP/2 preface");
            closed_within(&s, grace)
        });
        let keep_alive = scope.spawn(|| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .expect("request");
            let mut head = [0u8; 12];
            s.read_exact(&mut head).expect("response");
            assert_eq!(&head[9..12], b"200");
            closed_within(&s, Duration::from_secs(2) + grace)
        });
        let pings_only = scope.spawn(|| h2_pinger(addr, 0, grace));
        let request_then_pings = scope.spawn(|| h2_pinger(addr, 1, Duration::from_secs(2) + grace));
        for (what, t) in [
            ("a socket that says nothing", silent),
            ("one byte of the HTTP/2 preface", one_byte),
            ("an idle HTTP/1.1 keep-alive connection", keep_alive),
            ("an HTTP/2 connection that only pings", pings_only),
            (
                "an HTTP/2 connection that pings after one request",
                request_then_pings,
            ),
        ] {
            assert!(t.join().expect("thread"), "{what} was not closed in time");
        }
    });
    // The server still serves.
    let r = h::get(&format!("{}/v2/", server.url)).expect("GET /v2/");
    assert_eq!(r.status, 200);
}

#[test]
fn one_address_cannot_take_every_slot() {
    let sandbox = Sandbox::new();
    let bundle = small_bundle(&sandbox);
    let server = Server::start(
        &sandbox,
        &[&bundle],
        &["--max-connections-per-client", "20"],
    );
    let addr = addr_of(&server);
    let greedy = Ipv4Addr::new(127, 0, 0, 7);
    let held: Vec<TcpStream> = (0..60)
        .map(|_| connect_from(greedy, addr).expect("connect"))
        .collect();
    let refused = std::thread::scope(|scope| {
        let checks: Vec<_> = held
            .iter()
            .map(|s| scope.spawn(move || closed_within(s, Duration::from_secs(1))))
            .collect();
        checks
            .into_iter()
            .map(|c| c.join().expect("check"))
            .filter(|closed| *closed)
            .count()
    });
    let r = h::get(&format!("{}/v2/", server.url)).expect("GET /v2/ from 127.0.0.1");
    drop(held);
    let (_, log) = server.stop();
    assert_eq!(r.status, 200);
    assert_eq!(
        refused, 40,
        "past its 20, every connection is closed:\n{log}"
    );
    assert_eq!(
        log.matches("--max-connections-per-client").count(),
        1,
        "one report, not one per refusal:\n{log}"
    );
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A server with one htpasswd user `node` (bcrypt cost `cost`).
fn with_htpasswd(sandbox: &Sandbox, cost: &str) -> Server {
    let bundle = small_bundle(sandbox);
    let file = sandbox.work().join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-nbB", "-C", cost, "node", "right-password"])
        .output()
        .expect("htpasswd");
    std::fs::write(&file, &out.stdout).expect("write htpasswd");
    Server::start(
        sandbox,
        &[&bundle],
        &["--htpasswd", file.to_str().expect("path")],
    )
}

/// `GET /v2/` from `from` with `authorization`: the status and how long it took.
fn login(server: &Server, from: Ipv4Addr, authorization: &str) -> (u16, Duration) {
    let start = Instant::now();
    let mut s = connect_from(from, addr_of(server)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reader = std::io::BufReader::new(s);
    let head = h::read_head(&mut reader)
        .expect("read")
        .expect("a response");
    let (status, _) = h::parse_response_head(&head).expect("head");
    (status, start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn an_unknown_user_costs_what_a_known_one_does() {
    let sandbox = Sandbox::new();
    let server = with_htpasswd(&sandbox, "8");
    let me = Ipv4Addr::LOCALHOST;
    let (ok, _) = login(&server, me, &basic("node", "right-password"));
    assert_eq!(ok, 200);
    let known = median(
        (0..7)
            .map(|i| {
                let (status, took) = login(&server, me, &basic("node", &format!("wrong-{i}")));
                assert_eq!(status, 401);
                took
            })
            .collect(),
    );
    let unknown = median(
        (0..7)
            .map(|i| {
                let (status, took) = login(&server, me, &basic(&format!("nobody-{i}"), "x"));
                assert_eq!(status, 401);
                took
            })
            .collect(),
    );
    assert!(
        unknown * 2 > known,
        "an unknown user is refused in {unknown:?}, a known one in {known:?}: timing tells user names apart"
    );
}

#[test]
fn a_flood_of_wrong_passwords_never_delays_a_real_login() {
    let sandbox = Sandbox::new();
    let server = with_htpasswd(&sandbox, "9");
    let sent = Arc::new(AtomicUsize::new(0));
    let shed = Arc::new(AtomicUsize::new(0));
    let (real, took) = std::thread::scope(|scope| {
        for i in 0..150 {
            let (server, sent, shed) = (&server, sent.clone(), shed.clone());
            scope.spawn(move || {
                let from = Ipv4Addr::new(127, 0, 1, (i % 3) as u8 + 2);
                let Ok(mut s) = connect_from(from, addr_of(server)) else {
                    sent.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                let _ = write!(
                    s,
                    "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
                    basic("node", &format!("guess-{i}"))
                );
                sent.fetch_add(1, Ordering::SeqCst);
                let mut reader = std::io::BufReader::new(s);
                if let Ok(Some(head)) = h::read_head(&mut reader)
                    && let Ok((503, headers)) = h::parse_response_head(&head)
                {
                    assert_eq!(h::header(&headers, "retry-after"), Some("1"));
                    shed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let waited = Instant::now();
        while sent.load(Ordering::SeqCst) < 150 && waited.elapsed() < Duration::from_secs(30) {
            std::thread::yield_now();
        }
        login(
            &server,
            Ipv4Addr::LOCALHOST,
            &basic("node", "right-password"),
        )
    });
    assert_eq!(real, 200);
    assert!(
        took < Duration::from_secs(2),
        "the real login waited {took:?} behind 150 guesses"
    );
    assert!(
        shed.load(Ordering::SeqCst) > 100,
        "the flood is shed with 503, not queued: {} shed",
        shed.load(Ordering::SeqCst)
    );
}

#[test]
fn a_parts_file_of_a_gigabyte_is_refused_without_reading_it() {
    let sandbox = Sandbox::new();
    let parts = sandbox.work().join("huge.tar.parts");
    let f = std::fs::File::create(&parts).expect("create");
    f.set_len(1 << 30).expect("a sparse gigabyte");
    drop(f);
    for command in ["verify", "serve", "import"] {
        let mut args: Vec<&OsStr> = vec![OsStr::new(command), parts.as_os_str()];
        if command == "import" {
            args.extend([
                OsStr::new("--to"),
                OsStr::new("127.0.0.1:1"),
                OsStr::new("--dry-run"),
            ]);
        }
        let (out, kib) = ferry_measured(&sandbox, &args, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "ferry {command}: {stderr}");
        assert!(
            stderr.contains("parts file") && stderr.contains(&parts.display().to_string()),
            "ferry {command} names the parts file: {stderr}"
        );
        assert!(
            kib < 64 * 1024,
            "ferry {command} peaked at {} MiB on a 1 GiB parts file",
            kib / 1024
        );
    }
}
