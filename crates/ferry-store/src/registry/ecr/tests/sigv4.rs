//! The signer against AWS's documented example, botocore and a from-scratch SigV4, its dates,
//! and its trace output.

use sha2::{Digest, Sha256};

use super::{Capture, SECRET, at, keys};
use crate::registry::ecr::sigv4::sign;
use crate::registry::ecr::{AwsKeys, CONTENT_TYPE, TARGET};
use ferry_base::secret::Secret;

fn header<'a>(added: &'a [(&'static str, String, bool)], name: &str) -> Option<&'a str> {
    added
        .iter()
        .find(|(n, ..)| n.eq_ignore_ascii_case(name))
        .map(|(_, v, _)| v.as_str())
}

/// AWS's published SigV4 example (IAM ListUsers, "Create a signature for AWS Signature
/// Version 4"), also reproduced with botocore.
#[test]
fn signer_matches_the_aws_documentation_example() {
    let added = sign(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        b"",
        ("us-east-1", "iam"),
        &keys(),
        at(1_440_938_160), // 2015-08-30T12:36:00Z
    )
    .unwrap();
    assert_eq!(header(&added, "x-amz-date"), Some("20150830T123600Z"));
    assert_eq!(
        header(&added, "authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        )
    );
}

/// The ECR request, signed by botocore (`SigV4Auth`) for the same inputs.
#[test]
fn signer_matches_botocore_for_the_ecr_request() {
    let fixed = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
    let time = at(1_704_164_645); // 2024-01-02T03:04:05Z
    let url = "https://api.ecr.us-west-2.amazonaws.com/";
    let added = sign(
        "POST",
        url,
        &fixed,
        b"{}",
        ("us-west-2", "ecr"),
        &keys(),
        time,
    )
    .unwrap();
    assert_eq!(
        header(&added, "authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-west-2/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=b25bfdfb6d2ebf03e86d3c3e85c5304fb49107603ee87ddd08e21230f538a79b"
        )
    );
    assert_eq!(header(&added, "x-amz-security-token"), None);

    let with_token = keys().with_session_token(Secret::new("FwoGZXIvYXdzEXAMPLESESSIONTOKEN"));
    let added = sign(
        "POST",
        url,
        &fixed,
        b"{}",
        ("us-west-2", "ecr"),
        &with_token,
        time,
    )
    .unwrap();
    assert_eq!(
        header(&added, "authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-west-2/ecr/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=47330429174319c0303c0942a013358d44e33a8c26dbc96e025976c96dd1d059"
        )
    );
    let token = added
        .iter()
        .find(|(n, ..)| n.eq_ignore_ascii_case("x-amz-security-token"))
        .unwrap();
    assert_eq!(token.1, "FwoGZXIvYXdzEXAMPLESESSIONTOKEN");
    assert!(token.2, "the session token header is marked sensitive");
}

/// Signing traces nothing that holds the session token: ferry's TRACE logs
/// must not carry it.
#[test]
fn signing_logs_no_session_token() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let k = keys().with_session_token(Secret::new("TRACEDSESSIONTOKEN"));
    tracing::subscriber::with_default(subscriber, || {
        tracing::trace!("before signing");
        sign(
            "POST",
            "https://api.ecr.us-west-2.amazonaws.com/",
            &[("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)],
            b"{}",
            ("us-west-2", "ecr"),
            &k,
            at(1_704_164_645),
        )
        .unwrap();
    });
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("before signing"), "{log}");
    assert!(!log.contains("TRACEDSESSIONTOKEN"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// SigV4 re-derived from the specification, independently of the signer, for an endpoint
/// with a port (as in tests against a local emulator).
#[test]
fn signer_agrees_with_a_from_scratch_sigv4() {
    let fixed = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
    let k = AwsKeys::new("AKIAFERRYTEST", Secret::new("s3cr3t/key+value"));
    let time = at(1_767_225_599); // 2025-12-31T23:59:59Z
    let added = sign(
        "POST",
        "http://127.0.0.1:45678/",
        &fixed,
        b"{}",
        ("eu-north-1", "ecr"),
        &k,
        time,
    )
    .unwrap();
    let date_time = "20251231T235959Z";
    assert_eq!(header(&added, "x-amz-date"), Some(date_time));
    let canonical = format!(
        "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:127.0.0.1:45678\nx-amz-date:{date_time}\nx-amz-target:{TARGET}\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
        hex::encode(Sha256::digest(b"{}"))
    );
    let scope = "20251231/eu-north-1/ecr/aws4_request";
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(b"AWS4s3cr3t/key+value", b"20251231");
    for part in ["eu-north-1", "ecr", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    assert_eq!(
        header(&added, "authorization").unwrap(),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIAFERRYTEST/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}"
        )
    );
}

/// The date in `x-amz-date` across a leap day, a year's end and the far future.
#[test]
fn dates_are_utc_calendar_dates() {
    let date = |epoch| {
        let added = sign(
            "POST",
            "https://api.ecr.us-west-2.amazonaws.com/",
            &[],
            b"",
            ("us-west-2", "ecr"),
            &keys(),
            at(epoch),
        )
        .unwrap();
        header(&added, "x-amz-date").unwrap().to_string()
    };
    assert_eq!(date(0), "19700101T000000Z");
    assert_eq!(date(951_782_400), "20000229T000000Z");
    assert_eq!(date(1_709_251_199), "20240229T235959Z");
    assert_eq!(date(1_735_689_600), "20250101T000000Z");
    assert_eq!(date(4_102_444_800), "21000101T000000Z");
}
