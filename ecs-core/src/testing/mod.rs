//! Test support for code built on these crates (feature `testing`): the local AWS emulator,
//! an SDK call counter, and mocked SDK clients.
//!
//! * [`Emulator`] installs `moto[server]` (pinned) into a project-local virtualenv on first use,
//!   starts it on `127.0.0.1` on a free port, bridges the CloudWatch RPC v2 CBOR protocol to the
//!   JSON protocol moto serves, and stops it when dropped or when the test process ends.
//! * [`FaultInjector`] fails the K-th mutating call after the service acted, and [`Chaos`]
//!   adds latency and answers a share of requests with throttling errors.
//! * [`CallCounter`] is an SDK interceptor that records every operation a client sends, so a
//!   test can assert that a redeploy made zero mutating calls.
//! * [`mock_sdk_config`] and [`mock_client!`](crate::mock_client) build SDK clients whose
//!   responses come from [`aws_smithy_mocks`] rules, without real credentials or network;
//!   [`Journal`] records every call those rules answer, with its typed input, and builds the
//!   rules that answer from a stateful fake world ([`Journal::on`]). Every layer's mock tests
//!   use it.
//! * Stateful fakes of AWS services, each behind its own feature so a test pulls in only the
//!   SDK crates it uses: `FakeEc2` (feature `fake-ec2`) holds an account's networks,
//!   `FakeCloudWatch` (`fake-cloudwatch`) its alarms and dashboards, `FakeLogs`
//!   (`fake-logs`) its log groups, `FakeIam` (`fake-iam`) its roles, `FakeEcr` (`fake-ecr`)
//!   its repositories, `FakeAutoScaling` (`fake-autoscaling`) its ECS services' scalable
//!   targets, policies and scheduled actions, `FakeEcs` (`fake-ecs`) its clusters, revisions
//!   and services, `FakeElb` (`fake-elb`) its load balancers, target groups, listeners and
//!   rules; each answers a mocked client from them and changes them
//!   as the calls would. Their ARNs name [`ACCOUNT`] in [`REGION`].

/// The handle every stateful fake is: its state behind a lock, the journal it records into,
/// clients answered by its rules (which each fake writes as `rules`), and `on` for a test's
/// own behaviour over the state.
#[allow(unused_macros)]
macro_rules! fake_handle {
    ($(#[$meta:meta])* $name:ident, $state:ty, $sdk:ident $(, $field:ident: $fty:ty = $init:expr)*) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pub(crate) state: std::sync::Arc<std::sync::Mutex<$state>>,
            journal: $crate::testing::Journal,
            $($field: $fty,)*
        }

        impl $name {
            /// A fake account holding `state`, recording every call into `journal`.
            pub fn new(journal: &$crate::testing::Journal, state: $state) -> Self {
                Self {
                    state: std::sync::Arc::new(std::sync::Mutex::new(state)),
                    journal: journal.clone(),
                    $($field: $init,)*
                }
            }

            /// What the account holds now (locked while the guard lives: drop it before the
            /// next call).
            pub fn state(&self) -> std::sync::MutexGuard<'_, $state> {
                self.state.lock().unwrap_or_else(|e| e.into_inner())
            }

            /// The journal of the calls the fake answered.
            pub fn journal(&self) -> &$crate::testing::Journal {
                &self.journal
            }

            /// A client answered by the fake alone.
            pub fn client(&self) -> $sdk::Client {
                self.client_with(&[])
            }

            /// A client answered by `overrides` first (the first matching rule answers), then
            /// by the fake.
            pub fn client_with(&self, overrides: &[&$crate::testing::Rule]) -> $sdk::Client {
                let rules = self.rules();
                $crate::mock_client!(
                    $sdk,
                    $crate::testing::RuleMode::MatchAny,
                    overrides.iter().copied().chain(rules.iter())
                )
            }

            /// A rule that records the call as `op` and answers with `handle` over the
            /// account: a test's own behaviour, put in front of the fake's rules with
            /// `client_with`.
            pub fn on<I, O, E>(
                &self,
                op: &'static str,
                rule: $crate::testing::RuleBuilder<I, O, E>,
                handle: impl Fn(&mut $state, &I, usize) -> Result<O, E> + Send + Sync + 'static,
            ) -> $crate::testing::Rule
            where
                I: std::any::Any + Clone + std::fmt::Debug + Send + Sync,
                O: std::fmt::Debug + Send + Sync + 'static,
                E: std::fmt::Debug + Send + Sync + std::error::Error + 'static,
            {
                self.journal.on(&self.state, op, rule, handle)
            }
        }
    };
}

/// An AWS error's metadata: `code` and `message`, as a fake answers a refused call.
#[allow(dead_code)]
pub(crate) fn aws_error(
    code: &str,
    message: impl Into<String>,
) -> aws_smithy_types::error::ErrorMetadata {
    aws_smithy_types::error::ErrorMetadata::builder()
        .code(code)
        .message(message.into())
        .build()
}

/// Sets `set` in an SDK's tag list (replacing tags of the same key, `key` of a tag) and
/// removes the keys `unset`.
#[allow(dead_code)]
pub(crate) fn retag<T: Clone>(
    tags: &mut Vec<T>,
    set: &[T],
    unset: &[String],
    key: impl Fn(&T) -> Option<&str>,
) {
    tags.retain(|t| {
        let k = key(t);
        !unset.iter().any(|u| Some(u.as_str()) == k) && !set.iter().any(|n| key(n) == k)
    });
    tags.extend(set.iter().cloned());
}

mod chaos;
mod counter;
mod emulator;
#[cfg(feature = "fake-autoscaling")]
pub mod fake_autoscaling;
#[cfg(feature = "fake-cloudwatch")]
pub mod fake_cloudwatch;
#[cfg(feature = "fake-ec2")]
pub mod fake_ec2;
#[cfg(feature = "fake-ecr")]
pub mod fake_ecr;
#[cfg(feature = "fake-ecs")]
pub mod fake_ecs;
#[cfg(feature = "fake-elb")]
pub mod fake_elb;
#[cfg(feature = "fake-iam")]
pub mod fake_iam;
#[cfg(feature = "fake-logs")]
pub mod fake_logs;
mod fault;
mod journal;
mod memory_lease;
mod protocol;
mod simulation;

pub use chaos::{Chaos, Throttled};
pub use counter::{Call, CallCounter};
pub use emulator::{Emulator, EmulatorError, EmulatorOptions, CBOR2_VERSION, MOTO_VERSION};
#[cfg(feature = "fake-autoscaling")]
pub use fake_autoscaling::{AutoScalingState, FakeAutoScaling};
#[cfg(feature = "fake-cloudwatch")]
pub use fake_cloudwatch::{CloudWatchState, FakeCloudWatch};
#[cfg(feature = "fake-ec2")]
pub use fake_ec2::{Ec2State, FakeEc2};
#[cfg(feature = "fake-ecr")]
pub use fake_ecr::{EcrState, FakeEcr};
#[cfg(feature = "fake-ecs")]
pub use fake_ecs::{EcsState, FakeEcs};
#[cfg(feature = "fake-elb")]
pub use fake_elb::{ElbState, FakeElb};
#[cfg(feature = "fake-iam")]
pub use fake_iam::{FakeIam, IamState};
#[cfg(feature = "fake-logs")]
pub use fake_logs::{FakeLogs, LogsState};
pub use fault::{FaultInjector, INJECTED_FAULT};
pub use journal::Journal;
pub use memory_lease::MemoryLeaseStore;
pub use simulation::{Provisioned, Provisioning, Readiness, ScaledClock, TracedCall, GATE_TIMEOUT};

pub use aws_smithy_mocks::{
    mock, MockResponse, MockResponseInterceptor, Rule, RuleBuilder, RuleMode,
};

/// The account the fakes' ARNs name.
pub const ACCOUNT: &str = "123456789012";
/// The region of mocked clients ([`mock_sdk_config`]), which the fakes' ARNs name.
pub const REGION: &str = "us-east-1";

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, SdkConfig};

/// An [`SdkConfig`] for mocked clients: region `us-east-1`, static test credentials, the mock
/// HTTP client of [`aws_smithy_mocks`], and the SDK's own retries disabled so that the
/// project's retry logic (with its injectable clock) is what a test exercises.
pub fn mock_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTESTING",
            "secret",
            None,
            None,
            "ecs-core-testing",
        )))
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .retry_config(RetryConfig::disabled())
        .build()
}

/// Builds a client of SDK crate `$sdk` whose responses come from `aws_smithy_mocks` rules.
///
/// ```no_run
/// use ecs_core::testing::{mock, RuleMode};
/// let rule = mock!(aws_sdk_ec2::Client::describe_vpcs)
///     .then_output(|| aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput::builder().build());
/// let ec2 = ecs_core::mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
/// ```
#[macro_export]
macro_rules! mock_client {
    ($sdk:ident, $mode:expr, $rules:expr) => {{
        let mut interceptor = $crate::testing::MockResponseInterceptor::new().rule_mode($mode);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        $sdk::Client::from_conf(
            $sdk::config::Builder::from(&$crate::testing::mock_sdk_config())
                .interceptor(interceptor)
                .build(),
        )
    }};
}
