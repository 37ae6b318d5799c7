//! Test support for code built on the facade (feature `testing`): the local AWS emulator and
//! SDK call counting from `ecs_core::testing`, and [`Layers`] over mocked or emulated clients,
//! so a platform built on these crates can test its stacks both ways.
//!
//! ```no_run
//! use ecs_facade::testing::{emulator_layers, CallCounter, Emulator};
//! # async fn example(stack: ecs_facade::Stack) -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::shared()?;
//! let counter = CallCounter::new();
//! let deployer = ecs_facade::Deployer::from_layers(emulator_layers(emulator, &counter).await);
//! deployer.deploy(&stack).await?;
//! counter.reset();
//! deployer.deploy(&stack).await?;
//! assert!(counter.mutating().is_empty(), "a redeploy changes nothing");
//! # Ok(()) }
//! ```

pub use ecs_core::mock_client;
pub use ecs_core::testing::*;

use crate::Layers;
use ecs_net::NetworkLayer;
use ecs_observe::{ObserveClients, ObserveLayer};
use ecs_scaling::{ScalingClients, ScalingLayer};
use ecs_service::{ServiceClients, ServiceLayer};

/// Mock rules per AWS service, for [`mock_layers`]. A call no rule matches fails the test.
#[derive(Debug, Default)]
pub struct MockRules<'a> {
    /// EC2.
    pub ec2: Vec<&'a Rule>,
    /// ECR.
    pub ecr: Vec<&'a Rule>,
    /// ECS.
    pub ecs: Vec<&'a Rule>,
    /// Elastic Load Balancing v2.
    pub elb: Vec<&'a Rule>,
    /// IAM.
    pub iam: Vec<&'a Rule>,
    /// Application Auto Scaling.
    pub autoscaling: Vec<&'a Rule>,
    /// CloudWatch.
    pub cloudwatch: Vec<&'a Rule>,
    /// CloudWatch Logs.
    pub logs: Vec<&'a Rule>,
}

/// Layers whose clients answer from `rules` (first matching rule wins), with the SDK's own
/// retries off so that the layers' retry logic is what a test sees.
pub fn mock_layers(rules: &MockRules<'_>) -> Layers {
    let any = RuleMode::MatchAny;
    Layers {
        network: NetworkLayer::from_client(mock_client!(
            aws_sdk_ec2,
            any,
            rules.ec2.iter().copied()
        )),
        service: ServiceLayer::from_clients(ServiceClients {
            ecr: mock_client!(aws_sdk_ecr, any, rules.ecr.iter().copied()),
            iam: mock_client!(aws_sdk_iam, any, rules.iam.iter().copied()),
            ecs: mock_client!(aws_sdk_ecs, any, rules.ecs.iter().copied()),
            elb: mock_client!(
                aws_sdk_elasticloadbalancingv2,
                any,
                rules.elb.iter().copied()
            ),
            ec2: mock_client!(aws_sdk_ec2, any, rules.ec2.iter().copied()),
        }),
        scaling: ScalingLayer::from_clients(ScalingClients {
            autoscaling: mock_client!(
                aws_sdk_applicationautoscaling,
                any,
                rules.autoscaling.iter().copied()
            ),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, any, rules.cloudwatch.iter().copied()),
            ecs: mock_client!(aws_sdk_ecs, any, rules.ecs.iter().copied()),
        }),
        observe: ObserveLayer::from_clients(ObserveClients {
            logs: mock_client!(aws_sdk_cloudwatchlogs, any, rules.logs.iter().copied()),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, any, rules.cloudwatch.iter().copied()),
        }),
    }
}

/// Layers talking to `emulator`, every call recorded in `counter`.
pub async fn emulator_layers(emulator: &Emulator, counter: &CallCounter) -> Layers {
    emulator_layers_with_faults(emulator, counter, &FaultInjector::new()).await
}

/// Layers talking to `emulator`, every call recorded in `counter` and passing through
/// `faults` (which injects nothing until armed).
pub async fn emulator_layers_with_faults(
    emulator: &Emulator,
    counter: &CallCounter,
    faults: &FaultInjector,
) -> Layers {
    let config = emulator.sdk_config().await;
    macro_rules! client {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(&config)
                    .interceptor(counter.clone())
                    .interceptor(faults.clone())
                    .build(),
            )
        };
    }
    Layers {
        network: NetworkLayer::from_client(client!(aws_sdk_ec2)),
        service: ServiceLayer::from_clients(ServiceClients {
            ecr: client!(aws_sdk_ecr),
            iam: client!(aws_sdk_iam),
            ecs: client!(aws_sdk_ecs),
            elb: client!(aws_sdk_elasticloadbalancingv2),
            ec2: client!(aws_sdk_ec2),
        }),
        scaling: ScalingLayer::from_clients(ScalingClients {
            autoscaling: client!(aws_sdk_applicationautoscaling),
            cloudwatch: client!(aws_sdk_cloudwatch),
            ecs: client!(aws_sdk_ecs),
        }),
        observe: ObserveLayer::from_clients(ObserveClients {
            logs: client!(aws_sdk_cloudwatchlogs),
            cloudwatch: client!(aws_sdk_cloudwatch),
        }),
    }
}
