//! Crash-safe convergence, end to end against the emulator with a [`FaultInjector`]: for
//! every K from 1 to the number of mutating calls of a full deploy of a `prod` stack (NAT per
//! zone, autoscaling, six alarms, the dashboard; HTTP only, as the emulator holds no
//! certificate for it), the K-th mutating call
//! reaches the emulator and then fails with a non-retryable error; a second deploy without
//! faults must converge to exactly the inventory of a clean deploy (nothing duplicated,
//! nothing missing), and destroy must leave nothing. The same for destroy interrupted at every
//! K and then completed. And with a fifth of all requests throttled (answered without
//! reaching the emulator) and latency added, deploy, a no-op redeploy and destroy succeed.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use ecs_core::testing::{Call, Chaos, FaultInjector, INJECTED_FAULT};
use ecs_core::{EventLog, OWNER_TAG};
use ecs_e2e_tests::emulator;
use ecs_facade::testing::{emulator_layers_with, Harness};
use ecs_facade::{Deployer, DestroyOptions, Stack};

const ALL: DestroyOptions = DestroyOptions {
    force_delete_images: true,
    delete_logs: true,
};

fn stack(name: &str) -> Stack {
    Stack::from_manifest(&format!(
        "name: {name}\nprofile: prod\nimage: nginx:1.27\nport: 8080\nalarms:\n  actions: [arn:aws:sns:us-east-1:123456789012:ops]\n"
    ))
    .unwrap()
}

/// Everything the stack owns, by kind: EC2 resources by tag, the rest by name, counted with
/// plain describe calls (independently of the layers' own observation).
async fn inventory(name: &str) -> BTreeMap<&'static str, usize> {
    let config = emulator().sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let f = || {
        Filter::builder()
            .name(format!("tag:{OWNER_TAG}"))
            .values(name)
            .build()
    };
    let mut out = BTreeMap::new();
    out.insert(
        "vpc",
        ec2.describe_vpcs()
            .filters(f())
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
    );
    out.insert(
        "subnet",
        ec2.describe_subnets()
            .filters(f())
            .send()
            .await
            .unwrap()
            .subnets()
            .len(),
    );
    out.insert(
        "igw",
        ec2.describe_internet_gateways()
            .filters(f())
            .send()
            .await
            .unwrap()
            .internet_gateways()
            .len(),
    );
    out.insert(
        "route-table",
        ec2.describe_route_tables()
            .filters(f())
            .send()
            .await
            .unwrap()
            .route_tables()
            .len(),
    );
    out.insert(
        "eip",
        ec2.describe_addresses()
            .filters(f())
            .send()
            .await
            .unwrap()
            .addresses()
            .len(),
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(f())
        .send()
        .await
        .unwrap();
    out.insert(
        "nat",
        nats.nat_gateways()
            .iter()
            .filter(|n| matches!(n.state().map(|s| s.as_str()), Some("pending" | "available")))
            .filter(|n| {
                n.tags()
                    .iter()
                    .any(|t| t.key() == Some(OWNER_TAG) && t.value() == Some(name))
            })
            .count(),
    );
    out.insert(
        "sg",
        ec2.describe_security_groups()
            .filters(f())
            .send()
            .await
            .unwrap()
            .security_groups()
            .len(),
    );
    let ecr = aws_sdk_ecr::Client::new(&config);
    out.insert(
        "repository",
        ecr.describe_repositories()
            .repository_names(format!("{name}-app"))
            .send()
            .await
            .map_or(0, |o| o.repositories().len()),
    );
    let iam = aws_sdk_iam::Client::new(&config);
    let mut roles = 0;
    for r in ["execution", "task"] {
        if let Ok(role) = iam.get_role().role_name(format!("{name}-{r}")).send().await {
            roles += 1;
            let policies = iam
                .list_role_policies()
                .role_name(format!("{name}-{r}"))
                .send()
                .await
                .unwrap();
            *out.entry("inline-policy").or_default() += policies.policy_names().len();
            assert!(role.role().is_some());
        }
    }
    out.insert("role", roles);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let clusters = ecs.describe_clusters().clusters(name).send().await.unwrap();
    out.insert(
        "cluster",
        clusters
            .clusters()
            .iter()
            .filter(|c| c.status() == Some("ACTIVE"))
            .count(),
    );
    let tds = ecs
        .list_task_definitions()
        .family_prefix(format!("{name}-app"))
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    out.insert("task-definition", tds.task_definition_arns().len());
    let services = ecs
        .describe_services()
        .cluster(name)
        .services(format!("{name}-app"))
        .send()
        .await
        .map_or(0, |o| {
            o.services()
                .iter()
                .filter(|s| s.status() == Some("ACTIVE"))
                .count()
        });
    out.insert("service", services);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let ours: Vec<String> = lbs
        .load_balancers()
        .iter()
        .filter(|l| l.load_balancer_name() == Some(format!("{name}-alb").as_str()))
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .collect();
    out.insert("load-balancer", ours.len());
    let mut listeners = 0;
    for arn in &ours {
        listeners += elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .unwrap()
            .listeners()
            .len();
    }
    out.insert("listener", listeners);
    out.insert(
        "target-group",
        elb.describe_target_groups()
            .names(format!("{name}-app"))
            .send()
            .await
            .map_or(0, |o| o.target_groups().len()),
    );
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    out.insert(
        "alarm",
        cw.describe_alarms()
            .alarm_name_prefix(format!("{name}-"))
            .send()
            .await
            .unwrap()
            .metric_alarms()
            .len(),
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    out.insert(
        "log-group",
        logs.describe_log_groups()
            .log_group_name_prefix(format!("/ecs/{name}"))
            .send()
            .await
            .unwrap()
            .log_groups()
            .len(),
    );
    out
}

/// Shown with `cargo test -- --nocapture`: the K ranges of this run, for the README.
#[allow(clippy::print_stderr)]
fn report(line: &str) {
    eprintln!("{line}");
}

fn nothing(inv: &BTreeMap<&'static str, usize>) -> bool {
    inv.values().all(|n| *n == 0)
}

async fn deployer(faults: &FaultInjector) -> Deployer {
    let harness = Harness {
        faults: faults.clone(),
        ..Harness::default()
    };
    Deployer::from_layers(emulator_layers_with(emulator(), &harness).await).events(EventLog::new())
}

#[tokio::test]
async fn deploy_and_destroy_converge_after_a_fault_at_every_mutating_call() {
    let faults = FaultInjector::new();
    let d = deployer(&faults).await;

    // A clean run: its inventory is the reference, and its mutating calls the K range.
    let reference = stack("fk-ref");
    faults.disarm();
    d.deploy(&reference).await.unwrap();
    let deploy_calls = faults.mutating_calls();
    let clean = inventory("fk-ref").await;
    assert!(clean.values().sum::<usize>() > 20, "{clean:?}");
    faults.disarm();
    d.destroy(&reference, ALL).await.unwrap();
    let destroy_calls = faults.mutating_calls();
    assert!(nothing(&inventory("fk-ref").await));
    assert!(
        deploy_calls > 30 && destroy_calls > 20,
        "{deploy_calls} {destroy_calls}"
    );
    report(&format!(
        "K covers 1..={deploy_calls} for deploy and 1..={destroy_calls} for destroy"
    ));

    for k in 1..=deploy_calls {
        let name = format!("fk-d{k}");
        let s = stack(&name);
        faults.fail_mutating_call(k);
        let err = d
            .deploy(&s)
            .await
            .expect_err("the injected fault fails the deploy");
        assert!(format!("{err:?}").contains(INJECTED_FAULT), "K={k}: {err}");
        faults.disarm();
        d.deploy(&s)
            .await
            .unwrap_or_else(|e| panic!("K={k}: the second deploy failed: {e}"));
        let after = inventory(&name).await;
        assert_eq!(
            after,
            clean,
            "K={k} ({:?}): the inventory differs from a clean deploy",
            faults.injected().last()
        );
        d.destroy(&s, ALL)
            .await
            .unwrap_or_else(|e| panic!("K={k}: destroy failed: {e}"));
        assert!(
            nothing(&inventory(&name).await),
            "K={k}: destroy left {:?}",
            inventory(&name).await
        );
    }

    for k in 1..=destroy_calls {
        let name = format!("fk-x{k}");
        let s = stack(&name);
        faults.disarm();
        d.deploy(&s).await.unwrap();
        faults.fail_mutating_call(k);
        let err = d
            .destroy(&s, ALL)
            .await
            .expect_err("the injected fault fails the destroy");
        assert!(format!("{err:?}").contains(INJECTED_FAULT), "K={k}: {err}");
        faults.disarm();
        d.destroy(&s, ALL)
            .await
            .unwrap_or_else(|e| panic!("K={k}: the second destroy failed: {e}"));
        assert!(
            nothing(&inventory(&name).await),
            "K={k}: destroy left {:?}",
            inventory(&name).await
        );
    }
    assert_eq!(faults.injected().len(), deploy_calls + destroy_calls);
}

#[tokio::test]
async fn deploy_and_destroy_succeed_with_a_fifth_of_requests_throttled_and_added_latency() {
    // The reference: the same stack shape deployed without chaos.
    let plain = deployer(&FaultInjector::new()).await;
    plain.deploy(&stack("ft-ref")).await.unwrap();
    let clean = inventory("ft-ref").await;
    plain.destroy(&stack("ft-ref"), ALL).await.unwrap();

    let chaos = Chaos::new(20_261_122);
    chaos.set_throttle_rate(0.2);
    chaos.set_latency(Duration::from_millis(10));
    let harness = Harness {
        chaos: Some(chaos.clone()),
        ..Harness::default()
    };
    let d = Deployer::from_layers(emulator_layers_with(emulator(), &harness).await)
        .events(EventLog::new());
    let s = stack("ft-chaos");
    d.deploy(&s)
        .await
        .expect("deploy succeeds under throttling");
    assert_eq!(inventory("ft-chaos").await, clean);
    harness.counter.reset();
    d.deploy(&s)
        .await
        .expect("a redeploy succeeds under throttling");
    assert_eq!(
        harness.counter.mutating(),
        vec![],
        "retried throttled reads do not turn a no-op redeploy into changes"
    );
    d.destroy(&s, ALL)
        .await
        .expect("destroy succeeds under throttling");
    assert!(nothing(&inventory("ft-chaos").await));

    let throttled = chaos.throttled();
    let requests = chaos.requests();
    let mutating = throttled
        .iter()
        .filter(|t| {
            Call {
                service: t.service.clone(),
                operation: t.operation.clone(),
            }
            .is_mutating()
        })
        .count();
    let services: std::collections::BTreeSet<&str> =
        throttled.iter().map(|t| t.service.as_str()).collect();
    report(&format!(
        "throttling: {} of {requests} requests throttled ({mutating} of them mutating), services {services:?}",
        throttled.len()
    ));
    // About a fifth, across the services and on mutating calls too (seeded, so stable).
    assert!(
        throttled.len() * 100 >= requests * 15 && throttled.len() * 100 <= requests * 25,
        "{} of {requests}",
        throttled.len()
    );
    assert!(mutating > 5, "{mutating}");
    assert!(services.len() >= 6, "{services:?}");
}
