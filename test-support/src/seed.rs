//! Seeding with exact bytes by writing distribution 2.8's filesystem layout directly (before or
//! while the registry runs; every file is written to a temp name and renamed into place):
//!
//! ```text
//! <root>/docker/registry/v2/blobs/sha256/<hh>/<hex>/data                 every blob and manifest
//! <root>/docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link            "sha256:<hex>"
//! <root>/docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
//! <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link
//! <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link
//! ```
//!
//! Fast, byte-exact and independent of ferry's registry client. [`Storage`] also reads the layout
//! back and can corrupt or remove blobs, for tests of verification and error reporting.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::fixtures::FixtureImage;
use super::registry::TestRegistry;
use super::sha256_digest;

/// The distribution storage layout under a registry's storage root.
#[derive(Debug, Clone)]
pub struct Storage {
    v2: PathBuf,
}

fn hex_of(digest: &str) -> &str {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest:?}"));
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "bad digest {digest:?}"
    );
    hex
}

/// Writes `bytes` to `path` atomically (temp file in the same dir, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("path has a parent");
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let tmp = dir.join(format!(
        ".seed-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

impl Storage {
    /// The layout under `storage_dir` (the registry's `rootdirectory`).
    pub fn new(storage_dir: &Path) -> Storage {
        Storage {
            v2: storage_dir.join("docker/registry/v2"),
        }
    }

    /// `…/blobs/sha256/<hh>/<hex>/data`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = hex_of(digest);
        self.v2
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn repo_dir(&self, repository: &str) -> PathBuf {
        assert!(
            !repository.is_empty()
                && repository
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with('_')),
            "bad repository name {repository:?}"
        );
        self.v2.join("repositories").join(repository)
    }

    fn link(&self, path: PathBuf, digest: &str) {
        write_atomic(&path, digest.as_bytes());
    }

    /// Stores the blob data only (no repository link); returns its digest.
    pub fn put_blob_data(&self, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            write_atomic(&path, bytes);
        }
        digest
    }

    /// Stores a blob (layer or config) and links it into `repository`; returns its digest.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = self.put_blob_data(bytes);
        self.link_blob(repository, &digest);
        digest
    }

    /// Links an already stored blob into `repository` (what a cross-repository mount does).
    pub fn link_blob(&self, repository: &str, digest: &str) {
        let hex = hex_of(digest);
        self.link(
            self.repo_dir(repository)
                .join("_layers/sha256")
                .join(hex)
                .join("link"),
            digest,
        );
    }

    /// Stores manifest bytes as a revision of `repository` (reachable by digest); returns it.
    pub fn put_manifest(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = self.put_blob_data(bytes);
        let hex = hex_of(&digest);
        self.link(
            self.repo_dir(repository)
                .join("_manifests/revisions/sha256")
                .join(hex)
                .join("link"),
            &digest,
        );
        digest
    }

    /// Points `repository:tag` at a stored manifest.
    pub fn tag(&self, repository: &str, tag: &str, digest: &str) {
        assert!(
            !tag.is_empty() && !tag.contains('/') && !tag.starts_with('.'),
            "bad tag {tag:?}"
        );
        let hex = hex_of(digest);
        let tag_dir = self.repo_dir(repository).join("_manifests/tags").join(tag);
        self.link(tag_dir.join("index/sha256").join(hex).join("link"), digest);
        self.link(tag_dir.join("current/link"), digest);
    }

    /// Seeds one fixture image (blobs, child manifests, top manifest, tag) as `repository:tag`.
    pub fn put_image_as(&self, image: &FixtureImage, repository: &str, tag: &str) {
        for blob in &image.blobs {
            self.put_blob(repository, &blob.bytes);
        }
        for child in &image.children {
            self.put_manifest(repository, &child.bytes);
        }
        let digest = self.put_manifest(repository, &image.manifest);
        assert_eq!(
            digest,
            image.digest,
            "fixture digest of {}",
            image.reference()
        );
        self.tag(repository, tag, &digest);
    }

    /// Seeds fixture images under their own names.
    pub fn put_images(&self, images: &[FixtureImage]) {
        for image in images {
            self.put_image_as(image, &image.repository, &image.tag);
        }
    }

    /// The stored bytes of a blob or manifest, if present.
    pub fn read_blob(&self, digest: &str) -> Option<Vec<u8>> {
        fs::read(self.blob_path(digest)).ok()
    }
    pub fn has_blob_data(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }
    /// Is the blob linked into `repository` (servable from it)?
    pub fn has_layer_link(&self, repository: &str, digest: &str) -> bool {
        self.repo_dir(repository)
            .join("_layers/sha256")
            .join(hex_of(digest))
            .join("link")
            .is_file()
    }
    /// Is the manifest a revision of `repository`?
    pub fn has_manifest(&self, repository: &str, digest: &str) -> bool {
        self.repo_dir(repository)
            .join("_manifests/revisions/sha256")
            .join(hex_of(digest))
            .join("link")
            .is_file()
    }
    /// The digest `repository:tag` points at.
    pub fn tag_digest(&self, repository: &str, tag: &str) -> Option<String> {
        fs::read_to_string(
            self.repo_dir(repository)
                .join("_manifests/tags")
                .join(tag)
                .join("current/link"),
        )
        .ok()
    }
    /// Every repository that has at least one tag or revision, sorted.
    pub fn repositories(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "_manifests" {
                    out.push(prefix.trim_end_matches('/').to_string());
                } else if !name.starts_with('_') && e.path().is_dir() {
                    walk(&e.path(), &format!("{prefix}{name}/"), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.v2.join("repositories"), "", &mut out);
        out.sort();
        out
    }

    /// Replaces the stored bytes of a blob (the registry serves them as they are: a way to make
    /// an upstream lie about a digest).
    pub fn overwrite_blob_data(&self, digest: &str, bytes: &[u8]) {
        let path = self.blob_path(digest);
        assert!(path.is_file(), "no stored blob {digest}");
        write_atomic(&path, bytes);
    }
    /// Deletes the stored bytes of a blob (links stay: the registry then answers 404 or 500).
    pub fn remove_blob_data(&self, digest: &str) {
        let _ = fs::remove_file(self.blob_path(digest));
    }
    /// Removes a blob's link from `repository` (the registry then answers 404 for it there).
    pub fn unlink_blob(&self, repository: &str, digest: &str) {
        let _ = fs::remove_dir_all(
            self.repo_dir(repository)
                .join("_layers/sha256")
                .join(hex_of(digest)),
        );
    }
}

/// Seeds fixture images under their own names into a running (or stopped) registry.
pub fn seed(reg: &TestRegistry, images: &[FixtureImage]) {
    reg.storage().put_images(images);
}

/// Seeds one fixture image as `repository:tag`.
pub fn seed_as(reg: &TestRegistry, image: &FixtureImage, repository: &str, tag: &str) {
    reg.storage().put_image_as(image, repository, tag);
}

/// Seeds every image under `prefix/` + its own repository (e.g. `mirror` → `mirror/rancher/…`).
pub fn seed_with_prefix(reg: &TestRegistry, prefix: &str, images: &[FixtureImage]) {
    let storage = reg.storage();
    for image in images {
        let repo = format!("{}/{}", prefix.trim_end_matches('/'), image.repository);
        storage.put_image_as(image, &repo, &image.tag);
    }
}
