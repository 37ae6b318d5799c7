//! Environments through the facade against the stateful fakes (`ecs_facade::testing::FakeAws`):
//! an environment and a web service deployed into it, each under its own lease; services
//! deploy while another service's run holds its lease; a service gives way to a run that
//! writes its environment, and an environment's write waits for its services' runs — both
//! refused at once here (no waiting), naming the other run, before any change.

use std::sync::Arc;
use std::time::Duration;

use ecs_core::lease::{self, Holder, Lease, LeaseError, LeaseOptions, LeaseScope};
use ecs_core::{Context, FakeClock, StackName};
use ecs_facade::service::routing::Route;
use ecs_facade::service::{ContainerSpec, ServiceSpec, TaskSpec};
use ecs_facade::testing::FakeAws;
use ecs_facade::{Deployer, Environment, Error, Stack};

fn web(env: &Environment, name: &str, path: &str, image: &str) -> Stack {
    let spec = ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name(name)
                    .image(image)
                    .ports(vec![8080])
                    .build()])
                .build(),
        )
        .build();
    env.service(name, spec, vec![Route::paths([path])])
}

/// Another run, holding the lease of stack `name`.
async fn held_by_another_run(aws: &FakeAws, name: &str) -> Lease {
    let other = Context::builder()
        .stack(StackName::new(name).unwrap())
        .run_id("other-run")
        .build();
    lease::acquire(
        &other,
        Arc::new(aws.lease.clone()),
        &LeaseScope::stack(other.stack()),
        Holder::this_process(&other, "deploy", Duration::from_secs(300)),
        &LeaseOptions::default(),
    )
    .await
    .unwrap()
}

fn held_scope(err: &Error) -> String {
    match err {
        Error::Lease(e) => match &**e {
            LeaseError::Held { scope, holder } => {
                assert_eq!(holder.run_id, "other-run");
                scope.to_string()
            }
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn an_environment_and_its_services_each_hold_their_own_lease_and_exclude_each_other() {
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(FakeClock::new());
    let env = Environment::builder().name("shop").build();

    let made = deployer.deploy_environment(&env).await.unwrap();
    assert_eq!(made.lease, Some(1));
    assert!(made.changes.find("load-balancer", "shop-alb").is_some());
    assert!(made.changes.find("ecs-cluster", "shop").is_some());
    // Again: nothing to do, no lease taken.
    let again = deployer.deploy_environment(&env).await.unwrap();
    assert_eq!(again.lease, None);
    assert!(again.changes.is_empty(), "{}", again.changes);

    let api = web(&env, "api", "/api/*", "nginx:1.27");
    let report = deployer.deploy(&api).await.unwrap();
    assert_eq!(report.lease, Some(1));
    assert!(report.changes.find("ecs-cluster", "shop").is_none());
    assert!(report
        .outputs
        .service
        .url
        .as_deref()
        .is_some_and(|u| u.ends_with("/api/")));

    // Another service's run holds its lease: this one deploys all the same.
    let other_service = held_by_another_run(&aws, "shop-admin").await;
    let admin = web(&env, "web", "/*", "nginx:1.27");
    deployer.deploy(&admin).await.unwrap();

    // The environment's write waits for its services' runs: refused at once here.
    let bigger = Environment::builder()
        .name("shop")
        .shared(
            ecs_facade::service::environment::EnvironmentSpec::builder()
                .internal_load_balancer(ecs_facade::service::environment::FrontSpec::http())
                .build(),
        )
        .build();
    // (The service `shop-admin` holding its lease runs in the cluster for this check.)
    let admin_in_cluster = web(&env, "admin", "/admin/*", "nginx:1.27");
    other_service
        .release(
            &Context::builder()
                .stack(StackName::new("shop-admin").unwrap())
                .build(),
        )
        .await
        .unwrap();
    deployer.deploy(&admin_in_cluster).await.unwrap();
    let _other_service = held_by_another_run(&aws, "shop-admin").await;
    aws.journal.clear();
    let err = deployer.deploy_environment(&bigger).await.unwrap_err();
    assert_eq!(held_scope(&err), "stack `shop-admin`");
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );
    // The environment's own lease was let go.
    let env_scope = LeaseScope::stack(&StackName::new("shop").unwrap());
    assert!(aws
        .lease
        .generations(&env_scope)
        .iter()
        .all(|g| g.holder.released));

    // A run that writes the environment holds its lease: a service gives way, refused at
    // once here, and lets its own lease go.
    drop(_other_service);
    let _env_run = held_by_another_run(&aws, "shop").await;
    let changed = web(&env, "api", "/api/*", "nginx:1.28");
    aws.journal.clear();
    let err = deployer.deploy(&changed).await.unwrap_err();
    assert_eq!(held_scope(&err), "stack `shop`");
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );
    let api_scope = LeaseScope::stack(&StackName::new("shop-api").unwrap());
    assert!(aws
        .lease
        .generations(&api_scope)
        .iter()
        .all(|g| g.holder.released));
}

#[tokio::test]
async fn a_service_of_an_environment_that_is_not_deployed_is_refused_before_any_change() {
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(FakeClock::new());
    let env = Environment::builder().name("shop").build();
    let api = web(&env, "api", "/api/*", "nginx:1.27");
    let err = deployer.deploy(&api).await.unwrap_err();
    assert!(
        err.to_string().contains("environment shop is not deployed"),
        "{err}"
    );
    assert!(
        aws.journal.mutating().is_empty(),
        "{:?}",
        aws.journal.mutating()
    );
}
