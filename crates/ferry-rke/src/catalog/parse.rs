//! Reading metadata bytes into [`RawMetadata`] in one pass and in bounded memory.
//!
//! serde deserializes straight from the bytes, without an intermediate `String`, JSON value
//! or per-version map of field names: an image field is stored as its [`Field`] and its image,
//! an unknown field is counted (its first few names kept for the warning) and not stored, and
//! every other top-level key of KDM's data.json is skipped without being built. The maps are
//! capped ([`MAX_VERSIONS`], [`MAX_IMAGE_FIELDS`]) far above what real KDM data holds, so a
//! hostile answer under the 64 MiB size cap cannot cost gigabytes: past a cap the parse stops
//! there with [`ParseError::Limit`].

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{RawMetadata, VersionImages, VersionInfo};
use crate::addons::{self, RawTemplates};
use crate::fields::{FIELDS, Field};

/// The most Kubernetes versions one map of the metadata may hold (K8sVersionRKESystemImages,
/// K8sVersionInfo, RKEDefaultK8sVersions). Real data: 239 versions in KDM's data.json of
/// 2022-11-21, 302 in the embedded catalog (KDM release-v2.9); 10,000 is 33 to 42 times that.
pub const MAX_VERSIONS: usize = 10_000;

/// The most image fields (known to RKE) all versions together may hold. Real data: 7,840 in
/// 2022-11-21, 10,335 in release-v2.9 (41 fields at most per version); 400,000 is 39 to 51
/// times that. Unknown fields are not stored, only counted, so they need no cap of their own
/// beyond the size cap of the whole file.
pub const MAX_IMAGE_FIELDS: usize = 400_000;

/// The most template keys `K8sVersionedTemplates.templateKeys` may hold. Real data: 64 in
/// 2022-11-21, 111 in release-v2.9; 2,000 is 18 to 31 times that. Each body is scanned as it
/// is read and only the image variables it renders are kept, never the text.
pub const MAX_TEMPLATES: usize = 2_000;

/// The most version ranges all addons of `K8sVersionedTemplates` together may hold. Real
/// data: 101 in 2022-11-21, 204 in release-v2.9.
pub const MAX_TEMPLATE_RANGES: usize = 10_000;

/// How many unknown field names are kept for the warning, and how long each may be shown.
const UNKNOWN_SHOWN: usize = 3;
const NAME_SHOWN: usize = 64;

/// Image fields of the data that this ferry (RKE's struct) does not know: ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownFields {
    /// How many there are, over all versions (each occurrence counts).
    pub count: u64,
    /// The first few distinct names, in file order, each cut to a printable length.
    pub first: Vec<String>,
}

impl UnknownFields {
    fn note(&mut self, name: &str) {
        self.count += 1;
        if self.first.len() < UNKNOWN_SHOWN && !self.first.iter().any(|f| f == name) {
            let mut shown: String = name.chars().take(NAME_SHOWN).collect();
            if shown.len() < name.len() {
                shown.push('…');
            }
            self.first.push(shown);
        }
    }
}

/// A cap of this module that the data went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What was counted, e.g. "Kubernetes versions in K8sVersionRKESystemImages".
    pub what: &'static str,
    /// The cap.
    pub cap: usize,
}

/// Why bytes are not metadata.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or not the expected shape (with line and column).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Past a cap.
    #[error(
        "it has more than {} {}, ferry's limit (real KDM data has a few hundred versions and about 10,000 image fields)",
        crate::thousands(limit.cap as u64),
        limit.what
    )]
    Limit {
        /// The cap.
        limit: Limit,
    },
}

/// Parses either metadata shape from bytes.
pub fn from_slice(bytes: &[u8]) -> Result<RawMetadata, ParseError> {
    let hit = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Top { hit: &hit }
        .deserialize(&mut de)
        .and_then(|raw| de.end().map(|()| raw));
    match (parsed, hit.get()) {
        (_, Some(limit)) => Err(ParseError::Limit { limit }),
        (Ok(raw), None) => Ok(raw),
        (Err(e), None) => Err(ParseError::Json(e)),
    }
}

/// The top-level keys ferry reads (both spellings); anything else is skipped.
enum Key {
    Images,
    Info,
    Defaults,
    Templates,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "K8sVersionRKESystemImages" | "k8s_version_rke_system_images" => Key::Images,
                    "K8sVersionInfo" | "k8s_version_info" => Key::Info,
                    "RKEDefaultK8sVersions" | "rke_default_k8s_versions" => Key::Defaults,
                    "K8sVersionedTemplates" => Key::Templates,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Records `limit` and returns the error that stops the parse.
fn stop<E: de::Error>(hit: &Cell<Option<Limit>>, limit: Limit) -> E {
    hit.set(Some(limit));
    E::custom(format!("more than {} {}", limit.cap, limit.what))
}

struct Top<'a> {
    hit: &'a Cell<Option<Limit>>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = RawMetadata;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawMetadata, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = RawMetadata;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with K8sVersionRKESystemImages and RKEDefaultK8sVersions")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMetadata, A::Error> {
        let mut images = None;
        let mut info = None;
        let mut defaults = None;
        let mut templates = None;
        let mut unknown = UnknownFields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Images if images.is_some() => {
                    return Err(de::Error::duplicate_field("K8sVersionRKESystemImages"));
                }
                Key::Images => {
                    images = Some(map.next_value_seed(Images {
                        hit: self.hit,
                        unknown: &mut unknown,
                    })?);
                }
                Key::Info if info.is_some() => {
                    return Err(de::Error::duplicate_field("K8sVersionInfo"));
                }
                Key::Info => {
                    info = Some(map.next_value_seed(Capped::<VersionInfo>::new(
                        self.hit,
                        "Kubernetes versions in K8sVersionInfo",
                    ))?);
                }
                Key::Defaults if defaults.is_some() => {
                    return Err(de::Error::duplicate_field("RKEDefaultK8sVersions"));
                }
                Key::Defaults => {
                    defaults = Some(map.next_value_seed(Capped::<String>::new(
                        self.hit,
                        "entries in RKEDefaultK8sVersions",
                    ))?);
                }
                Key::Templates if templates.is_some() => {
                    return Err(de::Error::duplicate_field("K8sVersionedTemplates"));
                }
                Key::Templates => {
                    templates = Some(map.next_value_seed(Templates { hit: self.hit })?);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawMetadata {
            images: images.ok_or_else(|| de::Error::missing_field("K8sVersionRKESystemImages"))?,
            version_info: info.unwrap_or_default(),
            default_versions: defaults
                .ok_or_else(|| de::Error::missing_field("RKEDefaultK8sVersions"))?,
            unknown_fields: unknown,
            templates,
        })
    }
}

/// `K8sVersionedTemplates`: addon → (range → template key), and `templateKeys`: template key
/// → body, each body scanned as it is read ([`addons::scan_body`]). Addons RKE does not deploy
/// are skipped.
struct Templates<'a> {
    hit: &'a Cell<Option<Limit>>,
}

impl<'de> DeserializeSeed<'de> for Templates<'_> {
    type Value = RawTemplates;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawTemplates, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Templates<'_> {
    type Value = RawTemplates;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of addon → version range → template key, and templateKeys")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTemplates, A::Error> {
        let mut out = RawTemplates::default();
        let mut ranges = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            if key == "templateKeys" {
                out.scanned = map.next_value_seed(Bodies { hit: self.hit })?;
                continue;
            }
            if !addons::ADDONS.contains(&key.as_str()) || out.ranges.contains_key(&key) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let m: BTreeMap<String, String> = map.next_value_seed(Capped::<String>::new(
                self.hit,
                "version ranges of one addon in K8sVersionedTemplates",
            ))?;
            ranges += m.len();
            if ranges > MAX_TEMPLATE_RANGES {
                return Err(stop(
                    self.hit,
                    Limit {
                        what: "version ranges in K8sVersionedTemplates",
                        cap: MAX_TEMPLATE_RANGES,
                    },
                ));
            }
            out.ranges.insert(key, m.into_iter().collect());
        }
        Ok(out)
    }
}

struct Bodies<'a> {
    hit: &'a Cell<Option<Limit>>,
}

type Scanned = BTreeMap<String, Result<BTreeMap<String, crate::gotemplate::When>, String>>;

impl<'de> DeserializeSeed<'de> for Bodies<'_> {
    type Value = Scanned;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Scanned, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Bodies<'_> {
    type Value = Scanned;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of template key → template text")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.len() >= MAX_TEMPLATES {
                return Err(stop(
                    self.hit,
                    Limit {
                        what: "templates in K8sVersionedTemplates.templateKeys",
                        cap: MAX_TEMPLATES,
                    },
                ));
            }
            let body: std::borrow::Cow<'de, str> = map.next_value::<CowStr<'de>>()?.0;
            out.insert(key, addons::scan_body(&body));
        }
        Ok(out)
    }
}

/// A string borrowed from the input when it has no escapes, owned otherwise.
struct CowStr<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<CowStr<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("template text")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(std::borrow::Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(std::borrow::Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A map of version → `V`, at most [`MAX_VERSIONS`] entries.
struct Capped<'a, V> {
    hit: &'a Cell<Option<Limit>>,
    what: &'static str,
    value: std::marker::PhantomData<V>,
}

impl<'a, V> Capped<'a, V> {
    fn new(hit: &'a Cell<Option<Limit>>, what: &'static str) -> Self {
        Capped {
            hit,
            what,
            value: std::marker::PhantomData,
        }
    }
}

impl<'de, V: de::Deserialize<'de>> DeserializeSeed<'de> for Capped<'_, V> {
    type Value = BTreeMap<String, V>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, V: de::Deserialize<'de>> Visitor<'de> for Capped<'_, V> {
    type Value = BTreeMap<String, V>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object of {}", self.what)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        let mut seen = 0;
        while let Some(key) = map.next_key::<String>()? {
            seen += 1;
            if seen > MAX_VERSIONS {
                return Err(stop(
                    self.hit,
                    Limit {
                        what: self.what,
                        cap: MAX_VERSIONS,
                    },
                ));
            }
            out.insert(key, map.next_value()?);
        }
        Ok(out)
    }
}

/// K8sVersionRKESystemImages: version → its fields.
struct Images<'a> {
    hit: &'a Cell<Option<Limit>>,
    unknown: &'a mut UnknownFields,
}

impl<'de> DeserializeSeed<'de> for Images<'_> {
    type Value = BTreeMap<String, VersionImages>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Images<'_> {
    type Value = BTreeMap<String, VersionImages>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of Kubernetes version → system images")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        let mut versions = 0;
        let mut fields = 0;
        while let Some(version) = map.next_key::<String>()? {
            versions += 1;
            if versions > MAX_VERSIONS {
                return Err(stop(
                    self.hit,
                    Limit {
                        what: "Kubernetes versions in K8sVersionRKESystemImages",
                        cap: MAX_VERSIONS,
                    },
                ));
            }
            let images = map.next_value_seed(Fields {
                hit: self.hit,
                unknown: &mut *self.unknown,
                total: &mut fields,
            })?;
            out.insert(version, images);
        }
        Ok(out)
    }
}

/// One version's fields: known ones stored in struct order, unknown ones counted.
struct Fields<'a> {
    hit: &'a Cell<Option<Limit>>,
    unknown: &'a mut UnknownFields,
    /// Known fields so far, over all versions.
    total: &'a mut usize,
}

/// A field key: its index in [`FIELDS`], or unknown (already noted).
struct FieldKey<'a> {
    unknown: &'a mut UnknownFields,
}

impl<'de> DeserializeSeed<'de> for FieldKey<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldKey<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an image field name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
        let known = FIELDS.iter().position(|f| f.json == s);
        if known.is_none() {
            self.unknown.note(s);
        }
        Ok(known)
    }
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = VersionImages;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<VersionImages, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = VersionImages;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of image field → image")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VersionImages, A::Error> {
        // Indexed by position in FIELDS, so the result is in struct order and a repeated key
        // replaces the earlier value (as a map would).
        let mut slots: [Option<String>; FIELDS.len()] = std::array::from_fn(|_| None);
        while let Some(key) = map.next_key_seed(FieldKey {
            unknown: &mut *self.unknown,
        })? {
            let Some(i) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            *self.total += 1;
            if *self.total > MAX_IMAGE_FIELDS {
                return Err(stop(
                    self.hit,
                    Limit {
                        what: "image fields in K8sVersionRKESystemImages",
                        cap: MAX_IMAGE_FIELDS,
                    },
                ));
            }
            let value: String = map.next_value()?;
            slots[i] = Some(value).filter(|v| !v.is_empty());
        }
        let values: Vec<(&'static Field, String)> = FIELDS
            .iter()
            .zip(slots)
            .filter_map(|(f, v)| v.map(|v| (f, v)))
            .collect();
        Ok(VersionImages { values })
    }
}
