//! AWS errors with context: which operation on which resource failed, with the AWS error code
//! and message. The SDK's own error types stay private; callers use the accessors.

use std::error::Error as StdError;
use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes AWS services use for throttling.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes of server-side faults that are worth another try.
const TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServerException",
];

/// What a failure to send a request says in one plain sentence, when trying again cannot help
/// (the caller's configuration is missing or wrong): no region, no credentials, an endpoint
/// that refuses connections. `None` for a failure that may pass (a reset connection, a
/// time-out).
fn not_transient(
    failure: &aws_smithy_runtime_api::client::result::DispatchFailure,
    text: &str,
) -> Option<String> {
    if text.contains("Missing Region") {
        return Some(
            "no AWS region is configured: set AWS_REGION (or `region` in the AWS config file)"
                .to_string(),
        );
    }
    if text.contains("no identity resolver") || text.contains("NoMatchingAuthScheme") {
        return Some(
            "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
             AWS_PROFILE, or run where a role provides them"
                .to_string(),
        );
    }
    if failure.is_io() && refused(failure) {
        return Some(
            "the endpoint refused the connection: check the endpoint (AWS_ENDPOINT_URL, if \
             set) and that it is reachable"
                .to_string(),
        );
    }
    (failure.is_user() || failure.is_other()).then(|| text.to_string())
}

/// Whether a failure to send was a refused connection.
fn refused(failure: &aws_smithy_runtime_api::client::result::DispatchFailure) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> =
        failure.as_connector_error().map(|e| e as _);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        source = e.source();
    }
    format!("{failure:?}").contains("ConnectionRefused")
}

/// How an AWS error should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwsErrorKind {
    /// The service throttled the request: back off and try again.
    Throttling,
    /// A network failure, a time-out or a server-side fault: worth another try.
    Transient,
    /// The service rejected the request; retrying the same request will not help
    /// (unless the caller knows this code to be an eventual-consistency effect).
    Service,
    /// The request could not be built or sent for a reason that will not go away.
    Other,
}

/// An AWS call that failed: the operation, the resource it concerned, and what AWS said.
#[derive(Debug)]
pub struct AwsError {
    operation: String,
    resource: String,
    code: Option<String>,
    message: String,
    kind: AwsErrorKind,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AwsError {
    /// Wraps an SDK error of `operation` on `resource`.
    pub fn from_sdk<E>(operation: &str, resource: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let (code, message, kind) = match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_string);
                let status = service.raw().status().as_u16();
                let kind = match code.as_deref() {
                    Some(c) if THROTTLING_CODES.contains(&c) => AwsErrorKind::Throttling,
                    Some(c) if TRANSIENT_CODES.contains(&c) => AwsErrorKind::Transient,
                    _ if status == 429 => AwsErrorKind::Throttling,
                    _ if (500..600).contains(&status) => AwsErrorKind::Transient,
                    _ => AwsErrorKind::Service,
                };
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(e).to_string());
                (code, message, kind)
            }
            SdkError::DispatchFailure(failure) => {
                let text = DisplayErrorContext(&err).to_string();
                match not_transient(failure, &text) {
                    Some(plain) => (None, plain, AwsErrorKind::Other),
                    None => (None, text, AwsErrorKind::Transient),
                }
            }
            // An answer the SDK could not decode is transient, unless the service refused
            // the request (a 4xx other than 429): asking again gets the same refusal.
            SdkError::ResponseError(r)
                if (400..500).contains(&r.raw().status().as_u16())
                    && r.raw().status().as_u16() != 429 =>
            {
                (
                    None,
                    DisplayErrorContext(&err).to_string(),
                    AwsErrorKind::Other,
                )
            }
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => (
                None,
                DisplayErrorContext(&err).to_string(),
                AwsErrorKind::Transient,
            ),
            _ => (
                None,
                DisplayErrorContext(&err).to_string(),
                AwsErrorKind::Other,
            ),
        };
        Self {
            operation: operation.to_string(),
            resource: resource.to_string(),
            code,
            message,
            kind,
            source: Some(Box::new(err)),
        }
    }

    /// An error built from its parts, for tests and for errors found by inspection
    /// (e.g. a resource that reached a failed state).
    pub fn new(
        operation: impl Into<String>,
        resource: impl Into<String>,
        code: Option<&str>,
        message: impl Into<String>,
        kind: AwsErrorKind,
    ) -> Self {
        Self {
            operation: operation.into(),
            resource: resource.into(),
            code: code.map(str::to_string),
            message: message.into(),
            kind,
            source: None,
        }
    }

    /// The AWS operation, e.g. `CreateVpc`.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The resource the call was about, e.g. `vpc web`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The AWS error code, e.g. `DependencyViolation`, when the service answered.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The AWS error message (or a description of the failure when the service did not answer).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How the error should be treated.
    pub fn kind(&self) -> AwsErrorKind {
        self.kind
    }

    /// Whether the code is `code`.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// Whether AWS throttled the call.
    pub fn is_throttling(&self) -> bool {
        self.kind == AwsErrorKind::Throttling
    }

    /// Whether trying again may succeed without changing anything (throttling, network
    /// failures, server faults).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            AwsErrorKind::Throttling | AwsErrorKind::Transient
        )
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {} failed: ", self.operation, self.resource)?;
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl StdError for AwsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_resource_and_code() {
        let e = AwsError::new(
            "DeleteSubnet",
            "subnet subnet-1",
            Some("DependencyViolation"),
            "has dependencies",
            AwsErrorKind::Service,
        );
        assert_eq!(
            e.to_string(),
            "DeleteSubnet for subnet subnet-1 failed: DependencyViolation: has dependencies"
        );
        assert!(e.is_code("DependencyViolation"));
        assert!(!e.is_transient());
        assert_eq!(e.operation(), "DeleteSubnet");
        assert_eq!(e.resource(), "subnet subnet-1");
    }
}
