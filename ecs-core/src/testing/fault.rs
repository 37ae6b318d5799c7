//! Fault injection between the SDK and the service: an interceptor that lets the K-th
//! mutating call reach the service and then replaces its answer with a non-retryable error,
//! as if the connection dropped after the server acted — the hardest case for convergence.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::protocol::Protocol;
use super::Call;

/// The error code of an injected fault.
pub const INJECTED_FAULT: &str = "InjectedFault";

const MESSAGE: &str = "fault injected after the request reached the service";

#[derive(Debug, Default)]
struct State {
    fail_at: Option<usize>,
    mutating: usize,
    injected: Vec<Call>,
}

/// An SDK interceptor that fails the K-th mutating call (counted from 1 since it was armed)
/// after the service has carried it out, with a non-retryable `InjectedFault` error in the
/// service's own protocol. Add it to every client of a test (like
/// [`CallCounter`](super::CallCounter)); clones share their state.
///
/// ```
/// use ecs_core::testing::FaultInjector;
/// let faults = FaultInjector::new();
/// faults.fail_mutating_call(3);
/// assert_eq!(faults.mutating_calls(), 0);
/// faults.disarm();
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultInjector(Arc<Mutex<State>>);

impl FaultInjector {
    /// An injector that injects nothing until armed.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails the `k`-th mutating call from now (1 = the next one), once.
    pub fn fail_mutating_call(&self, k: usize) {
        let mut s = self.state();
        s.fail_at = Some(k);
        s.mutating = 0;
    }

    /// Injects nothing more; the count of mutating calls starts again from 0.
    pub fn disarm(&self) {
        let mut s = self.state();
        s.fail_at = None;
        s.mutating = 0;
    }

    /// Mutating calls seen since the injector was last armed or disarmed.
    pub fn mutating_calls(&self) -> usize {
        self.state().mutating
    }

    /// The calls whose answers were replaced by a fault.
    pub fn injected(&self) -> Vec<Call> {
        self.state().injected.clone()
    }
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let call = Call {
            service: meta.service().to_string(),
            operation: meta.name().to_string(),
        };
        if !call.is_mutating() {
            return Ok(());
        }
        let mut s = self.state();
        s.mutating += 1;
        if s.fail_at == Some(s.mutating) {
            *context.response_mut() =
                Protocol::from_service(&call.service).error(400, INJECTED_FAULT, MESSAGE);
            s.injected.push(call);
        }
        Ok(())
    }
}
