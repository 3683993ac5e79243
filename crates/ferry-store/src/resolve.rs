//! Which manifest a [`Source::manifest`] call means, decided once for every store: the digest
//! asked for, else what the image's tag points at ([`Wanted`]). A registry sends either to the
//! registry as the reference of its GET; a store that keeps manifests under their digests (a
//! bundle, an archive, memory) resolves the tag with its own [`Source::head`]
//! ([`manifest_digest`]) and reads the manifest held under that digest, or answers
//! [`missing_manifest`].

use std::fmt;

use super::{Source, StoreError};
use ferry_oci::digest::Digest;
use ferry_oci::reference::Reference;

/// What `Source::manifest(image, digest)` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted<'a> {
    /// The manifest with this digest.
    Digest(&'a Digest),
    /// The manifest this tag of the image's repository points at.
    Tag(&'a str),
}

impl<'a> Wanted<'a> {
    /// `digest` when given, else the image's own tag (`latest` when it names none), as the
    /// [`Source::manifest`] contract says.
    pub fn of(image: &'a Reference, digest: Option<&'a Digest>) -> Wanted<'a> {
        match digest {
            Some(d) => Wanted::Digest(d),
            None => Wanted::Tag(image.tag().unwrap_or("latest")),
        }
    }
}

/// The digest or the tag, as a registry's manifest reference.
impl fmt::Display for Wanted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wanted::Digest(d) => d.fmt(f),
            Wanted::Tag(t) => f.write_str(t),
        }
    }
}

/// The digest of the manifest `source.manifest(image, digest)` means, for a store that resolves
/// tags itself: `digest`, else the digest its [`Source::head`] gives for the image's tag; a tag
/// it does not know is [`StoreError::UnknownImage`].
pub async fn manifest_digest<S: Source + ?Sized>(
    source: &S,
    image: &Reference,
    digest: Option<&Digest>,
) -> Result<Digest, StoreError> {
    match Wanted::of(image, digest) {
        Wanted::Digest(d) => Ok(d.clone()),
        Wanted::Tag(_) => match source.head(image).await?.and_then(|h| h.digest) {
            Some(d) => Ok(d),
            None => Err(StoreError::UnknownImage {
                image: image.to_string(),
                origin: source.origin(image),
            }),
        },
    }
}

/// The answer of a store that holds no manifest `digest`.
pub fn missing_manifest(digest: Digest, origin: String) -> StoreError {
    StoreError::Missing {
        what: "manifest",
        digest,
        origin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_wins_over_the_tag_and_latest_is_the_default() {
        let d = Digest::sha256_of(b"m");
        let tagged = Reference::parse("docker.io/a/b:1.2").expect("ref");
        let bare = Reference::parse("docker.io/a/b").expect("ref");
        assert_eq!(Wanted::of(&tagged, Some(&d)), Wanted::Digest(&d));
        assert_eq!(Wanted::of(&tagged, None), Wanted::Tag("1.2"));
        assert_eq!(Wanted::of(&bare, None).to_string(), "latest");
        assert_eq!(Wanted::of(&bare, Some(&d)).to_string(), d.to_string());
    }
}
