//! Errors of the shared foundation, which the layers wrap in their own error enums.

use std::time::Duration;

use crate::aws::AwsError;
use crate::validate::Problems;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of `ecs-core`'s retry, polling and validation helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The specification is invalid; every problem is listed. No AWS call was made.
    #[error("invalid specification: {0}")]
    Invalid(Problems),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A wait or a retry ran out of time.
    #[error("timed out after {}s waiting for {resource} to reach {awaiting} (last seen: {last_seen})", waited.as_secs())]
    Timeout {
        /// The resource waited on.
        resource: String,
        /// The state that was awaited.
        awaiting: String,
        /// How long we waited.
        waited: Duration,
        /// The last state observed.
        last_seen: String,
    },
}

impl Error {
    /// The AWS error code, when an AWS call failed.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws(e) => e.code(),
            _ => None,
        }
    }

    /// The AWS error, when an AWS call failed.
    pub fn as_aws(&self) -> Option<&AwsError> {
        match self {
            Error::Aws(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Problems> for Error {
    fn from(p: Problems) -> Self {
        Error::Invalid(p)
    }
}
