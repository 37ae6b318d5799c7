//! Errors of the networking layer.

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while planning, applying or destroying a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid specification, a failed AWS call (with operation, resource, code and message),
    /// or a wait that timed out.
    #[error(transparent)]
    Core(#[from] ecs_core::Error),
    /// The plan replaces a resource that ecs-net does not replace in place (a VPC, a subnet or
    /// a NAT gateway whose placement changed); nothing was changed.
    #[error(transparent)]
    ReplacementRequired(#[from] ecs_core::resource::Replacement),
    /// A resource the stack wants stands where it should, but is not the stack's; nothing was
    /// changed.
    #[error(transparent)]
    Foreign(#[from] ecs_core::resource::Foreign),
    /// A resource the specification names does not exist (e.g. an existing VPC or subnet id).
    #[error(transparent)]
    NotFound(#[from] ecs_core::resource::NotFound),
}

impl Error {
    /// The AWS error, when an AWS call failed.
    pub fn as_aws(&self) -> Option<&ecs_core::AwsError> {
        match self {
            Error::Core(e) => e.as_aws(),
            _ => None,
        }
    }

    /// The AWS error code, when an AWS call failed.
    pub fn code(&self) -> Option<&str> {
        self.as_aws().and_then(|e| e.code())
    }

    /// The validation problems, when the specification was invalid.
    pub fn problems(&self) -> Option<&ecs_core::Problems> {
        match self {
            Error::Core(ecs_core::Error::Invalid(p)) => Some(p),
            _ => None,
        }
    }
}

impl From<ecs_core::AwsError> for Error {
    fn from(e: ecs_core::AwsError) -> Self {
        Error::Core(e.into())
    }
}

impl From<ecs_core::Problems> for Error {
    fn from(p: ecs_core::Problems) -> Self {
        Error::Core(ecs_core::Error::Invalid(p))
    }
}
