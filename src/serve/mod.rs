//! `ferry serve`: one or more bundles as a read-only registry, in place. Nothing is extracted:
//! manifests and blobs are read from the tar files through their offset tables with
//! positioned reads, and every byte is checked against its digest ([`check`]). Clients speak
//! the distribution API ([`http`]) over HTTP/1.1 or HTTP/2, with TLS ([`tls`]) and Basic auth
//! ([`auth`]) when asked for; [`catalog`] says what is served under which name.
//!
//! The server stops on SIGINT or SIGTERM: it stops accepting, lets the transfers under way
//! finish (for up to [`SHUTDOWN_GRACE`]), then exits.
//!
//! Against peers that hold resources without using them: at most `--max-connections` at
//! once; a TLS handshake must end within [`HANDSHAKE_TIMEOUT`] and HTTP/1 request headers
//! arrive within [`HEADER_TIMEOUT`]; a client that reads nothing of a response for
//! [`WRITE_STALL_TIMEOUT`] is disconnected. Blob bodies hold no thread while they wait
//! (see [`crate::store::bundle::source::BundleSource::range_with`]).

pub mod auth;
pub mod catalog;
pub mod check;
pub mod http;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use self::auth::Htpasswd;
use self::catalog::Catalog;
use self::check::Checks;

/// How long running transfers may go on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Serves `served` on `listener` (over TLS when `tls` is given), `max_connections` at a
/// time, until SIGINT or SIGTERM.
pub async fn run(
    served: Arc<Served>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    max_connections: usize,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    // HTTP/2: a node pulls 3 blobs at a time; 16 streams leave room and bound what one
    // connection can make the server buffer (16 × (read-ahead + send buffer)). Pings find
    // peers that went away without closing.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .max_send_buf_size(H2_SEND_BUFFER)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut stop = std::pin::pin!(shutdown_signal());
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => tokio::select! {
                    accepted = listener.accept() => accepted.map(|a| (a, slot)),
                    () = &mut stop => break,
                },
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let ((tcp, client), slot) = match accepted {
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
        let _ = tcp.set_nodelay(true);
        let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
        io.set_write_timeout(Some(WRITE_STALL_TIMEOUT));
        let io = Box::pin(io);
        let served = served.clone();
        let service =
            hyper::service::service_fn(move |req| http::handle(served.clone(), req, client));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                        Ok(Ok(stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {client} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake with {client} timed out");
                            return;
                        }
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!("connection from {client}: {e}");
            }
        });
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

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (in use, or not an address of this host?)")
    })
}
