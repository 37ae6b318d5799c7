//! Test support for code built on the facade (feature `testing`): the local AWS emulator,
//! SDK call counting, the journal of mocked calls and the stateful fake of each AWS service
//! the layers call (`FakeEc2`, `FakeEcs`, `FakeElb`, `FakeIam`, `FakeEcr`, `FakeAutoScaling`,
//! `FakeCloudWatch`, `FakeLogs`) from `ecs_core::testing`, [`FakeAws`] (all of them in one
//! account), and [`Layers`] over mocked, fake or emulated clients, so a platform built on
//! these crates can test its stacks every way.
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
    /// ACM (pre-flight).
    pub acm: Vec<&'a Rule>,
    /// SSM (pre-flight; the lease is in memory).
    pub ssm: Vec<&'a Rule>,
    /// Secrets Manager (pre-flight).
    pub secrets_manager: Vec<&'a Rule>,
    /// SNS (pre-flight).
    pub sns: Vec<&'a Rule>,
}

/// The rules of an empty account in `us-east-1` (zones `us-east-1a` and `us-east-1b`): every
/// describe call the layers make while planning answers "nothing", or the service's "not
/// found" error — except the pre-flight's: what a stack refers to but does not make is there
/// (every certificate is issued; every secret, SSM parameter and SNS topic exists); listing a
/// cluster's services (before a destroy) finds no cluster. Put a
/// test's own rules first, so they answer before these; a call no rule matches (such as any
/// mutating call) fails.
#[allow(clippy::result_large_err)] // the rules return the SDK's own (large) error types
pub fn empty_account() -> Vec<Rule> {
    use aws_sdk_applicationautoscaling as aas;
    use aws_sdk_cloudwatch as cw;
    use aws_sdk_cloudwatchlogs as logs;
    use aws_sdk_ec2 as ec2;
    use aws_sdk_ecr as ecr;
    use aws_sdk_ecs as ecs;
    use aws_sdk_elasticloadbalancingv2 as elb;
    use aws_sdk_iam as iam;
    vec![
        mock!(ec2::Client::describe_availability_zones).then_output(|| {
            let az = |n: &str| {
                ec2::types::AvailabilityZone::builder()
                    .zone_name(n)
                    .zone_type("availability-zone")
                    .state(ec2::types::AvailabilityZoneState::Available)
                    .build()
            };
            ec2::operation::describe_availability_zones::DescribeAvailabilityZonesOutput::builder()
                .availability_zones(az("us-east-1a"))
                .availability_zones(az("us-east-1b"))
                .build()
        }),
        mock!(ec2::Client::describe_vpcs)
            .then_output(|| ec2::operation::describe_vpcs::DescribeVpcsOutput::builder().build()),
        mock!(ec2::Client::describe_internet_gateways).then_output(|| {
            ec2::operation::describe_internet_gateways::DescribeInternetGatewaysOutput::builder()
                .build()
        }),
        mock!(ec2::Client::describe_subnets).then_output(|| {
            ec2::operation::describe_subnets::DescribeSubnetsOutput::builder().build()
        }),
        mock!(ec2::Client::describe_route_tables).then_output(|| {
            ec2::operation::describe_route_tables::DescribeRouteTablesOutput::builder().build()
        }),
        mock!(ec2::Client::describe_addresses).then_output(|| {
            ec2::operation::describe_addresses::DescribeAddressesOutput::builder().build()
        }),
        mock!(ec2::Client::describe_nat_gateways).then_output(|| {
            ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput::builder().build()
        }),
        mock!(ec2::Client::describe_security_groups).then_output(|| {
            ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput::builder()
                .build()
        }),
        mock!(ec2::Client::describe_vpc_endpoints).then_output(|| {
            ec2::operation::describe_vpc_endpoints::DescribeVpcEndpointsOutput::builder().build()
        }),
        mock!(ecr::Client::describe_repositories).then_error(|| {
            ecr::operation::describe_repositories::DescribeRepositoriesError::generic(meta(
                "RepositoryNotFoundException",
                "no repository",
            ))
        }),
        mock!(iam::Client::get_role).then_error(|| {
            iam::operation::get_role::GetRoleError::generic(meta("NoSuchEntity", "no role"))
        }),
        mock!(ecs::Client::describe_clusters).then_output(|| {
            ecs::operation::describe_clusters::DescribeClustersOutput::builder().build()
        }),
        mock!(ecs::Client::describe_task_definition).then_error(|| {
            ecs::operation::describe_task_definition::DescribeTaskDefinitionError::generic(meta(
                "ClientException",
                "Unable to describe task definition.",
            ))
        }),
        mock!(ecs::Client::describe_services).then_output(|| {
            ecs::operation::describe_services::DescribeServicesOutput::builder().build()
        }),
        mock!(ecs::Client::list_services).then_error(|| {
            ecs::operation::list_services::ListServicesError::generic(meta(
                "ClusterNotFoundException",
                "Cluster not found.",
            ))
        }),
        mock!(elb::Client::describe_load_balancers).then_error(|| {
            elb::operation::describe_load_balancers::DescribeLoadBalancersError::generic(meta(
                "LoadBalancerNotFound",
                "none",
            ))
        }),
        mock!(elb::Client::describe_target_groups).then_error(|| {
            elb::operation::describe_target_groups::DescribeTargetGroupsError::generic(meta(
                "TargetGroupNotFound",
                "none",
            ))
        }),
        mock!(aas::Client::describe_scalable_targets).then_output(|| {
            aas::operation::describe_scalable_targets::DescribeScalableTargetsOutput::builder()
                .build()
        }),
        mock!(aas::Client::describe_scaling_policies).then_output(|| {
            aas::operation::describe_scaling_policies::DescribeScalingPoliciesOutput::builder()
                .build()
        }),
        mock!(aas::Client::describe_scheduled_actions).then_output(|| {
            aas::operation::describe_scheduled_actions::DescribeScheduledActionsOutput::builder()
                .build()
        }),
        mock!(cw::Client::describe_alarms).then_output(|| {
            cw::operation::describe_alarms::DescribeAlarmsOutput::builder().build()
        }),
        mock!(cw::Client::get_dashboard).then_error(|| {
            cw::operation::get_dashboard::GetDashboardError::generic(meta(
                "ResourceNotFound",
                "none",
            ))
        }),
        mock!(logs::Client::describe_log_groups).then_output(|| {
            logs::operation::describe_log_groups::DescribeLogGroupsOutput::builder().build()
        }),
        mock!(aws_sdk_acm::Client::describe_certificate).then_output(|| {
            aws_sdk_acm::operation::describe_certificate::DescribeCertificateOutput::builder()
                .certificate(
                    aws_sdk_acm::types::CertificateDetail::builder()
                        .status(aws_sdk_acm::types::CertificateStatus::Issued)
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ssm::Client::describe_parameters).then_output(|| {
            aws_sdk_ssm::operation::describe_parameters::DescribeParametersOutput::builder()
                .parameters(aws_sdk_ssm::types::ParameterMetadata::builder().build())
                .build()
        }),
        mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(|| {
            aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput::builder()
                .build()
        }),
        mock!(aws_sdk_sns::Client::get_topic_attributes).then_output(|| {
            aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesOutput::builder()
                .build()
        }),
    ]
}

fn meta(code: &str, message: &str) -> aws_sdk_ec2::error::ErrorMetadata {
    aws_sdk_ec2::error::ErrorMetadata::builder()
        .code(code)
        .message(message)
        .build()
}

impl<'a> MockRules<'a> {
    /// The same rules for every client: a rule only ever matches its own operation, so one
    /// list can serve them all; earlier rules answer first.
    pub fn for_every_client(rules: impl IntoIterator<Item = &'a Rule>) -> Self {
        let every: Vec<&'a Rule> = rules.into_iter().collect();
        MockRules {
            ec2: every.clone(),
            ecr: every.clone(),
            ecs: every.clone(),
            elb: every.clone(),
            iam: every.clone(),
            autoscaling: every.clone(),
            cloudwatch: every.clone(),
            logs: every.clone(),
            acm: every.clone(),
            ssm: every.clone(),
            secrets_manager: every.clone(),
            sns: every,
        }
    }
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
        // The lease is no AWS mock: an in-memory store (it is tested on its own).
        lease: std::sync::Arc::new(ecs_core::testing::MemoryLeaseStore::new(
            ecs_core::TokioClock,
        )),
        preflight: crate::Preflight::from_clients(crate::PreflightClients {
            acm: mock_client!(aws_sdk_acm, any, rules.acm.iter().copied()),
            ssm: mock_client!(aws_sdk_ssm, any, rules.ssm.iter().copied()),
            ecr: mock_client!(aws_sdk_ecr, any, rules.ecr.iter().copied()),
            secrets_manager: mock_client!(
                aws_sdk_secretsmanager,
                any,
                rules.secrets_manager.iter().copied()
            ),
            sns: mock_client!(aws_sdk_sns, any, rules.sns.iter().copied()),
        }),
    }
}

/// One fake AWS account: a stateful fake of every service the layers call (ELB linked to
/// ECS), all recording into one [`Journal`]. A platform deploys, plans again and destroys a
/// whole stack against it without the emulator ([`FakeAws::layers`]); each fake's state is
/// plain SDK types a test sets up and inspects.
///
/// ```
/// use ecs_facade::testing::FakeAws;
/// use ecs_facade::{Deployer, Stack};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let aws = FakeAws::default();
/// let deployer = Deployer::from_layers(aws.layers());
/// let stack = Stack::from_manifest("name: web\nprofile: dev\nimage: nginx:1.27\nport: 80\n").unwrap();
/// let plan = deployer.plan(&stack).await.unwrap();
/// assert!(aws.journal.mutating().is_empty(), "a plan changes nothing");
/// assert!(plan.find("vpc", "vpc").is_some());
/// # });
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FakeAws {
    /// Every call every fake answered, in order.
    pub journal: Journal,
    /// EC2.
    pub ec2: FakeEc2,
    /// ECS.
    pub ecs: FakeEcs,
    /// Elastic Load Balancing (linked to [`ecs`](Self::ecs)).
    pub elb: FakeElb,
    /// IAM.
    pub iam: FakeIam,
    /// ECR.
    pub ecr: FakeEcr,
    /// Application Auto Scaling.
    pub autoscaling: FakeAutoScaling,
    /// CloudWatch.
    pub cloudwatch: FakeCloudWatch,
    /// CloudWatch Logs.
    pub logs: FakeLogs,
    /// The stack's lease (in memory; its service clock is [`lease_clock`](Self::lease_clock)).
    pub lease: ecs_core::testing::MemoryLeaseStore,
    /// The lease store's service clock: advance it to expire a lease.
    pub lease_clock: ecs_core::FakeClock,
}

impl Default for FakeAws {
    fn default() -> Self {
        let journal = Journal::default();
        let ecs = FakeEcs::new(&journal, EcsState::default());
        let lease_clock = ecs_core::FakeClock::new();
        Self {
            ec2: FakeEc2::new(&journal, Ec2State::default()),
            elb: FakeElb::new(&journal, ElbState::default()).linked(&ecs),
            ecs,
            iam: FakeIam::new(&journal, IamState::default()),
            ecr: FakeEcr::new(&journal, EcrState::default()),
            autoscaling: FakeAutoScaling::new(&journal, AutoScalingState::default()),
            cloudwatch: FakeCloudWatch::new(&journal, CloudWatchState::default()),
            logs: FakeLogs::new(&journal, LogsState::default()),
            journal,
            lease: ecs_core::testing::MemoryLeaseStore::new(lease_clock.clone()),
            lease_clock,
        }
    }
}

impl FakeAws {
    /// Layers whose clients answer from the fakes.
    pub fn layers(&self) -> Layers {
        Layers {
            network: NetworkLayer::from_client(self.ec2.client()),
            service: ServiceLayer::from_clients(ServiceClients {
                ecr: self.ecr.client(),
                iam: self.iam.client(),
                ecs: self.ecs.client(),
                elb: self.elb.client(),
                ec2: self.ec2.client(),
            }),
            scaling: ScalingLayer::from_clients(ScalingClients {
                autoscaling: self.autoscaling.client(),
                cloudwatch: self.cloudwatch.client(),
                ecs: self.ecs.client(),
            }),
            observe: ObserveLayer::from_clients(ObserveClients {
                logs: self.logs.client(),
                cloudwatch: self.cloudwatch.client(),
            }),
            lease: std::sync::Arc::new(self.lease.clone()),
            // No fake models ACM, SSM parameters, Secrets Manager or SNS.
            preflight: crate::Preflight::off(),
        }
    }
}

/// Layers talking to `emulator`, every call recorded in `counter`.
pub async fn emulator_layers(emulator: &Emulator, counter: &CallCounter) -> Layers {
    emulator_layers_with(
        emulator,
        &Harness {
            counter: counter.clone(),
            ..Harness::default()
        },
    )
    .await
}

/// What a test puts between the layers' SDK clients and the emulator (see
/// [`emulator_layers_with`]). Clones share their state.
#[derive(Debug, Clone, Default)]
pub struct Harness {
    /// Records every operation.
    pub counter: CallCounter,
    /// Fails the K-th mutating call once armed (injects nothing by default).
    pub faults: FaultInjector,
    /// When set, the HTTP client: latency and throttling on the way to the emulator.
    pub chaos: Option<Chaos>,
}

/// Layers talking to `emulator` through `harness`: every call counted, faults injected when
/// armed, and latency and throttling when `harness.chaos` is set.
///
/// ```no_run
/// use ecs_facade::testing::{emulator_layers_with, Chaos, Emulator, Harness};
/// # async fn example(stack: ecs_facade::Stack) -> Result<(), Box<dyn std::error::Error>> {
/// let chaos = Chaos::new(1);
/// chaos.set_throttle_rate(0.2);
/// let harness = Harness { chaos: Some(chaos.clone()), ..Harness::default() };
/// let layers = emulator_layers_with(Emulator::shared()?, &harness).await;
/// ecs_facade::Deployer::from_layers(layers).deploy(&stack).await?;
/// assert!(!chaos.throttled().is_empty());
/// # Ok(()) }
/// ```
pub async fn emulator_layers_with(emulator: &Emulator, harness: &Harness) -> Layers {
    let config = emulator.sdk_config().await;
    macro_rules! client {
        ($sdk:ident) => {{
            let mut builder = $sdk::config::Builder::from(&config)
                .interceptor(harness.counter.clone())
                .interceptor(harness.faults.clone());
            if let Some(chaos) = &harness.chaos {
                builder = builder.http_client(chaos.clone());
            }
            $sdk::Client::from_conf(builder.build())
        }};
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
        // The lease's calls are its own: not counted with the stack's, nor faulted.
        lease: std::sync::Arc::new(crate::SsmLeaseStore::new(aws_sdk_ssm::Client::new(&config))),
        preflight: crate::Preflight::from_clients(crate::PreflightClients {
            acm: client!(aws_sdk_acm),
            ssm: client!(aws_sdk_ssm),
            ecr: client!(aws_sdk_ecr),
            secrets_manager: client!(aws_sdk_secretsmanager),
            sns: client!(aws_sdk_sns),
        }),
    }
}

/// The properties every manifest text must have, checked on `yaml` (the fuzz target
/// `fuzz/fuzz_targets/manifest.rs` and the property tests call this): parsing, building and
/// validating never panic; a rejected manifest gives an
/// [`InvalidManifest`](crate::Error::InvalidManifest) error whose problems each name a
/// manifest key (never a stack path such as `service.task.cpu`) with a message, at a line
/// and column inside the text when the key is written there; an accepted one gives resource
/// names within AWS's limits (AWS-NOTES.md) and a cost estimate. Returns the accepted stack,
/// or the error it was rejected with; `Err(String)` describes a broken property.
///
/// ```
/// use ecs_facade::testing::check_manifest;
/// let accepted = check_manifest("name: shop\nimage: nginx:1.27\n").unwrap();
/// assert!(accepted.is_ok());
/// let rejected = check_manifest("name: Shop!\nimage: nginx\n").unwrap();
/// assert!(rejected.is_err());
/// ```
pub fn check_manifest(yaml: &str) -> Result<Result<crate::Stack, crate::Error>, String> {
    let stack = crate::Stack::from_manifest_text(yaml, "manifest");
    match &stack {
        Err(crate::Error::InvalidManifest(found)) => {
            manifest_problems_are_well_formed(yaml, found)?
        }
        Err(other) => return Err(format!("unexpected error kind: {other}")),
        Ok(stack) => {
            let name = stack
                .stack_name()
                .map_err(|p| format!("validated, yet the name is invalid: {p}"))?;
            names_are_valid(&ecs_service::ServiceNames::new(
                &name,
                &stack.service_spec(),
            ))?;
            let cost = crate::estimate_cost(stack, "us-east-1");
            if cost.scenarios.is_empty()
                || cost
                    .scenarios
                    .iter()
                    .any(|s| !(s.total.is_finite() && s.total >= 0.0))
            {
                return Err(format!("cost estimate {cost:?}"));
            }
        }
    }
    Ok(stack)
}

/// The naming rules of AWS-NOTES.md's validation table.
/// The properties of a manifest's problems (see [`check_manifest`]): each names a manifest
/// key with a message, at a line and column inside `yaml` when it has one.
pub fn manifest_problems_are_well_formed(
    yaml: &str,
    found: &crate::ManifestProblems,
) -> Result<(), String> {
    if found.problems.is_empty() {
        return Err("an invalid manifest without problems".into());
    }
    let lines = yaml.lines().count();
    for p in &found.problems {
        if p.field.is_empty() || p.message.is_empty() {
            return Err(format!("a problem without a field or message: {p:?}"));
        }
        if ["service.", "observe.", "network.vpc."]
            .iter()
            .any(|stack| p.field.starts_with(stack))
        {
            return Err(format!(
                "a problem named by the stack's path, not the manifest's key: {p:?}"
            ));
        }
        // A parse error may sit just past the last line (the end of the text).
        if let Some(line) = p.line {
            if line == 0 || line > lines + 1 || p.column == Some(0) {
                return Err(format!("a problem outside the text: {p:?}"));
            }
        }
    }
    Ok(())
}

fn names_are_valid(n: &ecs_service::ServiceNames) -> Result<(), String> {
    let check = |ok: bool, what: &str, name: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what} name {name:?} breaks AWS's rules"))
        }
    };
    let elb = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    check(
        elb(&n.load_balancer) && !n.load_balancer.starts_with("internal-"),
        "load balancer",
        &n.load_balancer,
    )?;
    check(elb(&n.target_group), "target group", &n.target_group)?;
    for role in [&n.execution_role, &n.task_role] {
        let ok = !role.is_empty()
            && role.len() <= 64
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        check(ok, "role", role)?;
    }
    for ecs in [&n.cluster, &n.service, &n.family] {
        let ok = !ecs.is_empty()
            && ecs.len() <= 255
            && ecs
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        check(ok, "ECS", ecs)?;
    }
    let repo = &n.repository;
    let ok = (2..=256).contains(&repo.len())
        && repo
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && repo
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    check(ok, "repository", repo)?;
    let ok = n.log_group.len() <= 512
        && n.log_group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c));
    check(ok, "log group", &n.log_group)
}

/// One thing [`stand_ins`] made in the emulator in place of what a manifest refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StandIn {
    /// What was done, in a sentence.
    pub note: String,
    /// The identifiers replaced in the stack: `(the manifest's, the stand-in's)`; apply them
    /// to the manifest's text to deploy variants of it.
    pub replaced: Vec<(String, String)>,
}

/// A stand-in that could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
#[non_exhaustive]
pub struct StandInError {
    /// What was being made.
    pub what: String,
    /// Why it failed.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

fn stand_in_error<E: std::error::Error + Send + Sync + 'static>(
    what: &str,
) -> impl FnOnce(E) -> StandInError + '_ {
    move |e| StandInError {
        what: what.to_string(),
        source: Box::new(e),
    }
}

fn missing(what: &str) -> StandInError {
    StandInError {
        what: what.to_string(),
        source: "the emulator's answer lacks it".into(),
    }
}

/// Makes in the emulator (reached through `config`) what `stack` refers to but does not make
/// and the emulator cannot have — so that an example manifest written for real AWS passes
/// the pre-flight and deploys there — and points `stack` at the stand-ins:
///
/// - an HTTPS listener's certificate: one requested from the emulator's ACM (issued at once);
/// - container secrets: a Secrets Manager secret of the same name (its value a placeholder;
///   AWS gives a secret's ARN a random suffix, so the ARN changes), or an SSM parameter of
///   the same name;
/// - alarm-action SNS topics: a topic of the same name;
/// - an existing VPC: a stand-in VPC with two public and two private subnets.
///
/// Returns what was made, with the identifiers it replaced.
pub async fn stand_ins(
    config: &aws_types::SdkConfig,
    stack: &mut crate::Stack,
) -> Result<Vec<StandIn>, StandInError> {
    let mut made = Vec::new();
    let certificates: Vec<String> = stack
        .service
        .load_balancer
        .iter()
        .flat_map(|lb| &lb.listeners)
        .filter_map(|l| l.certificate_arn.clone())
        .collect();
    if !certificates.is_empty() {
        let domain = format!("{}.example.com", stack.name);
        let arn = aws_sdk_acm::Client::new(config)
            .request_certificate()
            .domain_name(domain.clone())
            .send()
            .await
            .map_err(stand_in_error("requesting a stand-in certificate"))?
            .certificate_arn()
            .ok_or_else(|| missing("the stand-in certificate's ARN"))?
            .to_string();
        for l in stack
            .service
            .load_balancer
            .iter_mut()
            .flat_map(|lb| &mut lb.listeners)
        {
            if let Some(certificate) = l.certificate_arn.as_mut() {
                made.push(StandIn {
                    note: format!(
                        "HTTPS on port {}: certificate {certificate} stands in as {arn} (for {domain}, from the emulator's ACM)",
                        l.port
                    ),
                    replaced: vec![(certificate.clone(), arn.clone())],
                });
                certificate.clone_from(&arn);
            }
        }
    }
    let secrets_manager = aws_sdk_secretsmanager::Client::new(config);
    let ssm = aws_sdk_ssm::Client::new(config);
    for container in &mut stack.service.task.containers {
        for (variable, arn) in container.secrets.iter_mut() {
            match ecs_service::SecretRef::parse(arn) {
                Some(ecs_service::SecretRef::Parameter { names, .. }) => {
                    let name = names.last().cloned().unwrap_or_default();
                    ssm.put_parameter()
                        .name(&name)
                        .value("stand-in")
                        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                        .overwrite(true)
                        .send()
                        .await
                        .map_err(stand_in_error("creating a stand-in SSM parameter"))?;
                    made.push(StandIn {
                        note: format!(
                            "secret {variable}: SSM parameter {name} made in the emulator"
                        ),
                        replaced: Vec::new(),
                    });
                }
                Some(ecs_service::SecretRef::Secret { name, suffix, .. }) => {
                    let created = secrets_manager
                        .create_secret()
                        .name(&name)
                        .secret_string("stand-in")
                        .send()
                        .await;
                    let secret = match created {
                        Ok(out) => out.arn().map(str::to_string),
                        Err(_) => secrets_manager
                            .describe_secret()
                            .secret_id(&name)
                            .send()
                            .await
                            .map_err(stand_in_error("creating a stand-in secret"))?
                            .arn()
                            .map(str::to_string),
                    }
                    .ok_or_else(|| missing("the stand-in secret's ARN"))?;
                    // A JSON key (and version) after the secret's ARN stays.
                    let stand_in = format!("{secret}{suffix}");
                    made.push(StandIn {
                        note: format!(
                            "secret {variable}: {arn} stands in as {stand_in} (made in the emulator)"
                        ),
                        replaced: vec![(arn.clone(), stand_in.clone())],
                    });
                    *arn = stand_in;
                }
                _ => {}
            }
        }
    }
    let sns = aws_sdk_sns::Client::new(config);
    let topics: Vec<String> = stack
        .observe
        .topics()
        .into_iter()
        .map(str::to_string)
        .collect();
    for topic in topics {
        let name = topic.rsplit(':').next().unwrap_or_default();
        let arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .map_err(stand_in_error("creating a stand-in SNS topic"))?
            .topic_arn()
            .ok_or_else(|| missing("the stand-in topic's ARN"))?
            .to_string();
        for action in stack
            .observe
            .alarm_actions
            .iter_mut()
            .chain(stack.observe.ok_actions.iter_mut())
        {
            if *action == topic {
                action.clone_from(&arn);
            }
        }
        made.push(StandIn {
            note: format!("alarm actions: SNS topic {name} made in the emulator ({arn})"),
            replaced: vec![(topic, arn)],
        });
    }
    if let Some(ecs_net::Network::Existing(existing)) = stack.network.as_mut().map(|n| &mut n.vpc) {
        let ec2 = aws_sdk_ec2::Client::new(config);
        let vpc_id = ec2
            .create_vpc()
            .cidr_block("10.77.0.0/16")
            .send()
            .await
            .map_err(stand_in_error("creating a stand-in VPC"))?
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| missing("the stand-in VPC's id"))?
            .to_string();
        let mut subnets = Vec::new();
        for (i, zone) in ["us-east-1a", "us-east-1b", "us-east-1a", "us-east-1b"]
            .into_iter()
            .enumerate()
        {
            let id = ec2
                .create_subnet()
                .vpc_id(vpc_id.clone())
                .cidr_block(format!("10.77.{i}.0/24"))
                .availability_zone(zone)
                .send()
                .await
                .map_err(stand_in_error("creating a stand-in subnet"))?
                .subnet()
                .and_then(|s| s.subnet_id())
                .ok_or_else(|| missing("the stand-in subnet's id"))?
                .to_string();
            subnets.push(id);
        }
        // Each tier's subnets stand in for the manifest's of that tier (two each).
        let mut replaced = vec![(existing.vpc_id.clone(), vpc_id.clone())];
        replaced.extend(
            existing
                .public_subnets
                .iter()
                .cloned()
                .zip(subnets[..2].iter().cloned()),
        );
        replaced.extend(
            existing
                .private_subnets
                .iter()
                .cloned()
                .zip(subnets[2..].iter().cloned()),
        );
        made.push(StandIn {
            note: format!(
                "existing VPC: {} stands in as {vpc_id} (10.77.0.0/16) with public subnets {} and private subnets {}, made in the emulator",
                existing.vpc_id,
                subnets[..2].join(", "),
                subnets[2..].join(", ")
            ),
            replaced,
        });
        existing.vpc_id = vpc_id;
        existing.public_subnets = subnets[..2].to_vec();
        existing.private_subnets = subnets[2..].to_vec();
    }
    Ok(made)
}
