//! `ferry serve` for people and monitoring: the status page at `/`, rendered by real headless
//! Chromium (image names, the check's progress, a withdrawn blob and the image it breaks,
//! the login of `--htpasswd`), with a screenshot; `/metrics` parsed by the Prometheus
//! project's own Python parser (`prometheus_client`); and a hostile client (a garbage `Host`,
//! a thousand distinct paths and odd methods) that neither gets markup into the page nor
//! grows the number of series.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::serve::Server;
use crate::support::fixtures::BlobKind;
use crate::support::*;

/// The fixtures bundle with one byte flipped in a layer only etcd uses: the bundle, the
/// layer's digest, and the etcd image.
fn corrupt_bundle(sandbox: &Sandbox) -> (PathBuf, String, FixtureImage) {
    let etcd = fixture(ETCD);
    let others: Vec<FixtureImage> = fixtures()
        .into_iter()
        .filter(|i| i.repository != etcd.repository)
        .collect();
    let layer = etcd
        .blobs
        .iter()
        .find(|b| b.kind == BlobKind::Layer && others.iter().all(|o| o.blob(&b.digest).is_none()))
        .expect("an etcd-only layer")
        .clone();
    let mut data = std::fs::read(fixtures_bundle()).expect("read");
    let at = data
        .windows(64)
        .position(|w| w == &layer.bytes[..64])
        .expect("the layer in the tar");
    data[at + 100] ^= 0xff;
    let corrupt = sandbox.work().join("corrupt.tar");
    std::fs::write(&corrupt, &data).expect("write");
    (corrupt, layer.digest, etcd)
}

/// The distinct config and layer blobs of the fixtures: what the check counts.
fn fixture_blobs() -> (u64, u64) {
    let mut seen = BTreeSet::new();
    let mut bytes = 0u64;
    for img in fixtures() {
        for b in &img.blobs {
            if seen.insert(b.digest.clone()) {
                bytes += b.bytes.len() as u64;
            }
        }
    }
    (seen.len() as u64, bytes)
}

/// Headless Chromium with its own profile, and every request that is not to 127.0.0.1 sent
/// to a proxy that is not there: nothing leaves the machine.
fn chromium(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let profile = sandbox.work().join(format!(
        "chromium-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--proxy-server=http://127.0.0.1:9",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium (scripts/test.sh installs it)")
}

/// The DOM Chromium renders for `url`, as text with the tags removed.
fn rendered(sandbox: &Sandbox, url: &str) -> (String, String) {
    let o = chromium(sandbox, &["--dump-dom", url]);
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && dom.contains("</html>"),
        "chromium --dump-dom {url}: {}\n{dom}",
        String::from_utf8_lossy(&o.stderr)
    );
    (dom.clone(), text_of(&dom))
}

/// The text of an HTML document: tags dropped, the five entities decoded, spaces collapsed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `/metrics` of `s`, parsed by `prometheus_client.parser`: every sample as
/// (family name, family type, sample name, labels, value).
fn scrape(url: &str) -> Vec<Sample> {
    let r = http::get(&format!("{url}/metrics")).expect("GET /metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    parse_metrics(&r.text())
}

fn parse_metrics(text: &str) -> Vec<Sample> {
    const PARSE: &str = "
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        out.append([f.name, f.type, s.name, s.labels, s.value])
print(json.dumps(out))
";
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh installs prometheus_client)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("python3");
    assert!(
        o.status.success(),
        "prometheus_client refuses the text: {}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&o.stdout).expect("json");
    parsed
        .into_iter()
        .map(|s| {
            let labels = s[3]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            (
                s[0].as_str().unwrap_or_default().to_string(),
                s[1].as_str().unwrap_or_default().to_string(),
                s[2].as_str().unwrap_or_default().to_string(),
                labels,
                s[4].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// (family name, family type, sample name, labels, value).
type Sample = (String, String, String, HashMap<String, String>, f64);
type Samples = [Sample];

/// The value of the sample `name` with exactly `labels`.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(_, _, n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.4)
}

fn family_type(samples: &Samples, name: &str) -> Option<String> {
    samples
        .iter()
        .find(|(f, ..)| f == name)
        .map(|s| s.1.clone())
}

/// Polls `/metrics` until no blob is pending.
fn checked(url: &str) -> Vec<Sample> {
    for _ in 0..300 {
        let samples = scrape(url);
        if value(&samples, "ferry_serve_blobs", &[("state", "pending")]) == Some(0.0) {
            return samples;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the background check did not finish in 30 s");
}

fn htpasswd(sandbox: &Sandbox) -> PathBuf {
    let line = Command::new("htpasswd")
        .args(["-nbB", "-C", "4", USERNAME, PASSWORD])
        .output()
        .expect("htpasswd");
    let path = sandbox.work().join("htpasswd");
    std::fs::write(&path, &line.stdout).expect("write htpasswd");
    path
}

/// Where the screenshot goes: `docs/serve-status.png` in the repository when
/// `FERRY_UPDATE_DOCS=1` (so the README's picture is made by this test), else the sandbox.
fn screenshot_path(sandbox: &Sandbox) -> PathBuf {
    if std::env::var_os("FERRY_UPDATE_DOCS").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).expect("mkdir docs");
        docs.join("serve-status.png")
    } else {
        sandbox.work().join("serve-status.png")
    }
}

#[test]
fn the_status_page_in_chromium_shows_images_progress_and_a_withdrawn_blob() {
    let sandbox = Sandbox::new();
    let (corrupt, layer, etcd) = corrupt_bundle(&sandbox);
    let (blobs, bytes) = fixture_blobs();

    // In the background: the corrupt blob is hit by a client before (or while) it is checked.
    let s = Server::start(&sandbox, &[&corrupt], &[]);
    let blob_url = format!("{}/v2/{}/blobs/{}", s.url, etcd.repository, layer);
    let _ = http::get(&blob_url);
    let again = http::get(&blob_url).expect("GET");
    assert_eq!(again.status, 404, "withdrawn once found");
    // `/` does not change what a client probing /v2/ gets.
    let base = http::get(&format!("{}/v2/", s.url)).expect("GET /v2/");
    assert_eq!((base.status, base.text()), (200, "{}".to_string()));
    let (dom, text) = rendered(&sandbox, &format!("{}/", s.url));
    for img in fixtures() {
        assert!(
            text.contains(&img.reference()),
            "{} on the page:\n{text}",
            img.reference()
        );
    }
    assert!(text.contains("linux/amd64"), "platforms:\n{text}");
    assert!(
        text.contains(&format!("/ {blobs} blobs")),
        "the total of blobs ({blobs}):\n{text}"
    );
    let withdrawn = text
        .split("Withdrawn blobs")
        .nth(1)
        .and_then(|t| t.split("Images (").next())
        .unwrap_or_default()
        .to_string();
    assert!(
        withdrawn.contains(&layer) && withdrawn.contains(&etcd.reference()),
        "the withdrawn blob and the image it breaks:\n{withdrawn}"
    );
    assert!(
        text.contains(&format!("- url: {} is_default: true", s.host)),
        "cluster.yml with the real host and port:\n{text}"
    );
    assert!(!dom.contains("<script"), "no script:\n{dom}");
    drop(s);

    // Everything checked before listening: the numbers are final.
    let s = Server::start(&sandbox, &[&corrupt], &["--verify-first"]);
    let (_, text) = rendered(&sandbox, &format!("{}/", s.url));
    assert!(
        text.contains(&format!(
            "Checked {blobs} / {blobs} blobs, {} / {}",
            human(bytes),
            human(bytes)
        )) && text.contains(&format!("{} verified, 1 withdrawn, 0 pending", blobs - 1)),
        "final progress ({blobs} blobs, {bytes} bytes):\n{text}"
    );
    assert!(
        text.contains("Complete: 1 of") && text.contains(&layer),
        "{text}"
    );

    // The picture for the README.
    let png = screenshot_path(&sandbox);
    let o = chromium(
        &sandbox,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,1600",
            &format!("{}/", s.url),
        ],
    );
    let shot = std::fs::read(&png).unwrap_or_default();
    assert!(
        o.status.success() && shot.starts_with(b"\x89PNG\r\n\x1a\n") && shot.len() > 20_000,
        "a screenshot at {}: {}",
        png.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Sizes as the page prints them (decimal units, one decimal).
fn human(n: u64) -> String {
    let units = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in units {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[test]
fn the_status_page_needs_the_htpasswd_login() {
    let sandbox = Sandbox::new();
    let users = htpasswd(&sandbox);
    let s = Server::start(
        &sandbox,
        &[fixtures_bundle()],
        &["--htpasswd", users.to_str().expect("path")],
    );
    for path in ["/", "/metrics"] {
        let r = http::get(&format!("{}{path}", s.url)).expect("GET");
        assert_eq!(r.status, 401, "{path} without a login: {}", r.text());
        assert!(
            r.header("www-authenticate")
                .is_some_and(|c| c.starts_with("Basic ")),
            "{path}: {:?}",
            r.headers
        );
        assert!(
            !r.text().contains("mirrored-pause"),
            "{path}: nothing leaks"
        );
    }
    // Chromium without a login gets the refusal (headless, it cannot ask for one), not the
    // page.
    let o = chromium(&sandbox, &["--dump-dom", &format!("{}/", s.url)]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        !dom.contains(&fixture(PAUSE).reference()) && !dom.contains("Verification"),
        "{dom}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ERR_INVALID_AUTH_CREDENTIALS")
            || dom.contains("UNAUTHORIZED"),
        "refused: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // With it, the page.
    let (_, text) = rendered(
        &sandbox,
        &format!("http://{USERNAME}:{PASSWORD}@{}/", s.host),
    );
    assert!(
        text.contains(&fixture(PAUSE).reference()) && text.contains("Verification"),
        "{text}"
    );
    let login = format!(
        "Basic {}",
        base64_encode(format!("{USERNAME}:{PASSWORD}").as_bytes())
    );
    let r = http::request(
        "GET",
        &format!("{}/metrics", s.url),
        &[("Authorization", &login)],
        &[],
    )
    .expect("GET /metrics");
    assert_eq!(r.status, 200);
    assert!(!parse_metrics(&r.text()).is_empty());
}

fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn metrics_parse_with_prometheus_client_and_count_what_happened() {
    let sandbox = Sandbox::new();
    let (blobs, bytes) = fixture_blobs();
    let s = Server::start(&sandbox, &[fixtures_bundle()], &[]);
    let pause = fixture(PAUSE);
    let manifest_url = format!("{}/v2/{}/manifests/{}", s.url, pause.repository, pause.tag);
    for _ in 0..2 {
        let r = http::request("GET", &manifest_url, &[("Accept", &pause.media_type)], &[])
            .expect("GET manifest");
        assert_eq!(r.status, 200);
    }
    let missing =
        http::get(&format!("{}/v2/{}/manifests/nope", s.url, pause.repository)).expect("GET");
    assert_eq!(missing.status, 404);
    let samples = checked(&s.url);

    assert_eq!(
        family_type(&samples, "ferry_serve_http_requests").as_deref(),
        Some("counter")
    );
    let get_manifest = [("method", "GET"), ("route", "manifest"), ("status", "200")];
    assert_eq!(
        value(&samples, "ferry_serve_http_requests_total", &get_manifest),
        Some(2.0),
        "{samples:?}"
    );
    assert_eq!(
        value(
            &samples,
            "ferry_serve_http_requests_total",
            &[("method", "GET"), ("route", "manifest"), ("status", "404")]
        ),
        Some(1.0)
    );
    let sent = value(
        &samples,
        "ferry_serve_http_sent_bytes_total",
        &[("route", "manifest")],
    )
    .expect("bytes sent for manifests");
    assert!(
        sent >= 2.0 * pause.manifest.len() as f64,
        "{sent} bytes sent, manifests of {} bytes",
        pause.manifest.len()
    );
    assert_eq!(
        family_type(&samples, "ferry_serve_http_request_duration_seconds").as_deref(),
        Some("histogram")
    );
    assert_eq!(
        value(
            &samples,
            "ferry_serve_http_request_duration_seconds_count",
            &[("route", "manifest")]
        ),
        Some(3.0)
    );
    // The scrape itself holds an active connection.
    let active = value(
        &samples,
        "ferry_serve_connections_open",
        &[("state", "active")],
    )
    .expect("open connections");
    assert!(active >= 1.0, "{active}");
    assert!(
        value(
            &samples,
            "ferry_serve_connections_refused_total",
            &[("reason", "busy")]
        )
        .is_some()
    );
    assert_eq!(
        value(&samples, "ferry_serve_blobs", &[("state", "verified")]),
        Some(blobs as f64)
    );
    assert_eq!(
        value(&samples, "ferry_serve_blobs", &[("state", "withdrawn")]),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "ferry_serve_blob_bytes", &[("state", "verified")]),
        Some(bytes as f64)
    );
    drop(s);

    // A corrupt blob: withdrawn, and counted as such.
    let (corrupt, _, _) = corrupt_bundle(&sandbox);
    let s = Server::start(&sandbox, &[&corrupt], &["--verify-first"]);
    let samples = scrape(&s.url);
    assert_eq!(
        value(&samples, "ferry_serve_blobs", &[("state", "withdrawn")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "ferry_serve_blobs", &[("state", "verified")]),
        Some((blobs - 1) as f64)
    );
    drop(s);

    // Turned off: 404.
    let s = Server::start(&sandbox, &[fixtures_bundle()], &["--no-metrics"]);
    let r = http::get(&format!("{}/metrics", s.url)).expect("GET");
    assert_eq!(r.status, 404, "{}", r.text());
    let page = http::get(&format!("{}/", s.url)).expect("GET /");
    assert!(!page.text().contains("href=\"/metrics\""), "no link to it");
}

/// One raw HTTP/1.1 request with exactly these header lines; the whole response.
fn raw(host_port: &str, head: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(host_port).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(head.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_hostile_client_gets_no_markup_into_the_page_and_no_series_into_the_metrics() {
    let sandbox = Sandbox::new();
    let s = Server::start(&sandbox, &[fixtures_bundle()], &[]);
    let listen = s.host.clone();
    for host in [
        "<script>alert(1)</script>".to_string(),
        "evil.example\"><img src=x onerror=alert(1)>".to_string(),
        "a".repeat(6000),
        "ok.example:80<b>".to_string(),
    ] {
        let page = raw(
            &s.host,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            page.starts_with("HTTP/1.1 200"),
            "{}",
            &page[..page.len().min(300)]
        );
        assert!(
            !page.contains("<script") && !page.contains("<img") && !page.contains("<b>"),
            "the Host's markup is not on the page"
        );
        assert!(
            !page.contains("aaaaaaaaaaaaaaaa"),
            "an overlong Host is not used"
        );
        assert!(
            page.contains(&format!("- url: {listen}\n")),
            "the listen address instead"
        );
    }
    // A plain name is believed (it is what the person typed).
    let page = raw(
        &s.host,
        "GET / HTTP/1.1\r\nHost: registry.lan:5000\r\nConnection: close\r\n\r\n",
    );
    assert!(page.contains("- url: registry.lan:5000\n"), "{page}");

    // A thousand distinct paths and a few odd methods: the series stay a fixed few.
    let seed = std::process::id();
    for i in 0..1000u32 {
        let r = format!("{:08x}", (i ^ seed).wrapping_mul(2_654_435_761));
        let (method, path) = match i % 5 {
            0 => ("GET", format!("/{r}")),
            1 => ("GET", format!("/v2/{r}/manifests/{r}")),
            2 => ("HEAD", format!("/v2/x{r}/blobs/sha256:{r}")),
            3 => ("BREW", format!("/v2/{r}/tags/list")),
            _ => ("DELETE", format!("/v2/{r}/_catalog/{r}?{r}")),
        };
        let resp = raw(
            &s.host,
            &format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        );
        assert!(resp.starts_with("HTTP/1.1 "), "{method} {path}: {resp}");
    }
    let r = http::get(&format!("{}/metrics", s.url)).expect("GET /metrics");
    let text = r.text();
    let samples = parse_metrics(&text);
    let requests: Vec<_> = samples
        .iter()
        .filter(|(_, _, n, ..)| n == "ferry_serve_http_requests_total")
        .collect();
    assert!(
        !requests.is_empty() && requests.len() <= 12,
        "a fixed few series of requests, not one per path: {requests:?}"
    );
    let total: f64 = requests.iter().map(|s| s.4).sum();
    assert!(total >= 1000.0, "every request counted: {total}");
    assert!(
        text.lines().filter(|l| !l.starts_with('#')).count() < 150,
        "a bounded number of series in all:\n{text}"
    );
    let labels: BTreeSet<&str> = samples
        .iter()
        .flat_map(|(_, _, _, l, _)| l.values().map(String::as_str))
        .collect();
    for l in &labels {
        assert!(
            l.len() < 20 && !l.contains('/'),
            "label values come from a fixed set, never from the request: {l:?}"
        );
    }
    assert!(labels.contains("other"), "{labels:?}");
}
