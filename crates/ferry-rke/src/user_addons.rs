//! The images of a cluster's own addons: `addons` (inline manifests) and `addons_include`
//! (local files, relative to the cluster.yml's directory, and `http(s)://` URLs fetched as
//! `--metadata` URLs are, with the same proxy, CA files, time limit, size cap, cache and
//! `--offline`). `rke up` applies these as written: the default private registry does not
//! rewrite them.
//!
//! Every document of every source is read as YAML. Images are found by shape, not by kind:
//! any `spec` object with a `containers` list is a pod spec (a Pod's `spec`, a Deployment's
//! `spec.template.spec`, a CronJob's `spec.jobTemplate.spec.template.spec`, an item of a
//! `List`, a custom resource's pod template), and the `image` of each of its `containers`,
//! `initContainers` and `ephemeralContainers` is listed. Sizes, documents and depth are
//! capped ([`MAX_FILE_BYTES`], [`MAX_DOCUMENTS`], [`MAX_INCLUDES`], [`MAX_DEPTH`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cluster::ClusterConfig;
use super::remote::{self, RemoteError, RemoteOptions};
use ferry_base::bounded;

/// The largest `addons_include` file read from disk (a URL has the download cap,
/// [`remote::MAX_BYTES`]). Real addon manifests are KiB to a few MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The most YAML documents one source may hold.
pub const MAX_DOCUMENTS: usize = 10_000;

/// The most `addons_include` entries.
pub const MAX_INCLUDES: usize = 1_000;

/// The deepest nesting walked in a document.
pub const MAX_DEPTH: usize = 64;

/// Why the addons' images cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    /// A local file cannot be read.
    #[error(
        "cannot read addons_include file {path} (from {cluster}): {source}; fix the path (a relative one is taken from the cluster.yml's directory)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The cluster.yml.
        cluster: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A local file is too large.
    #[error("addons_include file {path} is larger than {}, ferry's limit for an addon manifest; check the path", bounded::size_text(*cap))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        cap: u64,
    },
    /// Not UTF-8.
    #[error("{what} is not UTF-8 text, so not a YAML manifest; check it")]
    NotText {
        /// The source.
        what: String,
    },
    /// Not YAML.
    #[error(
        "{what} cannot be parsed as YAML: {detail}; fix the manifest there (rke up would fail to apply it too)"
    )]
    Yaml {
        /// The source.
        what: String,
        /// The parser's message, with line and column.
        detail: String,
    },
    /// Too many documents.
    #[error("{what} holds more than {} YAML documents, ferry's limit for an addon source; split it or check it", crate::thousands(*cap as u64))]
    TooManyDocuments {
        /// The source.
        what: String,
        /// The cap.
        cap: usize,
    },
    /// Too many includes.
    #[error("{cluster}: addons_include lists more than {} entries, ferry's limit; merge the manifests", crate::thousands(*cap as u64))]
    TooManyIncludes {
        /// The cluster.yml.
        cluster: PathBuf,
        /// The cap.
        cap: usize,
    },
    /// A URL could not be fetched.
    #[error("addons_include {url}: {source}")]
    Remote {
        /// The URL, redacted.
        url: String,
        /// Why.
        source: RemoteError,
    },
}

/// One image of the user addons.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddonImage {
    /// The image, as written.
    pub image: String,
    /// Where it was found: `addons` or `addons_include: PATH|URL`, first first.
    pub selected_by: Vec<String>,
}

fn docs(text: &str, what: &str) -> Result<Vec<Value>, AddonError> {
    // A cheap upper bound before parsing: every document after the first starts with "---".
    let markers = text.lines().filter(|l| l.starts_with("---")).count();
    if markers > MAX_DOCUMENTS {
        return Err(AddonError::TooManyDocuments {
            what: what.to_string(),
            cap: MAX_DOCUMENTS,
        });
    }
    serde_saphyr::from_multiple::<Value>(text).map_err(|e| AddonError::Yaml {
        what: what.to_string(),
        detail: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// The images of one source's documents, in document order.
pub fn images_in(text: &str, what: &str) -> Result<Vec<String>, AddonError> {
    let mut out = Vec::new();
    for doc in docs(text, what)? {
        walk(&doc, 0, &mut out);
    }
    Ok(out)
}

fn walk(v: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "spec"
                    && let Value::Object(spec) = child
                    && spec.get("containers").is_some_and(Value::is_array)
                {
                    for list in ["initContainers", "containers", "ephemeralContainers"] {
                        for c in spec
                            .get(list)
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if let Some(img) = c.get("image").and_then(Value::as_str) {
                                let img = img.trim();
                                if !img.is_empty() && !out.iter().any(|o| o == img) {
                                    out.push(img.to_string());
                                }
                            }
                        }
                    }
                }
                walk(child, depth + 1, out);
            }
        }
        Value::Array(items) => {
            for i in items {
                walk(i, depth + 1, out);
            }
        }
        _ => {}
    }
}

fn add(out: &mut Vec<AddonImage>, images: Vec<String>, source: &str) {
    for image in images {
        match out.iter_mut().find(|a| a.image == image) {
            Some(a) => {
                if !a.selected_by.iter().any(|s| s == source) {
                    a.selected_by.push(source.to_string());
                }
            }
            None => out.push(AddonImage {
                image,
                selected_by: vec![source.to_string()],
            }),
        }
    }
}

/// Every image of `cluster`'s `addons` and `addons_include`, each once, in the order found.
pub fn collect(
    cluster: &ClusterConfig,
    remote_opts: &RemoteOptions,
) -> Result<Vec<AddonImage>, AddonError> {
    let mut out = Vec::new();
    if !cluster.addons.trim().is_empty() {
        let what = format!(
            "addons in {} (lines counted from the start of the addons value)",
            cluster.path.display()
        );
        add(&mut out, images_in(&cluster.addons, &what)?, "addons");
    }
    if cluster.addons_include.len() > MAX_INCLUDES {
        return Err(AddonError::TooManyIncludes {
            cluster: cluster.path.clone(),
            cap: MAX_INCLUDES,
        });
    }
    let dir = cluster.path.parent().unwrap_or(Path::new(""));
    for entry in &cluster.addons_include {
        let entry = entry.trim();
        let (text, what) = if remote::is_url(entry) {
            let (text, shown) = remote::load(entry, remote_opts, |t: &str| {
                Ok::<String, std::convert::Infallible>(t.to_string())
            })
            .map_err(|source| AddonError::Remote {
                url: remote::redact_text(entry),
                source,
            })?;
            (text, format!("addons_include {shown}"))
        } else {
            let p = Path::new(entry.strip_prefix("file://").unwrap_or(entry));
            let path = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            };
            let bytes = bounded::read(&path, MAX_FILE_BYTES).map_err(|e| match e {
                bounded::ReadError::Io(source) => AddonError::Read {
                    path: path.clone(),
                    cluster: cluster.path.clone(),
                    source,
                },
                bounded::ReadError::TooLarge { cap, .. } => AddonError::TooLarge {
                    path: path.clone(),
                    cap,
                },
            })?;
            let what = format!("addons_include file {}", path.display());
            let text =
                String::from_utf8(bytes).map_err(|_| AddonError::NotText { what: what.clone() })?;
            (text, what)
        };
        add(
            &mut out,
            images_in(&text, &what)?,
            &format!("addons_include: {}", remote::redact_text(entry)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
