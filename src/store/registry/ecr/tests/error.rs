//! Reading AWS error answers, explaining their codes, and messages that hold no keys.

use super::{ID, SECRET, keys};
use crate::secret::Secret;
use crate::store::registry::ecr::error::{MESSAGE_LIMIT, clean_message, parse_error};
use crate::store::registry::ecr::{EcrError, explain};

#[test]
fn maps_aws_errors() {
    let (code, message) = parse_error(
        400,
        None,
        br#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#,
    );
    assert_eq!(code, "UnrecognizedClientException");
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );
    assert!(explain(&code, 400).contains("the AWS access key was rejected"));

    let (code, _) = parse_error(
        400,
        None,
        br#"{"__type":"com.amazonaws.ecr#AccessDeniedException","Message":"no"}"#,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(explain(&code, 400).contains("ecr:GetAuthorizationToken"));

    let (code, message) = parse_error(
        403,
        Some(
            "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
        ),
        b"",
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidSignatureException", "")
    );
    assert!(explain(&code, 403).contains("secret access key does not match"));

    let (code, message) = parse_error(
        403,
        None,
        b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>",
    );
    assert_eq!(code, "SignatureDoesNotMatch");
    assert!(message.starts_with("The request signature"));

    let (code, _) = parse_error(503, None, b"busy");
    assert_eq!(code, "HTTP503");
    assert!(explain(&code, 503).contains("server error"));
    assert!(explain("ExpiredTokenException", 400).contains("session token has expired"));
    assert!(explain("ThrottlingException", 400).contains("throttling"));
    assert_eq!(explain("Whatever", 400), "AWS refused the request");
}

#[test]
fn error_messages_hold_no_keys() {
    let k = keys().with_session_token(Secret::new("SESSIONTOKEN123"));
    let message = clean_message(
        &format!("key {ID} secret {SECRET} token SESSIONTOKEN123\n and   more"),
        &k,
    );
    assert_eq!(
        message,
        "key <redacted> secret <redacted> token <redacted> and more"
    );
    let long = clean_message(&"x".repeat(1000), &k);
    assert_eq!(long.chars().count(), MESSAGE_LIMIT + 1);
    assert_eq!(clean_message("", &k), "no message");

    let e = EcrError::Rejected {
        region: "us-east-1".into(),
        endpoint: "https://api.ecr.us-east-1.amazonaws.com/".into(),
        status: 400,
        code: "UnrecognizedClientException".into(),
        message: "The security token included in the request is invalid.".into(),
    };
    let text = e.to_string();
    assert!(text.contains("us-east-1"), "{text}");
    assert!(
        text.contains("https://api.ecr.us-east-1.amazonaws.com/"),
        "{text}"
    );
    assert!(text.contains("the AWS access key was rejected"), "{text}");
    assert!(text.contains("UnrecognizedClientException"), "{text}");
    assert_eq!(e.code(), Some("UnrecognizedClientException"));
}
