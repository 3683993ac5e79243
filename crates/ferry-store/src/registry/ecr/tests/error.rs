//! Reading AWS error answers, explaining their codes, and messages that hold no keys.

use super::{ID, SECRET, keys};
use crate::registry::ecr::error::{MESSAGE_LIMIT, clean_message, parse_error};
use crate::registry::ecr::{EcrError, Operation, explain};
use ferry_base::secret::Secret;

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
        operation: Operation::GetAuthorizationToken,
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

#[test]
fn repository_errors_name_the_repository_the_region_and_the_fix() {
    let rejected = |code: &str, message: &str| EcrError::Rejected {
        operation: Operation::CreateRepository,
        region: "eu-west-1".into(),
        endpoint: "https://api.ecr.eu-west-1.amazonaws.com/".into(),
        status: 400,
        code: code.into(),
        message: message.into(),
    };
    let missing = EcrError::RepositoryMissing {
        repository: "rancher/rke-tools".into(),
        registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
        region: "eu-west-1".into(),
        cause: Box::new(rejected(
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/pusher is not authorized to perform: ecr:CreateRepository",
        )),
    };
    let text = missing.to_string();
    for expected in [
        "ECR repository rancher/rke-tools does not exist",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "region eu-west-1",
        "refused CreateRepository",
        "not allowed ecr:CreateRepository",
        "grant the IAM identity of these AWS keys ecr:CreateRepository",
        "--ecr-create-repos=false",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert_eq!(missing.code(), Some("AccessDeniedException"));

    let quota = EcrError::Repository {
        repository: "rancher/x".into(),
        registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
        region: "eu-west-1".into(),
        cause: Box::new(rejected("LimitExceededException", "too many")),
    };
    let text = quota.to_string();
    for expected in [
        "cannot make sure ECR repository rancher/x exists",
        "region eu-west-1",
        "a service quota of this AWS account is reached",
        "create the repository beforehand, or pass --ecr-create-repos=false",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert!(
        Operation::DescribeRepositories
            .explain("AccessDenied", 400)
            .contains("ecr:DescribeRepositories")
    );
    assert_eq!(
        Operation::CreateRepository.target(),
        "AmazonEC2ContainerRegistry_V20150921.CreateRepository"
    );
}
