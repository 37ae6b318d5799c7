//! Environments against the local AWS emulator: one environment (network, internet-facing and
//! internal load balancers, cluster) and web services deployed into it at once; their rules
//! ordered by specificity (read back with boto3); a redeploy of everything makes no mutating
//! call; the environment refuses destroy while it has services; destroying one service
//! leaves the other's rules and the environment as they were.

use ecs_core::testing::CallCounter;
use ecs_core::EventLog;
use ecs_e2e_tests::{boto3_json, emulator, inventory, inventory_in, nothing};
use ecs_facade::environment::Environment;
use ecs_facade::service::environment::{EnvironmentSpec, FrontSpec};
use ecs_facade::service::routing::Route;
use ecs_facade::service::{ContainerSpec, ServiceSpec, TaskSpec};
use ecs_facade::testing::emulator_layers;
use ecs_facade::{Deployer, DestroyOptions, Stack};

async fn deployer(counter: &CallCounter, events: &EventLog) -> Deployer {
    Deployer::from_layers(emulator_layers(emulator(), counter).await).events(events.clone())
}

fn environment(name: &str) -> Environment {
    Environment::builder()
        .name(name)
        .shared(
            EnvironmentSpec::builder()
                .load_balancer(FrontSpec::http())
                .internal_load_balancer(FrontSpec::http())
                .build(),
        )
        .build()
}

fn web(env: &Environment, name: &str, path: &str) -> Stack {
    let spec = ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name(name)
                    .image("public.ecr.aws/nginx/nginx-unprivileged:1.27")
                    .ports(vec![8080])
                    .build()])
                .build(),
        )
        .build();
    env.service(name, spec, vec![Route::paths([path])])
}

/// The rules on the load balancer `lb`'s listener on `port`, as boto3 reads them:
/// `(priority, path patterns, target group name)`, by priority.
fn rules(lb: &str, port: u16) -> Vec<(u64, Vec<String>, String)> {
    let found = boto3_json(&format!(
        "elb = boto3.client('elbv2')\n\
         lb = elb.describe_load_balancers(Names=['{lb}'])['LoadBalancers'][0]['LoadBalancerArn']\n\
         out = []\n\
         for l in elb.describe_listeners(LoadBalancerArn=lb)['Listeners']:\n\
         \x20   if l['Port'] != {port}: continue\n\
         \x20   for r in elb.describe_rules(ListenerArn=l['ListenerArn'])['Rules']:\n\
         \x20       if r['IsDefault']: continue\n\
         \x20       paths = [v for c in r['Conditions'] for v in c.get('PathPatternConfig', {{}}).get('Values', c.get('Values', []))]\n\
         \x20       tg = r['Actions'][0].get('TargetGroupArn', '').split(':targetgroup/')[-1].split('/')[0]\n\
         \x20       out.append([int(r['Priority']), sorted(set(paths)), tg])\n\
         print(json.dumps(sorted(out)))"
    ));
    serde_json::from_value(found).unwrap()
}

/// The listener default action's type and status on `lb`'s port `port`.
fn default_action(lb: &str, port: u16) -> (String, String) {
    let found = boto3_json(&format!(
        "elb = boto3.client('elbv2')\n\
         lb = elb.describe_load_balancers(Names=['{lb}'])['LoadBalancers'][0]['LoadBalancerArn']\n\
         l = [l for l in elb.describe_listeners(LoadBalancerArn=lb)['Listeners'] if l['Port'] == {port}][0]\n\
         a = l['DefaultActions'][0]\n\
         print(json.dumps([a['Type'], a.get('FixedResponseConfig', {{}}).get('StatusCode', '')]))"
    ));
    serde_json::from_value(found).unwrap()
}

#[tokio::test]
async fn web_services_share_the_environment_and_never_touch_each_other() {
    let (counter, events) = (CallCounter::new(), EventLog::new());
    let d = deployer(&counter, &events).await;
    let env = environment("e2e-env");
    let made = d.deploy_environment(&env).await.unwrap();
    assert!(!made.changes.is_empty());
    assert_eq!(
        default_action("e2e-env-alb", 80),
        ("fixed-response".to_string(), "404".to_string())
    );
    assert!(made.shared.internal_load_balancer.is_some());

    // Two web services deployed at once; the more specific path comes first.
    let (api, admin) = (
        web(&env, "api", "/api/*"),
        web(&env, "admin", "/api/admin/*"),
    );
    let (a, b) = tokio::join!(d.deploy(&api), d.deploy(&admin));
    let (a, b) = (a.unwrap(), b.unwrap());
    let url = a.outputs.service.url.clone().unwrap();
    assert!(url.ends_with("/api/"), "{url}");
    assert!(b.outputs.service.url.unwrap().ends_with("/api/admin/"));
    let before = rules("e2e-env-alb", 80);
    assert_eq!(before.len(), 2, "{before:?}");
    let admin_rule = before.iter().find(|r| r.2 == "e2e-env-admin").unwrap();
    let api_rule = before.iter().find(|r| r.2 == "e2e-env-api").unwrap();
    assert!(admin_rule.0 < api_rule.0, "{before:?}");
    assert_eq!(admin_rule.1, ["/api/admin/*"]);

    // A redeploy of everything changes nothing.
    counter.reset();
    d.deploy_environment(&env).await.unwrap();
    d.deploy(&api).await.unwrap();
    d.deploy(&admin).await.unwrap();
    assert!(counter.mutating().is_empty(), "{:?}", counter.mutating());

    // Moving a service to the internal load balancer is refused before any change: its
    // target group serves the internet-facing one.
    let mut moved = admin.clone();
    moved.service.environment.as_mut().unwrap().internal = true;
    let refused = d.plan(&moved).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            ecs_facade::Error::Service(ecs_facade::service::Error::Placement(_))
        ),
        "{refused}"
    );
    assert!(counter.mutating().is_empty(), "{:?}", counter.mutating());

    // A pinned priority moves the rule in place: one `SetRulePriorities`, no new rule.
    let mut pinned = admin.clone();
    pinned.service.environment.as_mut().unwrap().routes[0].priority = Some(5);
    d.deploy(&pinned).await.unwrap();
    let ops: Vec<String> = counter
        .mutating()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(ops, ["SetRulePriorities"], "{ops:?}");
    let admin_rule = rules("e2e-env-alb", 80)
        .into_iter()
        .find(|r| r.2 == "e2e-env-admin")
        .unwrap();
    assert_eq!(admin_rule.0, 5);
    let admin = pinned;
    counter.reset();

    // The environment cannot go while it has services, and says which.
    let refused = d.destroy_environment(&env).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains("e2e-env-admin") && text.contains("e2e-env-api"),
        "{text}"
    );
    assert!(counter.mutating().is_empty(), "{:?}", counter.mutating());

    // One service goes: the other's inventory, its rule and the environment's inventory stay
    // exactly as they were.
    let admin_before = inventory_in("e2e-env-admin", Some("e2e-env")).await;
    let env_before = inventory("e2e-env").await;
    assert_eq!(admin_before["listener-rule"], 1, "{admin_before:?}");
    assert_eq!(admin_before["service"], 1, "{admin_before:?}");
    d.destroy(&api, DestroyOptions::everything()).await.unwrap();
    assert_eq!(
        inventory_in("e2e-env-admin", Some("e2e-env")).await,
        admin_before
    );
    assert_eq!(inventory("e2e-env").await, env_before);
    assert!(nothing(&inventory_in("e2e-env-api", Some("e2e-env")).await));
    assert_eq!(rules("e2e-env-alb", 80), vec![admin_rule.clone()]);
    assert_eq!(
        default_action("e2e-env-alb", 80),
        ("fixed-response".to_string(), "404".to_string())
    );

    // Then the rest.
    d.destroy(&admin, DestroyOptions::everything())
        .await
        .unwrap();
    d.destroy_environment(&env).await.unwrap();
    let left = boto3_json(
        "print(json.dumps([l['LoadBalancerName'] for l in boto3.client('elbv2').describe_load_balancers()['LoadBalancers'] if l['LoadBalancerName'].startswith('e2e-env-')]))",
    );
    assert_eq!(left, serde_json::json!([]));
}

#[tokio::test]
async fn a_stack_deployed_alone_is_adopted_as_an_environment_without_a_replacement_or_a_deletion() {
    use ecs_core::Action;
    use ecs_facade::{Deployment, Root};
    let (counter, events) = (CallCounter::new(), EventLog::new());
    let d = deployer(&counter, &events).await;
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/dev.yml");
    let dev = std::fs::read_to_string(&path).unwrap().replacen(
        "name: shop-dev\n",
        "name: e2e-adopt\n",
        1,
    );
    // Deployed the way a single-service stack always was.
    let alone = Stack::from_manifest(&dev).unwrap();
    d.deploy(&alone).await.unwrap();

    // The same manifest with a service of the environment: the stack is its environment.
    let grown = format!("{dev}services:\n  api:\n    image: public.ecr.aws/nginx/nginx-unprivileged:1.27\n    port: 8080\n    path: /api/*\n");
    let deployment = Deployment::from_manifest(&grown).unwrap();
    let Some(Root::Stack(root)) = &deployment.root else {
        panic!("{:?}", deployment.root)
    };
    let plan = d.plan(root).await.unwrap();
    let destructive: Vec<String> = plan
        .pending()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace(_)))
        .map(|c| format!("{} {}", c.resource, c.id))
        .collect();
    assert!(destructive.is_empty(), "{plan}");
    // Only the security groups change: the load balancer reaches every port of the tasks.
    let updated: Vec<&str> = plan.pending().map(|c| c.resource.as_str()).collect();
    assert!(updated.iter().all(|r| *r == "security-group"), "{plan}");

    let report = d.deploy_all(&deployment).await.unwrap();
    assert_eq!(report.services.len(), 1);
    assert_eq!(rules("e2e-adopt-alb", 80).len(), 1);
    // The stack's own service still takes every other request.
    assert_eq!(default_action("e2e-adopt-alb", 80).0, "forward");
    counter.reset();
    d.deploy_all(&deployment).await.unwrap();
    assert!(counter.mutating().is_empty(), "{:?}", counter.mutating());

    // The stack cannot go before its services.
    let refused = d
        .destroy(root, DestroyOptions::everything())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ecs_facade::Error::Service(ecs_facade::service::Error::EnvironmentInUse { services, .. }) if services == &["e2e-adopt-api"]),
        "{refused}"
    );
    d.destroy_all(&deployment, DestroyOptions::everything())
        .await
        .unwrap();
    assert!(ecs_e2e_tests::nothing(
        &ecs_e2e_tests::inventory("e2e-adopt").await
    ));
}
