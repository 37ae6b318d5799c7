//! The facade against mocked clients (`ecs_facade::testing::mock_layers`): a plan of a stack
//! in an empty account reads every layer and proposes only creates, with no mutating call;
//! an invalid stack or manifest fails before any AWS call, listing every problem of every
//! layer.

// The mock closures return the SDK's own (large) error types.
#![allow(clippy::result_large_err)]

use aws_sdk_ec2::types::{AvailabilityZone, AvailabilityZoneState};
use aws_smithy_types::error::ErrorMetadata;
use ecs_core::testing::CallCounter;
use ecs_facade::testing::{mock, mock_layers, MockRules, Rule};
use ecs_facade::{Action, Deployer, DestroyOptions, Stack};

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// An empty account: every describe answers "nothing", or the service's "not found" error.
fn empty_account() -> Vec<Rule> {
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
                AvailabilityZone::builder()
                    .zone_name(n)
                    .zone_type("availability-zone")
                    .state(AvailabilityZoneState::Available)
                    .build()
            };
            ec2::operation::describe_availability_zones::DescribeAvailabilityZonesOutput::builder()
                .availability_zones(az("us-east-1a"))
                .availability_zones(az("us-east-1b"))
                .availability_zones(az("us-east-1c"))
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
    ]
}

fn rules(all: &[Rule]) -> MockRules<'_> {
    // Each rule only ever matches its own service's client, so every client gets them all.
    let every: Vec<&Rule> = all.iter().collect();
    MockRules {
        ec2: every.clone(),
        ecr: every.clone(),
        ecs: every.clone(),
        elb: every.clone(),
        iam: every.clone(),
        autoscaling: every.clone(),
        cloudwatch: every.clone(),
        logs: every,
    }
}

const PROD: &str = "name: shop\nprofile: prod\nimage: nginx:1.27\nport: 8080\nhttps:\n  certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc\n";

#[tokio::test]
async fn plan_in_an_empty_account_creates_everything_and_changes_nothing() {
    let all = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&rules(&all)));
    let stack = Stack::from_manifest(PROD).unwrap();
    let plan = deployer.plan(&stack).await.unwrap();
    let s = plan.summary();
    assert_eq!((s.update, s.delete, s.replace), (0, 0, 0), "{plan}");
    assert!(
        plan.changes().iter().all(|c| c.action == Action::Create),
        "{plan}"
    );
    for (kind, id) in [
        ("vpc", "vpc"),
        ("nat-gateway", "nat/us-east-1b"),
        ("ecr-repository", "shop-app"),
        ("iam-role", "shop-execution"),
        ("ecs-cluster", "shop"),
        ("task-definition", "shop-app"),
        ("load-balancer", "shop-alb"),
        ("listener", "shop-alb:443"),
        ("ecs-service", "shop-app"),
        ("scaling-policy", "shop-cpu"),
        ("alarm", "shop-latency-p99"),
        ("log-group", "/ecs/shop"),
        ("dashboard", "shop"),
    ] {
        assert!(
            plan.find(kind, id).is_some(),
            "{kind} {id} missing from\n{plan}"
        );
    }
    // Every rule is a describe: a mutating call would have failed the plan. And each layer
    // was read.
    assert!(all.iter().all(|r| r.num_calls() <= 3));
    let read = all.iter().filter(|r| r.num_calls() > 0).count();
    assert_eq!(read, all.len(), "every describe was used");
}

#[tokio::test]
async fn invalid_stacks_fail_before_any_call_with_every_problem() {
    let all = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&rules(&all)));
    let mut stack = Stack::from_manifest(PROD).unwrap();
    stack.service.task.memory = 300;
    stack.observe.log_retention_days = 31;
    stack.scaling.as_mut().unwrap().min = 50;
    for result in [
        deployer.plan(&stack).await.map(|_| ()),
        deployer.deploy(&stack).await.map(|_| ()),
        deployer
            .destroy(&stack, DestroyOptions::default())
            .await
            .map(|_| ()),
    ] {
        let err = result.unwrap_err();
        let p = err.problems().unwrap();
        for field in [
            "service.task.memory",
            "observe.log_retention_days",
            "scaling.min",
        ] {
            assert!(p.mentions(field), "{field}: {p}");
        }
    }
    assert!(
        all.iter().all(|r| r.num_calls() == 0),
        "no AWS call was made"
    );
    let counter = CallCounter::new();
    assert!(counter.calls().is_empty());
}

#[test]
fn profiles_are_defaults_that_the_manifest_overrides() {
    let dev = Stack::from_manifest("name: d\nimage: nginx\n").unwrap();
    assert_eq!((dev.service.task.cpu, dev.service.task.memory), (256, 512));
    assert_eq!(dev.service.service.desired_count, 1);
    assert_eq!(
        dev.service.service.capacity_provider_strategy.len(),
        1,
        "dev runs on Spot"
    );
    assert!(dev.scaling.is_none());
    assert_eq!(
        dev.observe.monitoring,
        ecs_facade::observe::Monitoring::Basic
    );
    let prod = Stack::from_manifest(
        "name: p\nprofile: prod\nimage: nginx\ncpu: 1024\nmemory: 4096\nscaling: false\n",
    )
    .unwrap();
    assert_eq!(
        (prod.service.task.cpu, prod.service.task.memory),
        (1024, 4096)
    );
    assert_eq!(prod.service.service.desired_count, 2);
    assert!(
        prod.service.service.capacity_provider_strategy.is_empty(),
        "prod runs on demand"
    );
    assert!(
        prod.scaling.is_none(),
        "scaling: false overrides the profile"
    );
    assert!(matches!(
        &prod.network.as_ref().unwrap().vpc,
        ecs_facade::net::Network::Managed(m) if m.nat == ecs_facade::net::NatStrategy::PerAz
    ));
    let https = Stack::from_manifest(PROD).unwrap();
    let listeners = &https.service.load_balancer.as_ref().unwrap().listeners;
    assert_eq!(listeners.len(), 2);
    assert_eq!(
        listeners[0].effective_ssl_policy(),
        Some(ecs_facade::service::DEFAULT_TLS_POLICY)
    );
}
