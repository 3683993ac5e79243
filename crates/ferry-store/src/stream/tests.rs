//! Unit tests of `store/stream.rs`.

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
    let v = |parts: &[&'static [u8]], d: &Digest, n| verified(chunks(parts), d.clone(), n, "test");
    let (out, err) = collect(v(&[b"hello", b" ", b"world"], &d, 11)).await;
    assert_eq!((out.as_slice(), err), (&b"hello world"[..], None));
    // Wrong content: everything but the last chunk, then the error.
    let (out, err) = collect(v(&[b"hello", b" ", b"WORLD"], &d, 11)).await;
    assert_eq!(out, b"hello ");
    let err = err.expect("error");
    assert!(
        err.contains("corrupt") && err.contains("digest mismatch"),
        "{err}"
    );
    // Too long: stopped as soon as it is.
    let (out, err) = collect(v(&[b"hello world", b"!"], &d, 11)).await;
    assert!(out.is_empty());
    assert!(err.expect("error").contains("larger"));
    // Too short.
    let (_, err) = collect(v(&[b"hello"], &d, 11)).await;
    assert!(err.expect("error").contains("size mismatch"));
    // Empty blob.
    let (out, err) = collect(v(&[], &Digest::sha256_of(b""), 0)).await;
    assert_eq!((out.len(), err), (0, None));
}

#[tokio::test]
async fn take_cuts_inside_a_chunk() {
    let (out, err) = collect(take(chunks(&[b"abc", b"defg", b"hij"]), 5)).await;
    assert_eq!((out.as_slice(), err), (&b"abcde"[..], None));
    let (out, _) = collect(take(chunks(&[b"abc"]), 0)).await;
    assert!(out.is_empty());
}
