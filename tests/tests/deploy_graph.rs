//! The shape of a deploy's dependency graph, end to end against the emulator through the
//! simulation layer ([`Chaos`]: latency on every call; NAT gateways, the load balancer and
//! each deployment provisioning on a clock 100× faster than real time). The assertions are
//! about the order of calls in the recorded trace, never about how long anything took, and
//! every "while" is made a cause by a gate, so that no ordering depends on how fast this
//! machine runs: an answer or a readiness is held until the calls that must not wait for it
//! have been sent (code that waited for it would break the gate, which the test checks):
//!
//! * create: every layer is read before anything is changed; the NAT gateways do not wait for
//!   the security groups' rules; the load balancer is created before the NAT gateways are
//!   available and the service only after; autoscaling, alarms and the dashboard are made
//!   while the rollout runs, which is waited for once;
//! * no-op redeploy: every read that needs no other read's answer is sent before the first
//!   answer arrives; no mutating call;
//! * image rollout: exactly `RegisterTaskDefinition` and `UpdateService`;
//! * destroy: independent deletions are in flight together.

use std::time::Duration;

use ecs_core::testing::{Chaos, Provisioned, Provisioning, Readiness, ScaledClock, TracedCall};
use ecs_core::EventLog;
use ecs_e2e_tests::{emulator, inventory, leftovers_by_name, nothing};
use ecs_facade::testing::{emulator_layers_with, Harness};
use ecs_facade::{Deployer, DestroyOptions, Stack};

const ALL: DestroyOptions = DestroyOptions::everything();

fn stack(name: &str, image: &str) -> Stack {
    Stack::from_manifest(&format!(
        "name: {name}\nprofile: prod\nimage: {image}\nport: 8080\nalarms:\n  actions: [arn:aws:sns:us-east-1:123456789012:ops]\n"
    ))
    .unwrap()
}

/// The calls of `trace` named `operation`, in the order they were sent.
fn calls<'a>(trace: &'a [TracedCall], operation: &str) -> Vec<&'a TracedCall> {
    let mut v: Vec<&TracedCall> = trace
        .iter()
        .filter(|c| c.operation == operation && !c.throttled)
        .collect();
    v.sort_by_key(|c| c.start);
    v
}

fn first<'a>(trace: &'a [TracedCall], operation: &str) -> &'a TracedCall {
    calls(trace, operation)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {operation} in the trace"))
}

/// The first call named `operation` that saw its resources ready.
fn first_ready<'a>(trace: &'a [TracedCall], operation: &str) -> &'a TracedCall {
    calls(trace, operation)
        .into_iter()
        .find(|c| matches!(c.readiness, Readiness::Ready(_)))
        .unwrap_or_else(|| panic!("no {operation} saw its resources ready"))
}

/// The reads of a deploy that need no other read's answer (each layer's first reads).
const FIRST_READS: [&str; 15] = [
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeNatGateways",
    "DescribeSecurityGroups",
    "DescribeRepositories",
    "GetRole",
    "DescribeClusters",
    "DescribeTaskDefinition",
    "DescribeLoadBalancers",
    "DescribeTargetGroups",
    "DescribeServices",
    "DescribeScalableTargets",
    "DescribeLogGroups",
    "DescribeAlarms",
    "GetDashboard",
];

#[tokio::test]
async fn deploys_overlap_independent_work_and_wait_only_where_they_must() {
    let chaos = Chaos::new(7);
    chaos.set_latency(Duration::from_millis(20));
    chaos.set_provisioning(Provisioning {
        nat_gateway: Duration::from_millis(300),
        load_balancer: Duration::from_millis(600),
        rollout: Duration::from_millis(400),
    });
    let harness = Harness {
        chaos: Some(chaos.clone()),
        ..Harness::default()
    };
    ecs_e2e_tests::sns_topic("ops").await;
    let d = Deployer::from_layers(emulator_layers_with(emulator(), &harness).await)
        .events(EventLog::new())
        .clock(ScaledClock::new(100.0))
        // The scaled clock runs this run's time faster than the lease store's (the emulator's
        // real time): a long time to live keeps the lease's renewals out of what is measured.
        .lease(
            ecs_core::lease::LeaseOptions::builder()
                .ttl(Duration::from_secs(86_400))
                .build(),
        );
    let (v1, v2) = (stack("dg", "nginx:1.27"), stack("dg", "nginx:1.28"));

    // Create. The NAT gateways' creation does not wait for the security groups' rules, so
    // the rules are answered only once it was sent; the NAT gateways are available only once
    // the load balancer was asked for (it provisions while they do); the rollout completes
    // only once autoscaling, the alarms and the dashboard were asked for.
    chaos.start_trace();
    chaos.hold_answers(&["AuthorizeSecurityGroupEgress"], &["CreateNatGateway"]);
    chaos.hold_ready(Provisioned::NatGateway, &["CreateLoadBalancer"]);
    chaos.hold_ready(
        Provisioned::Rollout,
        &["RegisterScalableTarget", "PutMetricAlarm", "PutDashboard"],
    );
    // The service is never created before the log group its tasks write to: an answer to
    // CreateLogGroup held until CreateService is sent is released only by the gate's timeout
    // (the one broken gate; a service that did not wait would have opened it).
    chaos.hold_answers(&["CreateLogGroup"], &["CreateService"]);
    d.deploy(&v1).await.expect("create");
    assert_eq!(
        chaos.broken_gates(),
        ["CreateLogGroup answered after CreateService"]
    );
    chaos.clear_gates();
    let t = chaos.trace();
    let first_change = t
        .iter()
        .filter(|c| c.is_mutating())
        .map(|c| c.start)
        .min()
        .expect("a create changes something");
    for op in FIRST_READS {
        assert!(
            first(&t, op).start < first_change,
            "{op} was not read before the first change"
        );
    }
    // The NAT gateways need their subnet, address and the attached internet gateway only.
    let nat = first(&t, "CreateNatGateway");
    assert!(first(&t, "AttachInternetGateway").end <= nat.start);
    assert!(
        nat.start < first(&t, "AuthorizeSecurityGroupEgress").end,
        "the NAT gateways waited for the security groups' rules"
    );
    // The load balancer provisions while the NAT gateways do, and does not wait for the log
    // group; the service waits for both.
    let nat_ready = first_ready(&t, "DescribeNatGateways");
    assert!(first(&t, "CreateLoadBalancer").start < nat_ready.start);
    assert!(nat_ready.end <= first(&t, "CreateService").start);
    assert!(first(&t, "CreateLoadBalancer").start < first(&t, "CreateLogGroup").end);
    assert!(first(&t, "CreateLogGroup").end <= first(&t, "CreateService").start);
    // Autoscaling, alarms and the dashboard while the rollout runs; the rollout waited once.
    let rolled_out = first_ready(&t, "DescribeServices");
    assert!(first(&t, "CreateService").end <= rolled_out.start);
    for op in ["RegisterScalableTarget", "PutMetricAlarm", "PutDashboard"] {
        assert!(
            first(&t, op).start < rolled_out.start,
            "{op} waited for the rollout"
        );
    }
    let ready_polls = calls(&t, "DescribeServices")
        .into_iter()
        .filter(|c| c.start >= first(&t, "CreateService").end)
        .filter(|c| matches!(c.readiness, Readiness::Ready(_)))
        .count();
    assert_eq!(ready_polls, 1, "the rollout is waited for once");

    // No-op redeploy: the first reads all go out before any answer is back (every answer is
    // held until each of them was sent).
    chaos.start_trace();
    chaos.hold_answers(&[], &FIRST_READS);
    d.deploy(&v1).await.expect("no-op redeploy");
    assert_eq!(chaos.broken_gates(), Vec::<String>::new());
    chaos.clear_gates();
    let t = chaos.trace();
    assert_eq!(
        t.iter().filter(|c| c.is_mutating()).count(),
        0,
        "a no-op redeploy changes nothing"
    );
    assert!(t.len() <= 40, "{} reads", t.len());
    let first_answer = t.iter().map(|c| c.end).min().expect("reads");
    for op in FIRST_READS {
        assert!(
            first(&t, op).start < first_answer,
            "{op} waited for another read"
        );
    }

    // Image rollout: one new revision, one service update.
    chaos.start_trace();
    d.deploy(&v2).await.expect("image rollout");
    let mut mutating: Vec<String> = chaos
        .trace()
        .iter()
        .filter(|c| c.is_mutating())
        .map(|c| c.operation.clone())
        .collect();
    mutating.sort();
    assert_eq!(mutating, ["RegisterTaskDefinition", "UpdateService"]);

    // Destroy: independent deletions in flight together.
    chaos.start_trace();
    d.destroy(&v2, ALL).await.expect("destroy");
    let t = chaos.trace();
    let at_once = TracedCall::most_in_flight(&t, TracedCall::is_mutating);
    assert!(at_once >= 5, "at most {at_once} deletions at once");
    assert!(nothing(&inventory("dg").await));
    assert_eq!(leftovers_by_name("dg").await, Vec::<String>::new());
}
