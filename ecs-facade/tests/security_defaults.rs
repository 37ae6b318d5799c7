//! The security defaults of a stack, proved on the requests a real deploy sends to AWS.
//!
//! Each test deploys a stack from a manifest with [`ecs_facade::Deployer`] over mocked SDK
//! clients (`ecs_facade::testing::mock_layers`, no network) and asserts on the inputs of the
//! SDK calls the deploy made, as captured by the mocks — never on our own spec structs:
//!
//! 1. tasks get no public IP and run in the private subnets (`CreateService`);
//! 2. the tasks' security group admits only the load balancer's security group, over TCP on
//!    the container port, and no CIDR range (`AuthorizeSecurityGroupIngress`);
//! 3. the load balancer drops invalid header fields (`ModifyLoadBalancerAttributes`);
//! 4. with a certificate, the HTTPS listener names a TLS 1.3 policy and the HTTP listener
//!    answers with a permanent (301) redirect to HTTPS (`CreateListener`);
//! 5. the execution role may read exactly the secrets the stack lists, and nothing when it
//!    lists none (`PutRolePolicy`);
//! 6. the ECR repository scans on push, has immutable tags and is encrypted
//!    (`CreateRepository`);
//! 7. the log group always gets a retention, in the `dev` and the `prod` profile
//!    (`CreateLogGroup` followed by `PutRetentionPolicy`).
//!
//! The stacks use an existing VPC (so the network layer adds only the two security groups)
//! and the mocked account is stateless: every describe answers "nothing exists"
//! (`ecs_facade::testing::empty_account`), every create answers with made-up identifiers and
//! records its input in a [`Journal`]. Because what a create made is never found again, what
//! the facade makes early (repository, roles, task definition, cluster and log group, while
//! the network is built) is created a second time by the service and observability layers'
//! own plans: the assertions cover every such call.
//!
//! Needs the `testing` feature (`cargo test --all-features`, as CI runs it).

use ecs_core::testing::Journal;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use aws_sdk_applicationautoscaling as aas;
use aws_sdk_applicationautoscaling::operation::put_scaling_policy::PutScalingPolicyOutput;
use aws_sdk_applicationautoscaling::operation::register_scalable_target::RegisterScalableTargetOutput;
use aws_sdk_cloudwatch as cw;
use aws_sdk_cloudwatch::operation::put_dashboard::PutDashboardOutput;
use aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmOutput;
use aws_sdk_cloudwatchlogs as logs;
use aws_sdk_cloudwatchlogs::operation::create_log_group::{
    CreateLogGroupInput, CreateLogGroupOutput,
};
use aws_sdk_cloudwatchlogs::operation::put_retention_policy::{
    PutRetentionPolicyInput, PutRetentionPolicyOutput,
};
use aws_sdk_ec2 as ec2;
use aws_sdk_ec2::operation::authorize_security_group_egress::AuthorizeSecurityGroupEgressOutput;
use aws_sdk_ec2::operation::authorize_security_group_ingress::{
    AuthorizeSecurityGroupIngressInput, AuthorizeSecurityGroupIngressOutput,
};
use aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupOutput;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
use aws_sdk_ec2::operation::revoke_security_group_egress::RevokeSecurityGroupEgressOutput;
use aws_sdk_ec2::operation::revoke_security_group_ingress::RevokeSecurityGroupIngressOutput;
use aws_sdk_ecr as ecr;
use aws_sdk_ecr::operation::create_repository::{CreateRepositoryInput, CreateRepositoryOutput};
use aws_sdk_ecr::operation::put_lifecycle_policy::PutLifecyclePolicyOutput;
use aws_sdk_ecr::types::{EncryptionType, ImageTagMutability};
use aws_sdk_ecs as ecs;
use aws_sdk_ecs::operation::create_cluster::CreateClusterOutput;
use aws_sdk_ecs::operation::create_service::{CreateServiceInput, CreateServiceOutput};
use aws_sdk_ecs::operation::register_task_definition::{
    RegisterTaskDefinitionInput, RegisterTaskDefinitionOutput,
};
use aws_sdk_ecs::types::AssignPublicIp;
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_elasticloadbalancingv2::operation::create_listener::{
    CreateListenerInput, CreateListenerOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::create_load_balancer::{
    CreateLoadBalancerInput, CreateLoadBalancerOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::create_target_group::CreateTargetGroupOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_load_balancer_attributes::{
    ModifyLoadBalancerAttributesInput, ModifyLoadBalancerAttributesOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::modify_target_group_attributes::ModifyTargetGroupAttributesOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    ActionTypeEnum, ProtocolEnum, RedirectActionStatusCodeEnum,
};
use aws_sdk_iam as iam;
use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
use aws_sdk_iam::operation::create_role::{CreateRoleInput, CreateRoleOutput};
use aws_sdk_iam::operation::put_role_policy::{PutRolePolicyInput, PutRolePolicyOutput};
use ecs_core::{FakeClock, RESOURCE_TAG};
use ecs_facade::testing::{empty_account, mock, mock_layers, MockRules, Rule};
use ecs_facade::{DeployReport, Deployer, Stack};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The stacks.

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// The ARN prefix of this account's load balancing resources.
const ELB_ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012";
/// The existing VPC the stacks go in.
const VPC: &str = "vpc-0123456789abcdef0";
const VPC_CIDR: &str = "10.20.0.0/16";
/// Its public subnets (the load balancer's), in name order.
const PUBLIC: [&str; 2] = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"];
/// Its private subnets (the tasks'), in name order.
const PRIVATE: [&str; 2] = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"];
/// Every subnet of the VPC with its zone.
const SUBNETS: [(&str, &str); 4] = [
    (PUBLIC[0], "us-east-1a"),
    (PUBLIC[1], "us-east-1b"),
    (PRIVATE[0], "us-east-1a"),
    (PRIVATE[1], "us-east-1b"),
];
/// The container port: not a default, so that the rules visibly follow the stack.
const PORT: u16 = 9000;
const CERT: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
const SECRET_SM: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf";
const SECRET_SSM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/shop/api-key";
const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";
/// The family of ELB policies that allow TLS 1.2 and 1.3 only.
const TLS13_POLICIES: &str = "ELBSecurityPolicy-TLS13";

/// The manifest of stack `shop` in `profile`, in the existing VPC, with `extra` lines.
fn manifest(profile: &str, extra: &[String]) -> String {
    let [public_a, public_b] = PUBLIC;
    let [private_a, private_b] = PRIVATE;
    let mut lines = vec![
        "name: shop".to_string(),
        format!("profile: {profile}"),
        "image: nginx:1.27".to_string(),
        format!("port: {PORT}"),
        "network:".to_string(),
        "  existing:".to_string(),
        format!("    vpc_id: {VPC}"),
        format!("    public_subnets: [{public_a}, {public_b}]"),
        format!("    private_subnets: [{private_a}, {private_b}]"),
    ];
    lines.extend_from_slice(extra);
    lines.join("\n") + "\n"
}

/// A `dev` stack: plain HTTP, no secrets.
fn dev() -> String {
    manifest("dev", &[])
}

/// A `prod` stack: HTTPS with a certificate (and the HTTP redirect), autoscaling, advanced
/// monitoring, and two secrets: one in Secrets Manager, one in SSM Parameter Store.
fn prod() -> String {
    manifest(
        "prod",
        &[
            "https:".to_string(),
            format!("  certificate_arn: {CERT}"),
            "secrets:".to_string(),
            format!("  DB_PASSWORD: {SECRET_SM}"),
            format!("  API_KEY: {SECRET_SSM}"),
        ],
    )
}

/// Both profiles, by name.
fn profiles() -> [(&'static str, String); 2] {
    [("dev", dev()), ("prod", prod())]
}

// ---------------------------------------------------------------------------------------------
// Recording calls.

// The journal of calls: `ecs_core::testing::Journal`, shared by every mock test.

/// A rule for `$sdk::Client::$op` (optionally only for requests `$filter` accepts) that
/// records the input in `$journal` and answers with `$output`, computed from the input `$r`.
macro_rules! recorded {
    ($journal:expr, $sdk:ident :: $op:ident $(if $filter:expr)?, |$r:ident| $output:expr) => {{
        let journal = Journal::clone($journal);
        mock!($sdk::Client::$op)
            $(.match_requests($filter))?
            .then_compute_output(move |$r| {
                journal.record(stringify!($op), $r);
                $output
            })
    }};
}

/// The rules answering every call a deploy makes besides the describes of
/// [`empty_account`]: the existing VPC and its subnets, and every create and update.
fn aws(j: &Journal) -> Vec<Rule> {
    vec![
        // EC2: the existing VPC, its subnets, the two security groups and their rules.
        recorded!(j, ec2::describe_vpcs if |r| !r.vpc_ids().is_empty(), |r| {
            let vpcs = r
                .vpc_ids()
                .iter()
                .map(|id| ec2::types::Vpc::builder().vpc_id(id).cidr_block(VPC_CIDR).build());
            DescribeVpcsOutput::builder().set_vpcs(Some(vpcs.collect())).build()
        }),
        recorded!(j, ec2::describe_subnets if |r| !r.subnet_ids().is_empty(), |r| {
            let found = SUBNETS
                .iter()
                .filter(|(id, _)| r.subnet_ids().iter().any(|x| x.as_str() == *id))
                .map(|(id, zone)| {
                    ec2::types::Subnet::builder()
                        .subnet_id(*id)
                        .vpc_id(VPC)
                        .availability_zone(*zone)
                        .build()
                });
            DescribeSubnetsOutput::builder().set_subnets(Some(found.collect())).build()
        }),
        // A group's id follows its `ecs:resource` tag: `sg/task` → `sg-task`.
        recorded!(j, ec2::create_security_group, |r| {
            let logical = r
                .tag_specifications()
                .iter()
                .flat_map(|s| s.tags())
                .find(|t| t.key() == Some(RESOURCE_TAG))
                .and_then(|t| t.value())
                .unwrap_or("sg/untagged");
            CreateSecurityGroupOutput::builder()
                .group_id(logical.replace('/', "-"))
                .build()
        }),
        recorded!(j, ec2::authorize_security_group_ingress, |r| {
            AuthorizeSecurityGroupIngressOutput::builder().build()
        }),
        recorded!(j, ec2::authorize_security_group_egress, |r| {
            AuthorizeSecurityGroupEgressOutput::builder().build()
        }),
        recorded!(j, ec2::revoke_security_group_ingress, |r| {
            RevokeSecurityGroupIngressOutput::builder().build()
        }),
        recorded!(j, ec2::revoke_security_group_egress, |r| {
            RevokeSecurityGroupEgressOutput::builder().build()
        }),
        recorded!(j, ec2::create_tags, |r| {
            CreateTagsOutput::builder().build()
        }),
        // ECR.
        recorded!(j, ecr::create_repository, |r| {
            let name = r.repository_name().unwrap_or_default();
            let repo = ecr::types::Repository::builder()
                .repository_arn(format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"))
                .registry_id(ACCOUNT)
                .repository_name(name)
                .repository_uri(format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"))
                .build();
            CreateRepositoryOutput::builder().repository(repo).build()
        }),
        recorded!(j, ecr::put_lifecycle_policy, |r| {
            PutLifecyclePolicyOutput::builder().build()
        }),
        // IAM.
        recorded!(j, iam::create_role, |r| {
            let name = r.role_name().unwrap_or_default();
            let role = iam::types::Role::builder()
                .path("/")
                .role_name(name)
                .role_id(format!("AROA{}", name.to_uppercase().replace('-', "")))
                .arn(format!("arn:aws:iam::{ACCOUNT}:role/{name}"))
                .create_date(iam::primitives::DateTime::from_secs(0))
                .build()
                .expect("path, name, id, ARN and creation date are set");
            CreateRoleOutput::builder().role(role).build()
        }),
        recorded!(j, iam::attach_role_policy, |r| {
            AttachRolePolicyOutput::builder().build()
        }),
        recorded!(j, iam::put_role_policy, |r| {
            PutRolePolicyOutput::builder().build()
        }),
        // ECS.
        recorded!(j, ecs::create_cluster, |r| {
            let name = r.cluster_name().unwrap_or("default");
            let cluster = ecs::types::Cluster::builder()
                .cluster_arn(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"))
                .cluster_name(name)
                .status("ACTIVE")
                .build();
            CreateClusterOutput::builder().cluster(cluster).build()
        }),
        recorded!(j, ecs::register_task_definition, |r| {
            let family = r.family().unwrap_or_default();
            let td = ecs::types::TaskDefinition::builder()
                .task_definition_arn(format!(
                    "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:1"
                ))
                .family(family)
                .revision(1)
                .build();
            RegisterTaskDefinitionOutput::builder()
                .task_definition(td)
                .build()
        }),
        recorded!(j, ecs::create_service, |r| {
            let cluster = r.cluster().unwrap_or("default");
            let name = r.service_name().unwrap_or_default();
            let service = ecs::types::Service::builder()
                .service_arn(format!(
                    "arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"
                ))
                .service_name(name)
                .status("ACTIVE")
                .build();
            CreateServiceOutput::builder().service(service).build()
        }),
        // Elastic Load Balancing.
        recorded!(j, elb::create_load_balancer, |r| {
            let name = r.name().unwrap_or_default();
            let lb = elb::types::LoadBalancer::builder()
                .load_balancer_arn(format!(
                    "{ELB_ARN}:loadbalancer/app/{name}/50dc6c495c0c9188"
                ))
                .dns_name(format!("{name}-1234567890.{REGION}.elb.amazonaws.com"))
                .load_balancer_name(name)
                .build();
            CreateLoadBalancerOutput::builder()
                .load_balancers(lb)
                .build()
        }),
        recorded!(j, elb::modify_load_balancer_attributes, |r| {
            ModifyLoadBalancerAttributesOutput::builder().build()
        }),
        recorded!(j, elb::create_target_group, |r| {
            let name = r.name().unwrap_or_default();
            let tg = elb::types::TargetGroup::builder()
                .target_group_arn(format!("{ELB_ARN}:targetgroup/{name}/73e2d6bc24d8a067"))
                .target_group_name(name)
                .build();
            CreateTargetGroupOutput::builder().target_groups(tg).build()
        }),
        recorded!(j, elb::modify_target_group_attributes, |r| {
            ModifyTargetGroupAttributesOutput::builder().build()
        }),
        recorded!(j, elb::create_listener, |r| {
            let lb = r.load_balancer_arn().unwrap_or_default();
            let port = r.port().unwrap_or_default();
            let listener = elb::types::Listener::builder()
                .listener_arn(format!(
                    "{}/{port:016x}",
                    lb.replace(":loadbalancer/", ":listener/")
                ))
                .load_balancer_arn(lb)
                .port(port)
                .build();
            CreateListenerOutput::builder().listeners(listener).build()
        }),
        // Application Auto Scaling (the prod profile).
        recorded!(j, aas::register_scalable_target, |r| {
            RegisterScalableTargetOutput::builder().build()
        }),
        recorded!(j, aas::put_scaling_policy, |r| {
            let name = r.policy_name().unwrap_or_default();
            PutScalingPolicyOutput::builder()
                .policy_arn(format!(
                    "arn:aws:autoscaling:{REGION}:{ACCOUNT}:scalingPolicy:00000000-0000-0000-0000-000000000000:resource/ecs/service/shop/shop-app:policyName/{name}"
                ))
                .build()
                .expect("the policy ARN is set")
        }),
        // CloudWatch and CloudWatch Logs.
        recorded!(j, cw::put_metric_alarm, |r| {
            PutMetricAlarmOutput::builder().build()
        }),
        recorded!(j, cw::put_dashboard, |r| {
            PutDashboardOutput::builder().build()
        }),
        recorded!(j, logs::create_log_group, |r| {
            CreateLogGroupOutput::builder().build()
        }),
        recorded!(j, logs::put_retention_policy, |r| {
            PutRetentionPolicyOutput::builder().build()
        }),
    ]
}

/// What a mocked deploy was asked to do, what it sent, and what it reported.
struct Deployed {
    stack: Stack,
    journal: Journal,
    report: DeployReport,
}

/// Deploys the stack of `yaml` through the facade against the mocked account.
async fn deploy(yaml: &str) -> Deployed {
    let stack =
        Stack::from_manifest(yaml).unwrap_or_else(|e| panic!("invalid manifest ({e}):\n{yaml}"));
    let journal = Journal::default();
    let ours = aws(&journal);
    let empty = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&MockRules::for_every_client(
        ours.iter().chain(&empty),
    )))
    .clock(FakeClock::new())
    .wait_for_rollout(false);
    let report = deployer.deploy(&stack).await.unwrap_or_else(|e| {
        panic!(
            "the mocked deploy failed: {e}\ncalls answered: {:?}",
            journal.ops()
        )
    });
    Deployed {
        stack,
        journal,
        report,
    }
}

/// The one element of `items`.
fn only<T: Debug>(items: Vec<T>, what: &str) -> T {
    assert_eq!(items.len(), 1, "expected exactly one {what}: {items:?}");
    items.into_iter().next().expect("one element")
}

/// The strings of a policy's `Action` or `Resource` (a string or a list of strings).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .unwrap_or_else(|| panic!("not a string: {i}"))
                    .to_string()
            })
            .collect(),
        other => panic!("neither a string nor a list of strings: {other}"),
    }
}

/// Each action a policy document allows, with the resources it allows it on. Fails on a
/// statement that is not `Allow`, or that uses `NotAction` or `NotResource` (which grant
/// everything but what they name).
fn grants(document: &str) -> BTreeMap<String, BTreeSet<String>> {
    let doc: Value = serde_json::from_str(document)
        .unwrap_or_else(|e| panic!("the policy is not JSON ({e}): {document}"));
    let statements = doc["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("the policy has no list of statements: {doc}"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in statements {
        assert_eq!(s["Effect"].as_str(), Some("Allow"), "{doc}");
        assert!(
            s.get("NotAction").is_none() && s.get("NotResource").is_none(),
            "{doc}"
        );
        let resources = strings(&s["Resource"]);
        for action in strings(&s["Action"]) {
            out.entry(action)
                .or_default()
                .extend(resources.iter().cloned());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. No public IP; private subnets.

#[tokio::test]
async fn tasks_get_no_public_ip_and_run_in_the_private_subnets() {
    for (profile, yaml) in profiles() {
        let d = deploy(&yaml).await;
        let service = only(d.journal.inputs::<CreateServiceInput>(), "CreateService");
        let vpc = service
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .unwrap_or_else(|| panic!("{profile}: no awsvpc configuration in {service:?}"));
        assert_eq!(
            vpc.assign_public_ip(),
            Some(&AssignPublicIp::Disabled),
            "{profile}: tasks must not get a public IP: {vpc:?}"
        );
        let mut subnets = vpc.subnets().to_vec();
        subnets.sort();
        assert_eq!(
            subnets, PRIVATE,
            "{profile}: tasks must run in the private subnets"
        );
        assert!(
            subnets.iter().all(|s| !PUBLIC.contains(&s.as_str())),
            "{profile}: a task subnet is public: {subnets:?}"
        );
        // The internet-facing load balancer is what goes in the public subnets.
        let lb = only(
            d.journal.inputs::<CreateLoadBalancerInput>(),
            "CreateLoadBalancer",
        );
        let mut lb_subnets = lb.subnets().to_vec();
        lb_subnets.sort();
        assert_eq!(lb_subnets, PUBLIC, "{profile}: {lb:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The tasks' security group admits only the load balancer's, on the container port.

#[tokio::test]
async fn the_task_security_group_admits_only_the_alb_group_on_the_container_port() {
    for (profile, yaml) in profiles() {
        let d = deploy(&yaml).await;
        // The groups as the service and the load balancer really use them.
        let service = only(d.journal.inputs::<CreateServiceInput>(), "CreateService");
        let task_sg = only(
            service
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .map(|v| v.security_groups().to_vec())
                .unwrap_or_default(),
            "security group of the tasks",
        );
        let lb = only(
            d.journal.inputs::<CreateLoadBalancerInput>(),
            "CreateLoadBalancer",
        );
        let alb_sg = only(
            lb.security_groups().to_vec(),
            "security group of the load balancer",
        );
        assert_ne!(task_sg, alb_sg, "{profile}: the tasks need their own group");

        let authorizations: Vec<AuthorizeSecurityGroupIngressInput> = d
            .journal
            .inputs::<AuthorizeSecurityGroupIngressInput>()
            .into_iter()
            .filter(|i| i.group_id() == Some(task_sg.as_str()))
            .collect();
        let grant = only(authorizations, "ingress authorization of the tasks' group");
        let permission = only(
            grant.ip_permissions().to_vec(),
            "ingress permission of the tasks' group",
        );
        assert_eq!(permission.ip_protocol(), Some("tcp"), "{profile}");
        let port = Some(i32::from(PORT));
        assert_eq!(
            (permission.from_port(), permission.to_port()),
            (port, port),
            "{profile}: only the container port"
        );
        let peers: Vec<Option<&str>> = permission
            .user_id_group_pairs()
            .iter()
            .map(|p| p.group_id())
            .collect();
        assert_eq!(
            peers,
            [Some(alb_sg.as_str())],
            "{profile}: only the load balancer's group"
        );
        assert!(
            permission.ip_ranges().is_empty()
                && permission.ipv6_ranges().is_empty()
                && permission.prefix_list_ids().is_empty(),
            "{profile}: no address range may reach the tasks: {permission:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The load balancer drops invalid header fields.

#[tokio::test]
async fn the_load_balancer_drops_invalid_header_fields() {
    for (profile, yaml) in profiles() {
        let d = deploy(&yaml).await;
        let lb_arn = d
            .report
            .outputs
            .service
            .load_balancer_arn
            .clone()
            .unwrap_or_else(|| panic!("{profile}: the deploy reports no load balancer"));
        let modified = d.journal.inputs::<ModifyLoadBalancerAttributesInput>();
        let set: Vec<Option<&str>> = modified
            .iter()
            .filter(|m| m.load_balancer_arn() == Some(lb_arn.as_str()))
            .flat_map(|m| m.attributes())
            .filter(|a| a.key() == Some(DROP_INVALID_HEADERS))
            .map(|a| a.value())
            .collect();
        assert_eq!(
            set,
            [Some("true")],
            "{profile}: {DROP_INVALID_HEADERS} must be set to true on {lb_arn}: {modified:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. HTTPS with a TLS 1.3 policy; HTTP redirects permanently.

#[tokio::test]
async fn with_a_certificate_https_has_a_tls13_policy_and_http_redirects_with_301() {
    let d = deploy(&prod()).await;
    let listeners = d.journal.inputs::<CreateListenerInput>();
    assert_eq!(listeners.len(), 2, "HTTPS and HTTP: {listeners:?}");

    let https = only(
        listeners
            .iter()
            .filter(|l| l.protocol() == Some(&ProtocolEnum::Https))
            .collect(),
        "HTTPS listener",
    );
    assert_eq!(https.port(), Some(443), "{https:?}");
    let policy = https
        .ssl_policy()
        .unwrap_or_else(|| panic!("the HTTPS listener names no TLS policy: {https:?}"));
    assert!(
        policy.starts_with(TLS13_POLICIES),
        "{policy} is not a TLS 1.2+/1.3 policy"
    );
    let certificates: Vec<Option<&str>> = https
        .certificates()
        .iter()
        .map(|c| c.certificate_arn())
        .collect();
    assert_eq!(certificates, [Some(CERT)]);

    let http = only(
        listeners
            .iter()
            .filter(|l| l.protocol() == Some(&ProtocolEnum::Http))
            .collect(),
        "HTTP listener",
    );
    assert_eq!(http.port(), Some(80), "{http:?}");
    let action = only(
        http.default_actions().iter().collect(),
        "default action of the HTTP listener",
    );
    assert_eq!(
        action.r#type(),
        Some(&ActionTypeEnum::Redirect),
        "{action:?}"
    );
    assert!(
        action.target_group_arn().is_none(),
        "plain HTTP must not reach the service: {action:?}"
    );
    let redirect = action
        .redirect_config()
        .unwrap_or_else(|| panic!("a redirect without its configuration: {action:?}"));
    assert_eq!(
        (redirect.protocol(), redirect.port(), redirect.status_code()),
        (
            Some("HTTPS"),
            Some("443"),
            Some(&RedirectActionStatusCodeEnum::Http301)
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 5. The execution role reads exactly the listed secrets.

#[tokio::test]
async fn the_execution_role_reads_exactly_the_listed_secrets() {
    let d = deploy(&prod()).await;
    let execution_role = d.report.outputs.service.names.execution_role.as_str();
    let puts = d.journal.inputs::<PutRolePolicyInput>();
    let on_execution_role: Vec<&PutRolePolicyInput> = puts
        .iter()
        .filter(|p| p.role_name() == Some(execution_role))
        .collect();
    assert!(
        !on_execution_role.is_empty(),
        "no policy was put on {execution_role}: {:?}",
        d.journal.ops()
    );
    let expected = BTreeMap::from([
        (
            "secretsmanager:GetSecretValue".to_string(),
            BTreeSet::from([SECRET_SM.to_string()]),
        ),
        (
            "ssm:GetParameters".to_string(),
            BTreeSet::from([SECRET_SSM.to_string()]),
        ),
    ]);
    for put in on_execution_role {
        let document = put
            .policy_document()
            .unwrap_or_else(|| panic!("PutRolePolicy without a document: {put:?}"));
        assert_eq!(grants(document), expected, "{document}");
        assert!(
            !document.contains('*'),
            "no wildcard anywhere in the policy: {document}"
        );
    }
    // No other role is given the secrets.
    for put in puts
        .iter()
        .filter(|p| p.role_name() != Some(execution_role))
    {
        let document = put.policy_document().unwrap_or_default();
        assert!(
            !document.contains(SECRET_SM) && !document.contains(SECRET_SSM),
            "{put:?}"
        );
    }
}

#[tokio::test]
async fn without_secrets_no_secrets_policy_is_put() {
    let d = deploy(&dev()).await;
    let execution_role = d.report.outputs.service.names.execution_role.as_str();
    assert!(
        d.journal
            .inputs::<CreateRoleInput>()
            .iter()
            .any(|r| r.role_name() == Some(execution_role)),
        "{execution_role} was not created: {:?}",
        d.journal.ops()
    );
    let puts = d.journal.inputs::<PutRolePolicyInput>();
    assert!(
        puts.iter().all(|p| p.role_name() != Some(execution_role)),
        "no inline policy on {execution_role} without secrets: {puts:?}"
    );
    for put in &puts {
        let document = put.policy_document().unwrap_or_default();
        assert!(
            !document.contains("secretsmanager:") && !document.contains("ssm:GetParameters"),
            "no role may read secrets the stack does not list: {put:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. ECR: scan on push, immutable tags, encryption.

#[tokio::test]
async fn the_repository_scans_on_push_has_immutable_tags_and_is_encrypted() {
    for (profile, yaml) in profiles() {
        let d = deploy(&yaml).await;
        let repos = d.journal.inputs::<CreateRepositoryInput>();
        assert!(
            !repos.is_empty(),
            "{profile}: no repository created: {:?}",
            d.journal.ops()
        );
        for repo in &repos {
            assert!(
                repo.image_scanning_configuration()
                    .is_some_and(|c| c.scan_on_push()),
                "{profile}: images must be scanned on push: {repo:?}"
            );
            assert_eq!(
                repo.image_tag_mutability(),
                Some(&ImageTagMutability::Immutable),
                "{profile}: {repo:?}"
            );
            let encryption = repo
                .encryption_configuration()
                .unwrap_or_else(|| panic!("{profile}: encryption is not set: {repo:?}"));
            assert!(
                matches!(
                    encryption.encryption_type(),
                    EncryptionType::Aes256 | EncryptionType::Kms | EncryptionType::KmsDsse
                ),
                "{profile}: {encryption:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Log retention, in both profiles.

#[tokio::test]
async fn the_log_group_always_gets_a_retention() {
    for (profile, yaml) in profiles() {
        let d = deploy(&yaml).await;
        let days = d.stack.observe.log_retention_days;
        assert!(days > 0, "{profile}: the profile must set a retention");
        let want = Some(i32::try_from(days).expect("retention days fit an i32"));
        let group = d.report.outputs.log_group.as_str();
        let creates = d.journal.indexed::<CreateLogGroupInput>();
        let retentions = d.journal.indexed::<PutRetentionPolicyInput>();
        assert!(
            !creates.is_empty(),
            "{profile}: no log group created: {:?}",
            d.journal.ops()
        );
        for (at, create) in &creates {
            assert_eq!(create.log_group_name(), Some(group), "{profile}");
            assert!(
                retentions.iter().any(|(later, r)| later > at
                    && r.log_group_name() == Some(group)
                    && r.retention_in_days() == want),
                "{profile}: CreateLogGroup (call {at}) not followed by a {days}-day retention: {:?}",
                d.journal.ops()
            );
        }
        for (_, r) in &retentions {
            assert_eq!(r.retention_in_days(), want, "{profile}: {r:?}");
        }
        // The containers log to that group.
        let task_definitions = d.journal.inputs::<RegisterTaskDefinitionInput>();
        assert!(!task_definitions.is_empty(), "{profile}");
        for td in &task_definitions {
            for c in td.container_definitions() {
                let logs_to = c
                    .log_configuration()
                    .and_then(|l| l.options())
                    .and_then(|o| o.get("awslogs-group"));
                assert_eq!(logs_to.map(String::as_str), Some(group), "{profile}: {c:?}");
            }
        }
    }
}
