//! One name per image: a list of (name, reference) pairs with every reference kept once.

use super::Reference;

/// Drops the images that name one already listed (`nginx:1.25` and
/// `docker.io/library/nginx:1.25` are one image), keeping the first name; in order.
pub fn dedupe(images: Vec<(String, Reference)>) -> Vec<(String, Reference)> {
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(images.len());
    for (name, r) in images {
        match seen.entry(r.to_string()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                if first.get() != &name {
                    tracing::info!(
                        "{name} is {}, already listed as {}; exporting it once",
                        first.key(),
                        first.get()
                    );
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(name.clone());
                out.push((name, r));
            }
        }
    }
    out
}
