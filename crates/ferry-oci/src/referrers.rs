//! OCI 1.1 referrers, as data: the list the referrers API answers (`GET
//! /v2/<name>/referrers/<digest>`, an image index) and the referrers tag schema keeps (the
//! same index under the tag `sha256-<hex>`, for registries without the API); the `subject` a
//! manifest names; the descriptor the API lists for a referrer (its media type, digest and
//! size, its `artifactType` and its annotations, copied from the manifest as the spec says);
//! and the merge of a tag-schema index that someone else wrote with ours, which keeps every
//! entry already there, in its order, and appends the missing ones. Both inputs come from
//! untrusted peers: the caller caps their bytes ([`MAX_LIST_SIZE`]), and the parse keeps only
//! entries that are manifests with a valid digest.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_types::{self, OCI_INDEX};

/// The largest referrers list read (from the API or under the tag schema). A real one lists a
/// few signatures and SBOMs, well under a KiB each.
pub const MAX_LIST_SIZE: u64 = 4 * 1024 * 1024;

/// A referrer as a referrers list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Media type of the referrer manifest.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its `artifactType`, when listed.
    pub artifact_type: Option<String>,
}

/// Why a referrers list cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReferrersError {
    /// Not an image index.
    #[error("the referrers list is not an OCI image index: {0}")]
    Shape(String),
}

/// The whole list as JSON: the index object and its `manifests` array.
fn parse_index(bytes: &[u8]) -> Result<(Map<String, Value>, Vec<Value>), ReferrersError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ReferrersError::Shape(e.to_string()))?;
    let Value::Object(mut obj) = v else {
        return Err(ReferrersError::Shape("not a JSON object".into()));
    };
    let manifests = match obj.remove("manifests") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ReferrersError::Shape("`manifests` is not an array".into())),
    };
    Ok((obj, manifests))
}

/// The entry a JSON descriptor is, if it is a manifest with a valid digest and size.
fn entry_of(v: &Value) -> Option<Entry> {
    let media_type = v.get("mediaType")?.as_str()?;
    media_types::manifest_kind(media_type)?;
    let digest = Digest::parse(v.get("digest")?.as_str()?).ok()?;
    let size = v.get("size")?.as_u64()?;
    Some(Entry {
        media_type: media_type.to_string(),
        digest,
        size,
        artifact_type: v
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The referrers a list names, in its order: each manifest once; descriptors that are not
/// manifests (a blob, a malformed entry) are left out.
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, ReferrersError> {
    let (_, manifests) = parse_index(bytes)?;
    let mut seen = HashSet::new();
    Ok(manifests
        .iter()
        .filter_map(entry_of)
        .filter(|e| seen.insert(e.digest.clone()))
        .collect())
}

/// The digest a manifest's `subject` names, if it has one.
pub fn subject_of(manifest: &[u8]) -> Option<Digest> {
    #[derive(serde::Deserialize)]
    struct Subject {
        digest: String,
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        subject: Option<Subject>,
    }
    let p: Probe = serde_json::from_slice(manifest).ok()?;
    Digest::parse(&p.subject?.digest).ok()
}

/// The descriptor the referrers API lists for `manifest` (of `media_type`, `digest`):
/// `mediaType`, `digest`, `size`, `artifactType` (the manifest's, else its config's media
/// type) and the manifest's `annotations`.
pub fn descriptor_for(manifest: &[u8], media_type: &str, digest: &Digest) -> Value {
    let parsed: Value = serde_json::from_slice(manifest).unwrap_or(Value::Null);
    let mut d = Map::new();
    d.insert("mediaType".into(), Value::String(media_type.to_string()));
    d.insert("digest".into(), Value::String(digest.to_string()));
    d.insert("size".into(), Value::from(manifest.len() as u64));
    let artifact_type = parsed
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| parsed.pointer("/config/mediaType").and_then(Value::as_str));
    if let Some(a) = artifact_type {
        d.insert("artifactType".into(), Value::String(a.to_string()));
    }
    if let Some(a @ Value::Object(m)) = parsed.get("annotations")
        && !m.is_empty()
    {
        d.insert("annotations".into(), a.clone());
    }
    Value::Object(d)
}

/// What a merge leaves for the target's tag-schema index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// Every entry of ours is there already: nothing to write.
    Unchanged,
    /// The new index: every entry that was there, as written and in its order, then ours
    /// that were missing.
    Write(Vec<u8>),
}

/// Merges `ours` (descriptors, as [`descriptor_for`] makes them or as a tag-schema index
/// lists them) into `theirs`, the index the target has under the tag schema (`None`: there is
/// none). Entries are matched by digest; nothing already there is dropped or changed.
pub fn merge(theirs: Option<&[u8]>, ours: &[Value]) -> Result<Merged, ReferrersError> {
    let (mut obj, mut manifests) = match theirs {
        Some(bytes) => parse_index(bytes)?,
        None => {
            let mut obj = Map::new();
            obj.insert("schemaVersion".into(), Value::from(2));
            obj.insert("mediaType".into(), Value::String(OCI_INDEX.into()));
            (obj, Vec::new())
        }
    };
    let mut present: HashSet<String> = manifests
        .iter()
        .filter_map(|m| m.get("digest").and_then(Value::as_str).map(str::to_string))
        .collect();
    let before = manifests.len();
    for d in ours {
        if entry_of(d).is_none() {
            continue;
        }
        let Some(digest) = d.get("digest").and_then(Value::as_str) else {
            continue;
        };
        if present.insert(digest.to_string()) {
            manifests.push(d.clone());
        }
    }
    if manifests.len() == before {
        return Ok(Merged::Unchanged);
    }
    obj.insert("manifests".into(), Value::Array(manifests));
    serde_json::to_vec(&Value::Object(obj))
        .map(Merged::Write)
        .map_err(|e| ReferrersError::Shape(e.to_string()))
}

/// The descriptors of a tag-schema index (ours, from a bundle), as JSON, for [`merge`].
pub fn descriptors(bytes: &[u8]) -> Result<Vec<Value>, ReferrersError> {
    Ok(parse_index(bytes)?.1)
}

#[cfg(test)]
mod tests;
