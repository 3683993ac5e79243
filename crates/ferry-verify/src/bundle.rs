//! What only a bundle file can get wrong, checked offline: its structure (`oci-layout`,
//! `index.json`, truncation, `manifest.json` naming what is there), every blob re-hashed
//! against its name (in parallel), and each image's lock entry against index.json and its
//! blobs against the offset table. `import` uses [`image_problem`] to push nothing of an
//! image the bundle cannot carry whole.

use std::collections::BTreeMap;

use futures_util::StreamExt as _;

use super::{Kind, Problem};
use ferry_oci::digest::Digest;
use ferry_plan::resolve::ResolvedImage;
use ferry_store::bundle::BundleSource;
use ferry_store::bundle::read_index;
use ferry_store::bundle::{INDEX_JSON, MANIFEST_JSON, OCI_LAYOUT};

/// Problems of the bundle as a whole (not of one image).
pub fn structure(source: &BundleSource) -> Vec<Problem> {
    let reader = source.reader();
    let mut general = Vec::new();
    match reader.metadata(INDEX_JSON).map(read_index) {
        Some(Ok(entries)) => {
            for e in entries {
                if let Err(why) = e.descriptor {
                    general.push(Problem::new(Kind::Inconsistent, why.to_string()));
                }
            }
        }
        Some(Err(e)) => general.push(Problem::new(
            Kind::Inconsistent,
            format!("index.json is not an OCI index: {e}"),
        )),
        None => general.push(Problem::new(
            Kind::Inconsistent,
            "the bundle has no index.json",
        )),
    }
    if let Some(t) = reader.truncated() {
        general.push(Problem::new(Kind::MissingBlob, t.to_string()));
    }
    if let Err(e) = source.delta() {
        general.push(Problem::new(Kind::Inconsistent, e.to_string()));
    }
    if reader.metadata(OCI_LAYOUT).is_none() {
        general.push(Problem::new(
            Kind::Inconsistent,
            "the bundle has no oci-layout file",
        ));
    }
    // manifest.json (docker load's view): every path it names must be there.
    if let Some(bytes) = reader.metadata(MANIFEST_JSON) {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => {
                for e in v.as_array().into_iter().flatten() {
                    for p in std::iter::once(&e["Config"])
                        .chain(e["Layers"].as_array().into_iter().flatten())
                    {
                        let p = p.as_str().unwrap_or("");
                        let named = p
                            .strip_prefix("blobs/sha256/")
                            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok());
                        let there = named.as_ref().is_some_and(|d| reader.blob(d).is_some());
                        if !there {
                            let missing = Problem::new(
                                Kind::MissingBlob,
                                format!("manifest.json names {p:?}, which is not in the bundle"),
                            );
                            general.push(match &named {
                                Some(d) => missing.at(d),
                                None => missing,
                            });
                        }
                    }
                }
            }
            Err(e) => general.push(Problem::new(
                Kind::Inconsistent,
                format!("manifest.json is not valid JSON: {e}"),
            )),
        }
    }
    general
}

/// Checks every part a split bundle's `.parts` file lists: there, of its size, matching its
/// SHA-256 (parts hashed `parallel` at a time). The problems name each bad part, so a person
/// re-copies just that file; the flag says whether every part is there at its size (the
/// bundle can then be opened and checked further).
pub async fn parts(
    parts_path: &std::path::Path,
    parallel: usize,
    hashed_bytes: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Vec<Problem>, bool), ferry_store::bundle::BundleError> {
    use ferry_store::bundle::PartsFile;
    let list = PartsFile::read(parts_path)?;
    let count = list.parts.len();
    let checks = list.parts.iter().enumerate().map(|(i, p)| {
        let path = parts_path.with_file_name(&p.name);
        let want = p.clone();
        let counted = hashed_bytes.clone();
        async move {
            let shown = format!("part {} of {count}, {}", i + 1, path.display());
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Some((format!("{shown}, is missing: copy it again"), false));
                }
                Err(e) => return Some((format!("{shown}, cannot be read ({e})"), false)),
            };
            if meta.len() != want.size {
                return Some((
                    format!(
                        "{shown}, is {} bytes, the parts file says {}: copy it again",
                        meta.len(),
                        want.size
                    ),
                    false,
                ));
            }
            let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<Digest> {
                let mut h = ferry_oci::digest::Hasher::sha256();
                let mut f = std::fs::File::open(&path)?;
                let mut buf = vec![0u8; 1024 * 1024];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf)?;
                    if n == 0 {
                        return Ok(h.finish());
                    }
                    h.update(&buf[..n]);
                    counted.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
            match hashed {
                Ok(got) if got == want.sha256 => None,
                Ok(got) => Some((
                    format!(
                        "{shown}, does not match its sum in the parts file (sha256 {} instead of {}): copy that file again",
                        got.hex(),
                        want.sha256.hex()
                    ),
                    true,
                )),
                Err(e) => Some((format!("{shown}, cannot be read ({e})"), false)),
            }
        }
    });
    let found: Vec<(String, bool)> = futures_util::stream::iter(checks)
        .buffered(parallel.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let usable = found.iter().all(|(_, readable)| *readable);
    Ok((
        found
            .into_iter()
            .map(|(detail, _)| Problem::new(Kind::BadPart, detail))
            .collect(),
        usable,
    ))
}

/// Re-hashes every blob of the bundle against its name, `parallel` at a time; the corrupt
/// ones with why. Each blob's size is added to `hashed_bytes` once it is hashed (for a bar).
pub async fn rehash(
    source: &BundleSource,
    parallel: usize,
    hashed_bytes: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> BTreeMap<Digest, String> {
    let digests: Vec<(Digest, u64)> = source.reader().blobs().map(|(d, l)| (d, l.size)).collect();
    futures_util::stream::iter(digests)
        .map(|(d, size)| {
            let s = source.clone();
            let counted = hashed_bytes.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let bad = s.reader().verify_blob(&d).err().map(|e| (d, e.to_string()));
                    counted.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                    bad
                })
                .await
                .ok()
                .flatten()
            }
        })
        .buffer_unordered(parallel.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Why an image of the bundle must not be pushed, if it must not: its lock entry disagrees
/// with index.json, or a blob is missing or has another size than its manifest says.
pub fn image_problem(img: &ResolvedImage, source: &BundleSource) -> Option<Problem> {
    let want = img.locked.bundle_digest();
    // By tag; a referrer known by digest alone, by that digest.
    let name = if img.reference.tag().is_none() && img.reference.digest().is_some() {
        img.reference.clone()
    } else {
        img.reference.without_digest()
    };
    let of_image = |kind: Kind, detail: String| Problem::new(kind, detail).of(&img.locked.name);
    match source.indexed(&name) {
        None => {
            return Some(of_image(
                Kind::Inconsistent,
                format!(
                    "images.lock lists it at {want}, but the bundle's index.json has no entry for {name}; the bundle is inconsistent"
                ),
            ));
        }
        // The object at fault is what index.json names instead.
        Some(d) if &d.digest != want => {
            return Some(of_image(Kind::Inconsistent, format!(
                "images.lock says {want} but the bundle's index.json says {}; the bundle is inconsistent",
                d.digest
            )).at(&d.digest));
        }
        Some(_) => {}
    }
    if img.locked.media_type != img.manifests.last().map_or("", |m| m.media_type.as_str()) {
        return Some(
            of_image(
                Kind::Inconsistent,
                format!(
                    "the bundle's manifest {want} is not of the media type images.lock says ({})",
                    img.locked.media_type
                ),
            )
            .at(want),
        );
    }
    let delta = match source.delta() {
        Ok(d) => d.map(|d| d.by_digest()),
        Err(e) => return Some(of_image(Kind::Inconsistent, e.to_string())),
    };
    for (digest, size) in &img.blobs {
        match source.reader().blob(digest) {
            // A layer a delta leaves out is the base's business (import checks the target).
            None if delta
                .as_ref()
                .and_then(|d| d.get(digest))
                .is_some_and(|l| l.size == *size) => {}
            None => {
                return Some(
                    of_image(
                        Kind::MissingBlob,
                        format!(
                            "blob {digest} is not in the bundle (truncated or incomplete bundle)"
                        ),
                    )
                    .at(digest),
                );
            }
            Some(loc) if loc.size != *size => {
                return Some(of_image(Kind::DigestMismatch, format!(
                        "blob {digest} is {} bytes in the bundle, its manifest says {size}; the bundle is corrupt",
                        loc.size
                    )).at(digest));
            }
            Some(_) => {}
        }
    }
    None
}
