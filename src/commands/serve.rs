//! `ferry serve`: open the bundles (refusing a truncated or broken one), build the catalog,
//! start the checks, set up TLS and auth, say where it listens, serve until a signal.

use std::net::IpAddr;
use std::sync::Arc;

use super::printer::Printer;
use crate::cli::ServeArgs;
use crate::error::Exit;
use ferry_serve::auth::Htpasswd;
use ferry_serve::catalog::Catalog;
use ferry_serve::check::Checks;
use ferry_serve::metrics::Metrics;
use ferry_serve::status::{Setup, Tls};
use ferry_serve::{LogStyle, Served, tls};
use ferry_store::bundle::{BundleReader, BundleSet, BundleSource};

/// Opens a bundle to serve: a truncated one, or one whose structure is broken, is refused.
fn open(path: &std::path::Path) -> anyhow::Result<BundleSource> {
    let source = BundleSource::new(BundleReader::open(path)?);
    if let Some(t) = source.reader().truncated() {
        anyhow::bail!("cannot serve {}: {t}", path.display());
    }
    if let Some(p) = ferry_verify::bundle::structure(&source).first() {
        anyhow::bail!(
            "cannot serve {}: {}; check it with `ferry verify {}`",
            path.display(),
            p.detail,
            path.display()
        );
    }
    Ok(source)
}

/// The names a self-signed certificate covers.
fn hostnames(args: &ServeArgs) -> Vec<String> {
    if !args.hostnames.is_empty() {
        return args.hostnames.clone();
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ip: IpAddr = args.listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.insert(0, ip.to_string());
    }
    names
}

/// `serve --key` (or keyless): the images of `bundles` without a valid signature, and what is
/// attached to them, by lock name, with why; serve withdraws them as it withdraws corrupt
/// blobs.
async fn unsigned(
    bundles: &[BundleSource],
    policy: &ferry_verify::signature::Policy,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let flag = super::policy::flag(policy);
    let mut out = std::collections::BTreeMap::new();
    for bundle in bundles {
        let lock = super::common::bundle_lock(bundle)?;
        let problems =
            ferry_verify::signature::check_signed(bundle, &lock, &|r| r.clone(), policy).await;
        for p in problems {
            let Some(image) = p.image.clone() else {
                continue;
            };
            for i in &lock.images {
                let owner = i
                    .attached_to
                    .as_ref()
                    .map_or(i.name.as_str(), |a| a.image.as_str());
                if owner == image {
                    out.insert(i.name.clone(), format!("{flag}: {}", p.detail));
                }
            }
        }
    }
    Ok(out)
}

/// Runs `ferry serve`.
pub async fn run(args: &ServeArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let bundles = args
        .bundles
        .iter()
        .map(|p| open(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let withdrawn = match super::policy::from_flags(args.key.as_deref(), &args.keyless)? {
        Some(policy) => unsigned(&bundles, &policy).await?,
        None => Default::default(),
    };
    let catalog = Catalog::build(
        BundleSet::new(bundles),
        args.prefix.as_deref().unwrap_or(""),
        parallel * 4,
        &withdrawn,
    )
    .await?;
    for (name, why) in &catalog.skipped {
        tracing::warn!("{name} is not served: {why}");
    }
    if catalog.images() == 0 {
        anyhow::bail!("nothing to serve: no image of the bundles could be read");
    }
    let catalog = Arc::new(catalog);
    let checks = Arc::new(Checks::new(catalog.clone()));
    if args.verify_first {
        verify_first(&checks, parallel, printer).await;
    } else {
        // Half the CPUs at most, so that serving keeps the rest while the check runs.
        let background = checks.clone();
        tokio::spawn(async move {
            background.all((parallel / 2).max(1)).await;
        });
    }
    let htpasswd = args.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
    let listener = ferry_serve::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let acceptor = acceptor(args, addr.port(), printer)?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let tls = match (&args.tls_self_signed, &args.tls_cert) {
        (Some(dir), _) => Tls::SelfSigned {
            ca: std::path::absolute(dir.join("ca.crt")).unwrap_or_else(|_| dir.join("ca.crt")),
        },
        (None, Some(_)) => Tls::Given,
        _ => Tls::Off,
    };
    let metrics =
        (!args.no_metrics).then(|| Arc::new(Metrics::new(checks.clone(), catalog.images())));
    let served = Arc::new(Served {
        catalog: catalog.clone(),
        checks,
        htpasswd,
        log: log_style(printer),
        setup: Setup {
            listen: addr,
            tls,
            prefix: args
                .prefix
                .as_deref()
                .unwrap_or("")
                .trim_matches('/')
                .to_string(),
            metrics: metrics.is_some(),
        },
        metrics,
    });
    let url = format!("{scheme}://{addr}");
    ready(args, &catalog, &url, printer)?;
    let limits = ferry_serve::Limits {
        max_active: args.max_connections as usize,
        max_pending: args.max_pending as usize,
        per_client: args.max_connections_per_client as usize,
        first_request: std::time::Duration::from_secs(args.first_request_timeout),
        idle: std::time::Duration::from_secs(args.idle_timeout),
    };
    ferry_serve::raise_fd_limit(limits.max_active + limits.max_pending + 64);
    ferry_serve::run(served, listener, acceptor, limits).await?;
    Ok(Exit::Success)
}

/// `--verify-first`: every blob checked before listening, with a bar of the bytes checked
/// (rate, ETA) for a person at a terminal.
async fn verify_first(checks: &Arc<Checks>, parallel: usize, printer: &Printer) {
    let total = checks.progress().total_bytes;
    let bar = printer.bar(
        total,
        "checking blobs [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} eta {eta} {msg}",
    );
    let all = checks.all(parallel);
    let mut all = std::pin::pin!(all);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = tick.tick() => {
                let p = checks.progress();
                bar.set_position(p.checked_bytes());
                bar.set_message(format!("{}/{} blobs", p.checked_blobs(), p.total_blobs));
            }
        }
    }
    bar.finish_and_clear();
}

/// The TLS set-up asked for: a self-signed CA and certificate (saying where each node must
/// put the CA), the given certificate and key, or none (plain HTTP).
fn acceptor(
    args: &ServeArgs,
    port: u16,
    printer: &Printer,
) -> anyhow::Result<Option<ferry_serve::TlsAcceptor>> {
    let acceptor = match (&args.tls_self_signed, &args.tls_cert, &args.tls_key) {
        (Some(dir), _, _) => {
            let names = hostnames(args);
            let files = tls::self_signed(dir, &names)?;
            let host = format!("{}:{port}", names[0]);
            printer.say(format!(
                "TLS: the CA is {ca}, the server certificate covers {names}. Every node must trust the CA:\n  Docker:     /etc/docker/certs.d/{host}/ca.crt\n  containerd: /etc/containerd/certs.d/{host}/ca.crt, with /etc/containerd/certs.d/{host}/hosts.toml:\n                server = \"https://{host}\"\n                [host.\"https://{host}\"]\n                  ca = \"/etc/containerd/certs.d/{host}/ca.crt\"",
                ca = files.ca.display(),
                names = names.join(", ")
            ));
            Some(tls::acceptor(&files.cert, &files.key)?)
        }
        (None, Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    Ok(acceptor)
}

/// How requests are logged: not with `--quiet`, as JSON lines with `--json`.
fn log_style(printer: &Printer) -> LogStyle {
    match printer {
        Printer::Quiet | Printer::QuietJson => LogStyle::Off,
        Printer::Json => LogStyle::Json,
        Printer::Human => LogStyle::Text,
    }
}

/// The readiness line on stdout: where it listens and what it serves.
fn ready(args: &ServeArgs, catalog: &Catalog, url: &str, printer: &Printer) -> anyhow::Result<()> {
    if printer.is_json() {
        printer.json(&serde_json::json!({
            "listening": url,
            "images": catalog.images(),
            "repositories": catalog.repos.len(),
            "bundles": args.bundles.len(),
        }))?;
    } else {
        printer.data(
            None,
            &format!(
                "ferry serve: listening on {url} ({} images in {} repositories from {} bundle(s))\n",
                catalog.images(),
                catalog.repos.len(),
                args.bundles.len()
            ),
        )?;
    }
    Ok(())
}
