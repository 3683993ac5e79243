//! `ferry serve`: one or more bundles as a read-only registry, in place. Nothing is extracted:
//! manifests and blobs are read from the tar files through their offset tables with
//! positioned reads, and every byte is checked against its digest ([`check`]). Clients speak
//! the distribution API ([`http`]) over HTTP/1.1 or HTTP/2, with TLS ([`tls`]) and Basic auth
//! ([`auth`]) when asked for; [`catalog`] says what is served under which name. For people
//! and monitoring, `GET /` is a status page ([`status`]) and `GET /metrics` Prometheus text
//! ([`metrics`]), behind the same login as the API.
//!
//! The server stops on SIGINT or SIGTERM: it stops accepting, lets the transfers under way
//! finish (for up to [`SHUTDOWN_GRACE`]), then exits.
//!
//! Against peers that hold resources without using them, [`conns`] keeps connections that
//! have not yet made a request apart from those that have, with a deadline for each kind and
//! a share per client address; HTTP/1 request headers must arrive within [`HEADER_TIMEOUT`];
//! a client that reads nothing of a response for [`WRITE_STALL_TIMEOUT`] is disconnected. Blob bodies hold no thread while they wait
//! (see [`ferry_store::bundle::BundleSource::range_with`]).

#![deny(missing_docs)]

pub mod auth;
pub mod catalog;
pub mod check;
pub mod conns;
pub mod http;
pub mod metrics;
pub mod status;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use self::auth::Htpasswd;
use self::catalog::Catalog;
use self::check::Checks;
pub use self::conns::Limits;
use self::conns::{Conn, Table};
/// The TLS side of a listener (`tls::self_signed` or a given certificate), as `serve` takes it.
pub use tokio_rustls::TlsAcceptor;

/// How long running transfers may go on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long the headers of an HTTP/1 request may take to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Concurrent HTTP/2 streams per connection.
pub const H2_STREAMS: u32 = 16;

/// Bytes HTTP/2 buffers per stream before it stops reading the body.
pub const H2_SEND_BUFFER: usize = 64 * 1024;

/// How long a write may wait on a client that reads nothing.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the request handlers share.
pub struct Served {
    /// What is served.
    pub catalog: Arc<Catalog>,
    /// The checks of every blob.
    pub checks: Arc<Checks>,
    /// Basic auth, when required.
    pub htpasswd: Option<Htpasswd>,
    /// How requests are logged (on stderr).
    pub log: LogStyle,
    /// How the server was set up, for the status page.
    pub setup: status::Setup,
    /// `/metrics`, unless turned off (`--no-metrics`: 404).
    pub metrics: Option<Arc<metrics::Metrics>>,
}

/// The access log: a line per request on stderr, as text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// No access log (`--quiet`).
    Off,
    /// `METHOD PATH STATUS BYTES DURATION CLIENT`.
    Text,
    /// One JSON object per line.
    Json,
}

/// The HTTP/1.1 and HTTP/2 settings of every connection.
fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT.min(limits.first_request.max(Duration::from_secs(1))));
    // HTTP/2: a node pulls 3 blobs at a time; 16 streams leave room and bound what one
    // connection can make the server buffer (16 × (read-ahead + send buffer)). Pings find
    // peers that went away without closing; they do not keep an idle connection open (the
    // table closes it after --idle-timeout without a request).
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .max_send_buf_size(H2_SEND_BUFFER)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Serves one connection from `client` (its TLS handshake first, when `tls` is given) until
/// it ends, or its place in the table is taken away (no request in time, idle too long, or
/// room made for a newer one): then it is dropped, which closes it.
async fn connection<I>(
    builder: Builder<TokioExecutor>,
    io: I,
    tls: Option<tokio_rustls::TlsAcceptor>,
    served: Arc<Served>,
    client: SocketAddr,
    conn: Conn,
    watcher: Option<hyper_util::server::graceful::Watcher>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    let in_service = conn.clone();
    let service = hyper::service::service_fn(move |req| {
        let started = in_service.start();
        let served = served.clone();
        async move {
            match started {
                Ok(running) => http::handle(served, req, client, running).await,
                Err(refusal) => Ok(http::refused(&req, refusal)),
            }
        }
    });
    let serving = async {
        let io: Box<dyn IoStream> = match tls {
            Some(acceptor) => match acceptor.accept(io).await {
                Ok(stream) => Box::new(stream),
                Err(e) => {
                    tracing::debug!("TLS handshake with {client} failed: {e}");
                    return Ok(());
                }
            },
            None => Box::new(io),
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        match watcher {
            Some(w) => w.watch(conn).await,
            None => conn.await,
        }
    };
    tokio::select! {
        result = serving => if let Err(e) = result {
            tracing::debug!("connection from {client}: {e}");
        },
        () = conn.closed() => tracing::trace!("connection from {client} closed by its deadline"),
    }
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}

/// Serves `io` as one connection from `client`, as `run` serves each accepted one, with
/// default limits: for the fuzz target that feeds arbitrary bytes to the request path.
pub async fn serve_io<I>(served: Arc<Served>, io: I, client: SocketAddr)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = Limits {
        max_active: 1,
        max_pending: 1,
        per_client: 1,
        first_request: Duration::from_secs(1),
        idle: Duration::from_secs(1),
    };
    let table = Table::new(limits);
    if let Some(m) = &served.metrics {
        m.watch(table.clone());
    }
    if let Some(conn) = table.admit(client.ip()) {
        connection(builder(&limits), io, None, served, client, conn, None).await;
    }
}

/// Serves `served` on `listener` (over TLS when `tls` is given) within the connection
/// `limits`, until SIGINT or SIGTERM.
pub async fn run(
    served: Arc<Served>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = builder(&limits);
    let table = Table::new(limits);
    if let Some(m) = &served.metrics {
        m.watch(table.clone());
    }
    let sweeper = tokio::spawn(table.clone().sweeper());
    let mut stop = std::pin::pin!(shutdown_signal());
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tcp, client) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // Out of file descriptors (EMFILE) and the like: wait a little rather than
                // spin, as Go's net/http does.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!("accepting a connection failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        // Past its share, the client's connection is closed at once (the sweeper reports it).
        let Some(conn) = table.admit(client.ip()) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
        io.set_write_timeout(Some(WRITE_STALL_TIMEOUT));
        tokio::spawn(connection(
            builder.clone(),
            Box::pin(io),
            tls.clone(),
            served.clone(),
            client,
            conn,
            Some(graceful.watcher()),
        ));
    }
    // New connections are refused from here on; the ones open finish what they are doing.
    drop(listener);
    tracing::info!(
        "shutting down: letting running transfers finish (up to {} s)",
        SHUTDOWN_GRACE.as_secs()
    );
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "transfers still running after {} s were cut",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    sweeper.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Raises the soft limit on open files towards the hard one (as Go's runtime does), so that
/// `want` connections fit; says so when the hard limit is lower.
pub fn raise_fd_limit(want: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let (Some(current), hard) = (limit.current, limit.maximum) else {
        return;
    };
    let needed = want as u64;
    if current >= needed {
        return;
    }
    let raised = hard.map_or(needed, |h| h.min(needed.max(current)));
    limit.current = Some(raised);
    if setrlimit(Resource::Nofile, limit).is_err() || raised < needed {
        tracing::warn!(
            "the open-file limit ({current}) is below the {needed} that --max-connections and --max-pending need; raise `ulimit -n`"
        );
    }
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (in use, or not an address of this host?)")
    })
}
