//! Crash-safe convergence, end to end against the emulator with a [`FaultInjector`]: for
//! every K from 1 to the number of mutating calls of a full deploy of a `prod` stack (NAT per
//! zone, autoscaling, six alarms, the dashboard; HTTP only, as the emulator holds no
//! certificate for it), the K-th mutating call
//! reaches the emulator and then fails with a non-retryable error; a second deploy without
//! faults must converge to exactly the inventory of a clean deploy (nothing duplicated,
//! nothing missing), and destroy must leave nothing. The same for destroy interrupted at every
//! K and then completed. And with a fifth of all requests throttled (answered without
//! reaching the emulator) and latency added, deploy, a no-op redeploy and destroy succeed.

use std::time::Duration;

use ecs_core::testing::{Call, Chaos, FaultInjector, INJECTED_FAULT};
use ecs_core::EventLog;
use ecs_e2e_tests::{emulator, inventory, leftovers_by_name, nothing};
use ecs_facade::testing::{emulator_layers_with, Harness};
use ecs_facade::{Deployer, DestroyOptions, Stack};

const ALL: DestroyOptions = DestroyOptions::everything();

fn stack(name: &str) -> Stack {
    Stack::from_manifest(&format!(
        "name: {name}\nprofile: prod\nimage: nginx:1.27\nport: 8080\nalarms:\n  actions: [arn:aws:sns:us-east-1:123456789012:ops]\n"
    ))
    .unwrap()
}

/// Shown with `cargo test -- --nocapture`: the K ranges of this run, for the README.
#[allow(clippy::print_stderr)]
fn report(line: &str) {
    eprintln!("{line}");
}

async fn deployer(faults: &FaultInjector) -> Deployer {
    let harness = Harness {
        faults: faults.clone(),
        ..Harness::default()
    };
    ecs_e2e_tests::sns_topic("ops").await;
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
    assert_eq!(leftovers_by_name("fk-ref").await, Vec::<String>::new());
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
        assert_eq!(
            leftovers_by_name(&name).await,
            Vec::<String>::new(),
            "K={k}: destroy left named resources"
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
        assert_eq!(
            leftovers_by_name(&name).await,
            Vec::<String>::new(),
            "K={k}: destroy left named resources"
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
    ecs_e2e_tests::sns_topic("ops").await;
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
    assert_eq!(leftovers_by_name("ft-chaos").await, Vec::<String>::new());

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

/// A service of environment `env` on `/api/*`, with autoscaling and alarms (prod).
fn env_service(env: &ecs_facade::Environment, name: &str) -> Stack {
    let d = ecs_facade::Deployment::from_manifest(&format!(
        "name: {}\nprofile: prod\nservices:\n  {name}:\n    image: nginx:1.27\n    port: 8080\n    path: /api/*\n    alarms:\n      actions: [arn:aws:sns:us-east-1:123456789012:ops]\n",
        env.name
    ))
    .unwrap();
    d.services[0].clone()
}

#[tokio::test]
async fn a_service_deploy_into_an_existing_environment_converges_after_a_fault_at_every_mutating_call(
) {
    use ecs_e2e_tests::inventory_in;
    let faults = FaultInjector::new();
    let d = deployer(&faults).await;
    faults.disarm();
    let env = ecs_facade::Environment::builder().name("fk-env").build();
    d.deploy_environment(&env).await.unwrap();
    let env_before = inventory("fk-env").await;

    // A clean deploy of the service: its inventory is the reference, its calls the K range.
    let reference = env_service(&env, "ref");
    faults.disarm();
    d.deploy(&reference).await.unwrap();
    let calls = faults.mutating_calls();
    let clean = inventory_in("fk-env-ref", Some("fk-env")).await;
    assert_eq!(clean["listener-rule"], 1, "{clean:?}");
    assert!(calls > 15, "{calls}");
    report(&format!(
        "K covers 1..={calls} for a service deploy into an environment"
    ));
    d.destroy(&reference, ALL).await.unwrap();

    for k in 1..=calls {
        let s = env_service(&env, "ref");
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
        assert_eq!(
            inventory_in("fk-env-ref", Some("fk-env")).await,
            clean,
            "K={k} ({:?}): the inventory differs from a clean deploy",
            faults.injected().last()
        );
        d.destroy(&s, ALL)
            .await
            .unwrap_or_else(|e| panic!("K={k}: destroy failed: {e}"));
        assert!(
            nothing(&inventory_in("fk-env-ref", Some("fk-env")).await),
            "K={k}"
        );
    }
    // The environment was never changed.
    assert_eq!(inventory("fk-env").await, env_before);
    d.destroy_environment(&env).await.unwrap();
    assert!(nothing(&inventory("fk-env").await));
}
