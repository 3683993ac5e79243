//! Load for the `serve` phase of `scripts/bench.sh`: N clients pull images from a registry at
//! once, each as a node does — its own connections, one image after another, the manifest
//! (and every child manifest of an index), then the config and layers, up to 3 blobs at a time
//! (Docker's `max-concurrent-downloads`), each blob once per client. Every platform is pulled,
//! as `skopeo copy --all` or `ferry export` do, so a client pulls the whole image.
//!
//! ```text
//! cargo run --release --example pull_load -- --url https://127.0.0.1:5000 --images images.txt \
//!     --clients 32 [--per-client 7] [--ca-file ca.crt] [--user U] [--hash]
//! ```
//!
//! The password comes from `PULL_LOAD_PASSWORD`. Client `i` starts at image `i × images /
//! clients` of the list and pulls `--per-client` images from there (default: all of them), so
//! the clients spread over the list. Prints one JSON object: bytes pulled, seconds, MB/s,
//! requests, manifest latency (time to the last byte of a manifest `GET`) p50/p90/p99/max in
//! ms, and errors (any non-2xx answer, transport error, short or long blob, manifest whose
//! digest is not the one asked for) with a few samples.
//!
//! Blobs are length-checked, not hashed, unless `--hash`: hashing 20 GB would make the load
//! generator, on the same two CPUs, the thing measured.
//!
//! The clients' manifest latencies include their own queueing: on a small machine the load
//! generator saturates a CPU itself. So a probe — a thread of its own, with its own runtime
//! and connection — also GETs a manifest every `--probe-ms` while the load runs, as a node
//! starting a pull would: `probe_manifest_ms` is the server's latency under load.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

#[derive(Parser)]
#[command(about = "Concurrent pull load against a registry (scripts/bench.sh serve phase)")]
struct Args {
    /// The registry, `https://HOST:PORT` or `http://HOST:PORT` (with a path prefix if it has one).
    #[arg(long)]
    url: String,
    /// `repository:tag` per line.
    #[arg(long)]
    images: PathBuf,
    /// Clients pulling at once.
    #[arg(long)]
    clients: usize,
    /// Images each client pulls (default: every image of the list).
    #[arg(long)]
    per_client: Option<usize>,
    /// CA certificate to trust (PEM).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Basic-auth user (password from PULL_LOAD_PASSWORD).
    #[arg(long)]
    user: Option<String>,
    /// Blobs pulled at once by one client.
    #[arg(long, default_value_t = 3)]
    layers_at_once: usize,
    /// Hash every blob against its digest (costs client CPU).
    #[arg(long)]
    hash: bool,
    /// Milliseconds between two manifest GETs of the latency probe.
    #[arg(long, default_value_t = 20)]
    probe_ms: u64,
}

/// What every client adds to.
#[derive(Default)]
struct Tally {
    bytes: u64,
    requests: u64,
    manifest_ms: Vec<f64>,
    errors: u64,
    samples: Vec<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(what);
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
    hash: bool,
    tally: Arc<Mutex<Tally>>,
}

impl Client {
    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.get(url).header("accept", ACCEPT);
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// GETs a manifest and checks its digest when asked by digest; records its latency.
    async fn manifest(&self, repo: &str, reference: &str) -> Option<Value> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let started = Instant::now();
        let answer = async {
            let resp = self.get(&url).send().await?.error_for_status()?;
            resp.bytes().await
        }
        .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut t = self.tally();
        t.requests += 1;
        match answer {
            Err(e) => {
                t.error(format!("GET {url}: {e}"));
                None
            }
            Ok(body) => {
                t.manifest_ms.push(ms);
                t.bytes += body.len() as u64;
                if reference.starts_with("sha256:") {
                    let got = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
                    if got != reference {
                        t.error(format!("GET {url}: body hashes to {got}"));
                        return None;
                    }
                }
                serde_json::from_slice(&body)
                    .map_err(|e| t.error(format!("GET {url}: not JSON: {e}")))
                    .ok()
            }
        }
    }

    /// GETs a blob, streaming it to nowhere, and checks its length (and hash with --hash).
    async fn blob(&self, repo: &str, digest: &str, size: u64) {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let result = async {
            let resp = self.get(&url).send().await?.error_for_status()?;
            let mut body = resp.bytes_stream();
            let mut n = 0u64;
            let mut hasher = self.hash.then(Sha256::new);
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                n += chunk.len() as u64;
                if let Some(h) = &mut hasher {
                    h.update(&chunk);
                }
            }
            Ok::<_, reqwest::Error>((n, hasher.map(|h| hex::encode(h.finalize()))))
        }
        .await;
        let mut t = self.tally();
        t.requests += 1;
        match result {
            Err(e) => t.error(format!("GET {url}: {e}")),
            Ok((n, hash)) => {
                t.bytes += n;
                if n != size {
                    t.error(format!("GET {url}: {n} bytes, the manifest says {size}"));
                } else if let Some(h) = hash
                    && format!("sha256:{h}") != digest
                {
                    t.error(format!("GET {url}: hashes to sha256:{h}"));
                }
            }
        }
    }

    /// Pulls one image: manifests first, then every blob not pulled yet, a few at a time.
    async fn pull(&self, reference: &str, seen: &mut HashSet<String>, at_once: usize) {
        let Some((repo, tag)) = reference.rsplit_once(':') else {
            self.tally()
                .error(format!("{reference}: not repository:tag"));
            return;
        };
        let Some(top) = self.manifest(repo, tag).await else {
            return;
        };
        let mut manifests = Vec::new();
        match top.get("manifests").and_then(Value::as_array) {
            Some(children) => {
                for c in children {
                    let Some(d) = c.get("digest").and_then(Value::as_str) else {
                        continue;
                    };
                    if let Some(m) = self.manifest(repo, d).await {
                        manifests.push(m);
                    }
                }
            }
            None => manifests.push(top),
        }
        let mut blobs = Vec::new();
        for m in &manifests {
            let descriptors = m.get("config").into_iter().chain(
                m.get("layers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
            for d in descriptors {
                let (Some(digest), Some(size)) = (
                    d.get("digest").and_then(Value::as_str),
                    d.get("size").and_then(Value::as_u64),
                ) else {
                    continue;
                };
                if seen.insert(digest.to_string()) {
                    blobs.push((digest.to_string(), size));
                }
            }
        }
        futures_util::stream::iter(blobs)
            .map(|(d, size)| async move { self.blob(repo, &d, size).await })
            .buffer_unordered(at_once.max(1))
            .collect::<Vec<()>>()
            .await;
    }
}

/// The latency probe: a manifest GET (by tag, rotating through the list) every `every`,
/// from a thread and runtime of its own, until `stop`; the latencies in ms and the errors.
fn probe(
    base: &str,
    images: &[String],
    auth: Option<(String, String)>,
    ca: Vec<reqwest::Certificate>,
    every: Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> (Vec<f64>, u64) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return (Vec::new(), 1);
    };
    rt.block_on(async {
        ferry_base::tls::install();
        let mut b = reqwest::Client::builder().no_proxy();
        if !ca.is_empty() {
            b = b.tls_certs_merge(ca);
        }
        let Ok(http) = b.build() else {
            return (Vec::new(), 1);
        };
        let client = Client {
            http,
            base: base.to_string(),
            auth,
            hash: false,
            tally: Arc::new(Mutex::new(Tally::default())),
        };
        // The connection (and TLS handshake) first, as a node's ping does.
        let _ = client.get(&format!("{base}/v2/")).send().await;
        let mut i = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let tick = tokio::time::sleep(every);
            if let Some((repo, tag)) = images[i % images.len()].rsplit_once(':') {
                client.manifest(repo, tag).await;
            }
            i += 1;
            tick.await;
        }
        let t = client.tally();
        (t.manifest_ms.clone(), t.errors)
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let images: Vec<String> = std::fs::read_to_string(&args.images)
        .with_context(|| format!("cannot read {}", args.images.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if images.is_empty() {
        bail!("{} lists no image", args.images.display());
    }
    let password = std::env::var("PULL_LOAD_PASSWORD").unwrap_or_default();
    let auth = args.user.clone().map(|u| (u, password));
    let ca = match &args.ca_file {
        Some(p) => {
            let pem = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            reqwest::Certificate::from_pem_bundle(&pem)
                .context("the CA file holds no PEM certificate")?
        }
        None => Vec::new(),
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let per_client = args.per_client.unwrap_or(images.len()).min(images.len());
    let mut clients = FuturesUnordered::new();
    ferry_base::tls::install();
    for i in 0..args.clients {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .http2_adaptive_window(true);
        if !ca.is_empty() {
            b = b.tls_certs_merge(ca.clone());
        }
        let client = Client {
            http: b.build().context("building an HTTP client")?,
            base: args.url.trim_end_matches('/').to_string(),
            auth: auth.clone(),
            hash: args.hash,
            tally: tally.clone(),
        };
        let start = i * images.len() / args.clients;
        let mine: Vec<String> = (0..per_client)
            .map(|k| images[(start + k) % images.len()].clone())
            .collect();
        let at_once = args.layers_at_once;
        clients.push(async move {
            let ping = format!("{}/v2/", client.base);
            if let Err(e) = async { client.get(&ping).send().await?.error_for_status() }.await {
                client.tally().error(format!("GET {ping}: {e}"));
            }
            let mut seen = HashSet::new();
            for reference in &mine {
                client.pull(reference, &mut seen, at_once).await;
            }
        });
    }
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let stop = stop.clone();
        let base = args.url.trim_end_matches('/').to_string();
        let images = images.clone();
        let every = Duration::from_millis(args.probe_ms.max(1));
        let auth = auth.clone();
        let ca = ca.clone();
        std::thread::spawn(move || probe(&base, &images, auth, ca, every, &stop))
    };
    while clients.next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut probed, probe_errors) = probe.join().unwrap_or_default();
    probed.sort_by(f64::total_cmp);
    let t = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut ms = t.manifest_ms.clone();
    ms.sort_by(f64::total_cmp);
    let out = json!({
        "clients": args.clients,
        "images_per_client": per_client,
        "bytes": t.bytes,
        "seconds": r2(seconds),
        "mb_per_s": r2(t.bytes as f64 / 1e6 / seconds),
        "requests": t.requests,
        "manifests": ms.len(),
        "manifest_ms": {
            "p50": r2(percentile(&ms, 50.0)),
            "p90": r2(percentile(&ms, 90.0)),
            "p99": r2(percentile(&ms, 99.0)),
            "max": r2(ms.last().copied().unwrap_or(0.0)),
        },
        "probe_manifest_ms": {
            "n": probed.len(),
            "p50": r2(percentile(&probed, 50.0)),
            "p90": r2(percentile(&probed, 90.0)),
            "p99": r2(percentile(&probed, 99.0)),
            "max": r2(probed.last().copied().unwrap_or(0.0)),
        },
        "errors": t.errors + probe_errors,
        "error_samples": t.samples,
    });
    println!("{out}");
    Ok(())
}
