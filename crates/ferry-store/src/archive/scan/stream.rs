//! The archive's tar stream read raw ([`TarStream`]): one 512-byte header at a time, the
//! extension headers (GNU long name `L`, long link `K`, PAX `x` and `g`) read here — each
//! at most [`MAX_EXTENSION`] bytes, refused past that before a byte of it is kept — and
//! applied here to the entry they describe, as Go's archive/tar (which `docker save`
//! uses) applies them: a PAX `path`, `linkpath` or `size` wins over a GNU long name or
//! link, which wins over the header's own fields. The tar crate's non-raw reader would
//! read any extension header whole into memory, whatever its size.
//!
//! Entry data is read through [`Read`] on the stream, no further than the entry's end;
//! the next [`TarStream::next_entry`] skips what was left of it.

use std::io::{self, Read};

use tar::{EntryType, Header, PaxExtensions};

/// Extension headers larger than this are refused (each is read into memory). A long name
/// is at most PATH_MAX (4 KiB); the bundle reader caps PAX headers likewise.
pub const MAX_EXTENSION: u64 = 64 * 1024;

const BLOCK: u64 = 512;

/// Why the stream cannot be read on.
#[derive(Debug)]
pub enum StreamError {
    /// Reading (or decompressing) failed.
    Io(io::Error),
    /// Not a well-formed tar stream.
    Malformed(String),
    /// An extension header over [`MAX_EXTENSION`].
    Extension {
        /// The extension header's own name (`././@LongLink` for GNU ones).
        entry: Vec<u8>,
        /// Which kind: `GNU long-name`, `GNU long-link`, `PAX`.
        what: &'static str,
        /// Its size.
        size: u64,
    },
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

/// One entry, its extensions applied.
#[derive(Debug)]
pub struct RawEntry {
    /// Its name as stored (not yet normalized).
    pub name: Vec<u8>,
    /// Its link target, for a link.
    pub link: Vec<u8>,
    /// Its type.
    pub kind: EntryType,
    /// Its data's size.
    pub size: u64,
    /// Where its data starts in the (uncompressed) stream.
    pub offset: u64,
}

/// A tar stream read raw.
pub struct TarStream<R> {
    inner: R,
    /// Bytes of the stream consumed so far.
    pos: u64,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
}

/// The bytes of a NUL-terminated field (or a GNU long name's data, which ends in NUL).
fn until_nul(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// The extension headers read so far for the next entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Pending {
    fn any(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }

    /// The value of PAX record `key`, if the PAX header has it.
    fn pax_value(&self, key: &[u8]) -> Option<&[u8]> {
        let pax = self.pax.as_deref()?;
        PaxExtensions::new(pax)
            .filter_map(Result::ok)
            .filter(|r| r.key_bytes() == key)
            .last()
            .map(|r| r.value_bytes())
    }
}

impl<R: Read> TarStream<R> {
    /// A stream positioned at its first header.
    pub fn new(inner: R) -> TarStream<R> {
        TarStream {
            inner,
            pos: 0,
            remaining: 0,
            pad: 0,
        }
    }

    /// What follows the end of the archive (a gzip trailer still to be checked).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads until `buf` is full or the stream ends; how much was read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    /// Skips `n` bytes of the stream.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        self.pos += copied;
        if copied < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry",
            ));
        }
        Ok(())
    }

    /// The data of an extension header of `size` bytes (at most [`MAX_EXTENSION`]), and
    /// its padding skipped.
    fn extension(&mut self, size: u64) -> io::Result<Vec<u8>> {
        // Bounded: the caller refused sizes over MAX_EXTENSION.
        let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
        if self.fill(&mut data)? < data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an extension header",
            ));
        }
        self.skip(padding(size))?;
        Ok(data)
    }

    /// The next entry, extension headers applied; `None` at the end of the archive. What
    /// was left of the previous entry's data is skipped.
    pub fn next_entry(&mut self) -> Result<Option<RawEntry>, StreamError> {
        self.skip(self.remaining + self.pad)?;
        self.remaining = 0;
        self.pad = 0;
        let mut pending = Pending::default();
        loop {
            let mut block = [0u8; BLOCK as usize];
            let got = self.fill(&mut block)?;
            let end = got == 0 || block.iter().all(|&b| b == 0);
            if got != 0 && got < block.len() {
                return Err(StreamError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive ends inside a tar header",
                )));
            }
            if end {
                if pending.any() {
                    return Err(StreamError::Malformed(
                        "an extension header describes no entry (the archive ends after it)".into(),
                    ));
                }
                return Ok(None);
            }
            let header = Header::from_byte_slice(&block);
            if !crate::tar_header::checksum_ok(header.as_bytes()) {
                return Err(StreamError::Malformed(
                    "archive header checksum mismatch".into(),
                ));
            }
            let kind = header.entry_type();
            let mut size = header
                .entry_size()
                .map_err(|e| StreamError::Malformed(format!("a header's size: {e}")))?;
            let what = match kind {
                EntryType::GNULongName => Some("GNU long-name"),
                EntryType::GNULongLink => Some("GNU long-link"),
                EntryType::XHeader | EntryType::XGlobalHeader => Some("PAX"),
                _ => None,
            };
            if let Some(what) = what {
                if size > MAX_EXTENSION {
                    return Err(StreamError::Extension {
                        entry: header.path_bytes().into_owned(),
                        what,
                        size,
                    });
                }
                let data = self.extension(size)?;
                let twice =
                    |w: &str| StreamError::Malformed(format!("two {w} headers for one entry"));
                match kind {
                    EntryType::GNULongName if pending.long_name.is_some() => {
                        return Err(twice(what));
                    }
                    EntryType::GNULongName => pending.long_name = Some(until_nul(&data).to_vec()),
                    EntryType::GNULongLink if pending.long_link.is_some() => {
                        return Err(twice(what));
                    }
                    EntryType::GNULongLink => pending.long_link = Some(until_nul(&data).to_vec()),
                    EntryType::XHeader if pending.pax.is_some() => return Err(twice(what)),
                    EntryType::XHeader => {
                        if PaxExtensions::new(&data).any(|r| r.is_err()) {
                            return Err(StreamError::Malformed("a malformed PAX header".into()));
                        }
                        pending.pax = Some(data);
                    }
                    // A global PAX header: nothing in it changes what ferry reads.
                    _ => {}
                }
                continue;
            }
            if kind == EntryType::GNUSparse {
                return Err(StreamError::Malformed(format!(
                    "entry {:?} is a GNU sparse file, which no image archive holds",
                    String::from_utf8_lossy(&header.path_bytes())
                )));
            }
            if let Some(v) = pending.pax_value(b"size") {
                size = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        StreamError::Malformed("a PAX size that is not a number".into())
                    })?;
            }
            let name = match (pending.pax_value(b"path"), &pending.long_name) {
                (Some(p), _) => p.to_vec(),
                (None, Some(l)) => l.clone(),
                (None, None) => header.path_bytes().into_owned(),
            };
            let link = match (pending.pax_value(b"linkpath"), &pending.long_link) {
                (Some(p), _) => p.to_vec(),
                (None, Some(l)) => l.clone(),
                (None, None) => header
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            };
            self.remaining = size;
            self.pad = padding(size);
            return Ok(Some(RawEntry {
                name,
                link,
                kind,
                size,
                offset: self.pos,
            }));
        }
    }
}

/// The current entry's data, no further than its end.
impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }
}
