//! Which compression a stream's first bytes announce ([`Compression::sniff`]): told once here
//! for the bundle reader (a compressed bundle is refused by name), the archive scanner (gzip
//! or plain layers, anything else refused) and the command that tells an archive's kind.

/// A compression format, known by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `1f 8b`.
    Gzip,
    /// `28 b5 2f fd`.
    Zstd,
    /// `BZh`.
    Bzip2,
    /// `fd 37 7a 58 5a 00`.
    Xz,
}

impl Compression {
    /// The compression `prefix` starts with, if any.
    pub fn sniff(prefix: &[u8]) -> Option<Compression> {
        match prefix {
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            [b'B', b'Z', b'h', ..] => Some(Compression::Bzip2),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some(Compression::Xz),
            _ => None,
        }
    }

    /// Its usual name (`gzip`, `zstd`, `bzip2`, `xz`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_each_format_by_its_magic_and_nothing_else() {
        assert_eq!(
            Compression::sniff(&[0x1f, 0x8b, 8]),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::sniff(b"BZh91AY"), Some(Compression::Bzip2));
        assert_eq!(Compression::sniff(b"\xfd7zXZ\0"), Some(Compression::Xz));
        assert_eq!(Compression::sniff(&[0x1f]), None);
        assert_eq!(Compression::sniff(b"ustar"), None);
        assert_eq!(Compression::Zstd.name(), "zstd");
    }
}
