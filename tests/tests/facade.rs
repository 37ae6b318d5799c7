//! ecs-facade end to end against the local AWS emulator, through the library: every example
//! manifest deployed; a no-op redeploy with zero mutating calls; an image rollout that makes
//! exactly one `RegisterTaskDefinition` and one `UpdateService`; a dev → prod profile switch;
//! destroy leaving nothing tagged; manifest errors that make no AWS call.

use std::path::PathBuf;

use aws_sdk_ec2::types::Filter;
use ecs_core::testing::CallCounter;
use ecs_core::{Action, EventLog, OWNER_TAG};
use ecs_e2e_tests::{emulator, with_stand_ins};
use ecs_facade::testing::emulator_layers;
use ecs_facade::{Deployer, DestroyOptions, Stack};

fn manifest(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rename(yaml: &str, from: &str, to: &str) -> String {
    yaml.replacen(&format!("name: {from}\n"), &format!("name: {to}\n"), 1)
}

async fn deployer(counter: &CallCounter, events: &EventLog) -> Deployer {
    Deployer::from_layers(emulator_layers(emulator(), counter).await).events(events.clone())
}

/// Every resource kind that can carry the stack's tag, counted with plain describe calls.
async fn tagged(stack: &str) -> usize {
    let config = emulator().sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
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
    let sgs = ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap()
        .security_groups()
        .len();
    let ecs = aws_sdk_ecs::Client::new(&config);
    let clusters = ecs
        .describe_clusters()
        .clusters(stack)
        .send()
        .await
        .unwrap();
    let clusters = clusters
        .clusters()
        .iter()
        .filter(|c| c.status() == Some("ACTIVE"))
        .count();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let lbs = elb
        .describe_load_balancers()
        .names(format!("{stack}-alb"))
        .send()
        .await
        .map_or(0, |o| o.load_balancers().len());
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let alarms = cw
        .describe_alarms()
        .alarm_name_prefix(format!("{stack}-"))
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .len();
    let iam = aws_sdk_iam::Client::new(&config);
    let roles = iam
        .get_role()
        .role_name(format!("{stack}-execution"))
        .send()
        .await
        .map_or(0, |_| 1);
    vpcs + subnets + sgs + clusters + lbs + alarms + roles
}

#[tokio::test]
async fn prod_manifest_deploy_noop_rollout_destroy() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let d = deployer(&counter, &events).await;
    let yaml = with_stand_ins(&rename(&manifest("prod.yml"), "shop", "e2e-prod")).await;
    let stack = Stack::from_manifest(&yaml).unwrap();

    // Plan, then deploy.
    // Everything is created, the VPC's default security group included (AWS makes it with
    // the VPC; the stack strips it of its rules, EC2.2).
    let plan = d.plan(&stack).await.unwrap();
    let s = plan.summary();
    assert!(s.create >= 30 && s.update == 0 && s.delete == 0, "{plan}");
    assert!(plan
        .find("default-security-group", "default-sg")
        .is_some_and(|c| c.action == ecs_facade::Action::Create));
    let report = d.deploy(&stack).await.unwrap();
    let out = &report.outputs;
    assert!(
        out.service
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://e2e-prod-alb"),
        "{out:?}"
    );
    assert_eq!(
        out.network.nat_gateways.len(),
        2,
        "prod has a NAT gateway per zone"
    );
    assert_eq!(out.alarms.len(), 6);
    assert!(out.dashboard_url.is_some());
    assert_eq!(
        out.scaling_resource_id.as_deref(),
        Some("service/e2e-prod/e2e-prod-app")
    );
    assert!(
        report.rollout.is_some(),
        "the deploy waited for the rollout"
    );
    let kinds: Vec<String> = events
        .events()
        .iter()
        .map(|e| e.resource().split(' ').next().unwrap_or("").to_string())
        .collect();
    for kind in [
        "vpc",
        "nat-gateway",
        "ecr-repository",
        "iam-role",
        "ecs-cluster",
        "task-definition",
        "load-balancer",
        "listener",
        "ecs-service",
        "scaling-policy",
        "alarm",
        "log-group",
        "dashboard",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no progress event for {kind}"
        );
    }

    // No-op: zero mutating calls, and the plan says so.
    counter.reset();
    let report = d.deploy(&stack).await.unwrap();
    assert!(report.changes.is_empty(), "{}", report.changes);
    assert_eq!(
        counter.mutating(),
        vec![],
        "a no-op redeploy must not mutate"
    );
    // The stack's own reads (the pre-flight's, made at the same time, are counted apart).
    let preflight = [
        "DescribeCertificate",
        "DescribeSecret",
        "GetTopicAttributes",
    ];
    let (checks, reads): (Vec<_>, Vec<_>) = counter
        .calls()
        .into_iter()
        .partition(|c| preflight.contains(&c.operation.as_str()));
    assert!(reads.len() <= 40, "{} reads", reads.len());
    assert_eq!(checks.len(), 3, "one read per pre-flight check: {checks:?}");

    // An image rollout: one revision, one UpdateService.
    let v2 =
        Stack::from_manifest(&yaml.replace("nginx-unprivileged:1.27", "nginx-unprivileged:1.28"))
            .unwrap();
    counter.reset();
    let report = d.deploy(&v2).await.unwrap();
    let ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);
    assert!(report.outputs.service.task_definition_arn.ends_with(":2"));

    // A change that needs a replacement (the container port is the target group's port) is
    // refused before anything changes, the new task definition included.
    let v3 = Stack::from_manifest(
        &yaml
            .replace("nginx-unprivileged:1.27", "nginx-unprivileged:1.28")
            .replace("port: 8080", "port: 9090"),
    )
    .unwrap();
    counter.reset();
    let err = d.deploy(&v3).await.expect_err("a replacement is refused");
    assert!(
        err.to_string().contains("target-group"),
        "expected the target group's replacement, got: {err}"
    );
    assert_eq!(counter.mutating(), vec![], "refused before any change");

    // So is a change that needs the network replaced (the VPC's block), though the task
    // definition and the repository, made while the network is built, would change too.
    let v4 = Stack::from_manifest(&format!(
        "{}\nnetwork:\n  cidr: 10.77.0.0/16\n",
        yaml.replace("nginx-unprivileged:1.27", "nginx-unprivileged:1.28")
    ))
    .unwrap();
    counter.reset();
    let err = d.deploy(&v4).await.expect_err("a replacement is refused");
    assert!(
        matches!(
            err,
            ecs_facade::Error::Network(ecs_net::Error::ReplacementRequired(_))
        ),
        "expected the VPC's replacement, got: {err}"
    );
    assert_eq!(counter.mutating(), vec![], "refused before any change");

    // Status and destroy.
    let status = d.status(&v2).await.unwrap();
    assert_eq!(status.service.as_ref().unwrap().desired, 2);
    assert_eq!(status.alarms.len(), 6);
    let preview = d
        .plan_destroy(&v2, DestroyOptions::default())
        .await
        .unwrap();
    assert_eq!(preview.kept.len(), 2, "{preview:?}");
    d.destroy(&v2, DestroyOptions::everything()).await.unwrap();
    assert_eq!(tagged("e2e-prod").await, 0);
}

#[tokio::test]
async fn dev_to_prod_profile_switch() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let d = deployer(&counter, &events).await;
    let dev_yaml = rename(&manifest("dev.yml"), "shop-dev", "e2e-switch")
        .replace("port: 8080\n", "port: 8080\nspot: false\n");
    let dev = Stack::from_manifest(&dev_yaml).unwrap();
    d.deploy(&dev).await.unwrap();

    // The same app in the prod profile: bigger tasks, two of them, autoscaling, a NAT per
    // zone, the advanced alarms and the dashboard.
    let prod = Stack::from_manifest(&dev_yaml.replace("profile: dev", "profile: prod")).unwrap();
    let plan = d.plan(&prod).await.unwrap();
    let td = plan.find("task-definition", "e2e-switch-app").unwrap();
    assert!(
        matches!(&td.action, Action::Update(d) if d.iter().any(|f| f.field == "cpu") && d.iter().any(|f| f.field == "memory")),
        "{plan}"
    );
    // Autoscaling now owns the desired count: the service is not told 2; the scalable
    // target (minimum 2) is.
    let svc = plan.find("ecs-service", "e2e-switch-app").unwrap();
    assert!(
        matches!(&svc.action, Action::Update(d) if d.iter().all(|f| f.field != "desired_count")),
        "{plan}"
    );
    assert!(
        plan.find("scalable-target", "desired count")
            .is_some_and(|c| c.action == Action::Create),
        "{plan}"
    );
    assert!(
        plan.find("dashboard", "e2e-switch")
            .is_some_and(|c| c.action == Action::Create),
        "{plan}"
    );
    assert!(
        plan.pending()
            .any(|c| c.resource == "nat-gateway" && c.action == Action::Create),
        "{plan}"
    );
    assert!(
        plan.pending().any(|c| c.resource == "scaling-policy"),
        "{plan}"
    );
    let report = d.deploy(&prod).await.unwrap();
    assert_eq!(report.outputs.network.nat_gateways.len(), 2);
    counter.reset();
    d.deploy(&prod).await.unwrap();
    assert_eq!(counter.mutating(), vec![]);
    d.destroy(&prod, DestroyOptions::everything())
        .await
        .unwrap();
    assert_eq!(tagged("e2e-switch").await, 0);
}

#[tokio::test]
async fn existing_vpc_manifest() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let d = deployer(&counter, &events).await;
    // A VPC that is not the stack's, with two public and two private subnets.
    let ec2 = aws_sdk_ec2::Client::new(&emulator().sdk_config().await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.77.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut ids = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b", "us-east-1a", "us-east-1b"]
        .iter()
        .enumerate()
    {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.77.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        ids.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let yaml = rename(&manifest("existing-vpc.yml"), "shop-shared", "e2e-shared")
        .replace("vpc-0123456789abcdef0", &vpc)
        .replace("subnet-0aaaaaaaaaaaaaaa1", &ids[0])
        .replace("subnet-0aaaaaaaaaaaaaaa2", &ids[1])
        .replace("subnet-0bbbbbbbbbbbbbbb1", &ids[2])
        .replace("subnet-0bbbbbbbbbbbbbbb2", &ids[3]);
    let stack = Stack::from_manifest(&yaml).unwrap();
    let report = d.deploy(&stack).await.unwrap();
    assert_eq!(report.outputs.network.vpc_id, vpc);
    counter.reset();
    d.deploy(&stack).await.unwrap();
    assert_eq!(counter.mutating(), vec![]);
    d.destroy(&stack, DestroyOptions::everything())
        .await
        .unwrap();
    assert_eq!(tagged("e2e-shared").await, 0);
    // The VPC that was not the stack's is still there.
    assert_eq!(
        ec2.describe_vpcs()
            .vpc_ids(&vpc)
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
}

#[test]
fn manifest_errors_are_one_clear_message_each() {
    let base = "name: shop\nimage: nginx\n";
    let unknown = Stack::from_manifest(&format!("{base}prots: 8080\n"))
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("`prots`") && unknown.contains("manifest:3:1"),
        "{unknown}"
    );
    let pair = Stack::from_manifest(&format!("{base}cpu: 512\nmemory: 512\n")).unwrap_err();
    let ecs_facade::Error::InvalidManifest(found) = &pair else {
        panic!("{pair}");
    };
    assert_eq!(found.problems.len(), 1, "{pair}");
    assert_eq!(found.problems[0].field, "memory", "{pair}");
    let cidr = Stack::from_manifest(&format!("{base}network:\n  cidr: 10.0.0.0/33\n"))
        .unwrap_err()
        .to_string();
    assert!(cidr.contains("cidr"), "{cidr}");
}
