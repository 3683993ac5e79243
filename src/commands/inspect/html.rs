//! The transfer report as one self-contained HTML file: no external script, font, image or
//! style sheet (it is opened inside the air gap), readable without JavaScript (a few lines
//! sort the image table when it runs), printable on A4 for a change request. Every name in
//! it comes from an untrusted bundle and goes through [`esc`].

use std::fmt::Write as _;

use super::{
    attached, file_name, kind_name, platforms, short_digest, short_media_type, verify_commands,
};
use crate::commands::printer::human_bytes;
use ferry_plan::inventory::{Inventory, Kind};

/// `s` as HTML text or a quoted attribute value (also XML, for the SVG).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --unique: #2f6690; --shared: #9cc5e8; --left: #d9d9d9; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 11pt;
  color: #111; margin: 2em auto; max-width: 62em; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .2em .5em; border-bottom: 1px solid #e3e3e3;
  vertical-align: top; }
th { background: #f2f2f2; }
td.num, th.num, td.nowrap { text-align: right; white-space: nowrap; }
td.nowrap { text-align: left; }
table.kv th { width: 14em; background: none; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
code.sum { word-break: break-all; }
pre { background: #f6f6f6; padding: .6em; white-space: pre-wrap; }
th.sortable { cursor: pointer; }
.legend span { display: inline-block; width: .9em; height: .9em; margin: 0 .3em 0 1em;
  vertical-align: middle; }
svg text { font-family: inherit; font-size: 11px; }
@page { size: A4; margin: 15mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  tr, svg g, pre { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"#;

/// Sorts the image table by the clicked column (numbers by `data-value`); without
/// JavaScript the table stays in the lock's order.
const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById("images-table");
  if (!table) return;
  var heads = table.tHead.rows[0].cells;
  for (var i = 0; i < heads.length; i++) {
    (function (col, th) {
      th.className += " sortable";
      th.title = "sort";
      var asc = true;
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var num = th.getAttribute("data-type") === "num";
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var c = num
            ? Number(x.getAttribute("data-value")) - Number(y.getAttribute("data-value"))
            : x.textContent.localeCompare(y.textContent);
          return asc ? c : -c;
        });
        asc = !asc;
        rows.forEach(function (r) { body.appendChild(r); });
      });
    })(i, heads[i]);
  }
})();
"#;

fn num_cell(out: &mut String, n: u64) {
    let _ = write!(
        out,
        "<td class=\"num\" data-value=\"{n}\" title=\"{n} bytes\">{}</td>",
        esc(&human_bytes(n))
    );
}

/// The bar chart: one bar per image, its unique bytes then its shared bytes (and, in a
/// delta, the bytes left out), on one scale.
fn chart(inv: &Inventory) -> String {
    const LABEL: u64 = 300;
    const BAR: u64 = 420;
    const ROW: u64 = 22;
    let bundle = inv.kind != Kind::Lock;
    let max = inv.images.iter().map(|i| i.bytes).max().unwrap_or(0).max(1);
    let scale = |n: u64| -> f64 { (n as f64) * (BAR as f64) / (max as f64) };
    let height = ROW * inv.images.len() as u64 + 10;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"bytes per image\" width=\"100%\" viewBox=\"0 0 {} {height}\" preserveAspectRatio=\"xMinYMin meet\">",
        LABEL + BAR + 90
    );
    for (n, i) in inv.images.iter().enumerate() {
        let y = n as u64 * ROW + 4;
        let name = esc(&i.name);
        // A long name is cut to fit the label column (the full one is in the bar's title).
        let label: String = if i.name.chars().count() > 48 {
            let tail: String = i.name.chars().rev().take(47).collect();
            format!("...{}", tail.chars().rev().collect::<String>())
        } else {
            i.name.clone()
        };
        let _ = write!(
            s,
            "<g><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL - 6,
            y + 13,
            esc(&label)
        );
        let parts: Vec<(u64, &str, &str)> = if bundle {
            vec![
                (i.unique_bytes.unwrap_or(0), "var(--unique)", "unique"),
                (i.shared_bytes.unwrap_or(0), "var(--shared)", "shared"),
                (i.left_out_bytes.unwrap_or(0), "var(--left)", "left out"),
            ]
        } else {
            vec![(i.bytes, "var(--unique)", "total")]
        };
        let mut x = LABEL as f64;
        for (bytes, fill, what) in parts {
            if bytes == 0 {
                continue;
            }
            let w = scale(bytes).max(1.0);
            let _ = write!(
                s,
                "<rect class=\"{}\" x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" style=\"fill:{fill}\"><title>{name}: {} {what}</title></rect>",
                what.replace(' ', "-"),
                ROW - 6,
                esc(&human_bytes(bytes))
            );
            x += w;
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\">{}</text></g>",
            x + 4.0,
            y + 13,
            esc(&human_bytes(i.bytes))
        );
    }
    s.push_str("</svg>");
    s
}

/// The whole report.
pub fn render(inv: &Inventory) -> String {
    let bundle = inv.kind != Kind::Lock;
    let name = esc(&file_name(inv));
    let t = &inv.totals;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Transfer report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Transfer report: {name}</h1>\n<p>What this {} holds, as ferry {} read it from its index, lock and manifests (no blob hashed: <code>ferry verify</code> checks the bytes).</p>\n",
        kind_name(inv.kind),
        env!("CARGO_PKG_VERSION")
    );
    h.push_str("<h2 id=\"summary\">Summary</h2>\n<table class=\"kv\"><tbody>\n");
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
    };
    kv(
        kind_name(inv.kind),
        format!("<code>{}</code>", esc(&inv.path)),
    );
    if let Some(size) = inv.file_size {
        kv("file size", format!("{} ({size} bytes)", human_bytes(size)));
    }
    kv(
        "images.lock sha256",
        format!(
            "<code class=\"sum\">{}</code>",
            esc(inv.lock_digest.as_str())
        ),
    );
    kv("images", t.images.to_string());
    kv(
        "platforms",
        format!(
            "{} ({}), {} platform manifests",
            t.platforms.len(),
            esc(&t.platforms.join(", ")),
            t.platform_manifests
        ),
    );
    if let Some(b) = t.blobs {
        kv("blobs", b.to_string());
    }
    kv(
        "bytes",
        format!("{} ({} bytes)", human_bytes(t.bytes), t.bytes),
    );
    kv(
        "saved by de-duplication",
        format!(
            "{} (the images one by one: {})",
            human_bytes(t.bytes_saved),
            human_bytes(t.bytes_without_dedup)
        ),
    );
    if let Some(d) = &inv.delta {
        kv(
            "delta-of",
            format!(
                "<code class=\"sum\">{}</code> ({}): {} layers ({}) left out",
                esc(d.delta_of.as_str()),
                esc(&d.base),
                d.layers_left_out,
                human_bytes(d.bytes_left_out)
            ),
        );
    }
    h.push_str("</tbody></table>\n");

    h.push_str("<h2 id=\"images\">Images</h2>\n<table id=\"images-table\">\n<thead><tr><th>Image</th><th>Digest</th><th>Type</th><th>Platforms</th>");
    if bundle {
        h.push_str("<th class=\"num\" data-type=\"num\">Unique</th><th class=\"num\" data-type=\"num\">Shared</th>");
        if inv.delta.is_some() {
            h.push_str("<th class=\"num\" data-type=\"num\">Left out</th>");
        }
    } else {
        h.push_str("<th class=\"num\" data-type=\"num\">Size</th>");
    }
    h.push_str("<th>Attached</th></tr></thead>\n<tbody>\n");
    for i in &inv.images {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"nowrap\"><code title=\"{}\">{}</code></td><td class=\"nowrap\">{}</td><td>{}</td>",
            esc(&i.name),
            esc(i.digest.as_str()),
            esc(&short_digest(&i.digest)),
            esc(short_media_type(&i.media_type)),
            esc(&platforms(i).replace(',', ", "))
        );
        if bundle {
            num_cell(&mut h, i.unique_bytes.unwrap_or(0));
            num_cell(&mut h, i.shared_bytes.unwrap_or(0));
            if inv.delta.is_some() {
                num_cell(&mut h, i.left_out_bytes.unwrap_or(0));
            }
        } else {
            num_cell(&mut h, i.bytes);
        }
        let _ = writeln!(h, "<td>{}</td></tr>", esc(&attached(i)));
    }
    h.push_str("</tbody>\n</table>\n");

    h.push_str("<h2 id=\"chart\">Bytes per image</h2>\n");
    if bundle {
        h.push_str("<p class=\"legend\"><span style=\"background:var(--unique)\"></span>unique to the image<span style=\"background:var(--shared)\"></span>shared with other images (carried once)");
        if inv.delta.is_some() {
            h.push_str("<span style=\"background:var(--left)\"></span>left out (in the older set)");
        }
        h.push_str("</p>\n");
    }
    h.push_str(&chart(inv));
    h.push('\n');

    if let Some(p) = &inv.parts {
        let _ = write!(
            h,
            "<h2 id=\"parts\">Parts</h2>\n<p>{} in {} parts, {} bytes, sha256 <code class=\"sum\">{}</code> (as recorded in its .parts file).</p>\n<table id=\"parts-table\"><thead><tr><th>Part</th><th class=\"num\">Size (bytes)</th><th>sha256</th></tr></thead><tbody>\n",
            esc(&p.bundle),
            p.parts.len(),
            p.size,
            esc(p.sha256.hex())
        );
        for e in &p.parts {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td><code class=\"sum\">{}</code></td></tr>",
                esc(&e.name),
                e.size,
                esc(e.sha256.hex())
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str(
        "<h2 id=\"verify\">On arrival</h2>\n<p>Check the bundle before importing it:</p>\n<pre>",
    );
    let commands: Vec<String> = verify_commands(inv).iter().map(|c| esc(c)).collect();
    h.push_str(&commands.join("\n"));
    h.push_str("</pre>\n");
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}
