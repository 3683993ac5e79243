//! The transfer report as Markdown, for a ticket: the same content as the HTML one (the
//! chart as a column of bytes). Names come from an untrusted bundle and go through [`esc`],
//! so none can close a table cell, start a link or inject HTML.

use std::fmt::Write as _;

use super::{
    attached, file_name, kind_name, platforms, short_digest, short_media_type, verify_commands,
};
use crate::commands::printer::human_bytes;
use ferry_plan::inventory::{Inventory, Kind};

/// `s` as Markdown text (in a table cell too): punctuation backslash-escaped, `<`, `>` and
/// `&` as entities, line breaks as spaces.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The whole report.
pub fn render(inv: &Inventory) -> String {
    let bundle = inv.kind != Kind::Lock;
    let t = &inv.totals;
    let mut m = format!("# Transfer report: {}\n\n", esc(&file_name(inv)));
    let _ = writeln!(
        m,
        "What this {} holds, as ferry {} read it from its index, lock and manifests (no blob hashed: `ferry verify` checks the bytes).\n",
        kind_name(inv.kind),
        env!("CARGO_PKG_VERSION")
    );
    m.push_str("## Summary\n\n| | |\n| --- | --- |\n");
    let _ = writeln!(m, "| {} | {} |", kind_name(inv.kind), esc(&inv.path));
    if let Some(size) = inv.file_size {
        let _ = writeln!(m, "| file size | {} ({size} bytes) |", human_bytes(size));
    }
    let _ = writeln!(
        m,
        "| images.lock sha256 | {} |",
        esc(inv.lock_digest.as_str())
    );
    let _ = writeln!(m, "| images | {} |", t.images);
    let _ = writeln!(
        m,
        "| platforms | {} ({}), {} platform manifests |",
        t.platforms.len(),
        esc(&t.platforms.join(", ")),
        t.platform_manifests
    );
    if let Some(b) = t.blobs {
        let _ = writeln!(m, "| blobs | {b} |");
    }
    let _ = writeln!(
        m,
        "| bytes | {} ({} bytes) |",
        human_bytes(t.bytes),
        t.bytes
    );
    let _ = writeln!(
        m,
        "| saved by de-duplication | {} (the images one by one: {}) |",
        human_bytes(t.bytes_saved),
        human_bytes(t.bytes_without_dedup)
    );
    if let Some(d) = &inv.delta {
        let _ = writeln!(
            m,
            "| delta-of | {} ({}): {} layers ({}) left out |",
            esc(d.delta_of.as_str()),
            esc(&d.base),
            d.layers_left_out,
            human_bytes(d.bytes_left_out)
        );
    }

    m.push_str("\n## Images\n\n");
    if bundle {
        m.push_str("| Image | Digest | Type | Platforms | Unique | Shared | Left out | Total | Attached |\n| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n");
    } else {
        m.push_str("| Image | Digest | Type | Platforms | Size | Attached |\n| --- | --- | --- | --- | ---: | --- |\n");
    }
    for i in &inv.images {
        let _ = write!(
            m,
            "| {} | {} | {} | {} |",
            esc(&i.name),
            esc(&short_digest(&i.digest)),
            esc(short_media_type(&i.media_type)),
            esc(&platforms(i).replace(',', ", "))
        );
        if bundle {
            let _ = write!(
                m,
                " {} | {} | {} | {} |",
                human_bytes(i.unique_bytes.unwrap_or(0)),
                human_bytes(i.shared_bytes.unwrap_or(0)),
                human_bytes(i.left_out_bytes.unwrap_or(0)),
                human_bytes(i.bytes)
            );
        } else {
            let _ = write!(m, " {} |", human_bytes(i.bytes));
        }
        let _ = writeln!(m, " {} |", esc(&attached(i)));
    }

    if let Some(p) = &inv.parts {
        let _ = writeln!(
            m,
            "\n## Parts\n\n{} in {} parts, {} bytes, sha256 {} (as recorded in its .parts file).\n\n| Part | Size (bytes) | sha256 |\n| --- | ---: | --- |",
            esc(&p.bundle),
            p.parts.len(),
            p.size,
            esc(p.sha256.hex())
        );
        for e in &p.parts {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                esc(&e.name),
                e.size,
                esc(e.sha256.hex())
            );
        }
    }

    m.push_str("\n## On arrival\n\nCheck the bundle before importing it:\n\n```sh\n");
    for c in verify_commands(inv) {
        // A fenced block shows its text as is: only a fence-closing line could escape it.
        m.push_str(&c.replace("```", "'''"));
        m.push('\n');
    }
    m.push_str("```\n");
    m
}
