//! Media types ferry reads and carries. Manifests keep their true media type everywhere: a
//! Docker manifest list is never relabelled as an OCI index (that would change its bytes).

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 1 (signed): refused, its digest is not stable across registries.
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 (unsigned): refused.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// OCI image layout's index.json, and the `oci-layout` marker content.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// The `Accept` header for manifest requests: every type ferry can carry.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The kind of a manifest, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An OCI index or Docker manifest list: children are manifests.
    Index,
    /// An OCI or Docker image manifest: children are a config and layers.
    Image,
}

/// Classifies a manifest media type; `None` for anything ferry does not carry.
pub fn manifest_kind(media_type: &str) -> Option<ManifestKind> {
    match strip_params(media_type) {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        _ => None,
    }
}

/// True for Docker schema 1 types.
pub fn is_schema1(media_type: &str) -> bool {
    matches!(
        strip_params(media_type),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED
    )
}

/// A media type without `; charset=…` parameters, trimmed.
pub fn strip_params(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or("").trim()
}

/// Docker schema 2 image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker schema 2 gzip-compressed layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip-compressed layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
