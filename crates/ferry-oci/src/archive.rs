//! The docker-archive view of an image (one entry of `docker save`'s `manifest.json`): its
//! names, its config and its layers, for one platform. Classic `docker load` reads only this.

use super::digest::Digest;
use super::manifest::Manifest;

/// One image of a docker-archive `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEntry {
    /// Short docker names, `name:tag` (e.g. `rancher/rke-tools:v0.1.103`).
    pub repo_tags: Vec<String>,
    /// The image config blob.
    pub config: Digest,
    /// The layer blobs, in order.
    pub layers: Vec<Digest>,
}

impl DockerEntry {
    /// The entry of an image manifest named `tag`; `None` for an index.
    pub fn of(manifest: &Manifest, tag: String) -> Option<DockerEntry> {
        match manifest {
            Manifest::Image { config, layers } => Some(DockerEntry {
                repo_tags: vec![tag],
                config: config.digest.clone(),
                layers: layers.iter().map(|l| l.digest.clone()).collect(),
            }),
            Manifest::Index { .. } => None,
        }
    }
}

/// One entry per image (config and layers) with every name it has: two names of one image
/// are one image to `docker load`, as `docker save` writes them. First-seen order.
pub fn merge(entries: impl IntoIterator<Item = DockerEntry>) -> Vec<DockerEntry> {
    let mut out: Vec<DockerEntry> = Vec::new();
    let mut at: std::collections::HashMap<(Digest, Vec<Digest>), usize> =
        std::collections::HashMap::new();
    for e in entries {
        match at.get(&(e.config.clone(), e.layers.clone())) {
            Some(&i) => {
                if let Some(merged) = out.get_mut(i) {
                    for t in e.repo_tags {
                        if !merged.repo_tags.contains(&t) {
                            merged.repo_tags.push(t);
                        }
                    }
                }
            }
            None => {
                at.insert((e.config.clone(), e.layers.clone()), out.len());
                out.push(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
