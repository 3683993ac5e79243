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
mod tests {
    use super::*;

    #[test]
    fn two_names_of_one_image_are_one_entry() {
        let d = |s: &str| Digest::sha256_of(s.as_bytes());
        let e = |tag: &str, layer: &str| DockerEntry {
            repo_tags: vec![tag.into()],
            config: d("c"),
            layers: vec![d(layer)],
        };
        let merged = merge([
            e("a:1", "l"),
            e("b:1", "l"),
            e("c:1", "other"),
            e("a:1", "l"),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].repo_tags, ["a:1", "b:1"]);
        assert_eq!(merged[1].repo_tags, ["c:1"]);
    }
}
