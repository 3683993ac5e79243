//! Unit tests of `store/bundle/source.rs`: ranged reads of a blob in place.

use std::time::Duration;

use futures_util::StreamExt as _;

use super::*;
use crate::bundle::testutil::{digest_of, sample_blobs, sample_plan, write_sequentially};

fn sample_source(dir: &std::path::Path) -> (BundleSource, Vec<Vec<u8>>) {
    let blobs = sample_blobs();
    let path = dir.join("bundle.tar");
    std::fs::write(&path, write_sequentially(&sample_plan(&blobs), &blobs)).expect("write");
    (
        BundleSource::new(BundleReader::open(&path).expect("open")),
        blobs,
    )
}

async fn collect(mut s: ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test]
async fn ranges_read_exactly_their_bytes_and_refuse_past_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, blobs) = sample_source(dir.path());
    let big = blobs.iter().max_by_key(|b| b.len()).expect("a blob");
    let d = digest_of(big);
    for (offset, len, chunk) in [
        (0, big.len(), 4096),
        (1, 10, 3),
        (4095, 4097, 4096),
        (0, 0, 7),
    ] {
        let got = collect(source.range_with(&d, offset as u64, len as u64, chunk, 2))
            .await
            .expect("read");
        assert_eq!(
            got,
            big[offset..offset + len],
            "{offset}+{len} in chunks of {chunk}"
        );
    }
    let past = collect(source.range(&d, big.len() as u64 - 1, 2)).await;
    assert!(
        past.expect_err("past the end")
            .to_string()
            .contains("past the end")
    );
    let missing = collect(source.range(&digest_of(b"nothing"), 0, 1)).await;
    assert!(missing.is_err());
}

/// A client that asks for a blob and stops reading holds no thread: with a blocking pool of
/// two threads and eight stalled readers, a ninth still reads its blob.
#[test]
fn stalled_readers_hold_no_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let test = async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, blobs) = sample_source(dir.path());
        let big = blobs.iter().max_by_key(|b| b.len()).expect("a blob");
        let d = digest_of(big);
        let mut stalled = Vec::new();
        for _ in 0..8 {
            let mut s = source.range_with(&d, 0, big.len() as u64, 1024, 2);
            s.next().await.expect("a first chunk").expect("read");
            stalled.push(s);
        }
        let whole = tokio::time::timeout(
            Duration::from_secs(20),
            collect(source.range_with(&d, 0, big.len() as u64, 1024, 2)),
        )
        .await
        .expect("not starved by the stalled readers")
        .expect("read");
        assert_eq!(&whole, big);
        drop(stalled);
    };
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), test)
            .await
            .expect("eight stalled readers and a ninth, within 30 s");
    });
}
