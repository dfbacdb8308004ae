//! SDK errors classified as [`PortError`]s, so the retry loops of `alleycat-ports` decide the same
//! way whatever the service: re-merge on a failed condition, back off when throttled or on a
//! transient failure, report anything else at once.

use std::error::Error;

use alleycat_ports::PortError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes of a failed condition: the item or object changed since it was read.
const CONFLICT_CODES: &[&str] = &[
    "ConditionalCheckFailedException",
    "PreconditionFailed",
    "ConditionalRequestConflict",
];

/// Error codes that ask the caller to slow down.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];

/// Error codes of failures on the service's side that may pass.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Classifies an SDK error of `operation` (e.g. `DynamoDB PutItem race#1#2/standings`), which the
/// message names together with the service's error code and message.
pub fn classify<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + Error + 'static,
{
    match error {
        SdkError::ServiceError(context) => classify_response(
            operation,
            Some(context.raw().status().as_u16()),
            context.err().code(),
            context.err().message(),
        ),
        SdkError::ResponseError(context) => {
            // The response did not parse: judge it by its status alone.
            classify_response(
                operation,
                Some(context.raw().status().as_u16()),
                None,
                Some(&DisplayErrorContext(error).to_string()),
            )
        }
        SdkError::TimeoutError(_) => PortError::Transient(format!(
            "{operation}: timed out: {}",
            DisplayErrorContext(error)
        )),
        SdkError::DispatchFailure(failure) if failure.is_user() => PortError::Permanent(format!(
            "{operation}: request could not be sent: {}",
            DisplayErrorContext(error)
        )),
        SdkError::DispatchFailure(_) => PortError::Transient(format!(
            "{operation}: request not delivered: {}",
            DisplayErrorContext(error)
        )),
        _ => PortError::Permanent(format!("{operation}: {}", DisplayErrorContext(error))),
    }
}

/// The classification of a service's answer by its error code, then its HTTP status.
pub(crate) fn classify_response(
    operation: &str,
    status: Option<u16>,
    code: Option<&str>,
    message: Option<&str>,
) -> PortError {
    let describe = || {
        let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        let message = message
            .filter(|m| !m.is_empty())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        format!("{operation}: {}{status}{message}", code.unwrap_or("error"))
    };
    if let Some(code) = code {
        if CONFLICT_CODES.contains(&code) {
            return PortError::Conflict;
        }
        if THROTTLING_CODES.contains(&code) {
            return PortError::Throttled(describe());
        }
        if TRANSIENT_CODES.contains(&code) {
            return PortError::Transient(describe());
        }
        // DynamoDB: "Item size has exceeded the maximum allowed size"; S3: EntityTooLarge.
        let too_large = (code == "ValidationException"
            && message.is_some_and(|m| m.contains("size has exceeded")))
            || code == "EntityTooLarge";
        if too_large {
            return PortError::TooLarge(describe());
        }
    }
    match status {
        Some(412) => PortError::Conflict,
        // S3 answers SlowDown as a bare 503 where a response has no body (HEAD).
        Some(429) => PortError::Throttled(describe()),
        Some(503) if code.is_none() => PortError::Throttled(describe()),
        Some(500..=599) => PortError::Transient(describe()),
        _ => PortError::Permanent(describe()),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ConnectorError;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    use super::*;

    fn kind(error: &PortError) -> &'static str {
        match error {
            PortError::Conflict => "conflict",
            PortError::Throttled(_) => "throttled",
            PortError::Transient(_) => "transient",
            PortError::Permanent(_) => "permanent",
            PortError::TooLarge(_) => "too large",
        }
    }

    #[test]
    fn codes_decide_before_statuses() {
        let cases = [
            (400, "ConditionalCheckFailedException", "conflict"),
            (412, "PreconditionFailed", "conflict"),
            (409, "ConditionalRequestConflict", "conflict"),
            (400, "ProvisionedThroughputExceededException", "throttled"),
            (400, "ThrottlingException", "throttled"),
            (400, "RequestLimitExceeded", "throttled"),
            (503, "SlowDown", "throttled"),
            (500, "InternalServerError", "transient"),
            (500, "InternalError", "transient"),
            (503, "ServiceUnavailable", "transient"),
            (400, "ValidationException", "permanent"),
            (400, "ResourceNotFoundException", "permanent"),
            (403, "AccessDenied", "permanent"),
            (409, "BucketAlreadyExists", "permanent"),
        ];
        for (status, code, expected) in cases {
            let error = classify_response("op", Some(status), Some(code), Some("m"));
            assert_eq!(kind(&error), expected, "{status} {code}");
        }
    }

    #[test]
    fn statuses_decide_when_no_code_is_known() {
        let cases = [
            (412, "conflict"),
            (429, "throttled"),
            (503, "throttled"),
            (500, "transient"),
            (502, "transient"),
            (504, "transient"),
            (400, "permanent"),
            (404, "permanent"),
        ];
        for (status, expected) in cases {
            let error = classify_response("op", Some(status), None, None);
            assert_eq!(kind(&error), expected, "{status}");
        }
    }

    #[test]
    fn messages_name_the_operation_and_the_service_error() {
        let error = classify_response(
            "DynamoDB PutItem race#1#2/standings",
            Some(400),
            Some("ValidationException"),
            Some("One or more parameter values were invalid"),
        );
        assert_eq!(
            error,
            PortError::Permanent(
                "DynamoDB PutItem race#1#2/standings: ValidationException (HTTP 400): One or \
                 more parameter values were invalid"
                    .to_owned()
            )
        );
    }

    #[test]
    fn timeouts_and_dropped_connections_are_transient() {
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(matches!(classify("op", &timeout), PortError::Transient(_)));

        let io: SdkError<GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection reset".into()));
        let error = classify("DynamoDB GetItem k", &io);
        assert!(matches!(&error, PortError::Transient(m) if m.contains("DynamoDB GetItem k")));

        let other: SdkError<GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other("dns failure".into(), None));
        assert!(matches!(classify("op", &other), PortError::Transient(_)));
    }

    #[test]
    fn a_request_that_cannot_be_built_is_permanent() {
        let error: SdkError<GetItemError, HttpResponse> =
            SdkError::construction_failure("missing table name");
        assert!(matches!(classify("op", &error), PortError::Permanent(_)));
    }
}
