//! Blob bytes on their way between stores: [`ByteStream`], and the checks and cuts applied to
//! it. [`verified`] hashes a whole blob as it flows and holds its last chunk back until the
//! digest and size match, so a consumer never sees a complete wrong blob; [`take`] cuts a
//! stream after a number of bytes (a chunk of an upload); [`collect_verified`] reads a small
//! blob into memory.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use super::StoreError;
use ferry_oci::digest::{Digest, Verifier};

/// Bytes of a blob, in order. A failure is an `io::Error`, carrying a [`StoreError`] when the
/// store knows more (see [`StoreError::from_stream`]).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

struct State {
    inner: ByteStream,
    verifier: Option<Verifier>,
    held: Option<Bytes>,
    origin: String,
}

fn corrupt(digest: &Digest, origin: &str, e: ferry_oci::digest::VerifyError) -> std::io::Error {
    StoreError::Corrupt {
        what: "blob",
        digest: digest.clone(),
        origin: origin.to_string(),
        source: e,
    }
    .into_io()
}

/// `whole` (a blob from its first byte) checked against `digest` and `size` while it flows.
/// A mismatch, or more bytes than `size`, ends the stream with a [`StoreError::Corrupt`]
/// naming `origin` in place of its last chunk.
pub fn verified(whole: ByteStream, digest: Digest, size: u64, origin: &str) -> ByteStream {
    let state = State {
        inner: whole,
        verifier: Some(Verifier::new(digest, Some(size))),
        held: None,
        origin: origin.to_string(),
    };
    Box::pin(
        futures_util::stream::unfold(state, |mut st| async move {
            loop {
                match st.inner.next().await {
                    Some(Ok(chunk)) => {
                        let v = st.verifier.as_mut()?;
                        if let Err(e) = v.update(&chunk) {
                            let err = corrupt(v.expected(), &st.origin, e);
                            st.verifier = None;
                            return Some((Err(err), st));
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
                            Err(e) => Some((Err(corrupt(&expected, &st.origin, e)), st)),
                        };
                    }
                }
            }
        })
        // HTTP bodies may be polled again after they ended.
        .fuse(),
    )
}

/// The first `len` bytes of `inner` (the rest is not read).
pub fn take(inner: ByteStream, len: u64) -> ByteStream {
    Box::pin(
        futures_util::stream::unfold((inner, len), |(mut inner, left)| async move {
            if left == 0 {
                return None;
            }
            match inner.next().await? {
                Ok(mut b) => {
                    let n = u64::try_from(b.len()).unwrap_or(u64::MAX);
                    if n > left {
                        b.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                    }
                    let got = n.min(left);
                    Some((Ok(b), (inner, left - got)))
                }
                Err(e) => Some((Err(e), (inner, 0))),
            }
        })
        .fuse(),
    )
}

/// Reads a whole (small) blob into memory, checked against `digest` and `size`.
pub async fn collect_verified(
    stream: ByteStream,
    digest: &Digest,
    size: u64,
    origin: &str,
) -> Result<Bytes, StoreError> {
    let mut s = verified(stream, digest.clone(), size, origin);
    let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| {
            StoreError::from_stream(e, || format!("reading blob {digest} from {origin}"))
        })?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads a stream into memory as it is (for tests and small reads that are checked later).
pub async fn collect_unchecked(mut stream: ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Reads a whole blob and checks it against `digest` and `size`, keeping nothing.
pub async fn collect_hash(
    stream: ByteStream,
    digest: &Digest,
    size: u64,
    origin: &str,
) -> Result<(), StoreError> {
    let mut s = verified(stream, digest.clone(), size, origin);
    while let Some(chunk) = s.next().await {
        chunk.map_err(|e| {
            StoreError::from_stream(e, || format!("reading blob {digest} from {origin}"))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
