//! The status page's HTML ([`render`]): one document, its style inline, no script. Every
//! text that comes from a bundle, the file system or a request goes through [`esc`].

use std::fmt::Write as _;

use super::{Setup, Tls};
use crate::catalog::ServedImage;
use crate::check::{Progress, WithdrawnBlob};

/// A bundle as the page lists it.
pub struct BundleRow {
    /// Its file.
    pub path: String,
    /// Its size on disk.
    pub size: u64,
    /// Images served from it.
    pub images: usize,
}

/// Everything the page shows.
pub struct View<'a> {
    /// `host:port`, as the client reached the server.
    pub host: &'a str,
    /// How the server was set up.
    pub setup: &'a Setup,
    /// The images served, by name.
    pub images: Vec<&'a ServedImage>,
    /// How many repositories hold them.
    pub repositories: usize,
    /// The bundles.
    pub bundles: Vec<BundleRow>,
    /// Images of the bundles that are not served, and why.
    pub skipped: &'a [(String, String)],
    /// The check's progress.
    pub progress: Progress,
    /// The blobs it withdrew.
    pub withdrawn: Vec<WithdrawnBlob>,
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, for text and attribute values alike.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes in decimal units (kB, MB, GB), as ferry prints sizes everywhere.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        (part as f64 * 100.0 / whole as f64).min(100.0)
    }
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2430;background:#f4f6f9}
header{background:#1d3557;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
main{padding:8px 28px 28px;max-width:1100px}
section{background:#fff;border:1px solid #d9dee7;border-radius:6px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e9ef;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f2f6;font-weight:600}
td.n,th.n{text-align:right;white-space:nowrap;overflow-wrap:normal}
td.why{font-size:13px;color:#444}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:#f0f2f6;border:1px solid #d9dee7;border-radius:4px;padding:10px;overflow-x:auto;margin:6px 0 12px}
.bar{height:14px;background:#e6e9ef;border-radius:7px;overflow:hidden;margin:8px 0}
.bar span{display:block;height:100%;background:#2a9d8f}
.bar span.bad{background:#e63946}
.ok{color:#1b7f4b;font-weight:600}.bad{color:#c1121f;font-weight:600}.muted{color:#667085}
.tag{white-space:nowrap;overflow-wrap:normal;display:inline-block;background:#eef1f6;border-radius:3px;padding:0 5px;margin:1px 2px 1px 0;font-size:12.5px}
";

/// The page.
pub fn render(v: &View) -> String {
    let host = esc(v.host);
    let p = &v.progress;
    let mut o = String::with_capacity(16 * 1024 + v.images.len() * 400);
    let pending = p.pending_blobs() > 0;
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
<title>ferry serve on {host}</title><style>{STYLE}</style></head><body>\
<header><h1>ferry serve</h1><p>A read-only registry at <code>{host}</code>: \
{images} images in {repos} repositories from {nb} bundle(s).</p></header><main>",
        // Without a script, the page reloads itself while the check runs.
        refresh = if pending {
            "<meta http-equiv=\"refresh\" content=\"10\">"
        } else {
            ""
        },
        images = v.images.len(),
        repos = v.repositories,
        nb = v.bundles.len(),
    );
    verification(&mut o, v);
    withdrawn(&mut o, v);
    images(&mut o, v);
    bundles(&mut o, v);
    usage(&mut o, v, &host);
    let metrics = if v.setup.metrics {
        "<a href=\"/metrics\">/metrics</a> (Prometheus) · "
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "<p class=\"muted\">{metrics}<a href=\"/v2/_catalog\">/v2/_catalog</a> · this page reloads every 10 s while blobs are being checked.</p></main></body></html>"
    );
    o
}

fn verification(o: &mut String, v: &View) {
    let p = &v.progress;
    let done = p.pending_blobs() == 0;
    let state = match (done, p.withdrawn_blobs) {
        (true, 0) => format!(
            "<span class=\"ok\">Complete: all {} blobs match their digests.</span>",
            p.total_blobs
        ),
        (true, n) => format!(
            "<span class=\"bad\">Complete: {n} of {} blobs are corrupt and withdrawn.</span>",
            p.total_blobs
        ),
        (false, 0) => "In progress: blobs are served while they are checked; a blob asked for before its turn is checked as it is sent.".to_string(),
        (false, n) => format!(
            "<span class=\"bad\">In progress, {n} corrupt blob(s) withdrawn so far.</span>"
        ),
    };
    let pct = percent(p.checked_bytes(), p.total_bytes);
    let class = if p.withdrawn_blobs > 0 {
        " class=\"bad\""
    } else {
        ""
    };
    let _ = write!(
        o,
        "<section id=\"verification\"><h2>Verification</h2>\
<p id=\"progress\">Checked {checked} / {total} blobs, {cb} / {tb} ({pct:.0}%): \
{verified} verified, {withdrawn} withdrawn, {pending} pending.</p>\
<div class=\"bar\" role=\"progressbar\" aria-valuenow=\"{pct:.0}\" aria-valuemin=\"0\" aria-valuemax=\"100\">\
<span{class} style=\"width:{pct:.1}%\"></span></div><p>{state}</p></section>",
        checked = p.checked_blobs(),
        total = p.total_blobs,
        cb = bytes(p.checked_bytes()),
        tb = bytes(p.total_bytes),
        verified = p.verified_blobs,
        withdrawn = p.withdrawn_blobs,
        pending = p.pending_blobs(),
    );
}

fn withdrawn(o: &mut String, v: &View) {
    o.push_str("<section id=\"withdrawn\"><h2>Withdrawn blobs</h2>");
    if v.withdrawn.is_empty() {
        o.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    o.push_str(
        "<p>These blobs did not match their digests. They are answered 404, so the images \
that use them cannot be pulled until the bundle is copied again.</p>\
<table><thead><tr><th>blob</th><th class=\"n\">size</th><th>why</th><th>images it breaks</th></tr></thead><tbody>",
    );
    for w in &v.withdrawn {
        let images: String = w
            .images
            .iter()
            .map(|i| format!("<span class=\"tag\">{}</span> ", esc(i)))
            .collect();
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"why\">{}</td><td>{images}</td></tr>",
            esc(w.digest.as_str()),
            bytes(w.size),
            esc(&w.why),
        );
    }
    o.push_str("</tbody></table></section>");
}

fn images(o: &mut String, v: &View) {
    let _ = write!(
        o,
        "<section id=\"images\"><h2>Images ({})</h2><table><thead><tr><th>image</th>\
<th>platforms</th><th>digest</th><th>type</th><th class=\"n\">size</th></tr></thead><tbody>",
        v.images.len()
    );
    for img in &v.images {
        let platforms: String = img
            .platforms
            .iter()
            .map(|p| format!("<span class=\"tag\">{}</span>", esc(p)))
            .collect();
        let short = img.digest.as_str();
        let short = short.get(..19).unwrap_or(short);
        let kind = if img.media_type.contains("index") || img.media_type.contains("list") {
            "index"
        } else {
            "manifest"
        };
        let _ = write!(
            o,
            "<tr><td><code>{name}</code><br><span class=\"muted\">from {source}</span></td>\
<td>{platforms}</td><td><code title=\"{digest}\">{short}…</code></td>\
<td class=\"n\" title=\"{mt}\" style=\"text-align:left\">{kind}</td><td class=\"n\">{size}</td></tr>",
            name = esc(&img.name),
            source = esc(&img.source),
            digest = esc(img.digest.as_str()),
            short = esc(short),
            mt = esc(&img.media_type),
            size = bytes(img.size),
        );
    }
    o.push_str("</tbody></table>");
    if !v.skipped.is_empty() {
        o.push_str(
            "<h2>Not served</h2><table><thead><tr><th>image</th><th>why</th></tr></thead><tbody>",
        );
        for (name, why) in v.skipped {
            let _ = write!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(name),
                esc(why)
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>");
}

fn bundles(o: &mut String, v: &View) {
    o.push_str(
        "<section id=\"bundles\"><h2>Bundles</h2><table><thead><tr><th>file</th>\
<th class=\"n\">size</th><th class=\"n\">images</th></tr></thead><tbody>",
    );
    for b in &v.bundles {
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&b.path),
            bytes(b.size),
            b.images
        );
    }
    o.push_str("</tbody></table></section>");
}

fn usage(o: &mut String, v: &View, host: &str) {
    let url = if v.setup.prefix.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{}", esc(&v.setup.prefix))
    };
    let _ = write!(
        o,
        "<section id=\"usage\"><h2>Point a cluster at it</h2>\
<p>In <code>cluster.yml</code>, so that <code>rke up</code> pulls every system image from here:</p>\
<pre id=\"cluster-yml\">private_registries:\n  - url: {url}\n    is_default: true</pre>"
    );
    match &v.setup.tls {
        Tls::SelfSigned { ca } => {
            let ca = esc(&ca.display().to_string());
            let _ = write!(
                o,
                "<p>The certificate is signed by ferry's own CA, <code>{ca}</code>. Every node must trust it:</p>\
<pre id=\"ca\"># Docker\nmkdir -p /etc/docker/certs.d/{host}\ncp ca.crt /etc/docker/certs.d/{host}/ca.crt\n\n\
# containerd\nmkdir -p /etc/containerd/certs.d/{host}\ncp ca.crt /etc/containerd/certs.d/{host}/ca.crt\n\
cat &gt; /etc/containerd/certs.d/{host}/hosts.toml &lt;&lt;'EOF'\nserver = \"https://{host}\"\n\
[host.\"https://{host}\"]\n  ca = \"/etc/containerd/certs.d/{host}/ca.crt\"\nEOF</pre>"
            );
        }
        Tls::Given => o.push_str(
            "<p>TLS is served with the given certificate: nodes must trust the CA that issued it \
(for Docker in <code>/etc/docker/certs.d/HOST:PORT/ca.crt</code>, for containerd in its \
<code>certs.d/HOST:PORT/hosts.toml</code>).</p>",
        ),
        Tls::Off => {
            let _ = write!(
                o,
                "<p>This server speaks plain HTTP: nodes must allow it as an insecure registry \
(or serve it with <code>--tls-self-signed DIR</code>).</p>\
<pre id=\"ca\"># Docker: /etc/docker/daemon.json\n{{ \"insecure-registries\": [\"{host}\"] }}\n\n\
# containerd: /etc/containerd/certs.d/{host}/hosts.toml\nserver = \"http://{host}\"\n\
[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]</pre>"
            );
        }
    }
    o.push_str("</section>");
}
