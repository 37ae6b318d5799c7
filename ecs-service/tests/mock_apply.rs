//! Tests of ecs-service through its public API against mocked SDK clients (aws-smithy-mocks):
//! plan, apply, destroy and the reconciliation of listener rules and IAM policies, with retries
//! and waits timed by a [`FakeClock`] so nothing sleeps for real.
//!
//! Every test builds a [`Mock`]: the shared stateful fakes of `ecs_core::testing` (`FakeEcr`,
//! `FakeIam`, `FakeEcs`, `FakeElb` linked to it, `FakeEc2`) behind the ECR, IAM, ECS, ELB and
//! EC2 clients. Describes answer from them and creates, updates and deletes change them, so
//! what an apply created is what the next plan finds; the fakes also enforce the
//! ordering rules of AWS that matter here (a cluster with live services, a target group still
//! used by a listener or a role with policies cannot be deleted). Time passes only between
//! describes: a deployment is reported `IN_PROGRESS` once and `COMPLETED` afterwards, a deleted
//! service `DRAINING` once and `INACTIVE` afterwards. Every call is recorded, input included,
//! in a [`Journal`]. A test puts its own rules in front of the fakes' (in `RuleMode::MatchAny`
//! the first matching rule answers) to inject errors.

// The mock closures return the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use ecs_core::testing::fake_ecr::EcrRepository;
use ecs_core::testing::{
    Ec2State, EcrState, EcsState, ElbState, FakeEc2, FakeEcr, FakeEcs, FakeElb, FakeIam, IamState,
    Journal,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::MutexGuard;
use std::time::Duration;

use aws_sdk_ecr::operation::create_repository::CreateRepositoryInput;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryInput;
use aws_sdk_ecr::types::ImageTagMutability;
use aws_sdk_ecs::operation::create_cluster::CreateClusterInput;
use aws_sdk_ecs::operation::create_service::{CreateServiceError, CreateServiceInput};
use aws_sdk_ecs::operation::delete_service::DeleteServiceInput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::operation::update_service::UpdateServiceInput;
use aws_sdk_ecs::types::{
    AssignPublicIp, DeploymentRolloutState, LaunchType, TaskDefinitionStatus,
};
use aws_sdk_elasticloadbalancingv2::operation as elb_op;
use aws_sdk_elasticloadbalancingv2::operation::create_listener::CreateListenerInput;
use aws_sdk_elasticloadbalancingv2::operation::create_load_balancer::CreateLoadBalancerInput;
use aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleInput;
use aws_sdk_elasticloadbalancingv2::operation::create_target_group::CreateTargetGroupInput;
use aws_sdk_elasticloadbalancingv2::operation::delete_rule::DeleteRuleInput;
use aws_sdk_elasticloadbalancingv2::operation::modify_load_balancer_attributes::ModifyLoadBalancerAttributesInput;
use aws_sdk_elasticloadbalancingv2::operation::modify_rule::ModifyRuleInput;
use aws_sdk_elasticloadbalancingv2::types::{
    ActionTypeEnum, ProtocolEnum, RedirectActionStatusCodeEnum, RuleCondition,
};
use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyInput;
use aws_sdk_iam::operation::create_role::CreateRoleInput;
use aws_sdk_iam::operation::delete_role::DeleteRoleInput;
use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyInput;
use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyInput;
use aws_sdk_iam::operation::put_role_policy::PutRolePolicyInput;
use aws_smithy_types::error::ErrorMetadata;
use serde_json::{json, Value};

use ecs_core::testing::{mock, Rule};
use ecs_core::{Action, Context, Event, EventLog, FakeClock, RetryPolicy, StackName, Tags};
use ecs_net::NetworkOutputs;
use ecs_service::{
    ContainerSpec, Error, IamSpec, ImageRelease, ListenerSpec, LoadBalancerSpec, PolicyStatement,
    Protocol, RuleSpec, ServiceClients, ServiceLayer, ServiceOutputs, ServicePlan, ServiceSettings,
    ServiceSpec, StrategyItem, TaskSpec,
};

// ---------------------------------------------------------------------------------------------
// Names used throughout.

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const VPC: &str = "vpc-1";
const PUB_A: &str = "subnet-pub-a";
const PUB_B: &str = "subnet-pub-b";
const PRIV_A: &str = "subnet-priv-a";
const PRIV_B: &str = "subnet-priv-b";
const SG_ALB: &str = "sg-alb";
const SG_TASK: &str = "sg-task";
const PORT: u16 = 8080;
const CERT: &str = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
const EXEC_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

// The deterministic names of stack `web`, application `app`.
const REPO: &str = "web-app";
const EXEC_ROLE: &str = "web-execution";
const TASK_ROLE: &str = "web-task";
const CLUSTER: &str = "web";
const FAMILY: &str = "web-app";
const SERVICE: &str = "web-app";
const ALB: &str = "web-alb";
const TG: &str = "web-app";

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

// ---------------------------------------------------------------------------------------------
// The in-memory AWS.

// ---------------------------------------------------------------------------------------------
// Recording calls.

// The journal of calls: `ecs_core::testing::Journal`, shared by every mock test.

/// The one element of `items`.
fn only<T: Debug>(items: Vec<T>) -> T {
    assert_eq!(items.len(), 1, "expected exactly one: {items:?}");
    items.into_iter().next().expect("one element")
}

/// The repository `REPO`, mutable and without a lifecycle policy, made by hand with `tags`.
fn mutable_repo(tags: &[(&str, &str)]) -> EcrRepository {
    EcrRepository::new(
        aws_sdk_ecr::types::Repository::builder()
            .repository_arn(format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPO}"))
            .registry_id(ACCOUNT)
            .repository_name(REPO)
            .repository_uri(format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}"))
            .image_tag_mutability(ImageTagMutability::Mutable)
            .build(),
        tags.iter()
            .map(|(k, v)| {
                aws_sdk_ecr::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .unwrap()
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// The mocked clients.

/// The shared stateful fakes of ECR, IAM, ECS, Elastic Load Balancing (linked to ECS) and EC2
/// (`ecs_core::testing`), and the journal they all record into.
#[derive(Clone)]
struct Mock {
    journal: Journal,
    ecr: FakeEcr,
    iam: FakeIam,
    ecs: FakeEcs,
    elb: FakeElb,
    ec2: FakeEc2,
}

impl Default for Mock {
    fn default() -> Self {
        let journal = Journal::default();
        let ecs = FakeEcs::new(&journal, EcsState::default());
        Self {
            ecr: FakeEcr::new(&journal, EcrState::default()),
            iam: FakeIam::new(&journal, IamState::default()),
            elb: FakeElb::new(&journal, ElbState::default()).linked(&ecs),
            ec2: FakeEc2::new(&journal, Ec2State::default()),
            ecs,
            journal,
        }
    }
}

impl Mock {
    /// The clusters, revisions and services, for setting them up and inspecting them (never
    /// held across an `await`).
    fn ecs(&self) -> MutexGuard<'_, EcsState> {
        self.ecs.state()
    }

    /// The load balancers, target groups, listeners and rules, likewise.
    fn elb(&self) -> MutexGuard<'_, ElbState> {
        self.elb.state()
    }

    /// The repositories, likewise.
    fn ecr(&self) -> MutexGuard<'_, EcrState> {
        self.ecr.state()
    }

    /// The roles, likewise.
    fn iam(&self) -> MutexGuard<'_, IamState> {
        self.iam.state()
    }

    /// The layer over the fakes.
    fn layer(&self) -> ServiceLayer {
        self.layer_with(&[])
    }

    /// The layer over the fakes, with `ecs_overrides` answering ECS calls first.
    fn layer_with(&self, ecs_overrides: &[&Rule]) -> ServiceLayer {
        ServiceLayer::from_clients(ServiceClients {
            ecr: self.ecr.client(),
            iam: self.iam.client(),
            ecs: self.ecs.client_with(ecs_overrides),
            elb: self.elb.client(),
            ec2: self.ec2.client(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The context, the network and the specifications.

/// The context (stack `web`, user tag `team=payments`), its fake clock and its event log.
struct Harness {
    clock: FakeClock,
    events: EventLog,
    ctx: Context,
}

impl Harness {
    fn new() -> Self {
        Self::with_retry(RetryPolicy::default())
    }

    fn with_retry(retry: RetryPolicy) -> Self {
        let (clock, events) = (FakeClock::new(), EventLog::new());
        let ctx = Context::builder()
            .stack(StackName::new("web").unwrap())
            .tags(Tags::new().with("team", "payments"))
            .clock(clock.clone())
            .events(events.clone())
            .retry(retry)
            .run_id("run-1")
            .build();
        Self { clock, events, ctx }
    }

    /// The attempts reported by `Event::Retrying` for `operation`.
    fn retries(&self, operation: &str) -> Vec<u32> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Retrying {
                    operation: op,
                    attempt,
                    ..
                } if op == operation => Some(attempt),
                _ => None,
            })
            .collect()
    }
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

/// The container `web` on port 8080, reading one secret.
fn container(image: &str) -> ContainerSpec {
    ContainerSpec::builder()
        .name("web")
        .image(image)
        .ports(vec![PORT])
        .secrets(BTreeMap::from([(
            "DB_PASSWORD".to_string(),
            SECRET.to_string(),
        )]))
        .build()
}

/// The application behind HTTPS (and HTTP redirecting to it).
fn spec() -> ServiceSpec {
    ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .cpu(256)
                .memory(512)
                .containers(vec![container("nginx:1.27")])
                .build(),
        )
        .load_balancer(LoadBalancerSpec::https(CERT))
        .build()
}

/// The application behind one HTTP listener on port 80 with these rules.
fn spec_with_rules(rules: Vec<RuleSpec>) -> ServiceSpec {
    let mut s = spec();
    s.load_balancer = Some(
        LoadBalancerSpec::builder()
            .listeners(vec![ListenerSpec::builder().port(80).rules(rules).build()])
            .build(),
    );
    s
}

fn path_rule(priority: u32, path: &str) -> RuleSpec {
    RuleSpec::builder()
        .priority(priority)
        .paths(vec![path.to_string()])
        .build()
}

/// The application whose task role may do `action` on one bucket.
fn spec_with_task_permission(action: &str) -> ServiceSpec {
    let mut s = spec();
    s.iam = IamSpec::builder()
        .task_role_statements(vec![PolicyStatement::builder()
            .actions(vec![action.to_string()])
            .resources(vec!["arn:aws:s3:::uploads/*".to_string()])
            .build()])
        .build();
    s
}

/// Plans and applies `spec`, which must succeed.
async fn deploy(layer: &ServiceLayer, h: &Harness, spec: &ServiceSpec) -> ServiceOutputs {
    let plan = layer.plan(&h.ctx, spec, &network()).await.unwrap();
    layer.apply(&h.ctx, &plan).await.unwrap()
}

/// The fields of the planned update of `resource` `id`.
fn updated_fields(plan: &ServicePlan, resource: &str, id: &str) -> Vec<String> {
    let change = plan
        .changes()
        .find(resource, id)
        .unwrap_or_else(|| panic!("no {resource} {id} in the plan:\n{plan}"));
    match &change.action {
        Action::Update(diffs) => diffs.iter().map(|d| d.field.clone()).collect(),
        other => panic!("{resource} {id}: expected an update, got {other:?}\n{plan}"),
    }
}

fn action_of<'a>(plan: &'a ServicePlan, resource: &str, id: &str) -> Option<&'a Action> {
    plan.changes().find(resource, id).map(|c| &c.action)
}

/// Tags as a map, from an SDK's key/value getters.
fn tag_map<'a>(
    tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.map(|(k, v)| {
        (
            k.unwrap_or_default().to_string(),
            v.unwrap_or_default().to_string(),
        )
    })
    .collect()
}

fn path_values(conditions: &[RuleCondition]) -> Vec<String> {
    conditions
        .iter()
        .filter_map(|c| c.path_pattern_config())
        .flat_map(|p| p.values().to_vec())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A fresh stack.

#[tokio::test]
async fn fresh_stack_is_created_with_secure_defaults_and_waits_for_the_rollout() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();

    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    let n = plan.names();
    assert_eq!(
        [
            n.repository.as_str(),
            n.execution_role.as_str(),
            n.task_role.as_str(),
            n.cluster.as_str(),
            n.family.as_str(),
            n.service.as_str(),
            n.load_balancer.as_str(),
            n.target_group.as_str(),
        ],
        [REPO, EXEC_ROLE, TASK_ROLE, CLUSTER, FAMILY, SERVICE, ALB, TG]
    );
    let creates: BTreeSet<(String, String)> = plan
        .changes()
        .changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .map(|c| (c.resource.clone(), c.id.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("ecr-repository", REPO),
        ("iam-role", EXEC_ROLE),
        ("iam-role", TASK_ROLE),
        ("ecs-cluster", CLUSTER),
        ("task-definition", FAMILY),
        ("load-balancer", ALB),
        ("target-group", TG),
        ("listener", "web-alb:443"),
        ("listener", "web-alb:80"),
        ("ecs-service", SERVICE),
    ]
    .iter()
    .map(|(r, id)| (r.to_string(), id.to_string()))
    .collect();
    assert_eq!(creates, expected, "{plan}");
    let s = plan.changes().summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.unchanged),
        (10, 0, 0, 0, 0),
        "{plan}"
    );
    assert!(
        m.journal.mutating().is_empty(),
        "plan changed something: {:?}",
        m.journal.mutating()
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    let j = &m.journal;
    for (op, times) in [
        ("CreateRepository", 1),
        ("CreateRole", 2),
        ("CreateCluster", 1),
        ("RegisterTaskDefinition", 1),
        ("CreateLoadBalancer", 1),
        ("CreateTargetGroup", 1),
        ("CreateListener", 2),
        ("CreateService", 1),
    ] {
        assert_eq!(j.count(op), times, "{op}: {:?}", j.ops());
    }
    let tg_arn = out.target_group_arn.clone().expect("a target group");

    // The service: private subnets, no public IP, the task security group, Fargate, the
    // circuit breaker with rollback, a grace period for the load balancer, an ECS client token.
    let svc = only(j.inputs::<CreateServiceInput>());
    assert_eq!(
        (svc.cluster(), svc.service_name()),
        (Some(CLUSTER), Some(SERVICE))
    );
    let vpc = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("awsvpc network configuration");
    assert_eq!(vpc.assign_public_ip(), Some(&AssignPublicIp::Disabled));
    assert_eq!(vpc.subnets(), [PRIV_A, PRIV_B]);
    assert_eq!(vpc.security_groups(), [SG_TASK]);
    let breaker = svc
        .deployment_configuration()
        .and_then(|d| d.deployment_circuit_breaker())
        .expect("a deployment circuit breaker");
    assert!(breaker.enable() && breaker.rollback(), "{breaker:?}");
    let token = svc.client_token().expect("a client token");
    assert!(!token.is_empty() && token.len() <= 36, "{token}");
    assert_eq!(svc.launch_type(), Some(&LaunchType::Fargate));
    assert!(svc.capacity_provider_strategy().is_empty());
    assert_eq!(svc.health_check_grace_period_seconds(), Some(60));
    assert_eq!(svc.desired_count(), Some(1));
    assert_eq!(
        svc.task_definition(),
        Some(out.task_definition_arn.as_str())
    );
    let targets: Vec<(Option<&str>, Option<&str>, Option<i32>)> = svc
        .load_balancers()
        .iter()
        .map(|l| (l.target_group_arn(), l.container_name(), l.container_port()))
        .collect();
    assert_eq!(targets, [(Some(tg_arn.as_str()), Some("web"), Some(8080))]);

    // The repository: immutable tags, scan on push.
    let repo = only(j.inputs::<CreateRepositoryInput>());
    assert_eq!(repo.repository_name(), Some(REPO));
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert!(
        repo.image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        "{repo:?}"
    );

    // The load balancer drops invalid header fields.
    let attributes = only(j.inputs::<ModifyLoadBalancerAttributesInput>());
    assert!(
        attributes.attributes().iter().any(|a| a.key()
            == Some("routing.http.drop_invalid_header_fields.enabled")
            && a.value() == Some("true")),
        "{attributes:?}"
    );

    // HTTPS with the modern TLS policy and the certificate; HTTP answers with a redirect.
    let listeners = j.inputs::<CreateListenerInput>();
    let https = listeners
        .iter()
        .find(|l| l.port() == Some(443))
        .expect("an HTTPS listener");
    assert_eq!(https.protocol(), Some(&ProtocolEnum::Https));
    assert_eq!(https.ssl_policy(), Some(TLS_POLICY));
    let certificates: Vec<Option<&str>> = https
        .certificates()
        .iter()
        .map(|c| c.certificate_arn())
        .collect();
    assert_eq!(certificates, [Some(CERT)]);
    let forward = https.default_actions().first().expect("a default action");
    assert_eq!(forward.r#type(), Some(&ActionTypeEnum::Forward));
    assert_eq!(forward.target_group_arn(), Some(tg_arn.as_str()));
    let http = listeners
        .iter()
        .find(|l| l.port() == Some(80))
        .expect("an HTTP listener");
    assert_eq!(http.protocol(), Some(&ProtocolEnum::Http));
    assert!(http.certificates().is_empty() && http.ssl_policy().is_none());
    let redirect = http
        .default_actions()
        .first()
        .filter(|a| a.r#type() == Some(&ActionTypeEnum::Redirect))
        .and_then(|a| a.redirect_config())
        .expect("a redirect");
    assert_eq!(
        (redirect.protocol(), redirect.port(), redirect.status_code()),
        (
            Some("HTTPS"),
            Some("443"),
            Some(&RedirectActionStatusCodeEnum::Http301)
        )
    );

    // The execution role reads exactly the one referenced secret, and nothing else.
    let attached = j.inputs::<AttachRolePolicyInput>();
    let attached: Vec<(Option<&str>, Option<&str>)> = attached
        .iter()
        .map(|a| (a.role_name(), a.policy_arn()))
        .collect();
    assert_eq!(attached, [(Some(EXEC_ROLE), Some(EXEC_POLICY))]);
    let put = only(j.inputs::<PutRolePolicyInput>());
    assert_eq!(
        (put.role_name(), put.policy_name()),
        (Some(EXEC_ROLE), Some("secrets"))
    );
    let doc: Value = serde_json::from_str(put.policy_document().unwrap_or_default()).unwrap();
    assert_eq!(
        doc["Statement"],
        json!([{
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [SECRET],
        }]),
        "{doc}"
    );

    // Every create carried the ownership tag and the user's tags.
    let plain = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut created: Vec<(&str, BTreeMap<String, String>)> = Vec::new();
    for i in j.inputs::<CreateRepositoryInput>() {
        let tags = i.tags().iter().map(|t| plain(t.key(), t.value())).collect();
        created.push(("CreateRepository", tags));
    }
    for i in j.inputs::<CreateRoleInput>() {
        let tags = i.tags().iter().map(|t| plain(t.key(), t.value())).collect();
        created.push(("CreateRole", tags));
    }
    for i in j.inputs::<CreateClusterInput>() {
        created.push((
            "CreateCluster",
            tag_map(i.tags().iter().map(|t| (t.key(), t.value()))),
        ));
    }
    for i in j.inputs::<RegisterTaskDefinitionInput>() {
        let tags = tag_map(i.tags().iter().map(|t| (t.key(), t.value())));
        created.push(("RegisterTaskDefinition", tags));
    }
    for i in j.inputs::<CreateServiceInput>() {
        created.push((
            "CreateService",
            tag_map(i.tags().iter().map(|t| (t.key(), t.value()))),
        ));
    }
    for i in j.inputs::<CreateLoadBalancerInput>() {
        let tags = tag_map(i.tags().iter().map(|t| (t.key(), t.value())));
        created.push(("CreateLoadBalancer", tags));
    }
    for i in j.inputs::<CreateTargetGroupInput>() {
        let tags = tag_map(i.tags().iter().map(|t| (t.key(), t.value())));
        created.push(("CreateTargetGroup", tags));
    }
    for i in j.inputs::<CreateListenerInput>() {
        created.push((
            "CreateListener",
            tag_map(i.tags().iter().map(|t| (t.key(), t.value()))),
        ));
    }
    assert_eq!(created.len(), 10);
    for (op, tags) in &created {
        assert_eq!(
            tags.get("ecs:stack").map(String::as_str),
            Some("web"),
            "{op}: {tags:?}"
        );
        assert_eq!(
            tags.get("team").map(String::as_str),
            Some("payments"),
            "{op}: {tags:?}"
        );
    }

    // The rollout waited for is the deployment CreateService started, and it completed.
    let rollout = out.rollout.clone().expect("apply waited for the rollout");
    {
        let w = m.ecs();
        assert_eq!(w.deployments.len(), 1, "{:?}", w.deployments);
        assert_eq!(rollout.deployment, w.deployments[0]);
        let primary = &w.services[0].deployments()[0];
        assert_eq!(
            (primary.id(), primary.status(), primary.rollout_state()),
            (
                Some(rollout.deployment.as_str()),
                Some("PRIMARY"),
                Some(&DeploymentRolloutState::Completed)
            )
        );
    }
    assert_eq!(rollout.task_definition, out.task_definition_arn);
    assert_eq!(rollout.running, 1);
    assert!(
        out.task_definition_arn
            .ends_with(":task-definition/web-app:1"),
        "{}",
        out.task_definition_arn
    );
    let dns = out.load_balancer_dns.clone().expect("a DNS name");
    assert_eq!(out.url, Some(format!("https://{dns}/")));
    assert!(out
        .repository_uri
        .as_deref()
        .is_some_and(|u| u.ends_with("/web-app")));
    assert!(
        h.clock.total_slept() > Duration::ZERO,
        "the rollout was polled"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Nothing to do.

#[tokio::test]
async fn unchanged_spec_plans_no_change_and_applies_without_a_mutating_call() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let first = deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    assert_eq!(plan.changes().changes.len(), 10, "{plan}");
    assert!(
        plan.changes()
            .changes
            .iter()
            .all(|c| c.action == Action::NoChange),
        "{plan}"
    );
    assert!(plan.changes().is_empty());
    let reads = m.journal.ops().len();
    assert!(reads > 0, "plan read what exists");

    let before = h.events.events().len();
    let second = layer.apply(&h.ctx, &plan).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "mutating calls: {:?}",
        m.journal.mutating()
    );
    // Nothing changes, so nothing is reported as started or done.
    let reported: Vec<Event> = h.events.events()[before..]
        .iter()
        .filter(|e| matches!(e, Event::Started { .. } | Event::Done { .. }))
        .cloned()
        .collect();
    assert_eq!(reported, Vec::<Event>::new());
    assert_eq!(
        m.journal.ops().len(),
        reads,
        "apply of an empty plan called AWS: {:?}",
        m.journal.ops()
    );
    assert_eq!(second.task_definition_arn, first.task_definition_arn);
    assert_eq!(second.service_arn, first.service_arn);
    assert_eq!(second.url, first.url);
    assert!(
        second.rollout.is_none(),
        "no deployment, nothing to wait for"
    );
}

/// The deploy's order: read, make the foundation while the network is built, then plan on
/// the network and apply. Each resource is made once; the plan still shows what the
/// foundation made as created; the service gets the revision the foundation registered.
#[tokio::test]
async fn read_then_foundation_then_plan_with_makes_each_resource_once() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let mut state = layer.read(&h.ctx, &spec()).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    let read_counts = |j: &Journal| {
        [
            "DescribeRepositories",
            "GetRole",
            "DescribeClusters",
            "DescribeTaskDefinition",
        ]
        .map(|op| j.count(op))
    };
    let reads = read_counts(&m.journal);

    layer.apply_foundation(&h.ctx, &mut state).await.unwrap();
    assert_eq!(
        read_counts(&m.journal),
        reads,
        "the foundation read nothing again"
    );
    let made = |j: &Journal| {
        [
            "CreateRepository",
            "CreateRole",
            "CreateCluster",
            "RegisterTaskDefinition",
        ]
        .map(|op| j.count(op))
    };
    assert_eq!(made(&m.journal), [1, 2, 1, 1]);
    let calls = m.journal.ops().len();
    layer.apply_foundation(&h.ctx, &mut state).await.unwrap();
    assert_eq!(
        m.journal.ops().len(),
        calls,
        "a second apply_foundation makes no call"
    );

    let plan = layer.plan_with(&state, &network());
    for (kind, id) in [
        ("ecr-repository", REPO),
        ("iam-role", EXEC_ROLE),
        ("ecs-cluster", CLUSTER),
        ("task-definition", FAMILY),
        ("ecs-service", SERVICE),
    ] {
        assert_eq!(
            action_of(&plan, kind, id),
            Some(&Action::Create),
            "{kind}\n{plan}"
        );
    }
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        made(&m.journal),
        [1, 2, 1, 1],
        "apply made the foundation again"
    );
    let svc = only(m.journal.inputs::<CreateServiceInput>());
    assert_eq!(
        svc.task_definition(),
        Some(out.task_definition_arn.as_str())
    );
}

/// A change that needs a replacement is refused from what was read, with no call, whether
/// the network is known yet or not; a spec without one passes.
#[tokio::test]
async fn check_replacements_refuses_from_the_read_without_a_call() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;

    let mut moved = spec();
    moved.task.containers[0].ports = vec![PORT + 1];
    let state = layer.read(&h.ctx, &moved).await.unwrap();
    let calls = m.journal.ops().len();
    for network in [Some(network()), None] {
        match layer.check_replacements(&state, network.as_ref()) {
            Err(Error::ReplacementRequired(r)) => {
                assert_eq!(format!("{} {}", r.kind, r.id), format!("target-group {TG}"));
            }
            other => panic!("expected the target group's replacement, got {other:?}"),
        }
    }
    assert_eq!(m.journal.ops().len(), calls, "no call");
    let same = layer.read(&h.ctx, &spec()).await.unwrap();
    layer.check_replacements(&same, None).unwrap();
    layer.check_replacements(&same, Some(&network())).unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. A new image.

#[tokio::test]
async fn image_change_registers_one_revision_and_updates_the_service_once() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let first = deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let mut changed = spec();
    changed.task.containers[0].image = "nginx:1.28".into();
    let plan = layer.plan(&h.ctx, &changed, &network()).await.unwrap();
    let before = h.events.events().len();
    assert_eq!(
        updated_fields(&plan, "task-definition", FAMILY),
        ["containers.web.image"]
    );
    assert_eq!(
        updated_fields(&plan, "ecs-service", SERVICE),
        ["task_definition"]
    );
    let s = plan.changes().summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete, s.unchanged),
        (0, 2, 0, 0, 8),
        "{plan}"
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        m.journal.mutating(),
        ["RegisterTaskDefinition", "UpdateService"]
    );
    let registered = only(m.journal.inputs::<RegisterTaskDefinitionInput>());
    assert_eq!(
        registered.container_definitions()[0].image(),
        Some("nginx:1.28")
    );
    let update = only(m.journal.inputs::<UpdateServiceInput>());
    assert_eq!(
        update.task_definition(),
        Some(out.task_definition_arn.as_str())
    );
    assert!(
        out.task_definition_arn
            .ends_with(":task-definition/web-app:2"),
        "{}",
        out.task_definition_arn
    );
    assert_ne!(out.task_definition_arn, first.task_definition_arn);
    assert_eq!(update.desired_count(), None);
    assert!(update.network_configuration().is_none() && update.load_balancers().is_empty());
    let rollout = out.rollout.expect("apply waited for the new deployment");
    assert_eq!(rollout.task_definition, out.task_definition_arn);
    assert_eq!(Some(&rollout.deployment), m.ecs().deployments.get(1));
    // The executor reports the two steps that change something, and only those.
    let started: Vec<(String, String)> = h.events.events()[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Started { resource, action } => Some((resource.clone(), action.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [
            (
                format!("task-definition {FAMILY}"),
                "register revision".to_string()
            ),
            (format!("ecs-service {SERVICE}"), "update".to_string()),
        ]
    );
    let done: Vec<(String, String)> = h.events.events()[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Done { resource, detail } => Some((resource.clone(), detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        done[0],
        (
            format!("task-definition {FAMILY}"),
            "revision 2".to_string()
        )
    );
    assert_eq!(
        done[1],
        (
            format!("ecs-service {SERVICE}"),
            format!("updated; deployment {}", rollout.deployment)
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Autoscaling owns the desired count.

#[tokio::test]
async fn autoscaled_desired_count_is_never_reset() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let mut autoscaled = spec();
    autoscaled.service = ServiceSettings::builder()
        .autoscaled(true)
        .desired_count(2)
        .build();
    deploy(&layer, &h, &autoscaled).await;
    assert_eq!(
        only(m.journal.inputs::<CreateServiceInput>()).desired_count(),
        Some(2),
        "the desired count is set at creation"
    );

    // Autoscaling scales the service out.
    m.ecs().services[0].desired_count = 7;
    m.journal.clear();

    let plan = layer.plan(&h.ctx, &autoscaled, &network()).await.unwrap();
    assert_eq!(
        action_of(&plan, "ecs-service", SERVICE),
        Some(&Action::NoChange),
        "{plan}"
    );
    assert!(plan.changes().is_empty(), "{plan}");

    autoscaled.task.containers[0].image = "nginx:1.28".into();
    let plan = layer.plan(&h.ctx, &autoscaled, &network()).await.unwrap();
    assert_eq!(
        updated_fields(&plan, "ecs-service", SERVICE),
        ["task_definition"],
        "no desired_count diff"
    );
    layer.apply(&h.ctx, &plan).await.unwrap();
    let update = only(m.journal.inputs::<UpdateServiceInput>());
    assert_eq!(update.desired_count(), None, "{update:?}");
    assert_eq!(m.ecs().services[0].desired_count(), 7);
}

// ---------------------------------------------------------------------------------------------
// 5. IAM propagation.

#[tokio::test]
async fn assume_role_propagation_on_create_service_is_retried() {
    // Long retry delays, so that real sleeping could not go unnoticed.
    let h = Harness::with_retry(RetryPolicy {
        initial_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(60),
        transient_budget: Duration::from_secs(90),
    });
    let m = Mock::default();
    let propagation = mock!(aws_sdk_ecs::Client::create_service)
        .sequence()
        .error(|| {
            CreateServiceError::generic(meta(
                "InvalidParameterException",
                concat!(
                    "Unable to assume role and validate the specified targetGroupArn. ",
                    "Please verify that the ECS service role has the proper permissions.",
                ),
            ))
        })
        .times(2)
        .build();
    let layer = m.layer_with(&[&propagation]);

    let out = deploy(&layer, &h, &spec()).await;

    assert_eq!(propagation.num_calls(), 2);
    assert_eq!(
        m.journal.count("CreateService"),
        1,
        "the third attempt reached ECS"
    );
    assert!(out.rollout.is_some());
    assert!(
        out.service_arn.ends_with("service/web/web-app"),
        "{}",
        out.service_arn
    );
    assert_eq!(h.retries("CreateService"), [1, 2]);
    let reasons: Vec<String> = h
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("InvalidParameterException: Unable to assume role")),
        "{reasons:?}"
    );
    // The two retry delays (jittered: between half and all of 30 s, then of 60 s) went through
    // the fake clock, before the rollout's polls.
    let sleeps = h.clock.sleeps();
    assert!(sleeps.len() >= 2, "{sleeps:?}");
    assert!(
        (Duration::from_secs(15)..=Duration::from_secs(30)).contains(&sleeps[0]),
        "{sleeps:?}"
    );
    assert!(
        (Duration::from_secs(30)..=Duration::from_secs(60)).contains(&sleeps[1]),
        "{sleeps:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Names taken by someone else.

#[tokio::test]
async fn plan_refuses_a_cluster_without_the_stack_tag() {
    let h = Harness::new();
    let m = Mock::default();
    let foreign = aws_sdk_ecs::types::Cluster::builder()
        .cluster_arn(cluster_arn(CLUSTER))
        .cluster_name(CLUSTER)
        .status("ACTIVE")
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("ecs:stack")
                .value("other")
                .build(),
        )
        .build();
    m.ecs().clusters.insert(CLUSTER.to_string(), foreign);

    let err = m
        .layer()
        .plan(&h.ctx, &spec(), &network())
        .await
        .unwrap_err();
    match &err {
        Error::Foreign(f) => {
            assert_eq!(
                (f.kind, f.name.as_str(), f.stack.as_str()),
                ("ecs-cluster", CLUSTER, "web")
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(err.to_string().contains("ecs-cluster `web`"), "{err}");
    assert!(m.journal.count("DescribeClusters") >= 1);
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(m.ecs().clusters.len(), 1);
}

#[tokio::test]
async fn plan_refuses_a_repository_without_the_stack_tag() {
    let h = Harness::new();
    let m = Mock::default();
    m.ecr()
        .repositories
        .insert(REPO.into(), mutable_repo(&[("owner", "another-team")]));

    let err = m
        .layer()
        .plan(&h.ctx, &spec(), &network())
        .await
        .unwrap_err();
    match &err {
        Error::Foreign(f) => {
            assert_eq!((f.kind, f.name.as_str()), ("ecr-repository", REPO));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}

/// A repository made by someone else between the plan's read and the apply stops the apply
/// with a message to plan again: the step neither adopts nor changes it.
#[tokio::test]
async fn a_repository_that_appears_after_the_read_stops_the_apply() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    assert_eq!(
        action_of(&plan, "ecr-repository", REPO),
        Some(&Action::Create)
    );
    m.ecr().repositories.insert(REPO.into(), mutable_repo(&[]));
    let err = layer.apply(&h.ctx, &plan).await.unwrap_err();
    assert!(matches!(err, Error::Changed(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("ecr-repository {REPO} was created by someone else since the plan read it; run the plan again")
    );
    for op in [
        "PutLifecyclePolicy",
        "PutImageTagMutability",
        "PutImageScanningConfiguration",
        "TagResource",
        "CreateService",
    ] {
        assert_eq!(m.journal.count(op), 0, "{op}: {:?}", m.journal.mutating());
    }
    assert!(m.ecr().repositories[REPO].tags.is_empty());
}

/// The stack's own repository found by a create that answers it exists (a retried create
/// whose first answer was lost) is brought to the spec from its diff, and the apply goes on.
#[tokio::test]
async fn the_stacks_own_repository_found_by_its_create_is_brought_to_the_spec() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    m.ecr()
        .repositories
        .insert(REPO.into(), mutable_repo(&[("ecs:stack", "web")]));
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        out.repository_uri.as_deref(),
        Some(format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}").as_str())
    );
    assert_eq!(m.journal.count("CreateRepository"), 1);
    for op in [
        "PutImageTagMutability",
        "PutImageScanningConfiguration",
        "PutLifecyclePolicy",
    ] {
        assert_eq!(m.journal.count(op), 1, "{op}");
    }
    let next = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    assert_eq!(
        action_of(&next, "ecr-repository", REPO),
        Some(&Action::NoChange),
        "{next}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Invalid specification.

#[tokio::test]
async fn invalid_spec_reports_every_problem_before_any_call() {
    let h = Harness::new();
    let m = Mock::default();
    let mut invalid = spec();
    invalid.task.memory = 4096;
    invalid.load_balancer = Some(
        LoadBalancerSpec::builder()
            .listeners(vec![ListenerSpec::builder()
                .port(443)
                .protocol(Protocol::Https)
                .build()])
            .build(),
    );

    let err = m
        .layer()
        .plan(&h.ctx, &invalid, &network())
        .await
        .unwrap_err();
    let problems = err.problems().expect("validation problems");
    assert!(problems.mentions("task.memory"), "{problems}");
    assert!(
        problems.mentions("load_balancer.listeners[0].certificate_arn"),
        "{problems}"
    );
    assert!(
        m.journal.ops().is_empty(),
        "AWS was called: {:?}",
        m.journal.ops()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Destroy.

#[tokio::test]
async fn destroy_deletes_in_dependency_order_and_keeps_the_repository() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let report = layer.destroy(&h.ctx, &spec(), false).await.unwrap();
    let j = &m.journal;

    // The service is scaled to zero, then deleted, and waited for until INACTIVE.
    let scale = only(j.inputs::<UpdateServiceInput>());
    assert_eq!(scale.desired_count(), Some(0));
    let delete = only(j.inputs::<DeleteServiceInput>());
    assert_eq!(
        (delete.service(), delete.force()),
        (Some(SERVICE), Some(true))
    );
    assert!(j.first("UpdateService") < j.first("DeleteService"));
    let inactive = m
        .ecs()
        .inactive_seen_at
        .expect("a describe reported the service INACTIVE");
    assert!(j.first("DeleteService") < inactive);

    // The front goes before the target group it forwards to.
    assert_eq!(j.count("DeleteListener"), 2);
    assert!(j.last("DeleteListener") < j.first("DeleteLoadBalancer"));
    assert!(j.last("DeleteListener") < j.first("DeleteTargetGroup"));
    assert!(j.first("DeleteService") < j.first("DeleteTargetGroup"));
    assert!(inactive < j.first("DeleteCluster"));

    // The roles go after the service, each after its policies.
    let role_deletes = j.indexed::<DeleteRoleInput>();
    let deleted_roles: BTreeSet<&str> = role_deletes
        .iter()
        .filter_map(|(_, d)| d.role_name())
        .collect();
    assert_eq!(deleted_roles, BTreeSet::from([EXEC_ROLE, TASK_ROLE]));
    let detaches = j.indexed::<DetachRolePolicyInput>();
    let inline_deletes = j.indexed::<DeleteRolePolicyInput>();
    assert_eq!(
        detaches
            .iter()
            .map(|(_, d)| (d.role_name(), d.policy_arn()))
            .collect::<Vec<_>>(),
        [(Some(EXEC_ROLE), Some(EXEC_POLICY))]
    );
    assert_eq!(
        inline_deletes
            .iter()
            .map(|(_, d)| (d.role_name(), d.policy_name()))
            .collect::<Vec<_>>(),
        [(Some(EXEC_ROLE), Some("secrets"))]
    );
    for (at, role) in &role_deletes {
        assert!(
            inactive < *at,
            "{:?} before the service was INACTIVE",
            role.role_name()
        );
        assert!(
            detaches
                .iter()
                .filter(|(_, d)| d.role_name() == role.role_name())
                .all(|(i, _)| i < at),
            "{:?}: {:?}",
            role.role_name(),
            j.ops()
        );
        assert!(
            inline_deletes
                .iter()
                .filter(|(_, d)| d.role_name() == role.role_name())
                .all(|(i, _)| i < at),
            "{:?}: {:?}",
            role.role_name(),
            j.ops()
        );
    }
    assert_eq!(j.count("DeregisterTaskDefinition"), 1);

    // Destroy reads once and deletes what it read: no resource is read again before its
    // delete.
    for (op, reads) in [
        ("GetRole", 2),
        ("DescribeClusters", 1),
        ("DescribeTaskDefinition", 1),
        ("DescribeLoadBalancers", 2), // the read, and the wait until it is gone
        ("DescribeRepositories", 1),
    ] {
        assert_eq!(j.count(op), reads, "{op}: {:?}", j.ops());
    }

    // The repository is kept, and the report says so.
    assert_eq!(j.count("DeleteRepository"), 0);
    assert!(
        report.kept.iter().any(|k| k.contains("ecr-repository")
            && k.contains(REPO)
            && k.contains("`--force-delete-images`")),
        "{:?}",
        report.kept
    );
    assert!(report.deleted.find("ecr-repository", REPO).is_none());
    for (resource, id) in [
        ("ecs-service", SERVICE),
        ("listener", "web-alb:443"),
        ("listener", "web-alb:80"),
        ("load-balancer", ALB),
        ("target-group", TG),
        ("task-definition", FAMILY),
        ("ecs-cluster", CLUSTER),
        ("iam-role", EXEC_ROLE),
        ("iam-role", TASK_ROLE),
    ] {
        assert_eq!(
            report.deleted.find(resource, id).map(|c| &c.action),
            Some(&Action::Delete),
            "{resource} {id}:\n{}",
            report.deleted
        );
    }

    // Only the repository is left.
    assert!(m.ecr().repositories.contains_key(REPO));
    assert!(m.iam().roles.is_empty());
    {
        let e = m.elb();
        assert!(e.load_balancers.is_empty() && e.target_groups.is_empty());
        assert!(e.listeners.is_empty());
    }
    let w = m.ecs();
    assert!(w.services.iter().all(|s| s.status() == Some("INACTIVE")));
    assert!(w.clusters.values().all(|c| c.status() == Some("INACTIVE")));
    assert!(w
        .task_defs
        .iter()
        .all(|t| t.td.status() == Some(&TaskDefinitionStatus::Inactive)));
}

#[tokio::test]
async fn destroy_with_force_deletes_the_repository_and_its_images() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let report = layer.destroy(&h.ctx, &spec(), true).await.unwrap();
    let delete = only(m.journal.inputs::<DeleteRepositoryInput>());
    assert_eq!(
        (delete.repository_name(), delete.force()),
        (Some(REPO), Some(true))
    );
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert_eq!(
        report
            .deleted
            .find("ecr-repository", REPO)
            .map(|c| &c.action),
        Some(&Action::Delete)
    );
    assert!(m.ecr().repositories.is_empty());
}

#[tokio::test]
async fn destroy_leaves_a_role_without_the_stack_tag_alone() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    // The task role's name is now someone else's role, with a policy of its own.
    {
        let mut w = m.iam();
        let role = w.roles.get_mut(TASK_ROLE).expect("the task role");
        role.role.tags = Some(vec![aws_sdk_iam::types::Tag::builder()
            .key("ecs:stack")
            .value("other")
            .build()
            .unwrap()]);
        role.inline
            .insert("theirs".to_string(), r#"{"Statement":[]}"#.to_string());
    }
    m.journal.clear();

    let report = layer.destroy(&h.ctx, &spec(), false).await.unwrap();
    let j = &m.journal;
    let deleted: Vec<Option<String>> = j
        .inputs::<DeleteRoleInput>()
        .iter()
        .map(|d| d.role_name().map(str::to_string))
        .collect();
    assert_eq!(deleted, [Some(EXEC_ROLE.to_string())]);
    assert!(j
        .inputs::<DeleteRolePolicyInput>()
        .iter()
        .all(|d| d.role_name() != Some(TASK_ROLE)));
    assert!(j
        .inputs::<DetachRolePolicyInput>()
        .iter()
        .all(|d| d.role_name() != Some(TASK_ROLE)));
    assert!(report.deleted.find("iam-role", TASK_ROLE).is_none());
    assert_eq!(
        report
            .deleted
            .find("iam-role", EXEC_ROLE)
            .map(|c| &c.action),
        Some(&Action::Delete)
    );
    let w = m.iam();
    assert!(w.roles.contains_key(TASK_ROLE));
    assert!(w.roles[TASK_ROLE].inline.contains_key("theirs"));
    // Its policies are not even read: only the stack's own role is (its two listings).
    assert_eq!(j.count("ListRolePolicies"), 1);
    assert_eq!(j.count("ListAttachedRolePolicies"), 1);
}

// ---------------------------------------------------------------------------------------------
// 9. Listener rules.

#[tokio::test]
async fn listener_rules_are_reconciled_by_priority() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(
        &layer,
        &h,
        &spec_with_rules(vec![path_rule(10, "/api/*"), path_rule(30, "/old/*")]),
    )
    .await;
    let (listener_arn, arn_10, arn_30) = {
        let w = m.elb();
        let l = &w.listeners[0];
        let arn = |p: &str| {
            l.rules
                .iter()
                .find(|r| r.priority() == Some(p))
                .and_then(|r| r.rule_arn())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no rule {p}"))
        };
        (
            l.listener.listener_arn().unwrap_or_default().to_string(),
            arn("10"),
            arn("30"),
        )
    };
    m.journal.clear();

    let wanted = spec_with_rules(vec![path_rule(10, "/v2/*"), path_rule(20, "/admin/*")]);
    let plan = layer.plan(&h.ctx, &wanted, &network()).await.unwrap();
    assert_eq!(
        updated_fields(&plan, "listener-rule", "web-alb:80/10"),
        ["paths"]
    );
    assert_eq!(
        action_of(&plan, "listener-rule", "web-alb:80/20"),
        Some(&Action::Create),
        "{plan}"
    );
    assert_eq!(
        action_of(&plan, "listener-rule", "web-alb:80/30"),
        Some(&Action::Delete),
        "{plan}"
    );
    assert_eq!(
        action_of(&plan, "listener", "web-alb:80"),
        Some(&Action::NoChange),
        "{plan}"
    );

    layer.apply(&h.ctx, &plan).await.unwrap();
    let j = &m.journal;
    let mutating: BTreeSet<&str> = j.mutating().into_iter().collect();
    assert_eq!(
        mutating,
        BTreeSet::from(["CreateRule", "DeleteRule", "ModifyRule"])
    );
    assert_eq!(j.mutating().len(), 3, "{:?}", j.mutating());

    let modified = only(j.inputs::<ModifyRuleInput>());
    assert_eq!(modified.rule_arn(), Some(arn_10.as_str()));
    assert_eq!(path_values(modified.conditions()), ["/v2/*"]);
    let created = only(j.inputs::<CreateRuleInput>());
    assert_eq!(
        (created.listener_arn(), created.priority()),
        (Some(listener_arn.as_str()), Some(20))
    );
    assert_eq!(path_values(created.conditions()), ["/admin/*"]);
    let rule_tags = tag_map(created.tags().iter().map(|t| (t.key(), t.value())));
    assert_eq!(rule_tags.get("ecs:stack").map(String::as_str), Some("web"));
    let deleted = only(j.inputs::<DeleteRuleInput>());
    assert_eq!(deleted.rule_arn(), Some(arn_30.as_str()));

    // What is live now is what the spec says.
    let again = layer.plan(&h.ctx, &wanted, &network()).await.unwrap();
    assert!(again.changes().is_empty(), "{again}");
}

// ---------------------------------------------------------------------------------------------
// 10. IAM statements.

#[tokio::test]
async fn changed_task_role_statement_updates_the_inline_policy_in_place() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let first = deploy(&layer, &h, &spec_with_task_permission("s3:GetObject")).await;
    m.journal.clear();

    let wanted = spec_with_task_permission("s3:PutObject");
    let plan = layer.plan(&h.ctx, &wanted, &network()).await.unwrap();
    assert_eq!(
        updated_fields(&plan, "iam-role", TASK_ROLE),
        ["inline_policy app"]
    );
    let s = plan.changes().summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.delete),
        (0, 1, 0, 0),
        "{plan}"
    );

    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), ["PutRolePolicy"]);
    assert_eq!(m.journal.count("CreateRole"), 0);
    assert_eq!(m.journal.count("DeleteRole"), 0);
    let put = only(m.journal.inputs::<PutRolePolicyInput>());
    assert_eq!(
        (put.role_name(), put.policy_name()),
        (Some(TASK_ROLE), Some("app"))
    );
    let doc: Value = serde_json::from_str(put.policy_document().unwrap_or_default()).unwrap();
    assert_eq!(
        doc["Statement"],
        json!([{
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": ["arn:aws:s3:::uploads/*"],
        }]),
        "{doc}"
    );
    assert_eq!(out.task_role_arn, first.task_role_arn);
    assert_eq!(out.task_definition_arn, first.task_definition_arn);
}

// ---------------------------------------------------------------------------------------------
// 11. Settings changed in place.

#[tokio::test]
async fn changed_settings_are_updated_in_place_with_the_matching_calls() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    let mut wanted = spec();
    let repo = wanted.repository.as_mut().unwrap();
    repo.immutable_tags = false;
    repo.scan_on_push = false;
    wanted.cluster.container_insights = false;
    wanted.cluster.default_strategy = vec![StrategyItem::spot()];
    let lb = wanted.load_balancer.as_mut().unwrap();
    lb.idle_timeout = 120;
    lb.target_group.health_check.path = "/health".into();
    lb.target_group.deregistration_delay = 10;
    layer
        .apply(
            &h.ctx,
            &layer.plan(&h.ctx, &wanted, &network()).await.unwrap(),
        )
        .await
        .unwrap();

    let mut ops = m.journal.mutating();
    ops.sort();
    assert_eq!(
        ops,
        [
            "ModifyLoadBalancerAttributes",
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "PutClusterCapacityProviders",
            "PutImageScanningConfiguration",
            "PutImageTagMutability",
            "UpdateCluster",
        ]
    );
    assert_eq!(
        m.journal.count("CreateRepository") + m.journal.count("CreateCluster"),
        0
    );
}

#[tokio::test]
async fn drifted_tags_are_set_back_with_each_kinds_tag_calls_and_nothing_else() {
    use aws_sdk_ecr::types::Tag as EcrTag;
    use aws_sdk_ecs::types::Tag as EcsTag;
    use aws_sdk_elasticloadbalancingv2::types::Tag as ElbTag;
    use aws_sdk_iam::types::Tag as IamTag;

    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    let ecs_tag = |k: &str, v: &str| EcsTag::builder().key(k).value(v).build();
    let elb_tag = |k: &str, v: &str| ElbTag::builder().key(k).value(v).build();
    let listener_id;
    {
        // Tags changed by hand: one removed, one changed, one added, per kind; and an `aws:`
        // tag (AWS's own) that is never compared.
        m.ecr()
            .repositories
            .get_mut(REPO)
            .unwrap()
            .tags
            .retain(|t| t.key() != "team");
        let mut iam = m.iam();
        let exec = iam.roles.get_mut(EXEC_ROLE).unwrap();
        let mut tags = exec.role.tags().to_vec();
        tags.retain(|t| t.key() != "team");
        tags.push(
            IamTag::builder()
                .key("team")
                .value("other")
                .build()
                .unwrap(),
        );
        exec.role.tags = Some(tags);
        let task = iam.roles.get_mut(TASK_ROLE).unwrap();
        let mut tags = task.role.tags().to_vec();
        tags.push(IamTag::builder().key("extra").value("x").build().unwrap());
        task.role.tags = Some(tags);
        drop(iam);
        let mut w = m.ecs();
        let cluster = w.clusters.get_mut(CLUSTER).unwrap();
        let tags = cluster.tags.as_mut().unwrap();
        tags.retain(|t| t.key() != Some("team"));
        tags.push(ecs_tag("aws:cloudformation:stack-name", "other"));
        let td = w.task_defs.last_mut().unwrap();
        td.tags.push(ecs_tag("extra", "x"));
        let service = w.services.last_mut().unwrap();
        let tags = service.tags.as_mut().unwrap();
        tags.retain(|t| t.key() != Some("team"));
        tags.push(ecs_tag("team", "other"));
        drop(w);
        let mut w = m.elb();
        let lb_arn = w.load_balancers[0]
            .lb
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let tg_arn = w.target_groups[0]
            .tg
            .target_group_arn()
            .unwrap()
            .to_string();
        w.tags
            .get_mut(&lb_arn)
            .unwrap()
            .retain(|t| t.key() != Some("team"));
        w.tags.get_mut(&tg_arn).unwrap().push(elb_tag("extra", "x"));
        let listener = &w.listeners[0].listener;
        let listener_arn = listener.listener_arn().unwrap().to_string();
        listener_id = format!("{ALB}:{}", listener.port().unwrap());
        w.tags
            .get_mut(&listener_arn)
            .unwrap()
            .retain(|t| t.key() != Some("team"));
    }
    m.journal.clear();

    // The plan shows each as a change of its tags only.
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    for (kind, id) in [
        ("ecr-repository", REPO),
        ("iam-role", EXEC_ROLE),
        ("iam-role", TASK_ROLE),
        ("ecs-cluster", CLUSTER),
        ("task-definition", FAMILY),
        ("ecs-service", SERVICE),
        ("load-balancer", ALB),
        ("target-group", TG),
        ("listener", listener_id.as_str()),
    ] {
        assert_eq!(
            updated_fields(&plan, kind, id),
            ["tags"],
            "{kind} {id}\n{plan}"
        );
    }
    let service_line = plan
        .changes()
        .find("ecs-service", SERVICE)
        .unwrap()
        .to_string();
    assert!(service_line.contains("team=other"), "{service_line}");
    assert!(service_line.contains("team=payments"), "{service_line}");

    // The apply makes each kind's own tag calls, with exactly the drifted keys, and nothing
    // else: no new revision, no service update, no rollout.
    layer.apply(&h.ctx, &plan).await.unwrap();
    let mut ops = m.journal.mutating();
    ops.sort();
    assert_eq!(
        ops,
        [
            "AddTags",       // the load balancer's team
            "AddTags",       // the listener's team
            "RemoveTags",    // the target group's extra
            "TagResource",   // ECS: the cluster's team
            "TagResource",   // ECS: the service's team
            "TagResource",   // ECR: the repository's team
            "TagRole",       // the execution role's team
            "UntagResource", // ECS: the revision's extra
            "UntagRole",     // the task role's extra
        ]
    );
    let set: Vec<Vec<(String, String)>> = m
        .journal
        .inputs::<aws_sdk_ecs::operation::tag_resource::TagResourceInput>()
        .iter()
        .map(|i| {
            i.tags()
                .iter()
                .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
                .collect()
        })
        .collect();
    assert_eq!(
        set,
        vec![vec![("team".to_string(), "payments".to_string())]; 2]
    );
    let unset: Vec<Vec<String>> = m
        .journal
        .inputs::<aws_sdk_ecs::operation::untag_resource::UntagResourceInput>()
        .iter()
        .map(|i| i.tag_keys().to_vec())
        .collect();
    assert_eq!(unset, [["extra"]]);
    assert_eq!(
        only(
            m.journal
                .inputs::<aws_sdk_iam::operation::untag_role::UntagRoleInput>()
        )
        .tag_keys(),
        ["extra"]
    );
    assert_eq!(
        only(
            m.journal
                .inputs::<aws_sdk_ecr::operation::tag_resource::TagResourceInput>()
        )
        .tags(),
        [EcrTag::builder()
            .key("team")
            .value("payments")
            .build()
            .unwrap()]
    );
    assert_eq!(
        only(m.journal.inputs::<elb_op::remove_tags::RemoveTagsInput>()).tag_keys(),
        ["extra"]
    );
    {
        let w = m.ecs();
        let cluster_tags = w.clusters[CLUSTER].tags();
        assert!(
            cluster_tags
                .iter()
                .any(|t| t.key() == Some("aws:cloudformation:stack-name")),
            "an aws: tag is never removed: {cluster_tags:?}"
        );
    }

    // Then nothing differs.
    m.journal.clear();
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    assert!(plan.changes().pending().next().is_none(), "{plan}");
    layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(m.journal.mutating(), Vec::<&str>::new());
}

#[tokio::test]
async fn a_closed_gate_leaves_everything_as_it_was_and_says_why() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    m.journal.clear();
    // What the service waits for failed before anything started: nothing starts.
    let err = layer
        .apply_after(&h.ctx, &plan, std::future::ready(false))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::GateClosed { service } if service == SERVICE),
        "{err}"
    );
    assert_eq!(m.journal.mutating(), Vec::<&str>::new());
    // An open gate applies the same plan.
    layer
        .apply_after(&h.ctx, &plan, std::future::ready(true))
        .await
        .unwrap();
    assert_eq!(m.journal.count("CreateService"), 1);
}

// ---------------------------------------------------------------------------------------------
// Revisions registered outside the stack (a CI pipeline's `register-task-definition` then
// `update-service`).

/// What a CI pipeline does with the AWS CLI: describes the latest revision of the family,
/// registers a copy with `image` in container `web` (untagged, as `aws ecs
/// register-task-definition` leaves it), and, when `release`, points the service at it.
/// Returns the new revision's ARN. Made through the SDK against the same fakes.
async fn ci_registers(m: &Mock, image: &str, release: bool) -> String {
    let ecs = m.ecs.client();
    let latest = ecs
        .describe_task_definition()
        .task_definition(FAMILY)
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .clone();
    let mut containers = latest.container_definitions().to_vec();
    containers[0].image = Some(image.to_string());
    let arn = ecs
        .register_task_definition()
        .family(FAMILY)
        .set_execution_role_arn(latest.execution_role_arn().map(str::to_string))
        .set_task_role_arn(latest.task_role_arn().map(str::to_string))
        .set_network_mode(latest.network_mode().cloned())
        .set_requires_compatibilities(Some(latest.requires_compatibilities().to_vec()))
        .set_cpu(latest.cpu().map(str::to_string))
        .set_memory(latest.memory().map(str::to_string))
        .set_runtime_platform(latest.runtime_platform().cloned())
        .set_container_definitions(Some(containers))
        .set_volumes(Some(latest.volumes().to_vec()))
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    if release {
        ecs.update_service()
            .cluster(CLUSTER)
            .service(SERVICE)
            .task_definition(&arn)
            .send()
            .await
            .unwrap();
    }
    arn
}

/// The spec whose container keeps the image the service runs.
fn spec_keeping_the_running_image() -> ServiceSpec {
    let mut s = spec();
    s.task.containers[0].image = ecs_service::RUNNING_IMAGE.into();
    s
}

#[tokio::test]
async fn a_revision_ci_registered_never_blocks_and_the_plan_compares_with_what_runs() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    let released = ci_registers(&m, "nginx:2", true).await;
    assert!(released.ends_with(":task-definition/web-app:2"));
    m.journal.clear();

    // The manifest's image would go back over CI's: the plan says so, and does not fail.
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    assert_eq!(
        updated_fields(&plan, "task-definition", FAMILY),
        ["containers.web.image"]
    );
    let change = plan.changes().find("task-definition", FAMILY).unwrap();
    assert_eq!(
        change.detail,
        "new revision 3; the service runs revision 2, registered outside this stack"
    );
    assert_eq!(change.notes.len(), 1, "{plan}");
    assert!(
        change.notes[0].starts_with(
            "this deploy puts the manifest's image nginx:1.27 back in container `web`, which runs nginx:2"
        ) && change.notes[0].contains("`image: running`"),
        "{plan}"
    );
    assert!(
        plan.to_string().contains("\n      ! this deploy puts"),
        "{plan}"
    );
    // One round of reads: the service runs the latest revision, so nothing more is described.
    assert_eq!(m.journal.count("DescribeTaskDefinition"), 1);
    assert_eq!(m.journal.count("ListTaskDefinitions"), 0);
    assert!(m.journal.mutating().is_empty());

    // `image: running` keeps CI's image: nothing to do, and no mutating call.
    let keep = spec_keeping_the_running_image();
    let plan = layer.plan(&h.ctx, &keep, &network()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert_eq!(
        plan.changes()
            .find("task-definition", FAMILY)
            .unwrap()
            .detail,
        "revision 2; the service runs revision 2, registered outside this stack"
    );
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(out.task_definition_arn, released);
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );

    // CI registers another revision but has not released it yet: the service's revision is
    // the one compared (described besides the latest), and CI's untagged revisions are not
    // tagged by the stack.
    ci_registers(&m, "nginx:3", false).await;
    m.journal.clear();
    let plan = layer.plan(&h.ctx, &keep, &network()).await.unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    assert_eq!(m.journal.count("DescribeTaskDefinition"), 2);
    // A change elsewhere in the definition keeps CI's image in the new revision.
    let mut more_memory = spec_keeping_the_running_image();
    more_memory.task.memory = 1024;
    let plan = layer.plan(&h.ctx, &more_memory, &network()).await.unwrap();
    assert_eq!(
        plan.changes()
            .find("task-definition", FAMILY)
            .unwrap()
            .detail,
        "new revision 4; the service runs revision 2, registered outside this stack"
    );
    assert!(plan
        .changes()
        .find("task-definition", FAMILY)
        .unwrap()
        .notes
        .is_empty());
    m.journal.clear();
    let out = layer.apply(&h.ctx, &plan).await.unwrap();
    assert_eq!(
        m.journal.mutating(),
        ["RegisterTaskDefinition", "UpdateService"]
    );
    let registered = only(m.journal.inputs::<RegisterTaskDefinitionInput>());
    assert_eq!(
        registered.container_definitions()[0].image(),
        Some("nginx:2")
    );
    assert_eq!(registered.memory(), Some("1024"));
    assert!(out
        .task_definition_arn
        .ends_with(":task-definition/web-app:4"));

    // Destroy deregisters every active revision of the family, CI's included, and says how
    // many.
    m.journal.clear();
    let report = layer.destroy(&h.ctx, &spec(), false).await.unwrap();
    let deleted = report
        .deleted
        .find("task-definition", FAMILY)
        .expect("the family is deleted");
    assert_eq!(
        deleted.detail,
        "4 active revisions deregistered, those registered outside the stack included"
    );
    assert_eq!(m.journal.count("DeregisterTaskDefinition"), 4);
    assert!(m
        .ecs()
        .task_defs
        .iter()
        .all(|t| t.td.status() == Some(&TaskDefinitionStatus::Inactive)));
}

#[tokio::test]
async fn another_teams_family_of_the_same_name_stays_foreign_and_untouched() {
    let h = Harness::new();
    let m = Mock::default();
    // Another team's family happens to have the stack's family name: two untagged revisions,
    // and no service of the stack runs them.
    let ecs = m.ecs.client();
    for image in ["theirs:1", "theirs:2"] {
        ecs.register_task_definition()
            .family(FAMILY)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("web")
                    .image(image)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    m.journal.clear();
    let layer = m.layer();
    let err = layer.plan(&h.ctx, &spec(), &network()).await.unwrap_err();
    match &err {
        Error::Foreign(f) => assert_eq!((f.kind, f.name.as_str()), ("task-definition", FAMILY)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("none of its revisions carries the stack's tag"),
        "{err}"
    );
    // Every revision was looked at for the stack's tag before refusing.
    assert_eq!(m.journal.count("ListTaskDefinitions"), 1);
    assert_eq!(m.journal.count("DescribeTaskDefinition"), 2);
    assert!(m.journal.mutating().is_empty());

    // Destroy leaves it alone.
    let report = layer.destroy(&h.ctx, &spec(), true).await.unwrap();
    assert!(report.deleted.find("task-definition", FAMILY).is_none());
    assert_eq!(m.journal.count("DeregisterTaskDefinition"), 0);
    assert!(m
        .ecs()
        .task_defs
        .iter()
        .all(|t| t.td.status() == Some(&TaskDefinitionStatus::Active)));
}

#[tokio::test]
async fn a_family_with_one_revision_of_the_stacks_is_the_stacks() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    // CI registered a revision; then the service was deleted by hand: the latest revision is
    // untagged and no service runs the family, but revision 1 carries the stack's tag.
    ci_registers(&m, "nginx:2", false).await;
    m.ecs
        .client()
        .delete_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .force(true)
        .send()
        .await
        .unwrap();
    // Reported DRAINING once (its revision still counts as the one it runs), then INACTIVE.
    for _ in 0..2 {
        m.ecs
            .client()
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .unwrap();
    }
    m.journal.clear();
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    let change = plan.changes().find("task-definition", FAMILY).unwrap();
    assert_eq!(
        change.detail,
        "new revision 3; the latest is revision 2, registered outside this stack"
    );
    assert_eq!(m.journal.count("ListTaskDefinitions"), 1);

    // `image: running` on a first deploy has no image to keep: refused before any call
    // changes anything, naming the key.
    let fresh = Mock::default();
    let err = fresh
        .layer()
        .plan(&h.ctx, &spec_keeping_the_running_image(), &network())
        .await
        .unwrap_err();
    let problems = err.problems().expect("a validation error");
    assert!(problems.mentions("task.containers[0].image"), "{err}");
    assert!(
        err.to_string()
            .contains("give an image for the first deploy"),
        "{err}"
    );
    assert!(fresh.journal.mutating().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Image-only releases.

#[tokio::test]
async fn an_image_only_release_registers_one_revision_and_updates_the_service_once() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    deploy(&layer, &h, &spec()).await;
    m.journal.clear();

    // Whatever else the spec says (here more memory and another environment variable), only
    // the image changes, in a copy of the revision the service runs.
    let mut other = spec();
    other.task.memory = 2048;
    other.task.containers[0]
        .environment
        .0
        .insert("NEW".into(), "1".into());
    let release = ImageRelease::builder()
        .image(format!(
            "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@sha256:abc"
        ))
        .service("app")
        .build();
    let report = layer.release_image(&h.ctx, &other, &release).await.unwrap();
    assert_eq!(
        m.journal.mutating(),
        ["RegisterTaskDefinition", "UpdateService"]
    );
    let registered = only(m.journal.inputs::<RegisterTaskDefinitionInput>());
    assert_eq!(
        registered.container_definitions()[0].image(),
        Some(release.image.as_str())
    );
    assert_eq!(registered.memory(), Some("512"));
    assert!(registered.container_definitions()[0]
        .environment()
        .is_empty());
    assert_eq!(
        registered.container_definitions()[0].secrets().len(),
        1,
        "the copy keeps the secrets"
    );
    assert_eq!(
        tag_map(registered.tags().iter().map(|t| (t.key(), t.value())))["ecs:stack"],
        "web"
    );
    let update = only(m.journal.inputs::<UpdateServiceInput>());
    assert_eq!(
        update.task_definition(),
        Some(report.task_definition.as_str())
    );
    assert_eq!(update.desired_count(), None);
    assert!(update.network_configuration().is_none() && update.load_balancers().is_empty());
    assert!(report.released);
    assert_eq!(
        (report.container.as_str(), report.previous_image.as_str()),
        ("web", "nginx:1.27")
    );
    assert!(report
        .task_definition
        .ends_with(":task-definition/web-app:2"));
    assert!(report
        .previous_task_definition
        .ends_with(":task-definition/web-app:1"));
    let rollout = report.rollout.expect("the release waited for its rollout");
    assert_eq!(rollout.task_definition, report.task_definition);
    assert_eq!(Some(rollout.deployment), report.deployment);

    // The same image again: nothing to do, no mutating call.
    m.journal.clear();
    let again = layer.release_image(&h.ctx, &other, &release).await.unwrap();
    assert!(!again.released && again.deployment.is_none());
    assert!(m.journal.mutating().is_empty());

    // The stack's revision is the one compared now: a manifest that keeps the running image
    // plans no change; one with its own image says it puts it back.
    let plan = layer
        .plan(&h.ctx, &spec_keeping_the_running_image(), &network())
        .await
        .unwrap();
    assert!(plan.changes().is_empty(), "{plan}");
    let plan = layer.plan(&h.ctx, &spec(), &network()).await.unwrap();
    let change = plan.changes().find("task-definition", FAMILY).unwrap();
    assert_eq!(
        change.detail,
        "new revision 3; the service runs revision 2, released with `deploy --image`"
    );
    assert!(
        change.notes[0].starts_with("this deploy puts the manifest's image nginx:1.27 back"),
        "{plan}"
    );
}

#[tokio::test]
async fn an_image_release_refuses_a_bad_selector_before_any_call() {
    let h = Harness::new();
    let m = Mock::default();
    let layer = m.layer();
    let mut two = spec();
    two.task.containers.push(
        ContainerSpec::builder()
            .name("sidecar")
            .image("envoy:1")
            .essential(false)
            .build(),
    );
    // Every problem at once: the image's form, the service, the container.
    let bad = ImageRelease::builder()
        .image("has space")
        .service("worker")
        .container("nope")
        .build();
    let err = layer.release_image(&h.ctx, &two, &bad).await.unwrap_err();
    let p = err.problems().expect("a validation error");
    assert!(
        p.mentions("image") && p.mentions("service") && p.mentions("container"),
        "{err}"
    );
    assert!(err.to_string().contains("its service is `app`"), "{err}");
    assert!(err.to_string().contains("it has `web`, `sidecar`"), "{err}");
    // Several containers and none named.
    let unnamed = ImageRelease::builder().image("nginx:2").build();
    let err = layer
        .release_image(&h.ctx, &two, &unnamed)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the task has several containers, name one"),
        "{err}"
    );
    assert!(m.journal.is_empty(), "{:?}", m.journal.ops());

    // No service yet: not found, nothing changed.
    let err = layer
        .release_image(&h.ctx, &spec(), &unnamed)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(m.journal.mutating().is_empty());
}
