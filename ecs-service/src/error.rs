//! Errors of the service layer.

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while planning, applying, verifying, rolling back or destroying the
/// service layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid specification, a failed AWS call (with operation, resource, code and message),
    /// or a wait that timed out.
    #[error(transparent)]
    Core(#[from] ecs_core::Error),
    /// A resource with the stack's deterministic name exists but is not the stack's (it
    /// lacks the stack's owner tag): it belongs to someone else and is never modified or
    /// deleted; nothing was changed.
    #[error(transparent)]
    Foreign(#[from] ecs_core::resource::Foreign),
    /// The plan replaces a resource that cannot be changed in place (e.g. the load balancer's
    /// scheme, the target group's port or the repository's encryption); nothing was changed.
    #[error(transparent)]
    ReplacementRequired(#[from] ecs_core::resource::Replacement),
    /// The rollout failed or was rolled back by the deployment circuit breaker.
    #[error(
        "rollout of {service} failed: {reason}{}{}",
        list("stopped tasks", stopped_tasks),
        list("last service events", events)
    )]
    RolloutFailed {
        /// The service.
        service: String,
        /// The deployment's state and reason.
        reason: String,
        /// Why tasks of the deployment stopped (e.g. `CannotPullContainerError: …`).
        stopped_tasks: Vec<String>,
        /// The service's most recent events.
        events: Vec<String>,
    },
    /// Pre-flight checks failed; every failed check is listed.
    #[error("verification failed: {0}")]
    Verification(ecs_core::Problems),
    /// The caller's gate closed (what the service waits for failed): the apply started no
    /// further step, let those in flight finish, and did not touch the service.
    #[error("the service {service} was left as it was: what it waits for did not complete")]
    GateClosed {
        /// The service's name.
        service: String,
    },
    /// The world changed under an apply step since the plan's read; the step stopped.
    #[error(transparent)]
    Changed(#[from] ecs_core::resource::Changed),
    /// A resource the operation needs does not exist.
    #[error(transparent)]
    NotFound(#[from] ecs_core::resource::NotFound),
    /// A web service's routes cannot take their place on the environment's load balancer
    /// (a conflict with another service's rule, a pinned priority taken, the rule quota);
    /// nothing was changed.
    #[error(transparent)]
    Routing(#[from] Box<crate::routing::RoutingError>),
    /// The environment a service is one of is not deployed, or lacks what the service
    /// needs of it; nothing was changed.
    #[error("environment {environment} is not deployed, or lacks what this service needs: no {missing}; deploy the environment first")]
    EnvironmentMissing {
        /// The environment.
        environment: String,
        /// What is missing.
        missing: String,
    },
    /// A service cannot move as asked without a destroy first: between the environment's
    /// internet-facing and internal load balancers, or from a stack of its own into an
    /// environment. Nothing was changed.
    #[error("{0}; nothing was changed")]
    Placement(String),
    /// An environment still has services in its cluster; nothing was changed. Destroy the
    /// services first.
    #[error("environment {environment} still has services ({}): destroy them first", services.join(", "))]
    EnvironmentInUse {
        /// The environment.
        environment: String,
        /// The services in its cluster.
        services: Vec<String>,
    },
    /// ECS Exec cannot open a session (exec is off, no task runs, no such container); no
    /// session was made.
    #[error("{0}")]
    Exec(String),
}

impl From<crate::routing::RoutingError> for Error {
    fn from(e: crate::routing::RoutingError) -> Self {
        Error::Routing(Box::new(e))
    }
}

fn list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("; {title}: {}", items.join(" | "))
    }
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
            Error::Core(ecs_core::Error::Invalid(p)) | Error::Verification(p) => Some(p),
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
