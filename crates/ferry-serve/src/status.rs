//! `GET /`: the status page for a person ([`page`]): the bundles served, their images with
//! tags and platforms, how far the background check has come, the blobs it withdrew and the
//! images they break, and how to point a cluster at this server (`cluster.yml`, and where the
//! nodes put the CA), with the host and port the person reached it by.
//!
//! The page is one HTML document with its style inline: no script, font or image from
//! anywhere, since it is read inside the air gap. Every text from a bundle or a request is
//! escaped ([`html::esc`]); the `Host` a request names is used only when it is a plain
//! `host[:port]` ([`host`]), else the listen address is.

pub mod html;

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Served;

/// How the server was set up, as the page tells it.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The address it listens on.
    pub listen: SocketAddr,
    /// Its TLS.
    pub tls: Tls,
    /// `--prefix`, without slashes at either end (empty for none).
    pub prefix: String,
    /// Whether `/metrics` is served.
    pub metrics: bool,
}

impl Setup {
    /// Plain HTTP on `listen`, no prefix, metrics on.
    pub fn plain(listen: SocketAddr) -> Setup {
        Setup {
            listen,
            tls: Tls::Off,
            prefix: String::new(),
            metrics: true,
        }
    }
}

/// The TLS a server speaks.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain HTTP.
    Off,
    /// A certificate signed by the CA ferry wrote (`--tls-self-signed`): nodes must trust it.
    SelfSigned {
        /// The CA certificate's file.
        ca: PathBuf,
    },
    /// A certificate given with `--tls-cert`.
    Given,
}

/// The longest `Host` taken from a request (a DNS name, a colon and a port).
pub const MAX_HOST: usize = 253 + 6;

/// The `host:port` a client reached the server by, from its `Host` header (or HTTP/2
/// authority) when that is a plain DNS name, IPv4 address or bracketed IPv6 address with an
/// optional port; else the listen address. A missing port is the listen port.
pub fn host(given: Option<&str>, listen: SocketAddr) -> String {
    given
        .and_then(|h| valid_host(h, listen.port()))
        .unwrap_or_else(|| listen.to_string())
}

fn valid_host(h: &str, listen_port: u16) -> Option<String> {
    if h.is_empty() || h.len() > MAX_HOST {
        return None;
    }
    let (name, port) = if let Some(rest) = h.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&h[..ip.len() + 2], port)
    } else {
        match h.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        }
    };
    let dns = |n: &str| {
        !n.is_empty()
            && n.len() <= 253
            && n.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    if !name.starts_with('[') && !dns(name) {
        return None;
    }
    let port: u16 = match port {
        None => listen_port,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().ok().filter(|p| *p > 0)?
        }
        Some(_) => return None,
    };
    Some(format!("{}:{port}", name.to_ascii_lowercase()))
}

/// The status page, for a client that reached the server as `host`.
pub fn page(served: &Served, host: &str) -> String {
    let catalog = &served.catalog;
    let bundles = catalog
        .set
        .bundles()
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let path = b.reader().path();
            html::BundleRow {
                path: path.display().to_string(),
                size: std::fs::metadata(path).map_or(0, |m| m.len()),
                images: catalog
                    .images
                    .values()
                    .filter(|img| img.bundle == i)
                    .count(),
            }
        })
        .collect();
    let view = html::View {
        host,
        setup: &served.setup,
        images: catalog.images.values().collect(),
        repositories: catalog.repos.len(),
        bundles,
        skipped: &catalog.skipped,
        progress: served.checks.progress(),
        withdrawn: served.checks.withdrawn(),
    };
    html::render(&view)
}

#[cfg(test)]
mod tests;
