//! Testing your own platform code built on `ecs-facade`, both ways: against mocked SDK clients
//! (`ecs_facade::testing::mock_layers`: fast, no emulator, exact control of what AWS answers) and
//! against the local AWS emulator (`emulator_layers`: the same code, really deployed).
//!
//! The "platform code" under test is `deploy_and_announce`: it plans the stack, refuses to
//! deploy when the plan would delete or replace anything, and otherwise deploys and returns the
//! message the platform posts, with the service's URL.

// The mock closures return the SDK's own (large) error types, and the platform's error wraps
// the facade's.
#![allow(clippy::result_large_err)]

use std::fmt;

use aws_sdk_ec2::types::{NatGateway, NatGatewayState, Subnet, Tag};
use ecs_core::{OWNER_TAG, RESOURCE_TAG};
use ecs_facade::service::{ContainerSpec, LoadBalancerSpec, ServiceSpec, TaskSpec};
use ecs_facade::testing::{
    empty_account, emulator_layers, mock, mock_layers, CallCounter, Emulator, MockRules, Rule,
};
use ecs_facade::{Action, Deployer, DestroyOptions, Plan, Stack};

// ---------------------------------------------------------------------------------------------
// The platform code under test: what a team might write on top of the facade.

/// Why the platform did not deploy.
#[derive(Debug)]
enum PlatformError {
    /// The plan would delete or replace these resources: a human must look first.
    Destructive(Vec<String>),
    /// The facade failed: an invalid stack, an AWS error, a failed rollout…
    Facade(ecs_facade::Error),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Destructive(what) => {
                write!(f, "refusing to delete or replace {}", what.join(", "))
            }
            PlatformError::Facade(e) => write!(f, "{e}"),
        }
    }
}

impl From<ecs_facade::Error> for PlatformError {
    fn from(e: ecs_facade::Error) -> Self {
        PlatformError::Facade(e)
    }
}

/// The plan of `stack`, unless it deletes or replaces something.
async fn safe_plan(deployer: &Deployer, stack: &Stack) -> Result<Plan, PlatformError> {
    let plan = deployer.plan(stack).await?;
    let destructive: Vec<String> = plan
        .pending()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace(_)))
        .map(|c| format!("{} {}", c.resource, c.id))
        .collect();
    if destructive.is_empty() {
        Ok(plan)
    } else {
        Err(PlatformError::Destructive(destructive))
    }
}

/// Deploys `stack` when its plan is safe; returns the announcement.
async fn deploy_and_announce(deployer: &Deployer, stack: &Stack) -> Result<String, PlatformError> {
    let plan = safe_plan(deployer, stack).await?;
    let s = plan.summary();
    let report = deployer.deploy(stack).await?;
    let url = report
        .outputs
        .service
        .url
        .as_deref()
        .unwrap_or("(no load balancer)");
    Ok(format!(
        "{} deployed ({} created, {} changed): serving on {url}",
        stack.name, s.create, s.update
    ))
}

/// The stack the platform deploys for a team: nginx on 8080 behind a load balancer.
fn web_stack(name: &str) -> Stack {
    let web = ContainerSpec::builder()
        .name("web")
        .image("nginxinc/nginx-unprivileged:1.27")
        .ports(vec![8080])
        .build();
    let service = ServiceSpec::builder()
        .task(TaskSpec::builder().containers(vec![web]).build())
        .load_balancer(LoadBalancerSpec::default())
        .build();
    Stack::builder().name(name).service(service).build()
}

// ---------------------------------------------------------------------------------------------
// Mocked AWS: rules answering the describe calls a plan makes. Only describes have rules, so a
// mutating call (or any call nobody expected) fails the test.

/// What is left of stack `stack` after it ran with a NAT gateway per zone: its public subnet in
/// `us-east-1b` and the NAT gateway in it, both carrying the stack's tags. A stack with the
/// default single NAT gateway (in `us-east-1a`) no longer wants that one.
fn surplus_nat_gateway(stack: &str) -> Vec<Rule> {
    use aws_sdk_ec2 as ec2;
    let tags = |logical: &str| {
        vec![
            Tag::builder().key(OWNER_TAG).value(stack).build(),
            Tag::builder().key(RESOURCE_TAG).value(logical).build(),
        ]
    };
    let subnet = Subnet::builder()
        .subnet_id("subnet-0public1b")
        .vpc_id("vpc-0stack")
        .cidr_block("10.0.16.0/20")
        .availability_zone("us-east-1b")
        .set_tags(Some(tags("subnet/public/us-east-1b")))
        .build();
    let nat = NatGateway::builder()
        .nat_gateway_id("nat-0zone1b")
        .subnet_id("subnet-0public1b")
        .vpc_id("vpc-0stack")
        .state(NatGatewayState::Available)
        .set_tags(Some(tags("nat/us-east-1b")))
        .build();
    vec![
        mock!(ec2::Client::describe_subnets).then_output(move || {
            ec2::operation::describe_subnets::DescribeSubnetsOutput::builder()
                .subnets(subnet.clone())
                .build()
        }),
        mock!(ec2::Client::describe_nat_gateways).then_output(move || {
            ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput::builder()
                .nat_gateways(nat.clone())
                .build()
        }),
    ]
}

/// Every client gets every rule; the rules of `world` come first, so they answer before the
/// empty account's.
fn rules<'a>(world: &'a [Rule], empty: &'a [Rule]) -> MockRules<'a> {
    MockRules::for_every_client(world.iter().chain(empty))
}

#[tokio::test]
async fn a_new_stack_only_creates_so_the_guard_lets_it_through() {
    let empty = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&rules(&[], &empty)));

    let plan = safe_plan(&deployer, &web_stack("web"))
        .await
        .unwrap_or_else(|e| panic!("the guard refused a new stack: {e}"));
    assert!(plan.pending().all(|c| c.action == Action::Create), "{plan}");
    for (kind, id) in [
        ("vpc", "vpc"),
        ("nat-gateway", "nat/us-east-1a"),
        ("load-balancer", "web-alb"),
        ("ecs-service", "web-app"),
    ] {
        assert!(
            plan.find(kind, id).is_some(),
            "{kind} {id} missing from\n{plan}"
        );
    }
    // Only describes have rules: a mutating call would have panicked. The network was read
    // exactly once.
    assert_eq!(empty[1].num_calls(), 1, "DescribeVpcs");
}

#[tokio::test]
async fn a_plan_that_deletes_a_nat_gateway_is_refused_before_any_change() {
    let empty = empty_account();
    let world = surplus_nat_gateway("web");
    let deployer = Deployer::from_layers(mock_layers(&rules(&world, &empty)));

    let err = deploy_and_announce(&deployer, &web_stack("web"))
        .await
        .expect_err("a plan deleting a NAT gateway must be refused");
    match &err {
        PlatformError::Destructive(what) => {
            assert_eq!(what, &["nat-gateway nat/us-east-1b"], "{err}");
        }
        PlatformError::Facade(e) => panic!("expected a refusal, got {e}"),
    }
    // The deploy never started: the world was read once, by the plan, and nothing was changed
    // (a mutating call has no rule and would have panicked).
    assert_eq!(world[0].num_calls(), 1, "DescribeSubnets");
    assert_eq!(world[1].num_calls(), 1, "DescribeNatGateways");
}

#[tokio::test]
async fn an_invalid_stack_fails_cleanly_without_calling_aws() {
    let empty = empty_account();
    let deployer = Deployer::from_layers(mock_layers(&rules(&[], &empty)));
    let mut stack = web_stack("web");
    stack.service.task.memory = 300;
    // Autoscaling between 2 and 10 tasks, but the service asks for 1.
    stack.scaling = Some(ecs_facade::scaling::ScalingSpec::cpu_and_memory(2, 10));

    let err = deploy_and_announce(&deployer, &stack)
        .await
        .expect_err("an invalid stack must not deploy");
    let PlatformError::Facade(e) = &err else {
        panic!("expected the facade's validation error, got {err}");
    };
    assert!(matches!(e, ecs_facade::Error::Invalid(_)), "{e}");
    let problems = e.problems().expect("validation problems");
    for field in ["service.task.memory", "service.desired_count"] {
        assert!(problems.mentions(field), "{field} missing from {problems}");
    }
    assert!(
        empty.iter().all(|r| r.num_calls() == 0),
        "an AWS call was made"
    );
}

// ---------------------------------------------------------------------------------------------
// The same platform code against the local AWS emulator.

#[tokio::test]
async fn the_same_code_deploys_on_the_emulator() {
    let emulator = tokio::task::spawn_blocking(Emulator::shared)
        .await
        .expect("the emulator's start-up task")
        .unwrap_or_else(|e| panic!("{e}"));
    let counter = CallCounter::new();
    let deployer = Deployer::from_layers(emulator_layers(emulator, &counter).await);
    let stack = web_stack("user-code");

    let message = deploy_and_announce(&deployer, &stack)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        message.starts_with("user-code deployed (") && message.contains("serving on http://"),
        "{message}"
    );

    // Deployed, the stack plans no change: the guard passes, and nothing was mutated.
    counter.reset();
    let plan = safe_plan(&deployer, &stack)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(counter.mutating(), vec![]);

    let destroyed = deployer
        .destroy(&stack, DestroyOptions::everything())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        destroyed
            .deleted
            .find("load-balancer", "user-code-alb")
            .is_some(),
        "{}",
        destroyed.deleted
    );
}

// ---------------------------------------------------------------------------------------------
// The same kind of test against a stateful fake account: `ecs_facade::testing::FakeEc2`
// holds the account's networks and changes them as the calls would, so platform code can be
// tested across a deploy, a second plan and a destroy without the emulator.

#[tokio::test]
async fn a_network_deployed_into_a_fake_account_plans_nothing_more_and_destroys_cleanly() {
    use ecs_core::{Context, FakeClock, StackName};
    use ecs_facade::testing::{Ec2State, FakeEc2, Journal};
    use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkSpec};

    let journal = Journal::default();
    let fake = FakeEc2::new(&journal, Ec2State::default());
    let net = NetworkLayer::from_client(fake.client());
    let ctx = Context::builder()
        .stack(StackName::new("web").unwrap())
        .clock(FakeClock::new())
        .build();
    let spec = NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .az_count(2)
                .nat(NatStrategy::Single)
                .build(),
        ))
        .container_port(8080)
        .build();

    let (plan, outputs) = net.deploy(&ctx, &spec).await.unwrap();
    assert!(plan.pending().all(|c| c.action == Action::Create), "{plan}");
    assert_eq!(outputs.public_subnets.len(), 2);
    assert_eq!(fake.state().vpcs.len(), 1);

    journal.clear();
    let again = net.plan(&ctx, &spec).await.unwrap();
    assert!(again.is_empty(), "{again}");
    assert!(journal.mutating().is_empty(), "{:?}", journal.ops());

    net.destroy(&ctx).await.unwrap();
    let state = fake.state();
    assert!(
        state.vpcs.is_empty() && state.subnets.is_empty(),
        "{state:?}"
    );
}
