//! `ferry inspect BUNDLE|PARTS|LOCK`: what a bundle, a split bundle or a lock holds, without
//! hashing anything. The model is [`ferry_plan::inventory`]; this module opens the input and
//! hands the record to the renderers: [`text`] (the table on stdout), [`html`] (the
//! self-contained transfer report) and [`markdown`] (the same for a ticket).

pub mod html;
pub mod markdown;
pub mod text;

use std::path::Path;

use anyhow::Context as _;

use super::printer::Printer;
use crate::cli::InspectArgs;
use crate::error::Exit;
use ferry_plan::LockFile;
use ferry_plan::inventory::{ImageSummary, Inventory, Kind};
use ferry_store::bundle::{BundleError, BundleReader, BundleSource};

/// Runs `ferry inspect`.
pub fn run(args: &InspectArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let inv = open(&args.path)?;
    if let Some(path) = &args.html {
        ferry_base::fsutil::write_atomic(path, html::render(&inv).as_bytes())
            .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
        printer.say(format!("wrote the transfer report {}", path.display()));
    }
    if let Some(path) = &args.markdown {
        ferry_base::fsutil::write_atomic(path, markdown::render(&inv).as_bytes())
            .with_context(|| format!("cannot write the Markdown report {}", path.display()))?;
        printer.say(format!("wrote the Markdown report {}", path.display()));
    }
    if printer.is_json() {
        printer.json(&inv)?;
    } else {
        printer.data(None, &text::render(&inv))?;
    }
    Ok(Exit::Success)
}

/// The inventory of `path`: a bundle (or split bundle), else a lock file.
pub fn open(path: &Path) -> anyhow::Result<Inventory> {
    let shown = path.display().to_string();
    if !path.exists() {
        anyhow::bail!(
            "{shown} does not exist: give a bundle (.tar), its .parts file, or an images.lock"
        );
    }
    match BundleReader::open(path) {
        Ok(reader) => {
            let source = BundleSource::new(reader);
            Ok(Inventory::of_bundle(&shown, &source)?)
        }
        Err(BundleError::NotABundle { .. }) => {
            let bytes =
                ferry_base::fsutil::read_small_bytes(path, ferry_base::fsutil::MAX_TEXT_FILE)
                    .with_context(|| format!("cannot read {shown}"))?;
            let text = std::str::from_utf8(&bytes).with_context(|| {
                format!("{shown} is neither a ferry bundle nor an images.lock (not UTF-8 text)")
            })?;
            let lock = LockFile::parse(text, &shown)
                .with_context(|| format!("{shown} is neither a ferry bundle nor an images.lock"))?;
            Ok(Inventory::of_lock(&shown, &lock, &bytes))
        }
        Err(e) => Err(e.into()),
    }
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(d: &ferry_oci::digest::Digest) -> String {
    let hex = d.hex();
    format!("{}:{}", d.algorithm(), hex.get(..12).unwrap_or(hex))
}

/// A media type as a short word: `oci-index`, `oci-manifest`, `docker-list`, `docker-v2`.
pub fn short_media_type(media_type: &str) -> &str {
    use ferry_oci::media_types as m;
    match m::strip_params(media_type) {
        m::OCI_INDEX => "oci-index",
        m::OCI_MANIFEST => "oci-manifest",
        m::DOCKER_MANIFEST_LIST => "docker-list",
        m::DOCKER_MANIFEST => "docker-v2",
        other => other,
    }
}

/// The platforms, comma-separated (`-` for none).
pub fn platforms(i: &ImageSummary) -> String {
    if i.platforms.is_empty() {
        "-".into()
    } else {
        i.platforms.join(",")
    }
}

/// What is attached to an image: `1 attestation`, `1 sig, 1 sbom`, `sig of NAME`, or `-`.
pub fn attached(i: &ImageSummary) -> String {
    if let Some(owner) = &i.attached_to {
        return format!("attached to {owner}");
    }
    let mut parts = Vec::new();
    match i.attestations {
        0 => {}
        1 => parts.push("1 attestation".to_string()),
        n => parts.push(format!("{n} attestations")),
    }
    for (kind, n) in &i.cosign {
        parts.push(format!("{n} {kind}"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The file name of the inspected path (what the verify command names on arrival).
pub fn file_name(inv: &Inventory) -> String {
    Path::new(&inv.path)
        .file_name()
        .map_or_else(|| inv.path.clone(), |n| n.to_string_lossy().into_owned())
}

/// The commands that check the bundle on arrival.
pub fn verify_commands(inv: &Inventory) -> Vec<String> {
    let name = file_name(inv);
    match (inv.kind, &inv.delta) {
        (Kind::Lock, _) => vec![format!(
            "ferry verify --lock {name} --to REGISTRY   # once imported"
        )],
        (Kind::SplitBundle, d) => {
            let parts = inv
                .parts
                .as_ref()
                .map_or(name.clone(), |p| format!("{}.parts", p.bundle));
            let mut v = vec![
                format!("sha256sum -c {parts}"),
                format!("ferry verify {parts}"),
            ];
            if let Some(d) = d {
                v[1].push_str(&format!(" --base {}", d.base));
            }
            v
        }
        (Kind::Bundle, Some(d)) => vec![format!("ferry verify {name} --base {}", d.base)],
        (Kind::Bundle, None) => vec![format!("ferry verify {name}")],
    }
}

/// What the kind of input is called in reports.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bundle => "bundle",
        Kind::SplitBundle => "split bundle",
        Kind::Lock => "images.lock",
    }
}

#[cfg(test)]
mod tests;
