//! Errors of the facade: each layer's error, plus manifest errors. As smithy-rs recommends,
//! no error's `Display` repeats its source's: walking the `source()` chain prints each
//! message once.

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
    /// The manifest is invalid: every problem, each naming the manifest's key at its line
    /// and column (see [`ManifestProblems`](crate::ManifestProblems)). No AWS call was made.
    #[error("{0}")]
    InvalidManifest(crate::ManifestProblems),
    /// The stack is invalid; every problem of every layer is listed. No AWS call was made.
    #[error("invalid stack: {0}")]
    Invalid(ecs_core::Problems),
    /// The network layer failed. Its error is shown as is (its message names the resource
    /// and the operation), so that a printed chain of sources says each thing once.
    #[error(transparent)]
    Network(ecs_net::Error),
    /// The service layer failed (including a failed or rolled-back rollout).
    #[error(transparent)]
    Service(ecs_service::Error),
    /// The scaling layer failed.
    #[error(transparent)]
    Scaling(ecs_scaling::Error),
    /// The observability layer failed.
    #[error(transparent)]
    Observe(ecs_observe::Error),
    /// The stack's lease: another run holds it, or this run lost it (see
    /// [`ecs_core::lease`]); nothing was changed, or the run stopped.
    #[error(transparent)]
    Lease(Box<ecs_core::lease::LeaseError>),
    /// A pre-flight check failed: something the stack refers to but does not make is
    /// missing or unusable (see [`Verification`](crate::Verification)). Nothing was changed.
    #[error("stack `{stack}` refers to what a deploy would fail on; nothing was changed:{}", failures.iter().map(|c| format!("\n  {c}")).collect::<String>())]
    Preflight {
        /// The stack.
        stack: String,
        /// The failed checks.
        failures: Vec<crate::Check>,
    },
    /// An infrastructure-only deploy of a stack whose service exists already (it would
    /// stop its tasks). Nothing was changed.
    #[error("stack `{stack}` has its service already: an infrastructure-only deploy is for a first deploy; deploy the whole stack")]
    InfrastructureOnly {
        /// The stack.
        stack: String,
    },
    /// A call that is no layer's failed (a pre-flight check's).
    #[error(transparent)]
    Aws(Box<ecs_core::AwsError>),
    /// A saved plan no longer applies as saved (see [`SavedPlan`](crate::SavedPlan)); nothing
    /// was changed.
    #[error("the saved plan of stack `{stack}` no longer applies: {reason}; nothing was changed, plan again")]
    StalePlan {
        /// The stack.
        stack: String,
        /// Why: the stack changed since (the entries that differ), the file was edited, or
        /// another version of the tool or another region planned it.
        reason: String,
    },
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
            Error::Manifest { .. }
            | Error::InvalidManifest(_)
            | Error::StalePlan { .. }
            | Error::Lease(_)
            | Error::Preflight { .. }
            | Error::InfrastructureOnly { .. }
            | Error::Aws(_) => None,
        }
    }

    /// The AWS error code, when an AWS call failed.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Network(e) => e.code(),
            Error::Service(e) => e.code(),
            Error::Scaling(e) => e.code(),
            Error::Observe(e) => e.code(),
            Error::Aws(e) => e.code(),
            _ => None,
        }
    }
}

impl From<ecs_core::lease::LeaseError> for Error {
    fn from(e: ecs_core::lease::LeaseError) -> Self {
        Error::Lease(Box::new(e))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of `e` and of its sources, outermost first.
    fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut source = e.source();
        while let Some(s) = source {
            out.push(s.to_string());
            source = s.source();
        }
        out
    }

    #[test]
    fn no_message_repeats_its_source() {
        let aws = || {
            ecs_core::AwsError::new(
                "CreateSubnet",
                "subnet subnet/public/us-east-1b (10.0.16.0/20)",
                Some("InvalidSubnet.Conflict"),
                "The CIDR conflicts with another subnet",
                ecs_core::AwsErrorKind::Service,
            )
        };
        let errors = [
            Error::from(ecs_net::Error::from(aws())),
            Error::from(ecs_service::Error::from(ecs_core::Error::from(aws()))),
            Error::from(ecs_scaling::Error::from(ecs_core::Error::from(aws()))),
            Error::from(ecs_observe::Error::from(ecs_core::Error::from(aws()))),
        ];
        for e in errors {
            let messages = chain(&e);
            assert!(
                messages[0].contains("InvalidSubnet.Conflict"),
                "{messages:?}"
            );
            assert_eq!(e.code(), Some("InvalidSubnet.Conflict"));
            for pair in messages.windows(2) {
                assert!(!pair[0].contains(&pair[1]), "{messages:?}");
            }
        }
    }
}
