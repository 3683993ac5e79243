//! Blob bytes on their way between stores: [`ByteStream`], a byte range read from a source,
//! and [`verified`], the check a whole blob passes while it flows (hashed as it goes, its
//! last chunk held back until the digest and size match, so a consumer never sees a
//! complete wrong blob).

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use crate::oci::digest::{Digest, Verifier};

/// Bytes of a blob, in order.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Reads `len` bytes of a blob starting at `offset` (positioned, not verified). Called once
/// per attempt of a transfer.
pub type RangeReader<'a> = &'a (dyn Fn(u64, u64) -> ByteStream + Sync);

struct State {
    inner: ByteStream,
    verifier: Option<Verifier>,
    held: Option<Bytes>,
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// `whole` (a blob from its first byte) checked against `digest` and `size` while it flows.
/// A mismatch, or more bytes than `size`, ends the stream with an `InvalidData` error in
/// place of its last chunk.
pub fn verified(whole: ByteStream, digest: Digest, size: u64) -> ByteStream {
    let state = State {
        inner: whole,
        verifier: Some(Verifier::new(digest, Some(size))),
        held: None,
    };
    Box::pin(
        futures_util::stream::unfold(state, |mut st| async move {
            loop {
                match st.inner.next().await {
                    Some(Ok(chunk)) => {
                        let v = st.verifier.as_mut()?;
                        if let Err(e) = v.update(&chunk) {
                            st.verifier = None;
                            return Some((
                                Err(invalid(format!("{} is corrupt: {e}", v_expected(&st)))),
                                st,
                            ));
                        }
                        if let Some(prev) = st.held.replace(chunk) {
                            return Some((Ok(prev), st));
                        }
                    }
                    Some(Err(e)) => {
                        st.verifier.as_ref()?;
                        st.verifier = None;
                        return Some((Err(e), st));
                    }
                    None => {
                        let v = st.verifier.take()?;
                        let expected = v.expected().clone();
                        return match v.finish() {
                            Ok(()) => st.held.take().map(|last| (Ok(last), st)),
                            Err(e) => {
                                Some((Err(invalid(format!("blob {expected} is corrupt: {e}"))), st))
                            }
                        };
                    }
                }
            }
        })
        // HTTP bodies may be polled again after they ended.
        .fuse(),
    )
}

fn v_expected(st: &State) -> String {
    st.verifier
        .as_ref()
        .map_or_else(|| "blob".to_string(), |v| format!("blob {}", v.expected()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<std::io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn collect(s: ByteStream) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn passes_good_bytes_and_holds_back_the_last_chunk_of_bad_ones() {
        let d = Digest::sha256_of(b"hello world");
        let (out, err) =
            collect(verified(chunks(&[b"hello", b" ", b"world"]), d.clone(), 11)).await;
        assert_eq!((out.as_slice(), err), (&b"hello world"[..], None));
        // Wrong content: everything but the last chunk, then the error.
        let (out, err) =
            collect(verified(chunks(&[b"hello", b" ", b"WORLD"]), d.clone(), 11)).await;
        assert_eq!(out, b"hello ");
        assert!(err.expect("error").contains("digest mismatch"));
        // Too long: stopped as soon as it is.
        let (out, err) = collect(verified(chunks(&[b"hello world", b"!"]), d.clone(), 11)).await;
        assert!(out.is_empty());
        assert!(err.expect("error").contains("larger"));
        // Too short.
        let (_, err) = collect(verified(chunks(&[b"hello"]), d, 11)).await;
        assert!(err.expect("error").contains("size mismatch"));
        // Empty blob.
        let (out, err) = collect(verified(chunks(&[]), Digest::sha256_of(b""), 0)).await;
        assert_eq!((out.len(), err), (0, None));
    }
}
