//! Errors of the facade: each layer's error, wrapped with its source, plus manifest errors.

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest could not be read or parsed (the message names the key and the line).
    #[error("manifest: {message}")]
    Manifest {
        /// What is wrong, and where.
        message: String,
    },
    /// The stack is invalid; every problem of every layer is listed. No AWS call was made.
    #[error("invalid stack: {0}")]
    Invalid(ecs_core::Problems),
    /// The network layer failed.
    #[error("network: {0}")]
    Network(#[source] ecs_net::Error),
    /// The service layer failed (including a failed or rolled-back rollout).
    #[error("service: {0}")]
    Service(#[source] ecs_service::Error),
    /// The scaling layer failed.
    #[error("scaling: {0}")]
    Scaling(#[source] ecs_scaling::Error),
    /// The observability layer failed.
    #[error("observability: {0}")]
    Observe(#[source] ecs_observe::Error),
}

impl Error {
    /// The validation problems, when the stack (or a layer's spec) was invalid.
    pub fn problems(&self) -> Option<&ecs_core::Problems> {
        match self {
            Error::Invalid(p) => Some(p),
            Error::Network(e) => e.problems(),
            Error::Service(e) => e.problems(),
            Error::Scaling(e) => e.problems(),
            Error::Observe(e) => e.problems(),
            Error::Manifest { .. } => None,
        }
    }

    /// The AWS error code, when an AWS call failed.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Network(e) => e.code(),
            Error::Service(e) => e.code(),
            Error::Scaling(e) => e.code(),
            Error::Observe(e) => e.code(),
            _ => None,
        }
    }
}

impl From<ecs_core::Problems> for Error {
    fn from(p: ecs_core::Problems) -> Self {
        Error::Invalid(p)
    }
}

impl From<ecs_net::Error> for Error {
    fn from(e: ecs_net::Error) -> Self {
        Error::Network(e)
    }
}

impl From<ecs_service::Error> for Error {
    fn from(e: ecs_service::Error) -> Self {
        Error::Service(e)
    }
}

impl From<ecs_scaling::Error> for Error {
    fn from(e: ecs_scaling::Error) -> Self {
        Error::Scaling(e)
    }
}

impl From<ecs_observe::Error> for Error {
    fn from(e: ecs_observe::Error) -> Self {
        Error::Observe(e)
    }
}
