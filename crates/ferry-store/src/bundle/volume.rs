//! A bundle's bytes as one address space ([`Volume`]) over one file, or over the parts of a
//! split bundle (`rke-images.tar.001`, `.002`, …), each part a byte range of the same tar.
//! Readers and the writer address the tar by offset and never see where one part ends and
//! the next begins: a blob that spans two parts is read and written across them in place.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One file of a volume: bytes `start .. start + len` of the tar.
#[derive(Debug)]
pub struct Part {
    /// The file.
    pub path: PathBuf,
    file: File,
    /// Where its bytes start in the tar.
    pub start: u64,
    /// How many bytes it holds.
    pub len: u64,
}

/// A tar held by one file or several consecutive parts.
#[derive(Debug)]
pub struct Volume {
    parts: Vec<Part>,
    len: u64,
}

impl Volume {
    /// A volume of one file of `len` bytes.
    pub fn single(path: &Path, file: File, len: u64) -> Volume {
        Volume::from_parts(vec![(path.to_path_buf(), file, len)])
    }

    /// A volume of these files, in order, with these lengths.
    pub fn from_parts(files: Vec<(PathBuf, File, u64)>) -> Volume {
        let mut start = 0u64;
        let parts = files
            .into_iter()
            .map(|(path, file, len)| {
                let part = Part {
                    path,
                    file,
                    start,
                    len,
                };
                start = start.saturating_add(len);
                part
            })
            .collect();
        Volume { parts, len: start }
    }

    /// Total bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The files, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether it is split into several files.
    pub fn is_split(&self) -> bool {
        self.parts.len() > 1
    }

    /// The part holding byte `offset`, if any.
    fn part_at(&self, offset: u64) -> Option<&Part> {
        let i = self.parts.partition_point(|p| p.start + p.len <= offset);
        self.parts.get(i).filter(|p| p.start <= offset && p.len > 0)
    }

    /// Reads at `offset` into `buf`, from one part (may return fewer bytes at a part's end);
    /// 0 at the end of the volume.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Some(part) = self.part_at(offset) else {
            return Ok(0);
        };
        let within = offset - part.start;
        let room = usize::try_from(part.len - within).unwrap_or(usize::MAX);
        let Some(buf) = buf.get_mut(..room.min(buf.len())) else {
            return Ok(0);
        };
        part.file.read_at(buf, within)
    }

    /// Like [`Volume::read_at`], but only from the page cache, never waiting for the disk
    /// (`preadv2` with `RWF_NOWAIT`): `None` when the bytes are not cached (or the kernel
    /// cannot tell), so the caller reads them on a thread that may block. This lets an
    /// async server send cached bytes without a thread hand-off per chunk.
    pub fn read_cached_at(&self, buf: &mut [u8], offset: u64) -> io::Result<Option<usize>> {
        let Some(part) = self.part_at(offset) else {
            return Ok(Some(0));
        };
        let within = offset - part.start;
        let room = usize::try_from(part.len - within).unwrap_or(usize::MAX);
        let Some(buf) = buf.get_mut(..room.min(buf.len())) else {
            return Ok(Some(0));
        };
        read_nowait(&part.file, buf, within)
    }

    /// Fills `buf` from `offset`, across parts.
    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the bundle ended before the bytes asked for",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += u64::try_from(n).unwrap_or(0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`, across parts; refuses bytes past the end.
    pub fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let Some(part) = self.part_at(offset) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "write past the end of the bundle",
                ));
            };
            let within = offset - part.start;
            let room = usize::try_from(part.len - within).unwrap_or(usize::MAX);
            let n = room.min(buf.len());
            part.file.write_all_at(&buf[..n], within)?;
            buf = &buf[n..];
            offset += u64::try_from(n).unwrap_or(0);
        }
        Ok(())
    }

    /// `fdatasync` of every part.
    pub fn sync_data(&self) -> io::Result<()> {
        self.parts.iter().try_for_each(|p| p.file.sync_data())
    }

    /// `fsync` of every part.
    pub fn sync_all(&self) -> io::Result<()> {
        self.parts.iter().try_for_each(|p| p.file.sync_all())
    }

    /// A sequential reader with its own position (for the tar header scan).
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            volume: self,
            pos: 0,
        }
    }
}

#[cfg(target_os = "linux")]
fn read_nowait(file: &File, buf: &mut [u8], offset: u64) -> io::Result<Option<usize>> {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    match preadv2(
        file,
        &mut [io::IoSliceMut::new(buf)],
        offset,
        ReadWriteFlags::NOWAIT,
    ) {
        Ok(n) => Ok(Some(n)),
        // Not cached, or the file system or kernel does not support RWF_NOWAIT.
        Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn read_nowait(_: &File, _: &mut [u8], _: u64) -> io::Result<Option<usize>> {
    Ok(None)
}

/// A [`Read`] + [`Seek`] view of a [`Volume`].
#[derive(Debug)]
pub struct Cursor<'a> {
    volume: &'a Volume,
    pos: u64,
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.volume.read_at(buf, self.pos)?;
        self.pos += u64::try_from(n).unwrap_or(0);
        Ok(n)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.volume.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the bundle",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests;
