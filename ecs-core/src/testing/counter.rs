//! Counting the operations SDK clients send.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// One operation sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The service, as the SDK names it, e.g. `EC2` or `CloudWatch`.
    pub service: String,
    /// The operation, e.g. `CreateVpc`.
    pub operation: String,
}

impl Call {
    /// Whether the operation may change something: anything but `Describe*`, `List*` and
    /// `Get*` (which covers `GetAuthorizationToken` too: it creates nothing).
    pub fn is_mutating(&self) -> bool {
        !["Describe", "List", "Get"]
            .iter()
            .any(|p| self.operation.starts_with(p))
    }
}

/// An SDK interceptor recording every operation a client sends (once per operation, however
/// many attempts it takes). Clones share the record.
///
/// ```no_run
/// # async fn example(sdk_config: aws_types::SdkConfig) {
/// use ecs_core::testing::CallCounter;
/// let counter = CallCounter::new();
/// let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
///     aws_sdk_cloudwatch::config::Builder::from(&sdk_config).interceptor(counter.clone()).build(),
/// );
/// // ... use the client ...
/// assert!(counter.mutating().is_empty());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<Vec<Call>>>);

impl CallCounter {
    /// A counter with no calls recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The mutating calls so far.
    pub fn mutating(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    /// How many times `operation` was called.
    pub fn count(&self, operation: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// Forgets every call recorded so far.
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(Call {
                service: meta.service().to_string(),
                operation: meta.name().to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_mutating_operations() {
        let call = |op: &str| Call {
            service: "ec2".into(),
            operation: op.into(),
        };
        assert!(call("CreateVpc").is_mutating());
        assert!(call("AuthorizeSecurityGroupIngress").is_mutating());
        assert!(!call("DescribeVpcs").is_mutating());
        assert!(!call("ListTagsForResource").is_mutating());
        assert!(!call("GetDashboard").is_mutating());
    }
}
