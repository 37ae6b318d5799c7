//! Shared helpers of the end-to-end tests: an emulator-backed EC2 client with call counting,
//! and contexts for test stacks.

use aws_sdk_ec2::types::Filter;
use ecs_core::testing::{CallCounter, Emulator};
use ecs_core::{Context, EventLog, StackName, OWNER_TAG};

/// The emulator shared by the test binary (installed and started on first use).
pub fn emulator() -> &'static Emulator {
    Emulator::shared().unwrap_or_else(|e| panic!("{e}"))
}

/// An EC2 client talking to the emulator, recording its calls in `counter`.
pub async fn ec2(counter: &CallCounter) -> aws_sdk_ec2::Client {
    let config = emulator().sdk_config().await;
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .interceptor(counter.clone())
            .build(),
    )
}

/// The service layer's clients, talking to the emulator, recording their calls in `counter`.
pub async fn service_clients(counter: &CallCounter) -> ecs_service::ServiceClients {
    let config = emulator().sdk_config().await;
    macro_rules! client {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(&config)
                    .interceptor(counter.clone())
                    .build(),
            )
        };
    }
    ecs_service::ServiceClients {
        ecr: client!(aws_sdk_ecr),
        iam: client!(aws_sdk_iam),
        ecs: client!(aws_sdk_ecs),
        elb: client!(aws_sdk_elasticloadbalancingv2),
        ec2: client!(aws_sdk_ec2),
    }
}

/// An ACM client talking to the emulator.
pub async fn acm() -> aws_sdk_acm::Client {
    aws_sdk_acm::Client::new(&emulator().sdk_config().await)
}

/// A context for stack `name` whose events go to `events`.
pub fn context(name: &str, events: &EventLog) -> Context {
    Context::builder()
        .stack(StackName::new(name).expect("valid stack name"))
        .tags(ecs_core::Tags::new().with("suite", "e2e"))
        .events(events.clone())
        .build()
}

/// Counts of every kind of EC2 resource carrying the stack's owner tag, read with plain
/// describe calls (independently of the layer's own observation code).
pub async fn tagged_counts(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<(&'static str, usize)> {
    let f = || {
        Filter::builder()
            .name(format!("tag:{OWNER_TAG}"))
            .values(stack)
            .build()
    };
    let vpcs = ec2
        .describe_vpcs()
        .filters(f())
        .send()
        .await
        .unwrap()
        .vpcs()
        .len();
    let subnets = ec2
        .describe_subnets()
        .filters(f())
        .send()
        .await
        .unwrap()
        .subnets()
        .len();
    let igws = ec2
        .describe_internet_gateways()
        .filters(f())
        .send()
        .await
        .unwrap()
        .internet_gateways()
        .len();
    let tables = ec2
        .describe_route_tables()
        .filters(f())
        .send()
        .await
        .unwrap()
        .route_tables()
        .len();
    let eips = ec2
        .describe_addresses()
        .filters(f())
        .send()
        .await
        .unwrap()
        .addresses()
        .len();
    let nats = ec2
        .describe_nat_gateways()
        .filter(f())
        .filter(
            Filter::builder()
                .name("state")
                .values("pending")
                .values("available")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .nat_gateways()
        .iter()
        .filter(|n| matches!(n.state().map(|s| s.as_str()), Some("pending" | "available")))
        .filter(|n| {
            n.tags()
                .iter()
                .any(|t| t.key() == Some(OWNER_TAG) && t.value() == Some(stack))
        })
        .count();
    let sgs = ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap()
        .security_groups()
        .len();
    vec![
        ("vpc", vpcs),
        ("subnet", subnets),
        ("internet-gateway", igws),
        ("route-table", tables),
        ("elastic-ip", eips),
        ("nat-gateway", nats),
        ("security-group", sgs),
    ]
}
