//! ecs-net end to end against the local AWS emulator: create → no-op → change → destroy,
//! with call counting; two stacks side by side; an existing VPC.

use std::time::Duration;

use ecs_core::testing::CallCounter;
use ecs_core::{Action, Event, EventLog};
use ecs_e2e_tests::{context, default_group_rules, ec2, tagged_counts};
use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkSpec};
use serde_json::json;

fn spec(cidr: &str, nat: NatStrategy) -> NetworkSpec {
    NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .cidr(cidr.parse().unwrap())
                .nat(nat)
                .build(),
        ))
        .container_port(8080)
        .build()
}

fn count(counts: &[(&str, usize)], kind: &str) -> usize {
    counts
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, n)| *n)
        .unwrap()
}

#[tokio::test]
async fn create_noop_change_destroy() {
    let counter = CallCounter::new();
    let ec2 = ec2(&counter).await;
    let events = EventLog::new();
    let ctx = context("e2e-lifecycle", &events);
    let net = NetworkLayer::from_client(ec2.clone());

    // A VPC that is not the stack's: it must survive everything below.
    let bystander = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap();
    let bystander = bystander.vpc().unwrap().vpc_id().unwrap().to_string();
    // AWS (and the emulator) give every new VPC a default group with rules.
    let (ingress, egress) = default_group_rules(&bystander).expect("a default group");
    let bystander_rules = (ingress.clone(), egress.clone());
    assert_ne!((ingress, egress), (json!([]), json!([])));

    // Create.
    let plan = net
        .plan(&ctx, &spec("10.10.0.0/16", NatStrategy::Single))
        .await
        .unwrap();
    let s = plan.changes().summary();
    // The 13 resources the stack makes, and the default group AWS makes with the VPC, which
    // the stack strips of its rules.
    assert_eq!(
        (s.create, s.update, s.delete, s.replace),
        (14, 0, 0, 0),
        "{plan}"
    );
    let outputs = net.apply(&ctx, &plan).await.unwrap();
    // The stack's VPC's default group has no rules left (EC2.2), as boto3 sees it.
    assert_eq!(
        default_group_rules(&outputs.vpc_id),
        Some((json!([]), json!([])))
    );
    net.wait_ready(&ctx, &outputs, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(outputs.public_subnets.len(), 2);
    assert_eq!(outputs.private_subnets.len(), 2);
    assert_eq!(outputs.nat_gateways.len(), 1);
    assert_eq!(outputs.availability_zones, ["us-east-1a", "us-east-1b"]);
    let counts = tagged_counts(&ec2, "e2e-lifecycle").await;
    assert_eq!(
        counts,
        [
            ("vpc", 1),
            ("subnet", 4),
            ("internet-gateway", 1),
            ("route-table", 3),
            ("elastic-ip", 1),
            ("nat-gateway", 1),
            ("security-group", 2)
        ]
    );
    assert!(events
        .events()
        .iter()
        .any(|e| matches!(e, Event::Done { .. })));

    // The task group admits only the ALB group on the container port.
    let groups = ec2
        .describe_security_groups()
        .group_ids(&outputs.task_sg)
        .send()
        .await
        .unwrap();
    let ingress = groups.security_groups()[0].ip_permissions();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].from_port(), Some(8080));
    assert!(ingress[0].ip_ranges().is_empty());
    assert_eq!(
        ingress[0].user_id_group_pairs()[0].group_id(),
        Some(outputs.alb_sg.as_str())
    );

    // No-op: the plan is empty and applying it makes zero mutating calls.
    counter.reset();
    let plan = net
        .plan(&ctx, &spec("10.10.0.0/16", NatStrategy::Single))
        .await
        .unwrap();
    assert!(plan.is_empty(), "{plan}");
    let again = net.apply(&ctx, &plan).await.unwrap();
    assert_eq!(again, outputs);
    assert_eq!(
        counter.mutating(),
        [],
        "a no-op redeploy must not change anything"
    );
    let reads = counter.calls().len();
    assert!(reads <= 12, "{reads} read calls for a no-op plan + apply");

    // Change: one NAT gateway per zone.
    let plan = net
        .plan(&ctx, &spec("10.10.0.0/16", NatStrategy::PerAz))
        .await
        .unwrap();
    let creates: Vec<&str> = plan
        .changes()
        .pending()
        .filter(|c| c.action == Action::Create)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(creates, ["eip/us-east-1b", "nat/us-east-1b"], "{plan}");
    let updated: Vec<&str> = plan
        .changes()
        .pending()
        .filter(|c| matches!(c.action, Action::Update(_)))
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(updated, ["rt/private/us-east-1b"], "{plan}");
    counter.reset();
    let outputs = net.apply(&ctx, &plan).await.unwrap();
    assert_eq!(outputs.nat_gateways.len(), 2);
    let mutating: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(
        mutating,
        ["AllocateAddress", "CreateNatGateway", "ReplaceRoute"]
    );
    assert!(net
        .plan(&ctx, &spec("10.10.0.0/16", NatStrategy::PerAz))
        .await
        .unwrap()
        .is_empty());

    // Back to a single NAT: the second one is deleted and its address released.
    let plan = net
        .plan(&ctx, &spec("10.10.0.0/16", NatStrategy::Single))
        .await
        .unwrap();
    let deletes = plan.changes().summary().delete;
    assert_eq!(deletes, 2, "{plan}");
    net.apply(&ctx, &plan).await.unwrap();
    assert_eq!(
        count(&tagged_counts(&ec2, "e2e-lifecycle").await, "nat-gateway"),
        1
    );

    // Destroy: nothing with the stack's tag remains; the bystander VPC is untouched.
    let doomed = net.plan_destroy(&ctx).await.unwrap();
    assert_eq!(doomed.summary().delete, 13, "{doomed}");
    net.destroy(&ctx).await.unwrap();
    assert!(tagged_counts(&ec2, "e2e-lifecycle")
        .await
        .iter()
        .all(|(_, n)| *n == 0));
    assert!(net.inventory(&ctx).await.unwrap().is_empty());
    let still = ec2
        .describe_vpcs()
        .vpc_ids(&bystander)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.vpcs().len(),
        1,
        "a VPC without the stack's tag was touched"
    );
    assert_eq!(
        default_group_rules(&bystander),
        Some(bystander_rules),
        "the default group of a VPC without the stack's tag was changed"
    );
    // Destroying again is a no-op.
    net.destroy(&ctx).await.unwrap();
}

#[tokio::test]
async fn two_stacks_side_by_side_do_not_touch_each_other() {
    let counter = CallCounter::new();
    let ec2 = ec2(&counter).await;
    let events = EventLog::new();
    let (a, b) = (
        context("e2e-side-a", &events),
        context("e2e-side-b", &events),
    );
    let net = NetworkLayer::from_client(ec2.clone());
    let (spec_a, spec_b) = (
        spec("10.20.0.0/16", NatStrategy::Single),
        spec("10.21.0.0/16", NatStrategy::None),
    );
    // NatStrategy::None needs endpoints; use a single NAT for b too but a different CIDR.
    let spec_b = NetworkSpec {
        vpc: spec_a.vpc.clone(),
        ..spec_b
    };
    let (pa, pb) = tokio::join!(net.plan(&a, &spec_a), net.plan(&b, &spec_b));
    let (pa, pb) = (pa.unwrap(), pb.unwrap());
    let (oa, ob) = tokio::join!(net.apply(&a, &pa), net.apply(&b, &pb));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    assert_ne!(oa.vpc_id, ob.vpc_id);

    let before_b = net.inventory(&b).await.unwrap();
    net.destroy(&a).await.unwrap();
    assert!(net.inventory(&a).await.unwrap().is_empty());
    assert_eq!(
        net.inventory(&b).await.unwrap(),
        before_b,
        "destroying a touched b"
    );
    assert!(net.plan(&b, &spec_b).await.unwrap().is_empty());
    net.destroy(&b).await.unwrap();
    assert!(net.inventory(&b).await.unwrap().is_empty());
}

#[tokio::test]
async fn existing_vpc_gets_only_security_groups() {
    let counter = CallCounter::new();
    let ec2 = ec2(&counter).await;
    let events = EventLog::new();
    let ctx = context("e2e-existing", &events);
    let net = NetworkLayer::from_client(ec2.clone());

    let vpc = ec2
        .create_vpc()
        .cidr_block("10.30.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b", "us-east-1a", "us-east-1b"]
        .iter()
        .enumerate()
    {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.30.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let spec = NetworkSpec::builder()
        .vpc(Network::existing(
            &vpc_id,
            subnets[..2].to_vec(),
            subnets[2..].to_vec(),
        ))
        .container_port(3000)
        .build();
    let plan = net.plan(&ctx, &spec).await.unwrap();
    let kinds: Vec<&str> = plan
        .changes()
        .pending()
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(kinds, ["security-group", "security-group"], "{plan}");
    let rules_before = default_group_rules(&vpc_id);
    assert!(rules_before.is_some());
    let outputs = net.apply(&ctx, &plan).await.unwrap();
    assert_eq!(outputs.vpc_id, vpc_id);
    assert_eq!(outputs.private_subnets, subnets[2..]);
    assert!(net.plan(&ctx, &spec).await.unwrap().is_empty());
    // An imported VPC is never changed: its default group keeps its rules.
    assert_eq!(default_group_rules(&vpc_id), rules_before);

    net.destroy(&ctx).await.unwrap();
    assert!(net.inventory(&ctx).await.unwrap().is_empty());
    let left = ec2
        .describe_subnets()
        .subnet_ids(&subnets[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.subnets().len(),
        1,
        "the user's subnets are not the stack's to delete"
    );

    // An unknown subnet is reported as such.
    let bad = NetworkSpec::builder()
        .vpc(Network::existing(
            &vpc_id,
            [subnets[0].clone(), "subnet-0000000000".into()],
            subnets[2..].to_vec(),
        ))
        .container_port(3000)
        .build();
    let err = net.plan(&ctx, &bad).await.unwrap_err();
    assert!(matches!(err, ecs_net::Error::NotFound(_)), "{err}");
}
