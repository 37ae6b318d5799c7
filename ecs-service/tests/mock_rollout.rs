//! Tests of the service layer's rollouts through its public API against mocked SDK clients
//! (aws-smithy-mocks): `apply` waiting for the deployment it started (completion with progress,
//! failure, circuit-breaker rollback, replacement, stopped tasks' reasons, targets failing their
//! health checks, the time bound, and not waiting at all), `rollback`, `verify` and
//! `registry_login`. Waits are timed by a `FakeClock`, so nothing sleeps for real; every
//! operation also runs under a short real-time limit to prove it.
//!
//! Every test builds a `Mock` from a `World`: what the describes report is exactly what the spec
//! asks for except the container image, so `apply` makes one `RegisterTaskDefinition` and one
//! `UpdateService`, then waits. Every answered call is recorded, input included, in a `Journal`.
//! A test puts its own rules in front of the world's (in `RuleMode::MatchAny` the first matching
//! rule answers), typically the `DescribeServices` answers that follow the `UpdateService`.

use ecs_core::testing::Journal;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_ecr::operation::describe_images::{
    DescribeImagesError, DescribeImagesInput, DescribeImagesOutput,
};
use aws_sdk_ecr::operation::get_authorization_token::GetAuthorizationTokenOutput;
use aws_sdk_ecr::types::{
    AuthorizationData, EncryptionConfiguration, EncryptionType, ImageDetail,
    ImageScanningConfiguration, ImageTagMutability, Repository,
};
use aws_sdk_ecr::Client as Ecr;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsInput;
use aws_sdk_ecs::operation::list_tasks::{ListTasksInput, ListTasksOutput};
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::operation::update_service::{UpdateServiceInput, UpdateServiceOutput};
use aws_sdk_ecs::types::builders::DeploymentBuilder;
use aws_sdk_ecs::types::DeploymentRolloutState as State;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, Cluster, ClusterSetting,
    ClusterSettingName, Compatibility, Container, ContainerDefinition, CpuArchitecture, Deployment,
    DeploymentCircuitBreaker, DeploymentConfiguration, DesiredStatus, LaunchType, LogConfiguration,
    LogDriver, NetworkConfiguration, NetworkMode, OsFamily, PortMapping, PropagateTags,
    RuntimePlatform, Service, ServiceEvent, SortOrder, Task, TaskDefinition, TaskDefinitionStatus,
    TransportProtocol,
};
use aws_sdk_ecs::Client as Ecs;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::{
    DescribeTargetHealthInput, DescribeTargetHealthOutput,
};
use aws_sdk_elasticloadbalancingv2::types::{
    ActionTypeEnum, AvailabilityZone, Listener, LoadBalancerSchemeEnum, Matcher, ProtocolEnum,
    TargetDescription, TargetGroup, TargetHealth, TargetHealthDescription, TargetHealthReasonEnum,
    TargetHealthStateEnum, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_sdk_iam::types::Role;
use aws_smithy_mocks::MockResponse;
use aws_smithy_types::error::metadata::ErrorMetadata;
use aws_smithy_types::DateTime;
use serde_json::json;

use ecs_core::testing::fake_ecr::EcrRepository;
use ecs_core::testing::fake_ecs::TaskDef;
use ecs_core::testing::fake_elb::{ListenerRecord, LoadBalancerRecord, TargetGroupRecord};
use ecs_core::testing::fake_iam::IamRole;
use ecs_core::testing::{
    mock, EcrState, EcsState, ElbState, FakeEcr, FakeEcs, FakeElb, FakeIam, IamState, Rule,
    RuleMode,
};
use ecs_core::{Context, Event, EventLog, FakeClock, StackName, Tags, OWNER_TAG, RESOURCE_TAG};
use ecs_net::NetworkOutputs;
use ecs_service::{
    ContainerSpec, Error, LoadBalancerSpec, RepositorySpec, ServiceClients, ServiceLayer,
    ServiceOutputs, ServicePlan, ServiceSpec, TaskSpec,
};

// ---------------------------------------------------------------------------------------------
// Names used throughout (stack `web`, application `app`).

const STACK: &str = "web";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const CLUSTER: &str = "web";
const SERVICE: &str = "web-app";
const FAMILY: &str = "web-app";
const REPOSITORY: &str = "web-app";
const EXEC_ROLE: &str = "web-execution";
const TASK_ROLE: &str = "web-task";
const LOAD_BALANCER: &str = "web-alb";
const TARGET_GROUP: &str = "web-app";
const LOG_GROUP: &str = "/ecs/web";
/// The service as events name it.
const RESOURCE: &str = "ecs-service web-app";

const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/web";
const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/web/web-app";
const EXEC_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/web-execution";
const TASK_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/web-task";
const EXEC_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
const TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REPO_ARN: &str = "arn:aws:ecr:us-east-1:123456789012:repository/web-app";
const REPO_URI: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app";
/// The image the service runs (revision 3).
const OLD_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v1";
/// The image the spec asks for.
const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v2";
const REGISTRY_PASSWORD: &str = "sentinel-registry-password-7f3a";
const TOKEN_EXPIRY: i64 = 1_767_225_600;

const LB_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188";
const LB_DNS: &str = "web-alb-1234567890.us-east-1.elb.amazonaws.com";
const TG_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-app/73e2d6bc24d8a067";
const LISTENER_ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web-alb/50dc6c495c0c9188/f2f7dc8efc522ab2";

const VPC: &str = "vpc-1";
const PRIV_A: &str = "subnet-priv-a";
const PRIV_B: &str = "subnet-priv-b";
const PUB_A: &str = "subnet-pub-a";
const PUB_B: &str = "subnet-pub-b";
const SG_TASK: &str = "sg-task";
const SG_ALB: &str = "sg-alb";
const PORT: u16 = 8080;

/// The deployment the service ran before the update, the one `UpdateService` starts, and the
/// one ECS starts when the circuit breaker rolls back.
const OLD: &str = "ecs-svc/old";
const NEW: &str = "ecs-svc/new";
const ROLLBACK: &str = "ecs-svc/rollback";
const STEADY: &str = "(service web-app) has reached a steady state.";
const CIRCUIT_BREAKER: &str = "ECS deployment circuit breaker: tasks failed to start.";
const DEPLOYMENT_FAILED: &str =
    "(service web-app) (deployment ecs-svc/new) deployment failed: tasks failed to start.";

/// How long any operation may take in real time: everything it waits for goes through the
/// fake clock, so it finishes in milliseconds.
const REAL_TIME_LIMIT: Duration = Duration::from_secs(30);

fn td_arn(revision: i32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:{revision}")
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// The tags every resource of the stack carries (the harness context has `team=payments`),
/// with the resource's own logical id, as a deploy sets them.
fn tags(logical: &'static str) -> [(&'static str, &'static str); 3] {
    [
        (OWNER_TAG, STACK),
        ("team", "payments"),
        (RESOURCE_TAG, logical),
    ]
}

fn ecs_tags(logical: &'static str) -> Vec<aws_sdk_ecs::types::Tag> {
    tags(logical)
        .iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn ecr_tags() -> Vec<aws_sdk_ecr::types::Tag> {
    tags("repository")
        .iter()
        .map(|(k, v)| {
            aws_sdk_ecr::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap()
        })
        .collect()
}

fn iam_tags(logical: &'static str) -> Vec<aws_sdk_iam::types::Tag> {
    tags(logical)
        .iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap()
        })
        .collect()
}

fn elb_tags(logical: &'static str) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags(logical)
        .iter()
        .map(|(k, v)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Specifications and the network.

/// One container `web` on port 8080 with `image`; no repository, no load balancer.
fn spec(image: &str) -> ServiceSpec {
    let mut s = ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name("web")
                    .image(image)
                    .ports(vec![PORT])
                    .build()])
                .build(),
        )
        .build();
    s.repository = None;
    s
}

/// [`spec`] behind the default load balancer (HTTP on 80, target group on the container port).
fn spec_with_lb(image: &str) -> ServiceSpec {
    let mut s = spec(image);
    s.load_balancer = Some(LoadBalancerSpec::default());
    s
}

fn network() -> NetworkOutputs {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    NetworkOutputs {
        vpc_id: VPC.into(),
        vpc_cidr: "10.0.0.0/16".into(),
        availability_zones: s(&["us-east-1a", "us-east-1b"]),
        public_subnets: s(&[PUB_A, PUB_B]),
        private_subnets: s(&[PRIV_A, PRIV_B]),
        alb_sg: SG_ALB.into(),
        task_sg: SG_TASK.into(),
        nat_gateways: Vec::new(),
        vpc_endpoints: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The live resources, as AWS describes them.

/// What exists.
#[derive(Clone)]
struct World {
    /// The ECR repository exists, with the spec's default settings.
    repository: bool,
    /// The principal the execution role trusts; `None` when the role does not exist.
    execution_role: Option<&'static str>,
    /// The principal the task role trusts; `None` when the role does not exist.
    task_role: Option<&'static str>,
    /// The load balancer and its HTTP listener on 80 exist.
    load_balancer: bool,
    /// The target group exists, on this port.
    target_group_port: Option<i32>,
    /// The image of revision 3 of the family, which the service runs.
    image: &'static str,
    /// The family's active revisions, newest first.
    revisions: Vec<i32>,
}

impl World {
    /// Roles, cluster, task definition and service exist and match [`spec`] but for the image.
    fn minimal() -> Self {
        Self {
            repository: false,
            execution_role: Some(TASKS_PRINCIPAL),
            task_role: Some(TASKS_PRINCIPAL),
            load_balancer: false,
            target_group_port: None,
            image: OLD_IMAGE,
            revisions: vec![3, 2, 1],
        }
    }

    /// Also the repository and the load balancer: matches [`spec_with_lb`] with the default
    /// repository, but for the image.
    fn full() -> Self {
        Self {
            repository: true,
            load_balancer: true,
            target_group_port: Some(PORT.into()),
            ..Self::minimal()
        }
    }
}

/// The default lifecycle policy, as ECR returns it.
fn lifecycle_policy() -> String {
    json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images after 7 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7
                },
                "action": { "type": "expire" }
            },
            {
                "rulePriority": 2,
                "description": "keep the last 30 tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 30
                },
                "action": { "type": "expire" }
            }
        ]
    })
    .to_string()
}

fn repository() -> Repository {
    Repository::builder()
        .repository_arn(REPO_ARN)
        .registry_id(ACCOUNT)
        .repository_name(REPOSITORY)
        .repository_uri(REPO_URI)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(
            EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Aes256)
                .build()
                .unwrap(),
        )
        .build()
}

fn role(name: &str, principal: &str) -> Role {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": principal },
            "Action": "sts:AssumeRole"
        }]
    });
    Role::builder()
        .path("/")
        .role_name(name)
        .role_id("AROAEXAMPLEROLEID")
        .arn(format!("arn:aws:iam::{ACCOUNT}:role/{name}"))
        .create_date(DateTime::from_secs(1_600_000_000))
        .assume_role_policy_document(trust.to_string())
        .set_tags(Some(iam_tags(if name == EXEC_ROLE {
            "role/execution"
        } else {
            "role/task"
        })))
        .build()
        .unwrap()
}

fn cluster() -> Cluster {
    Cluster::builder()
        .cluster_name(CLUSTER)
        .cluster_arn(CLUSTER_ARN)
        .status("ACTIVE")
        .set_tags(Some(ecs_tags("cluster")))
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .default_capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE")
                .weight(1)
                .base(0)
                .build()
                .unwrap(),
        )
        .build()
}

/// Revision `revision` of the family as `DescribeTaskDefinition` returns it: what the spec
/// renders, with AWS's extras (container cpu 0, host port).
fn task_definition(revision: i32, image: &str) -> TaskDefinition {
    let log = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", LOG_GROUP)
        .options("awslogs-region", REGION)
        .options("awslogs-stream-prefix", "app")
        .build()
        .unwrap();
    TaskDefinition::builder()
        .task_definition_arn(td_arn(revision))
        .family(FAMILY)
        .revision(revision)
        .status(TaskDefinitionStatus::Active)
        .execution_role_arn(EXEC_ROLE_ARN)
        .task_role_arn(TASK_ROLE_ARN)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::X8664)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(image)
                .cpu(0)
                .essential(true)
                .port_mappings(
                    PortMapping::builder()
                        .container_port(PORT.into())
                        .host_port(PORT.into())
                        .protocol(TransportProtocol::Tcp)
                        .build(),
                )
                .log_configuration(log)
                .build(),
        )
        .build()
}

/// A deployment of the service (desired 1, nothing running, pending or failed yet).
fn deployment(id: &str, status: &str, task_definition: &str, state: State) -> DeploymentBuilder {
    Deployment::builder()
        .id(id)
        .status(status)
        .task_definition(task_definition)
        .rollout_state(state)
        .desired_count(1)
        .running_count(0)
        .pending_count(0)
        .failed_tasks(0)
}

/// The service as `DescribeServices` shows it during a rollout: its deployments and its
/// events, newest first.
fn view(deployments: Vec<Deployment>, events: &[(&str, &str)]) -> Service {
    Service::builder()
        .service_name(SERVICE)
        .service_arn(SERVICE_ARN)
        .cluster_arn(CLUSTER_ARN)
        .status("ACTIVE")
        .desired_count(1)
        .set_deployments(Some(deployments))
        .set_events(Some(
            events
                .iter()
                .map(|(id, message)| ServiceEvent::builder().id(*id).message(*message).build())
                .collect(),
        ))
        .build()
}

/// The service running revision 3, exactly as the spec wants it otherwise.
fn live_service(load_balancer: bool) -> Service {
    let vpc = AwsVpcConfiguration::builder()
        .subnets(PRIV_B)
        .subnets(PRIV_A)
        .security_groups(SG_TASK)
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .unwrap();
    let service = Service::builder()
        .service_name(SERVICE)
        .service_arn(SERVICE_ARN)
        .cluster_arn(CLUSTER_ARN)
        .status("ACTIVE")
        .desired_count(1)
        .running_count(1)
        .pending_count(0)
        .launch_type(LaunchType::Fargate)
        .task_definition(td_arn(3))
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        )
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .enable_execute_command(false)
        .propagate_tags(PropagateTags::Service)
        .enable_ecs_managed_tags(true)
        .deployments(
            deployment(OLD, "PRIMARY", &td_arn(3), State::Completed)
                .running_count(1)
                .build(),
        )
        .events(ServiceEvent::builder().id("ev-0").message(STEADY).build())
        .set_tags(Some(ecs_tags("service")));
    if load_balancer {
        service
            .load_balancers(
                aws_sdk_ecs::types::LoadBalancer::builder()
                    .target_group_arn(TG_ARN)
                    .container_name("web")
                    .container_port(PORT.into())
                    .build(),
            )
            .health_check_grace_period_seconds(60)
            .build()
    } else {
        service.build()
    }
}

fn alb() -> aws_sdk_elasticloadbalancingv2::types::LoadBalancer {
    let zone = |name: &str, subnet: &str| {
        AvailabilityZone::builder()
            .zone_name(name)
            .subnet_id(subnet)
            .build()
    };
    aws_sdk_elasticloadbalancingv2::types::LoadBalancer::builder()
        .load_balancer_arn(LB_ARN)
        .load_balancer_name(LOAD_BALANCER)
        .dns_name(LB_DNS)
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .vpc_id(VPC)
        .availability_zones(zone("us-east-1b", PUB_B))
        .availability_zones(zone("us-east-1a", PUB_A))
        .security_groups(SG_ALB)
        .build()
}

fn target_group(port: i32) -> TargetGroup {
    TargetGroup::builder()
        .target_group_arn(TG_ARN)
        .target_group_name(TARGET_GROUP)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id(VPC)
        .target_type(TargetTypeEnum::Ip)
        .health_check_enabled(true)
        .health_check_protocol(ProtocolEnum::Http)
        .health_check_path("/")
        .health_check_interval_seconds(10)
        .health_check_timeout_seconds(5)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(3)
        .matcher(Matcher::builder().http_code("200-399").build())
        .load_balancer_arns(LB_ARN)
        .build()
}

fn forward_to_target_group() -> aws_sdk_elasticloadbalancingv2::types::Action {
    aws_sdk_elasticloadbalancingv2::types::Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(TG_ARN)
        .order(1)
        .build()
}

/// A task that stopped, of revision 4 (the one `UpdateService` rolls out).
fn stopped_task(id: &str, reason: &str, container: Container) -> Task {
    Task::builder()
        .task_arn(format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{id}"
        ))
        .task_definition_arn(td_arn(4))
        .last_status("STOPPED")
        .desired_status("STOPPED")
        .stopped_reason(reason)
        .containers(container)
        .build()
}

/// The container `web` of a stopped task, with its exit code when it ran.
fn web_container(exit_code: Option<i32>) -> Container {
    Container::builder()
        .name("web")
        .last_status("STOPPED")
        .set_exit_code(exit_code)
        .build()
}

// ---------------------------------------------------------------------------------------------
// Recording calls.

// The journal of calls: `ecs_core::testing::Journal`, shared by every mock test.

// ---------------------------------------------------------------------------------------------
// The world's rules, client by client.

/// The repository, when the world has it, in a fake ECR account (`ecs_core::testing`).
fn ecr_fake(j: &Journal, w: &World) -> FakeEcr {
    let fake = FakeEcr::new(j, EcrState::default());
    if w.repository {
        let mut repo = EcrRepository::new(repository(), ecr_tags());
        repo.lifecycle = Some(lifecycle_policy());
        fake.state().repositories.insert(REPOSITORY.into(), repo);
    }
    fake
}

/// What the fake ECR does not model: a registry login, and every image asked about exists.
fn ecr_extras(j: &Journal) -> Vec<Rule> {
    vec![
        j.answer("GetAuthorizationToken",
            mock!(Ecr::get_authorization_token),
            |_| {
                let token = aws_smithy_types::base64::encode(format!("AWS:{REGISTRY_PASSWORD}"));
                GetAuthorizationTokenOutput::builder()
                    .authorization_data(
                        AuthorizationData::builder()
                            .authorization_token(token)
                            .proxy_endpoint(format!("https://{REGISTRY}"))
                            .expires_at(DateTime::from_secs(TOKEN_EXPIRY))
                            .build(),
                    )
                    .build()
            },
        ),
        // Every image asked about exists.
        j.answer("DescribeImages", mock!(Ecr::describe_images), |r| {
            let tags = r
                .image_ids()
                .iter()
                .filter_map(|i| i.image_tag().map(str::to_string))
                .collect();
            DescribeImagesOutput::builder()
                .image_details(
                    ImageDetail::builder()
                        .registry_id(ACCOUNT)
                        .set_repository_name(r.repository_name().map(str::to_string))
                        .image_digest("sha256:0f2e5a1c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f")
                        .set_image_tags(Some(tags))
                        .build(),
                )
                .build()
        }),
    ]
}

/// The roles the world has, in a fake IAM account (`ecs_core::testing`): the execution role
/// with the managed execution policy attached, the task role with no policy.
fn iam_fake(j: &Journal, w: &World) -> FakeIam {
    let fake = FakeIam::new(j, IamState::default());
    for (name, principal) in [(EXEC_ROLE, w.execution_role), (TASK_ROLE, w.task_role)] {
        if let Some(p) = principal {
            let mut role = IamRole::new(role(name, p));
            if name == EXEC_ROLE {
                role.managed.insert(EXEC_POLICY.to_string());
            }
            fake.state().roles.insert(name.to_string(), role);
        }
    }
    fake
}

/// The cluster, the family's revisions (each running the world's image) and the service the
/// world has, in a fake ECS account (`ecs_core::testing`).
fn ecs_fake(j: &Journal, w: &World) -> FakeEcs {
    let fake = FakeEcs::new(j, EcsState::default());
    {
        let mut s = fake.state();
        s.clusters.insert(CLUSTER.into(), cluster());
        for revision in w.revisions.iter().rev() {
            s.task_defs.push(TaskDef {
                td: task_definition(*revision, w.image),
                tags: ecs_tags("task-definition"),
            });
        }
        s.services.push(live_service(w.load_balancer));
    }
    fake
}

/// What the rollout scripts in front of the fake ECS: the wait's view of the service, and
/// the deployment an update starts.
fn ecs_script(j: &Journal) -> Vec<Rule> {
    vec![
        // What the rollout wait reads, unless a test scripts it: the new deployment completed.
        j.answer(
            "DescribeServices",
            mock!(Ecs::describe_services).match_requests(|r| r.include().is_empty()),
            |_| {
                let done = deployment(NEW, "PRIMARY", &td_arn(4), State::Completed)
                    .running_count(1)
                    .build();
                DescribeServicesOutput::builder()
                    .services(view(vec![done], &[("ev-0", STEADY)]))
                    .build()
            },
        ),
        // The update starts deployment `ecs-svc/new` of the requested revision.
        j.answer("UpdateService", mock!(Ecs::update_service), |r| {
            let td = r.task_definition().unwrap_or_default();
            let service = view(
                vec![
                    deployment(NEW, "PRIMARY", td, State::InProgress).build(),
                    deployment(OLD, "ACTIVE", &td_arn(3), State::Completed)
                        .running_count(1)
                        .build(),
                ],
                &[("ev-0", STEADY)],
            );
            UpdateServiceOutput::builder().service(service).build()
        }),
    ]
}

/// The load balancer, its HTTP listener on 80 and the target group the world has, in a fake
/// ELB account (`ecs_core::testing`), linked to the fake ECS.
fn elb_fake(j: &Journal, w: &World, ecs: &FakeEcs) -> FakeElb {
    let fake = FakeElb::new(j, ElbState::default());
    {
        let mut s = fake.state();
        let attributes = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        if w.load_balancer {
            s.load_balancers.push(LoadBalancerRecord {
                lb: alb(),
                attributes: attributes(&[
                    ("routing.http.drop_invalid_header_fields.enabled", "true"),
                    ("idle_timeout.timeout_seconds", "60"),
                    ("access_logs.s3.enabled", "false"),
                    ("deletion_protection.enabled", "false"),
                ]),
            });
            s.listeners.push(ListenerRecord {
                listener: Listener::builder()
                    .listener_arn(LISTENER_ARN)
                    .load_balancer_arn(LB_ARN)
                    .port(80)
                    .protocol(ProtocolEnum::Http)
                    .default_actions(forward_to_target_group())
                    .build(),
                rules: Vec::new(),
            });
            s.tags.insert(LB_ARN.into(), elb_tags("load-balancer"));
            s.tags.insert(LISTENER_ARN.into(), elb_tags("listener/80"));
        }
        if let Some(port) = w.target_group_port {
            s.target_groups.push(TargetGroupRecord {
                tg: target_group(port),
                attributes: attributes(&[
                    ("deregistration_delay.timeout_seconds", "30"),
                    ("stickiness.enabled", "false"),
                    ("stickiness.type", "lb_cookie"),
                    ("slow_start.duration_seconds", "0"),
                ]),
            });
            s.tags.insert(TG_ARN.into(), elb_tags("target-group"));
        }
    }
    fake.linked(ecs)
}

/// What the rollout scripts in front of the fake ELB: the targets' health.
fn elb_script(j: &Journal) -> Vec<Rule> {
    vec![
        // One new target still registering, one failing its health checks.
        j.answer(
            "DescribeTargetHealth",
            mock!(Elb::describe_target_health),
            |_| {
                let target = |ip: &str, state: TargetHealthStateEnum, description: &str| {
                    TargetHealthDescription::builder()
                        .target(
                            TargetDescription::builder()
                                .id(ip)
                                .port(PORT.into())
                                .build(),
                        )
                        .target_health(
                            TargetHealth::builder()
                                .state(state)
                                .description(description)
                                .build(),
                        )
                        .build()
                };
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(target(
                        "10.0.128.10",
                        TargetHealthStateEnum::Initial,
                        "Target registration is in progress",
                    ))
                    .target_health_descriptions(target(
                        "10.0.144.11",
                        TargetHealthStateEnum::Unhealthy,
                        "Health checks failed with these codes: [502]",
                    ))
                    .build()
            },
        ),
    ]
}

/// The `DescribeServices` answers of a rollout wait, in turn, the last one repeatedly (the
/// summary after a failure reads it too).
fn rollout(j: &Journal, answers: Vec<Service>) -> Rule {
    let calls = AtomicUsize::new(0);
    j.answer(
        "DescribeServices",
        mock!(Ecs::describe_services).match_requests(|r| r.include().is_empty()),
        move |_| {
            let i = calls.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
            DescribeServicesOutput::builder()
                .services(answers[i].clone())
                .build()
        },
    )
}

/// `ListTasks` (stopped tasks) and `DescribeTasks` answering `tasks`.
fn stopped(j: &Journal, tasks: Vec<Task>) -> Vec<Rule> {
    let arns: Vec<String> = tasks
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_string))
        .collect();
    vec![
        j.answer("ListTasks", mock!(Ecs::list_tasks), move |_| {
            ListTasksOutput::builder()
                .set_task_arns(Some(arns.clone()))
                .build()
        }),
        j.answer("DescribeTasks", mock!(Ecs::describe_tasks), move |_| {
            DescribeTasksOutput::builder()
                .set_tasks(Some(tasks.clone()))
                .build()
        }),
    ]
}

/// Rules a test puts in front of the world's, client by client.
#[derive(Default)]
struct Overrides {
    ecr: Vec<Rule>,
    iam: Vec<Rule>,
    ecs: Vec<Rule>,
    elb: Vec<Rule>,
}

/// The world's fakes and the rules scripted in front of them, and the journal they record
/// into.
struct Mock {
    journal: Journal,
    ecr: FakeEcr,
    ecr_extras: Vec<Rule>,
    iam: FakeIam,
    ecs: FakeEcs,
    ecs_script: Vec<Rule>,
    elb: FakeElb,
    elb_script: Vec<Rule>,
}

impl Mock {
    fn new(world: &World) -> Self {
        let journal = Journal::default();
        let ecs = ecs_fake(&journal, world);
        Self {
            ecr: ecr_fake(&journal, world),
            ecr_extras: ecr_extras(&journal),
            iam: iam_fake(&journal, world),
            ecs_script: ecs_script(&journal),
            elb: elb_fake(&journal, world, &ecs),
            ecs,
            elb_script: elb_script(&journal),
            journal,
        }
    }

    /// A layer whose clients answer with `first`'s rules, then the world's.
    fn layer(&self, first: Overrides) -> ServiceLayer {
        let ecr: Vec<&Rule> = first.ecr.iter().chain(&self.ecr_extras).collect();
        let iam: Vec<&Rule> = first.iam.iter().collect();
        let ecs: Vec<&Rule> = first.ecs.iter().chain(&self.ecs_script).collect();
        let elb: Vec<&Rule> = first.elb.iter().chain(&self.elb_script).collect();
        // Only `destroy` uses EC2: any call fails the test.
        let ec2: Vec<Rule> = Vec::new();
        ServiceLayer::from_clients(ServiceClients {
            ecr: self.ecr.client_with(&ecr),
            iam: self.iam.client_with(&iam),
            ecs: self.ecs.client_with(&ecs),
            elb: self.elb.client_with(&elb),
            ec2: ecs_core::mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &ec2),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The context and what it saw.

/// The context (stack `web`, user tag `team=payments`), its fake clock and its event log.
struct Harness {
    clock: FakeClock,
    events: EventLog,
    ctx: Context,
}

impl Harness {
    fn new() -> Self {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = Context::builder()
            .stack(StackName::new(STACK).unwrap())
            .tags(Tags::new().with("team", "payments"))
            .clock(clock.clone())
            .events(events.clone())
            .run_id("run-1")
            .build();
        Self { clock, events, ctx }
    }

    /// What the service's `Event::Waiting` events awaited (with the state seen).
    fn waits(&self) -> Vec<String> {
        self.of_service(|e| match e {
            Event::Waiting { awaiting, .. } => Some(awaiting),
            _ => None,
        })
    }

    /// The service's `Event::Progress` messages.
    fn progress(&self) -> Vec<String> {
        self.of_service(|e| match e {
            Event::Progress { message, .. } => Some(message),
            _ => None,
        })
    }

    /// The service's `Event::Failed` errors.
    fn failures(&self) -> Vec<String> {
        self.of_service(|e| match e {
            Event::Failed { error, .. } => Some(error),
            _ => None,
        })
    }

    /// The service's `Event::Started` actions.
    fn started(&self) -> Vec<String> {
        self.of_service(|e| match e {
            Event::Started { action, .. } => Some(action),
            _ => None,
        })
    }

    /// The service's `Event::Done` details.
    fn done(&self) -> Vec<String> {
        self.of_service(|e| match e {
            Event::Done { detail, .. } => Some(detail),
            _ => None,
        })
    }

    fn of_service(&self, pick: impl Fn(Event) -> Option<String>) -> Vec<String> {
        self.events
            .events()
            .into_iter()
            .filter(|e| e.resource() == RESOURCE)
            .filter_map(pick)
            .collect()
    }
}

/// Runs `work`, failing the test if it takes real time (everything waits on the fake clock).
async fn quick<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(REAL_TIME_LIMIT, work)
        .await
        .expect("the operation waited on the real clock")
}

/// The pending changes of a plan, as `kind id`.
fn pending(plan: &ServicePlan) -> Vec<String> {
    plan.changes()
        .pending()
        .map(|c| format!("{} {}", c.resource, c.id))
        .collect()
}

/// Plans `spec` (which must change only the task definition and the service) and applies it.
async fn plan_and_apply(
    h: &Harness,
    layer: &ServiceLayer,
    spec: &ServiceSpec,
) -> Result<ServiceOutputs, Error> {
    let plan = layer
        .plan(&h.ctx, spec, &network())
        .await
        .expect("plan succeeds");
    assert_eq!(
        pending(&plan),
        ["task-definition web-app", "ecs-service web-app"],
        "only the image differs: {plan}"
    );
    quick(layer.apply(&h.ctx, &plan)).await
}

// ---------------------------------------------------------------------------------------------
// 1. A rollout that completes, with progress.

#[tokio::test]
async fn rollout_completes_with_counts_service_events_and_target_health() {
    let h = Harness::new();
    let m = Mock::new(&World::full());
    let started = "(service web-app) has started 1 tasks: (task 0123456789abcdef).";
    let completed = "(service web-app) (deployment ecs-svc/new) deployment completed.";
    let old = || {
        deployment(OLD, "ACTIVE", &td_arn(3), State::Completed)
            .running_count(1)
            .build()
    };
    let script = rollout(
        &m.journal,
        vec![
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                        .pending_count(1)
                        .build(),
                    old(),
                ],
                &[("ev-1", STEADY)],
            ),
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                        .running_count(1)
                        .build(),
                    old(),
                ],
                &[("ev-2", started), ("ev-1", STEADY)],
            ),
            view(
                vec![deployment(NEW, "PRIMARY", &td_arn(4), State::Completed)
                    .running_count(1)
                    .build()],
                &[("ev-3", completed), ("ev-2", started), ("ev-1", STEADY)],
            ),
        ],
    );
    let layer = m.layer(Overrides {
        ecs: vec![script.clone()],
        ..Default::default()
    });
    let mut spec = spec_with_lb(NEW_IMAGE);
    spec.repository = Some(RepositorySpec::default());

    let plan = layer.plan(&h.ctx, &spec, &network()).await.unwrap();
    assert_eq!(
        pending(&plan),
        ["task-definition web-app", "ecs-service web-app"],
        "{plan}"
    );
    assert_eq!(plan.changes().summary().unchanged, 7, "{plan}");
    let out = quick(layer.apply(&h.ctx, &plan)).await.unwrap();

    // One new revision with the new image, one update pointing the service at it, and nothing
    // else: the repository, roles, cluster and load balancer matched.
    assert_eq!(
        m.journal.mutating(),
        ["RegisterTaskDefinition", "UpdateService"]
    );
    let registered = m.journal.inputs::<RegisterTaskDefinitionInput>();
    assert_eq!(
        registered[0].container_definitions()[0].image(),
        Some(NEW_IMAGE)
    );
    assert_eq!(registered[0].execution_role_arn(), Some(EXEC_ROLE_ARN));
    let updates = m.journal.inputs::<UpdateServiceInput>();
    assert_eq!(updates.len(), 1);
    let update = &updates[0];
    assert_eq!(update.task_definition(), Some(td_arn(4).as_str()));
    assert_eq!(
        (update.cluster(), update.service()),
        (Some(CLUSTER), Some(SERVICE))
    );
    assert!(
        update.desired_count().is_none()
            && update.network_configuration().is_none()
            && update.deployment_configuration().is_none()
            && update.load_balancers().is_empty()
            && update.health_check_grace_period_seconds().is_none(),
        "only the task definition changes: {update:?}"
    );

    let report = out.rollout.as_ref().expect("apply waited for the rollout");
    assert_eq!(report.deployment, NEW);
    assert_eq!(report.task_definition, td_arn(4));
    assert_eq!(report.running, 1);
    assert_eq!(report.waited, h.clock.total_slept());
    assert_eq!(out.task_definition_arn, td_arn(4));
    assert_eq!(out.service_arn, SERVICE_ARN);
    assert_eq!(out.cluster_arn, CLUSTER_ARN);
    assert_eq!(out.repository_uri.as_deref(), Some(REPO_URI));
    assert_eq!(out.target_group_arn.as_deref(), Some(TG_ARN));
    assert_eq!(out.url, Some(format!("http://{LB_DNS}/")));
    assert_eq!(script.num_calls(), 3);

    // Waiting events carried the deployment's counts and the targets' health.
    let waits = h.waits();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(
        waits[0].contains("deployment ecs-svc/new to complete")
            && waits[0].contains("IN_PROGRESS; running 0, pending 1, desired 1, failed tasks 0"),
        "{waits:?}"
    );
    assert!(
        waits[1].contains("running 1, pending 0, desired 1"),
        "{waits:?}"
    );
    let targets =
        "targets healthy 0, unhealthy 1, other 1 (Health checks failed with these codes: [502])";
    assert!(waits.iter().all(|w| w.contains(targets)), "{waits:?}");
    let health = m.journal.inputs::<DescribeTargetHealthInput>();
    assert_eq!(health.len(), 2);
    assert!(health.iter().all(|i| i.target_group_arn() == Some(TG_ARN)));

    // New service events became progress events, in order; the ones there before were not.
    assert_eq!(h.progress(), [started, completed]);
    assert!(
        h.done()
            .iter()
            .any(|d| d.contains("rollout of") && d.contains("completed")),
        "{:?}",
        h.done()
    );

    // Only the fake clock slept: once after each probe that was still in progress.
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!(
        sleeps
            .iter()
            .all(|s| *s > Duration::ZERO && *s <= Duration::from_secs(15)),
        "{sleeps:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The circuit breaker rolls the deployment back.

#[tokio::test]
async fn circuit_breaker_rollback_fails_the_apply_with_the_stopped_tasks_reasons() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let pull_error =
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref";
    let script = rollout(
        &m.journal,
        vec![view(
            vec![
                deployment(ROLLBACK, "PRIMARY", &td_arn(3), State::InProgress)
                    .running_count(1)
                    .build(),
                deployment(NEW, "ACTIVE", &td_arn(4), State::Failed)
                    .failed_tasks(3)
                    .rollout_state_reason(CIRCUIT_BREAKER)
                    .build(),
            ],
            &[("ev-2", DEPLOYMENT_FAILED), ("ev-1", STEADY)],
        )],
    );
    let tasks = stopped(
        &m.journal,
        vec![stopped_task("1111aaaa", pull_error, web_container(None))],
    );
    let layer = m.layer(Overrides {
        ecs: [vec![script], tasks].concat(),
        ..Default::default()
    });

    let err = plan_and_apply(&h, &layer, &spec(NEW_IMAGE))
        .await
        .unwrap_err();
    let text = err.to_string();
    match &err {
        Error::RolloutFailed {
            service,
            reason,
            stopped_tasks,
            events,
        } => {
            assert_eq!(service, SERVICE);
            assert!(
                reason.contains("FAILED") && reason.contains("circuit breaker"),
                "{reason}"
            );
            assert!(reason.contains(NEW), "{reason}");
            assert!(
                stopped_tasks
                    .iter()
                    .any(|t| t.contains("CannotPullContainerError") && t.contains("1111aaaa")),
                "{stopped_tasks:?}"
            );
            assert!(events.iter().any(|e| e == DEPLOYMENT_FAILED), "{events:?}");
        }
        other => panic!("expected RolloutFailed, got {other:?}"),
    }
    assert!(
        text.contains("circuit breaker") && text.contains("CannotPullContainerError"),
        "{text}"
    );

    // The stopped task's reason was reported while waiting, and the failure as an event.
    let progress = h.progress();
    assert!(
        progress
            .iter()
            .any(|p| p.starts_with("task stopped:") && p.contains("CannotPullContainerError")),
        "{progress:?}"
    );
    let failures = h.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("circuit breaker") && failures[0].contains("CannotPullContainerError"),
        "{failures:?}"
    );

    // Stopped tasks of this service were asked for.
    let lists = m.journal.inputs::<ListTasksInput>();
    assert!(!lists.is_empty());
    assert!(lists
        .iter()
        .all(|l| l.desired_status() == Some(&DesiredStatus::Stopped)
            && l.service_name() == Some(SERVICE)
            && l.cluster() == Some(CLUSTER)));
    // The first probe saw the failure: no wait.
    assert!(h.clock.sleeps().is_empty(), "{:?}", h.clock.sleeps());
}

// ---------------------------------------------------------------------------------------------
// 3. The deployment is replaced by another one.

#[tokio::test]
async fn replaced_deployment_is_a_failure_naming_the_replacement() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let script = rollout(
        &m.journal,
        vec![view(
            vec![
                deployment(ROLLBACK, "PRIMARY", &td_arn(3), State::InProgress)
                    .running_count(1)
                    .build(),
            ],
            &[("ev-1", STEADY)],
        )],
    );
    let layer = m.layer(Overrides {
        ecs: vec![script],
        ..Default::default()
    });

    let err = plan_and_apply(&h, &layer, &spec(NEW_IMAGE))
        .await
        .unwrap_err();
    match &err {
        Error::RolloutFailed {
            reason,
            stopped_tasks,
            ..
        } => {
            assert!(reason.contains("rolled back"), "{reason}");
            assert!(
                reason.contains(NEW) && reason.contains(ROLLBACK) && reason.contains(&td_arn(3)),
                "{reason}"
            );
            assert!(stopped_tasks.is_empty(), "{stopped_tasks:?}");
        }
        other => panic!("expected RolloutFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(h.failures().len(), 1);
    assert_eq!(
        m.journal.count("DescribeTasks"),
        0,
        "no stopped task to describe"
    );
}

#[tokio::test]
async fn a_deployment_that_runs_another_revision_than_asked_is_a_failure() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    // The deployment the update started reports the old revision: not what was asked for.
    let script = rollout(
        &m.journal,
        vec![view(
            vec![deployment(NEW, "PRIMARY", &td_arn(3), State::Completed)
                .running_count(1)
                .build()],
            &[("ev-1", STEADY)],
        )],
    );
    let layer = m.layer(Overrides {
        ecs: vec![script],
        ..Default::default()
    });
    let err = plan_and_apply(&h, &layer, &spec(NEW_IMAGE))
        .await
        .unwrap_err();
    match &err {
        Error::RolloutFailed { reason, .. } => assert!(
            reason.contains(&format!(
                "deployment {NEW} runs {}, not {}, the revision asked for",
                td_arn(3),
                td_arn(4)
            )),
            "{reason}"
        ),
        other => panic!("expected RolloutFailed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Tasks stop while the rollout runs.

#[tokio::test]
async fn stopped_tasks_reasons_are_reported_while_waiting_and_in_the_error() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let secrets = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): AccessDeniedException";
    let exited = "Essential container in task exited";
    let old = || {
        deployment(OLD, "ACTIVE", &td_arn(3), State::Completed)
            .running_count(1)
            .build()
    };
    let script = rollout(
        &m.journal,
        vec![
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                        .pending_count(1)
                        .build(),
                    old(),
                ],
                &[("ev-1", STEADY)],
            ),
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                        .pending_count(1)
                        .failed_tasks(2)
                        .build(),
                    old(),
                ],
                &[("ev-1", STEADY)],
            ),
            view(
                vec![
                    deployment(ROLLBACK, "PRIMARY", &td_arn(3), State::InProgress)
                        .running_count(1)
                        .build(),
                    deployment(NEW, "ACTIVE", &td_arn(4), State::Failed)
                        .failed_tasks(2)
                        .rollout_state_reason(CIRCUIT_BREAKER)
                        .build(),
                ],
                &[("ev-1", STEADY)],
            ),
        ],
    );
    let tasks = stopped(
        &m.journal,
        vec![
            stopped_task("aaaa1111", secrets, web_container(None)),
            stopped_task("bbbb2222", exited, web_container(Some(1))),
        ],
    );
    let layer = m.layer(Overrides {
        ecs: [vec![script.clone()], tasks].concat(),
        ..Default::default()
    });

    let err = plan_and_apply(&h, &layer, &spec(NEW_IMAGE))
        .await
        .unwrap_err();
    let expected = [
        format!("task aaaa1111: {secrets}"),
        format!("task bbbb2222: {exited}; container web exited with 1"),
    ];
    match &err {
        Error::RolloutFailed {
            reason,
            stopped_tasks,
            ..
        } => {
            assert!(reason.contains("FAILED"), "{reason}");
            for reason in &expected {
                assert!(
                    stopped_tasks.contains(reason),
                    "{reason} missing from {stopped_tasks:?}"
                );
            }
        }
        other => panic!("expected RolloutFailed, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("ResourceInitializationError: unable to pull secrets or registry auth")
            && text.contains("Essential container in task exited")
            && text.contains("exited with 1"),
        "{text}"
    );

    // When failedTasks grew from 0 to 2, the reasons were reported as progress, once each.
    let progress = h.progress();
    let reported: Vec<String> = expected
        .iter()
        .map(|r| format!("task stopped: {r}"))
        .collect();
    assert_eq!(progress, reported);
    let waits = h.waits();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits[1].contains("failed tasks 2"), "{waits:?}");
    assert_eq!(h.clock.sleeps().len(), 2);
    assert_eq!(
        script.num_calls(),
        4,
        "three probes and the summary's events"
    );
    // Once when failedTasks grew, once for the summary.
    assert_eq!(m.journal.count("ListTasks"), 2);
}

// ---------------------------------------------------------------------------------------------
// 4b. Tasks fail their load balancer health checks.

#[tokio::test]
async fn elb_health_check_failures_fail_the_rollout_with_the_target_health_reasons() {
    let h = Harness::new();
    let m = Mock::new(&World::full());
    let codes = "Health checks failed with these codes: [502]";
    let elb_failed = format!("Task failed ELB health checks in (target-group {TG_ARN})");
    let unhealthy = format!(
        "(service web-app) (port {PORT}) is unhealthy in (target-group {TG_ARN}) due to (reason {codes})."
    );
    let old = || {
        deployment(OLD, "ACTIVE", &td_arn(3), State::Completed)
            .running_count(1)
            .build()
    };
    // The new task runs but fails its health checks; ECS replaces it, then the circuit breaker
    // fails the deployment and rolls it back.
    let script = rollout(
        &m.journal,
        vec![
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                        .running_count(1)
                        .build(),
                    old(),
                ],
                &[("ev-1", STEADY)],
            ),
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                        .running_count(1)
                        .failed_tasks(2)
                        .build(),
                    old(),
                ],
                &[("ev-2", unhealthy.as_str()), ("ev-1", STEADY)],
            ),
            view(
                vec![
                    deployment(ROLLBACK, "PRIMARY", &td_arn(3), State::InProgress)
                        .running_count(1)
                        .build(),
                    deployment(NEW, "ACTIVE", &td_arn(4), State::Failed)
                        .failed_tasks(2)
                        .rollout_state_reason(CIRCUIT_BREAKER)
                        .build(),
                ],
                &[
                    ("ev-3", DEPLOYMENT_FAILED),
                    ("ev-2", unhealthy.as_str()),
                    ("ev-1", STEADY),
                ],
            ),
        ],
    );
    let tasks = stopped(
        &m.journal,
        vec![
            stopped_task("cccc3333", &elb_failed, web_container(Some(143))),
            stopped_task("dddd4444", &elb_failed, web_container(Some(143))),
        ],
    );
    // The old task's target is healthy; the new task's fails its checks with 502s.
    let target_health = m.journal.answer(
        "DescribeTargetHealth",
        mock!(Elb::describe_target_health),
        move |_| {
            let target = |ip: &str, health: TargetHealth| {
                TargetHealthDescription::builder()
                    .target(
                        TargetDescription::builder()
                            .id(ip)
                            .port(PORT.into())
                            .build(),
                    )
                    .target_health(health)
                    .build()
            };
            DescribeTargetHealthOutput::builder()
                .target_health_descriptions(target(
                    "10.0.128.5",
                    TargetHealth::builder()
                        .state(TargetHealthStateEnum::Healthy)
                        .build(),
                ))
                .target_health_descriptions(target(
                    "10.0.144.12",
                    TargetHealth::builder()
                        .state(TargetHealthStateEnum::Unhealthy)
                        .reason(TargetHealthReasonEnum::ResponseCodeMismatch)
                        .description(codes)
                        .build(),
                ))
                .build()
        },
    );
    let layer = m.layer(Overrides {
        ecs: [vec![script.clone()], tasks].concat(),
        elb: vec![target_health],
        ..Default::default()
    });
    let mut spec = spec_with_lb(NEW_IMAGE);
    spec.repository = Some(RepositorySpec::default());
    spec.service.rollout.timeout = 300;
    let bound = Duration::from_secs(spec.service.rollout.timeout);

    let err = plan_and_apply(&h, &layer, &spec).await.unwrap_err();

    // The stopped tasks' reasons (naming the target group) and the service events (with the
    // health checks' codes) are in the error.
    let expected = [
        format!("task cccc3333: {elb_failed}; container web exited with 143"),
        format!("task dddd4444: {elb_failed}; container web exited with 143"),
    ];
    match &err {
        Error::RolloutFailed {
            service,
            reason,
            stopped_tasks,
            events,
        } => {
            assert_eq!(service, SERVICE);
            assert!(
                reason.contains(NEW)
                    && reason.contains("FAILED")
                    && reason.contains(CIRCUIT_BREAKER),
                "{reason}"
            );
            assert!(!reason.contains("did not complete"), "{reason}");
            assert_eq!(stopped_tasks, &expected);
            assert!(events.iter().any(|e| e == DEPLOYMENT_FAILED), "{events:?}");
            assert!(events.contains(&unhealthy), "{events:?}");
        }
        other => panic!("expected RolloutFailed, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("failed ELB health checks") && text.contains(TG_ARN),
        "{text}"
    );
    assert!(
        text.contains(codes) && text.contains("circuit breaker"),
        "{text}"
    );

    // The targets' health was reported while waiting, with the failing checks' description;
    // the service event and the stopped tasks' reasons as progress, once each.
    let waits = h.waits();
    assert_eq!(waits.len(), 2, "{waits:?}");
    let targets = format!("targets healthy 1, unhealthy 1, other 0 ({codes})");
    assert!(waits.iter().all(|w| w.contains(&targets)), "{waits:?}");
    assert!(
        waits[0].contains("IN_PROGRESS; running 1, pending 0, desired 1, failed tasks 0"),
        "{waits:?}"
    );
    assert!(waits[1].contains("failed tasks 2"), "{waits:?}");
    let health = m.journal.inputs::<DescribeTargetHealthInput>();
    assert_eq!(health.len(), 2, "once per probe still in progress");
    assert!(health.iter().all(|i| i.target_group_arn() == Some(TG_ARN)));
    let reported: Vec<String> = [unhealthy]
        .into_iter()
        .chain(expected.iter().map(|r| format!("task stopped: {r}")))
        .chain([DEPLOYMENT_FAILED.to_string()])
        .collect();
    assert_eq!(h.progress(), reported);

    // Nothing reported success: the failure is the one outcome.
    let failures = h.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("failed ELB health checks") && failures[0].contains(CIRCUIT_BREAKER),
        "{failures:?}"
    );
    let done = h.done();
    assert!(
        !done
            .iter()
            .any(|d| d.contains("rollout of") || d.to_lowercase().contains("completed")),
        "{done:?}"
    );
    assert!(waits.iter().all(|w| !w.contains("COMPLETED")), "{waits:?}");
    assert!(
        !h.events.events().iter().any(|e| matches!(
            e,
            Event::Done { detail, .. } if detail.contains("rollout")
        )),
        "{:?}",
        h.events.events()
    );

    // Only the task definition and the service changed.
    assert_eq!(
        m.journal.mutating(),
        ["RegisterTaskDefinition", "UpdateService"]
    );
    // Three probes and the summary's events; stopped tasks asked for when failedTasks grew
    // and for the summary.
    assert_eq!(script.num_calls(), 4);
    assert_eq!(m.journal.count("ListTasks"), 2);

    // The wait ended on the failure, within its bound, on the fake clock.
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!(
        h.clock.total_slept() <= bound,
        "{:?}",
        h.clock.total_slept()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A rollout that never completes.

#[tokio::test]
async fn rollout_that_never_completes_times_out_at_the_bound() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let script = rollout(
        &m.journal,
        vec![view(
            vec![
                deployment(NEW, "PRIMARY", &td_arn(4), State::InProgress)
                    .pending_count(1)
                    .build(),
                deployment(OLD, "ACTIVE", &td_arn(3), State::Completed)
                    .running_count(1)
                    .build(),
            ],
            &[("ev-1", STEADY)],
        )],
    );
    let layer = m.layer(Overrides {
        ecs: vec![script.clone()],
        ..Default::default()
    });
    let mut spec = spec(NEW_IMAGE);
    spec.service.rollout.timeout = 120;

    let err = plan_and_apply(&h, &layer, &spec).await.unwrap_err();
    let text = err.to_string();
    // A rollout that does not complete in time is a failed rollout, with what was last seen.
    match &err {
        Error::RolloutFailed {
            service,
            reason,
            events,
            ..
        } => {
            assert_eq!(service, SERVICE);
            assert!(
                reason.contains(NEW) && reason.contains("within 120 s"),
                "{reason}"
            );
            assert!(reason.contains("IN_PROGRESS"), "{reason}");
            assert_eq!(events, &[STEADY.to_string()]);
        }
        other => panic!("expected a failed rollout, got {other:?}"),
    }
    assert!(
        text.contains(SERVICE) && text.contains(NEW) && text.contains("did not complete"),
        "{text}"
    );
    assert!(h
        .events
        .events()
        .iter()
        .any(|e| matches!(e, Event::Failed { .. })));

    // Bounded by the fake clock: 120 s of (fake) sleeps, each followed by one probe.
    let total = h.clock.total_slept();
    assert!(
        (Duration::from_secs(120)..Duration::from_secs(121)).contains(&total),
        "{total:?}"
    );
    let sleeps = h.clock.sleeps();
    assert!(
        sleeps.iter().all(|s| *s <= Duration::from_secs(15)),
        "{sleeps:?}"
    );
    // One probe after each sleep and the first at once, then one read of the last events.
    assert_eq!(script.num_calls(), sleeps.len() + 2);
    assert_eq!(h.waits().len(), sleeps.len());
}

// ---------------------------------------------------------------------------------------------
// 6. Not waiting.

#[tokio::test]
async fn apply_without_waiting_returns_after_the_update() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let layer = m.layer(Overrides::default());
    let mut spec = spec(NEW_IMAGE);
    spec.service.rollout.wait = false;

    let out = plan_and_apply(&h, &layer, &spec).await.unwrap();
    assert!(out.rollout.is_none(), "{:?}", out.rollout);
    assert_eq!(out.task_definition_arn, td_arn(4));
    assert_eq!(
        m.journal.mutating(),
        ["RegisterTaskDefinition", "UpdateService"]
    );
    let ops = m.journal.ops();
    let update = ops.iter().position(|o| *o == "UpdateService").unwrap();
    assert!(
        !ops[update..].contains(&"DescribeServices"),
        "described the service after the update: {ops:?}"
    );
    assert!(h.clock.sleeps().is_empty());
    assert!(h.waits().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. Rollback.

#[tokio::test]
async fn rollback_returns_to_the_previous_revision_and_waits() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let script = rollout(
        &m.journal,
        vec![
            view(
                vec![
                    deployment(NEW, "PRIMARY", &td_arn(2), State::InProgress)
                        .pending_count(1)
                        .build(),
                    deployment(OLD, "ACTIVE", &td_arn(3), State::Completed)
                        .running_count(1)
                        .build(),
                ],
                &[("ev-1", STEADY)],
            ),
            view(
                vec![deployment(NEW, "PRIMARY", &td_arn(2), State::Completed)
                    .running_count(1)
                    .build()],
                &[("ev-1", STEADY)],
            ),
        ],
    );
    let layer = m.layer(Overrides {
        ecs: vec![script],
        ..Default::default()
    });

    let report = quick(layer.rollback(&h.ctx, &spec(OLD_IMAGE)))
        .await
        .unwrap();
    assert_eq!(report.deployment, NEW);
    assert_eq!(report.task_definition, td_arn(2));
    assert_eq!(report.running, 1);

    let updates = m.journal.inputs::<UpdateServiceInput>();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].task_definition(), Some(td_arn(2).as_str()));
    assert_eq!(
        (updates[0].cluster(), updates[0].service()),
        (Some(CLUSTER), Some(SERVICE))
    );
    assert_eq!(m.journal.mutating(), ["UpdateService"]);
    let lists = m.journal.inputs::<ListTaskDefinitionsInput>();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].family_prefix(), Some(FAMILY));
    assert_eq!(lists[0].status(), Some(&TaskDefinitionStatus::Active));
    assert_eq!(lists[0].sort(), Some(&SortOrder::Desc));
    assert_eq!(h.started(), [format!("roll back to {}", td_arn(2))]);
    assert_eq!(h.clock.sleeps().len(), 1);
}

#[tokio::test]
async fn rollback_without_a_previous_revision_is_not_found_and_changes_nothing() {
    let h = Harness::new();
    let m = Mock::new(&World {
        revisions: vec![3],
        ..World::minimal()
    });
    let layer = m.layer(Overrides::default());

    let err = quick(layer.rollback(&h.ctx, &spec(OLD_IMAGE)))
        .await
        .unwrap_err();
    match &err {
        Error::NotFound(e) => {
            assert_eq!(e.id, FAMILY);
            assert!(e.resource.contains("previous"), "{}", e.resource);
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(m.journal.count("UpdateService"), 0);
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());
    assert_eq!(m.journal.count("ListTaskDefinitions"), 1);
}

// ---------------------------------------------------------------------------------------------
// 8. Verify.

#[tokio::test]
async fn verify_reports_every_failed_check_and_changes_nothing() {
    let h = Harness::new();
    let m = Mock::new(&World {
        execution_role: Some("ec2.amazonaws.com"),
        task_role: None,
        target_group_port: Some(9000),
        ..World::minimal()
    });
    let missing = m.journal.respond("DescribeImages",
        mock!(Ecr::describe_images),
        |_| {
            MockResponse::Error(DescribeImagesError::generic(meta(
                "ImageNotFoundException",
                "The image with imageId {imageDigest:'null', imageTag:'v9'} does not exist within the repository with name 'web-app' in the registry with id '123456789012'",
            )))
        },
    );
    let layer = m.layer(Overrides {
        ecr: vec![missing],
        ..Default::default()
    });
    let image = format!("{REGISTRY}/web-app:v9");

    let err = quick(layer.verify(&h.ctx, &spec_with_lb(&image)))
        .await
        .unwrap_err();
    let problems = match &err {
        Error::Verification(p) => p.clone(),
        other => panic!("expected Verification, got {other:?}"),
    };
    for field in [
        "task.containers[0].image",
        "iam.execution_role",
        "load_balancer.target_group.port",
    ] {
        assert!(problems.mentions(field), "{field} missing from {problems}");
    }
    assert_eq!(problems.len(), 3, "{problems}");
    let message = |field: &str| {
        problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| p.message.clone())
            .unwrap_or_default()
    };
    let image_problem = message("task.containers[0].image");
    assert!(
        image_problem.contains(&image) && image_problem.contains("not found in ECR"),
        "{image_problem}"
    );
    let role_problem = message("iam.execution_role");
    assert!(
        role_problem.contains(EXEC_ROLE_ARN) && role_problem.contains(TASKS_PRINCIPAL),
        "{role_problem}"
    );
    let port_problem = message("load_balancer.target_group.port");
    assert!(
        port_problem.contains("9000") && port_problem.contains("8080"),
        "{port_problem}"
    );
    assert!(err.to_string().contains("verification failed"), "{err}");

    // The image was looked up by repository and tag; nothing was changed.
    let lookups = m.journal.inputs::<DescribeImagesInput>();
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].repository_name(), Some(REPOSITORY));
    assert_eq!(lookups[0].image_ids()[0].image_tag(), Some("v9"));
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());
}

#[tokio::test]
async fn verify_passes_when_images_exist_and_nothing_conflicts() {
    let h = Harness::new();
    let m = Mock::new(&World {
        execution_role: None,
        task_role: None,
        ..World::minimal()
    });
    let layer = m.layer(Overrides::default());
    let mut spec = spec_with_lb(&format!("{REGISTRY}/web-app:v9"));
    // An image from another registry is not looked up.
    spec.task.containers.push(
        ContainerSpec::builder()
            .name("log-router")
            .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
            .build(),
    );

    quick(layer.verify(&h.ctx, &spec)).await.unwrap();
    assert_eq!(m.journal.count("DescribeImages"), 1);
    assert_eq!(m.journal.count("GetRole"), 2);
    assert!(m.journal.mutating().is_empty(), "{:?}", m.journal.ops());
}

// ---------------------------------------------------------------------------------------------
// 9. Registry login.

#[tokio::test]
async fn registry_login_decodes_the_token_and_hides_the_password() {
    let h = Harness::new();
    let m = Mock::new(&World::minimal());
    let layer = m.layer(Overrides::default());

    let login = quick(layer.registry_login(&h.ctx)).await.unwrap();
    assert_eq!(login.registry, REGISTRY);
    assert_eq!(login.username, "AWS");
    assert_eq!(login.password, REGISTRY_PASSWORD);
    assert_eq!(login.expires_at, Some(TOKEN_EXPIRY));
    let debug = format!("{login:?}");
    assert!(
        !debug.contains(REGISTRY_PASSWORD) && debug.contains("AWS") && debug.contains(REGISTRY),
        "{debug}"
    );
    assert_eq!(m.journal.ops(), ["GetAuthorizationToken"]);
}
