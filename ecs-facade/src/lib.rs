//! Provision, update, observe and tear down a production-grade, load-balanced AWS ECS Fargate
//! service directly through the AWS SDK for Rust — no CloudFormation, no Terraform, no state
//! file.
//!
//! Describe the stack with typed builders ([`Stack`]) or a short YAML manifest
//! ([`Stack::from_manifest`], with `dev` and `prod` [`Profile`]s), then call [`deploy`]: it
//! builds a VPC over two or more zones with public and private subnets and NAT, security
//! groups, an ECR repository, least-privilege IAM roles, a cluster, a task definition, an
//! internet-facing ALB with health checks (and HTTPS), a Fargate service with safe rolling
//! deployments, autoscaling, alarms and a dashboard. Re-running it changes only what differs
//! (an unchanged stack makes no mutating call); [`plan`] shows what would change;
//! [`destroy`] removes everything the stack owns and nothing else. [`estimate_cost`] prices
//! it before you deploy.
//!
//! Before any change, `plan` and `deploy` check what the stack refers to but does not make
//! (certificates, secrets, SNS topics, ECR images: [`Deployer::verify`], module
//! [`verify`]); a manifest's problems name its own keys at their line and column
//! ([`Error::InvalidManifest`]).
//!
//! The layers are re-exported as modules ([`net`], [`service`], [`scaling`], [`observe`],
//! [`core`]) for building your own platform on them.
//!
//! # Example
//!
//! ```no_run
//! use ecs_facade::prelude::*;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let stack = Stack::from_manifest(
//!     "name: shop\nprofile: prod\nimage: nginx:1.27\nport: 8080\n",
//! )?;
//! println!("{}", ecs_facade::estimate_cost(&stack, "us-east-1"));
//! println!("{}", ecs_facade::plan(&config, &stack).await?);
//! let report = ecs_facade::deploy(&config, &stack).await?;
//! println!("serving on {}", report.outputs.service.url.unwrap_or_default());
//! # Ok(()) }
//! ```

mod cost;
mod deploy;
mod deployment;
mod diagnostics;
pub mod environment;
mod error;
mod lease;
mod manifest;
mod saved;
mod stack;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;

pub use ecs_core as core;
pub use ecs_net as net;
pub use ecs_observe as observe;
pub use ecs_scaling as scaling;
pub use ecs_service as service;

pub use cost::{
    estimate_cost, estimate_environment_cost, CostEstimate, CostLine, EnvironmentCost, PRICES_DATE,
};
pub use deploy::{
    DeployReport, Deployer, DestroyOptions, DestroyReport, Layers, PreparedDeploy, StackOutputs,
    StackStatus, KNOWN_AFTER_APPLY,
};
pub use deployment::{
    Deployment, DeploymentReport, DeploymentStatus, Root, RootReport, ServiceSummary,
};
pub use diagnostics::{ManifestProblem, ManifestProblems};
pub use ecs_core::{Action, Change, Event, FieldDiff, Plan};
pub use environment::{Environment, EnvironmentReport};
pub use error::{Error, Result};
pub use lease::SsmLeaseStore;
pub use manifest::{
    AlarmSetting, AlarmsManifest, HttpsManifest, Manifest, NetworkManifest, Profile,
    ProfileDefaults, ScalingManifest, ScalingSettings, ServiceKind,
};
pub use saved::{SavedPlan, SAVED_PLAN_FORMAT};
pub use stack::Stack;
pub use verify::{Check, Outcome, Preflight, PreflightClients, Verification};

/// The changes deploying `stack` would make, across every layer. Makes no change.
pub async fn plan(config: &aws_types::SdkConfig, stack: &Stack) -> Result<Plan> {
    Deployer::new(config).plan(stack).await
}

/// Deploys `stack` (create or update, idempotent) and waits for the rollout.
pub async fn deploy(config: &aws_types::SdkConfig, stack: &Stack) -> Result<DeployReport> {
    Deployer::new(config).deploy(stack).await
}

/// The stack's service, deployment, target health and alarm states.
pub async fn status(config: &aws_types::SdkConfig, stack: &Stack) -> Result<StackStatus> {
    Deployer::new(config).status(stack).await
}

/// Returns the service to its previous task definition revision and waits.
pub async fn rollback(
    config: &aws_types::SdkConfig,
    stack: &Stack,
) -> Result<ecs_service::RolloutReport> {
    Deployer::new(config).rollback(stack).await
}

/// Deletes everything the stack owns (keeping images and logs unless `options` say otherwise).
pub async fn destroy(
    config: &aws_types::SdkConfig,
    stack: &Stack,
    options: DestroyOptions,
) -> Result<DestroyReport> {
    Deployer::new(config).destroy(stack, options).await
}

/// The names most programs need.
pub mod prelude {
    pub use crate::net::{ManagedVpc, NatStrategy, Network, NetworkSpec};
    pub use crate::observe::{Monitoring, ObserveSpec};
    pub use crate::scaling::ScalingSpec;
    pub use crate::service::{
        ContainerSpec, LoadBalancerSpec, ServiceSettings, ServiceSpec, TaskSpec,
    };
    pub use crate::{Deployer, DestroyOptions, Environment, Error, Event, Profile, Stack};
}
