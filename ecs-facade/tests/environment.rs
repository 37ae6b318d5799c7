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

fn example(name: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn an_environment_manifest_gives_one_stack_per_service_inheriting_profile_and_tags() {
    use ecs_facade::{Deployment, Root};
    let d = Deployment::from_manifest_text(&example("environment.yml"), "environment.yml").unwrap();
    assert_eq!(d.environment_name(), "shop-env");
    let Some(Root::Environment(env)) = &d.root else {
        panic!("{:?}", d.root)
    };
    assert!(env.network_spec().shared);
    let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shop-env-api", "shop-env-web", "shop-env-worker"]);
    let api = d.service("api").unwrap();
    let placement = api.service.environment.as_ref().unwrap();
    assert_eq!(placement.environment, "shop-env");
    assert_eq!(placement.routes, vec![Route::paths(["/api/*"])]);
    assert_eq!(api.service.service.desired_count, 2);
    assert_eq!(api.tags.get("team"), Some("shop"));
    assert!(api.network.is_none());
    let worker = d.service("worker").unwrap();
    let placement = worker.service.environment.as_ref().unwrap();
    assert!(placement.routes.is_empty());
    assert!(worker.service.task.containers[0].ports.is_empty());
    assert!(!worker.service.has_load_balancer());

    // The environment's profile, unless the service sets its own.
    let yaml = "name: shop\nprofile: prod\nservices:\n  api:\n    image: nginx\n    path: /api/*\n  tool:\n    profile: dev\n    type: worker\n    image: busybox\n";
    let d = Deployment::from_manifest_text(yaml, "m.yml").unwrap();
    assert_eq!(d.service("api").unwrap().service.task.cpu, 512);
    assert_eq!(d.service("tool").unwrap().service.task.cpu, 256);
}

#[test]
fn a_stacks_manifest_stays_a_stack_and_an_environments_is_not_one() {
    use ecs_facade::{Deployment, Root};
    for file in ["dev.yml", "prod.yml", "existing-vpc.yml"] {
        let d = Deployment::from_manifest_text(&example(file), file).unwrap();
        let Some(Root::Stack(stack)) = &d.root else {
            panic!("{file}: {:?}", d.root)
        };
        assert!(d.services.is_empty());
        // Exactly as `Stack::from_manifest` reads it: nothing changes for its deploys.
        assert_eq!(
            **stack,
            Stack::from_manifest_text(&example(file), file).unwrap()
        );
        assert!(!stack.network.as_ref().unwrap().shared, "{file}");
    }
    let err =
        Stack::from_manifest_text(&example("environment.yml"), "environment.yml").unwrap_err();
    assert!(
        err.to_string().contains("Deployment::from_manifest"),
        "{err}"
    );
    // A stack's manifest with services: its network is shared with them.
    let yaml = format!(
        "{}services:\n  api:\n    image: nginx\n    path: /api/*\n",
        example("dev.yml")
    );
    let d = Deployment::from_manifest_text(&yaml, "dev.yml").unwrap();
    let Some(Root::Stack(stack)) = &d.root else {
        panic!()
    };
    assert!(stack.network.as_ref().unwrap().shared);
    assert_eq!(d.services[0].name, "shop-dev-api");
}

#[test]
fn misplaced_keys_and_missing_routes_are_named_at_their_lines() {
    use ecs_facade::Deployment;
    let yaml = "name: shop\nservices:\n  api:\n    image: nginx\n    network:\n      az_count: 3\n  web:\n    image: nginx\n  admin:\n    image: nginx\n    path: /admin/*\n    cpu: 300\n";
    let err = Deployment::from_manifest_text(yaml, "m.yml").unwrap_err();
    let Error::InvalidManifest(found) = &err else {
        panic!("{err}")
    };
    let at: Vec<(String, Option<usize>)> = found
        .problems
        .iter()
        .map(|p| (p.field.clone(), p.line))
        .collect();
    assert!(
        at.contains(&("services.api.network".to_string(), Some(5))),
        "{at:?}"
    );
    assert!(
        at.contains(&("services.web".to_string(), Some(7))),
        "{at:?}"
    );
    // Shape first: the CPU of `admin` is checked once the shape is right.
    let fixed =
        "name: shop\nservices:\n  admin:\n    image: nginx\n    path: /admin/*\n    cpu: 300\n";
    let err = Deployment::from_manifest_text(fixed, "m.yml").unwrap_err();
    let Error::InvalidManifest(found) = &err else {
        panic!("{err}")
    };
    assert_eq!(found.problems[0].field, "services.admin.cpu", "{err}");
    assert_eq!(found.problems[0].line, Some(6));

    let stack_with_route = "name: shop\nimage: nginx\npath: /api/*\n";
    let err = Deployment::from_manifest_text(stack_with_route, "m.yml").unwrap_err();
    assert!(
        err.to_string().contains("only a service of an environment"),
        "{err}"
    );
    let both = "name: api\nenvironment_name: shop\nimage: nginx\npath: /api/*\nservices:\n  x:\n    image: nginx\n";
    assert!(Deployment::from_manifest_text(both, "m.yml").is_err());
    // One service of an environment deployed from elsewhere.
    let one = "name: api\nenvironment_name: shop\nimage: nginx\npath: /api/*\n";
    let d = Deployment::from_manifest_text(one, "m.yml").unwrap();
    assert!(d.root.is_none());
    assert_eq!(d.services[0].name, "shop-api");
}

#[test]
fn a_services_key_on_an_environment_without_a_service_of_its_own_is_refused_not_ignored() {
    use ecs_facade::Deployment;
    let yaml = "name: shop\ncpu: 512\nalarms:\n  actions: [arn:aws:sns:us-east-1:123456789012:ops]\nservices:\n  api:\n    image: nginx\n    path: /api/*\n";
    let err = Deployment::from_manifest_text(yaml, "m.yml").unwrap_err();
    let Error::InvalidManifest(found) = &err else {
        panic!("{err}")
    };
    let at: Vec<(&str, Option<usize>)> = found
        .problems
        .iter()
        .map(|p| (p.field.as_str(), p.line))
        .collect();
    assert_eq!(at, [("cpu", Some(2)), ("alarms", Some(3))], "{err}");
}

#[test]
fn kinds_and_names_that_cannot_work_are_refused_at_their_keys() {
    use ecs_facade::Deployment;
    let field = |yaml: &str| -> Vec<String> {
        match Deployment::from_manifest_text(yaml, "m.yml").unwrap_err() {
            Error::InvalidManifest(found) => found.problems.into_iter().map(|p| p.field).collect(),
            other => panic!("{other}"),
        }
    };
    // A backend's routes need the environment's internal load balancer.
    assert_eq!(
        field("name: shop\nservices:\n  orders:\n    type: backend\n    image: nginx\n    path: /orders/*\n"),
        ["services.orders.type"]
    );
    assert!(Deployment::from_manifest_text(
        "name: shop\ninternal_load_balancer: true\nservices:\n  orders:\n    type: backend\n    image: nginx\n    path: /orders/*\n",
        "m.yml"
    )
    .is_ok());
    // A worker takes no port or health check; a stack's own service is `<name>-app`.
    assert_eq!(
        field("name: shop\nservices:\n  jobs:\n    type: worker\n    image: busybox\n    port: 8080\n"),
        ["services.jobs.port"]
    );
    assert_eq!(
        field("name: shop\nimage: nginx\nservices:\n  app:\n    image: nginx\n    path: /a/*\n"),
        ["services.app"]
    );
    assert_eq!(
        field("name: shop\nimage: nginx\ninternal_load_balancer: true\nservices:\n  a:\n    image: nginx\n    path: /a/*\n"),
        ["internal_load_balancer"]
    );
}

#[tokio::test]
async fn an_operator_unlocks_an_environments_lease() {
    let aws = FakeAws::default();
    let deployer = Deployer::from_layers(aws.layers()).clock(FakeClock::new());
    let env = Environment::builder().name("shop").build();
    let _held = held_by_another_run(&aws, "shop").await;
    let err = deployer.deploy_environment(&env).await.unwrap_err();
    assert_eq!(held_scope(&err), "stack `shop`");
    let displaced = deployer.unlock_environment(&env).await.unwrap();
    assert_eq!(displaced.map(|h| h.run_id), Some("other-run".to_string()));
    assert!(deployer.deploy_environment(&env).await.is_ok());
}
