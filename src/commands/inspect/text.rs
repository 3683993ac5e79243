//! The table `ferry inspect` prints: one line per image, then the totals, the parts and the
//! delta. Plain text, no colour: it reads the same on a terminal and through a pipe.

use super::{attached, kind_name, platforms, short_digest, short_media_type};
use crate::commands::printer::human_bytes;
use ferry_plan::inventory::{Inventory, Kind};

/// Left- and right-aligned columns, two spaces apart; the last column is not padded.
fn table(head: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if right[i] {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                if i != last {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// The whole text of `ferry inspect`.
pub fn render(inv: &Inventory) -> String {
    let bundle = inv.kind != Kind::Lock;
    let delta = inv.delta.is_some();
    let mut out = format!("{} {}\n\n", kind_name(inv.kind), inv.path);
    let rows: Vec<Vec<String>> = inv
        .images
        .iter()
        .map(|i| {
            let mut r = vec![
                i.name.clone(),
                short_digest(&i.digest),
                short_media_type(&i.media_type).to_string(),
                platforms(i),
            ];
            if bundle {
                r.push(human_bytes(i.unique_bytes.unwrap_or(0)));
                r.push(human_bytes(i.shared_bytes.unwrap_or(0)));
                if delta {
                    r.push(human_bytes(i.left_out_bytes.unwrap_or(0)));
                }
            } else {
                r.push(human_bytes(i.bytes));
            }
            r.push(attached(i));
            r
        })
        .collect();
    out.push_str(&if delta {
        table(
            &[
                "IMAGE",
                "DIGEST",
                "TYPE",
                "PLATFORMS",
                "UNIQUE",
                "SHARED",
                "LEFT OUT",
                "ATTACHED",
            ],
            &[false, false, false, false, true, true, true, false],
            &rows,
        )
    } else if bundle {
        table(
            &[
                "IMAGE",
                "DIGEST",
                "TYPE",
                "PLATFORMS",
                "UNIQUE",
                "SHARED",
                "ATTACHED",
            ],
            &[false, false, false, false, true, true, false],
            &rows,
        )
    } else {
        table(
            &["IMAGE", "DIGEST", "TYPE", "PLATFORMS", "SIZE", "ATTACHED"],
            &[false, false, false, false, true, false],
            &rows,
        )
    });
    let t = &inv.totals;
    out.push('\n');
    out.push_str(&format!("images     {}\n", t.images));
    out.push_str(&format!(
        "platforms  {} ({}), {} platform manifests\n",
        t.platforms.len(),
        if t.platforms.is_empty() {
            "none".into()
        } else {
            t.platforms.join(", ")
        },
        t.platform_manifests
    ));
    if let Some(b) = t.blobs {
        out.push_str(&format!("blobs      {b}\n"));
    }
    out.push_str(&format!(
        "bytes      {} ({} bytes)\n",
        human_bytes(t.bytes),
        t.bytes
    ));
    out.push_str(&format!(
        "saved      {} by de-duplication (the images one by one: {})\n",
        human_bytes(t.bytes_saved),
        human_bytes(t.bytes_without_dedup)
    ));
    if let Some(p) = &inv.parts {
        out.push_str(&format!(
            "\nparts of {} ({} bytes, {}):\n",
            p.bundle, p.size, p.sha256
        ));
        let rows: Vec<Vec<String>> = p
            .parts
            .iter()
            .map(|e| vec![e.name.clone(), e.size.to_string(), e.sha256.to_string()])
            .collect();
        out.push_str(&table(
            &["PART", "SIZE", "SHA256"],
            &[false, true, false],
            &rows,
        ));
    }
    if let Some(d) = &inv.delta {
        out.push_str(&format!(
            "\ndelta-of   {} ({}): {} layers ({}) left out\n",
            d.delta_of,
            d.base,
            d.layers_left_out,
            human_bytes(d.bytes_left_out)
        ));
    }
    out
}
