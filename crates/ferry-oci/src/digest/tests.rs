//! Unit tests of `oci/digest`.

use std::io;

use super::*;
use proptest::prelude::*;

const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC_SHA512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

fn parse(s: &str) -> Digest {
    match Digest::parse(s) {
        Ok(d) => d,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

#[test]
fn known_values() {
    assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
    let mut h = Hasher::new(Algorithm::Sha512);
    h.update(b"a");
    h.update(b"bc");
    assert_eq!(h.finish().as_str(), ABC_SHA512);
}

#[test]
fn accessors() {
    let d = parse(EMPTY_SHA256);
    assert_eq!(d.algorithm(), "sha256");
    assert_eq!(d.kind(), Algorithm::Sha256);
    assert_eq!(d.hex(), &EMPTY_SHA256[7..]);
    assert_eq!(d.to_string(), EMPTY_SHA256);
    assert_eq!(
        d.blob_path(),
        format!("blobs/sha256/{}", &EMPTY_SHA256[7..])
    );
    let d512 = parse(ABC_SHA512);
    assert_eq!(d512.algorithm(), "sha512");
    assert_eq!(d512.hex().len(), 128);
    assert_eq!(EMPTY_SHA256.parse::<Digest>(), Ok(d));
}

#[test]
fn rejections_are_precise() {
    let hex = &EMPTY_SHA256[7..];
    assert_eq!(Digest::parse(""), Err(DigestError::Empty));
    assert!(matches!(
        Digest::parse(hex),
        Err(DigestError::MissingAlgorithm { .. })
    ));
    assert!(matches!(
        Digest::parse(&format!("md5:{hex}")),
        Err(DigestError::UnsupportedAlgorithm { algorithm, .. }) if algorithm == "md5"
    ));
    assert!(matches!(
        Digest::parse(&format!("SHA256:{hex}")),
        Err(DigestError::UnsupportedAlgorithm { .. })
    ));
    assert!(matches!(
        Digest::parse("sha256:../../etc/passwd"),
        Err(DigestError::NotHex {
            character: '.',
            index: 7,
            ..
        })
    ));
    assert!(matches!(
        Digest::parse(&format!("sha256:{}", hex.to_uppercase())),
        Err(DigestError::Uppercase {
            character: 'E',
            index: 7,
            ..
        })
    ));
    assert!(matches!(
        Digest::parse(&format!("sha512:{hex}")),
        Err(DigestError::WrongLength {
            expected: 128,
            actual: 64,
            ..
        })
    ));
    assert!(matches!(
        Digest::parse("sha256:"),
        Err(DigestError::WrongLength {
            expected: 64,
            actual: 0,
            ..
        })
    ));
    let msg = Digest::parse("sha256:abc")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "invalid digest \"sha256:abc\": sha256 digests have exactly 64 hex digits, found 3"
    );
}

#[test]
fn long_inputs_are_truncated_in_messages() {
    let long = format!("sha256:{}", "z".repeat(10_000));
    let Err(err) = Digest::parse(&long) else {
        panic!("must fail")
    };
    let msg = err.to_string();
    assert!(msg.len() < 300, "{msg}");
    assert!(msg.contains('…'));
    // Truncation is by characters, never splitting a UTF-8 sequence.
    let Err(err) = Digest::parse(&"é".repeat(500)) else {
        panic!("must fail")
    };
    assert!(err.to_string().contains(&format!("{}…", "é".repeat(100))));
}

#[test]
fn serde_round_trip_and_validation() -> Result<(), serde_json::Error> {
    let d = parse(EMPTY_SHA256);
    let json = serde_json::to_string(&d)?;
    assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
    let back: Digest = serde_json::from_str(&json)?;
    assert_eq!(back, d);
    let bad = serde_json::from_str::<Digest>("\"sha256:1234\"");
    assert!(bad.is_err_and(|e| e.to_string().contains("64 hex digits")));
    Ok(())
}

#[test]
fn verifier_basic() {
    let data = b"hello world";
    let d = Digest::sha256_of(data);
    let mut v = Verifier::new(d.clone(), Some(11));
    assert_eq!(v.update(b"hello "), Ok(()));
    assert_eq!(v.update(b"world"), Ok(()));
    assert_eq!(v.bytes_seen(), 11);
    assert_eq!(v.finish(), Ok(()));

    let mut v = Verifier::new(d.clone(), Some(11));
    assert_eq!(
        v.update(b"hello worlds"),
        Err(VerifyError::TooLarge { expected: 11 })
    );

    let mut v = Verifier::new(d.clone(), None);
    assert_eq!(v.update(b"hello"), Ok(()));
    let err = v.finish();
    assert!(matches!(&err, Err(VerifyError::DigestMismatch { expected, .. }) if *expected == d));
    let msg = err.map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains(d.as_str()) && msg.contains(Digest::sha256_of(b"hello").as_str()));

    let mut v = Verifier::new(d, Some(11));
    assert_eq!(v.update(b"hello"), Ok(()));
    assert_eq!(
        v.finish(),
        Err(VerifyError::SizeMismatch {
            expected: 11,
            actual: 5
        })
    );
}

#[test]
fn verifier_with_prefix_resumes() -> io::Result<()> {
    let data = b"0123456789abcdef";
    let d512 = {
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(data);
        h.finish()
    };
    let mut v = Verifier::with_prefix(d512, Some(16), &data[..10])?;
    assert_eq!(v.bytes_seen(), 10);
    assert_eq!(v.update(&data[10..]), Ok(()));
    assert_eq!(v.finish(), Ok(()));

    let err = Verifier::with_prefix(Digest::sha256_of(data), Some(4), &data[..])
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    Ok(())
}

/// 64 lowercase hex characters.
fn hex64() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

proptest! {
    #[test]
    fn any_sha256_hex_round_trips(hex in hex64()) {
        let text = format!("sha256:{hex}");
        let d = Digest::parse(&text);
        prop_assert!(d.is_ok());
        let d = d.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(d.as_str(), text.as_str());
        prop_assert_eq!(d.hex(), hex.as_str());
        prop_assert_eq!(d.to_string().parse::<Digest>(), Ok(d.clone()));
    }

    #[test]
    fn sha256_bytes_round_trip_and_sort_like_the_text(a in hex64(), b in hex64()) {
        let (a, b) = (parse(&format!("sha256:{a}")), parse(&format!("sha256:{b}")));
        let (ka, kb) = (a.sha256_bytes(), b.sha256_bytes());
        prop_assert!(ka.is_some() && kb.is_some());
        let (ka, kb) = (ka.unwrap_or_default(), kb.unwrap_or_default());
        prop_assert_eq!(Digest::from_sha256_bytes(&ka), a.clone());
        prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        prop_assert_eq!(parse(ABC_SHA512).sha256_bytes(), None);
    }

    #[test]
    fn any_sha512_hex_round_trips(hex in "[0-9a-f]{128}") {
        let text = format!("sha512:{hex}");
        prop_assert_eq!(Digest::parse(&text).map(|d| d.to_string()), Ok(text));
    }

    #[test]
    fn mutations_are_rejected(hex in hex64(), pos in 0usize..64, kind in 0u8..6) {
        let mut chars: Vec<char> = hex.chars().collect();
        let text = match kind {
            // uppercase character (force a letter)
            0 => { chars[pos] = 'A'; format!("sha256:{}", chars.iter().collect::<String>()) }
            // extra character
            1 => { chars.insert(pos, 'a'); format!("sha256:{}", chars.iter().collect::<String>()) }
            // missing character
            2 => { chars.remove(pos); format!("sha256:{}", chars.iter().collect::<String>()) }
            // wrong prefix
            3 => format!("sha384:{hex}"),
            // slash inside
            4 => { chars[pos] = '/'; format!("sha256:{}", chars.iter().collect::<String>()) }
            // no prefix at all
            _ => hex.clone(),
        };
        prop_assert!(Digest::parse(&text).is_err(), "accepted {}", text);
    }

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = Digest::parse(&s);
    }

    #[test]
    fn verifier_accepts_any_chunking(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let d = Digest::sha256_of(&data);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        let mut v = Verifier::new(d, Some(data.len() as u64));
        for w in points.windows(2) {
            prop_assert_eq!(v.update(&data[w[0]..w[1]]), Ok(()));
        }
        prop_assert_eq!(v.bytes_seen(), data.len() as u64);
        prop_assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn verifier_rejects_corruption(
        data in proptest::collection::vec(any::<u8>(), 1..1024),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let d = Digest::sha256_of(&data);
        let size = Some(data.len() as u64);
        let i = at.index(data.len());

        // one flipped byte
        let mut flipped = data.clone();
        flipped[i] ^= 1 << bit;
        let mut v = Verifier::new(d.clone(), size);
        prop_assert_eq!(v.update(&flipped), Ok(()));
        let flipped_result = v.finish();
        prop_assert!(matches!(flipped_result, Err(VerifyError::DigestMismatch { .. })), "flipped byte accepted");

        // the same corruption without a known size is still caught
        let mut v = Verifier::new(d.clone(), None);
        prop_assert_eq!(v.update(&flipped), Ok(()));
        prop_assert!(v.finish().is_err());

        // one extra byte
        let mut v = Verifier::new(d.clone(), size);
        prop_assert_eq!(v.update(&data), Ok(()));
        prop_assert_eq!(v.update(&[0]), Err(VerifyError::TooLarge { expected: data.len() as u64 }));
        let mut longer = data.clone();
        longer.insert(i, 0);
        let mut v = Verifier::new(d.clone(), None);
        prop_assert_eq!(v.update(&longer), Ok(()));
        prop_assert!(matches!(v.finish(), Err(VerifyError::DigestMismatch { .. })), "wrong content accepted");

        // one missing byte
        let mut shorter = data.clone();
        shorter.remove(i);
        let mut v = Verifier::new(d.clone(), size);
        prop_assert_eq!(v.update(&shorter), Ok(()));
        let short_result = v.finish();
        prop_assert_eq!(
            short_result,
            Err(VerifyError::SizeMismatch { expected: data.len() as u64, actual: data.len() as u64 - 1 })
        );
        let mut v = Verifier::new(d, None);
        prop_assert_eq!(v.update(&shorter), Ok(()));
        prop_assert!(matches!(v.finish(), Err(VerifyError::DigestMismatch { .. })), "wrong content accepted");
    }
}
