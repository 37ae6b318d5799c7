//! ecs-service end to end against the local AWS emulator, over a network built by ecs-net:
//! create (HTTPS with an ACM certificate, HTTP redirect, a path rule) → no-op (0 mutating
//! calls) → a live definition with reordered environment (0 mutating calls) → image change
//! (exactly one RegisterTaskDefinition and one UpdateService) → rollback → destroy (nothing
//! tagged with the stack remains); and a name collision with a resource the stack does not own.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{KeyValuePair, TaskDefinitionStatus};
use ecs_core::testing::CallCounter;
use ecs_core::{Action, Event, EventLog};
use ecs_e2e_tests::{acm, boto3_json, context, ec2, service_clients};
use ecs_net::{ManagedVpc, NatStrategy, Network, NetworkLayer, NetworkSpec};
use ecs_service::{
    ContainerSpec, Environment, ListenerAction, LoadBalancerSpec, RuleSpec, ServiceLayer,
    ServiceSettings, ServiceSpec, TaskSpec,
};

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";

fn spec(image: &str, certificate: &str) -> ServiceSpec {
    let env: Environment = [("A_FIRST", "1"), ("B_SECOND", "2"), ("C_THIRD", "3")]
        .into_iter()
        .collect();
    let mut lb = LoadBalancerSpec::https(certificate);
    lb.listeners[0].rules.push(
        RuleSpec::builder()
            .priority(10)
            .paths(vec!["/maintenance/*".to_string()])
            .action(ListenerAction::FixedResponse {
                status: 503,
                content_type: "text/plain".into(),
                body: "down for maintenance".into(),
            })
            .build(),
    );
    ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .cpu(512)
                .memory(1024)
                .containers(vec![ContainerSpec::builder()
                    .name("web")
                    .image(image)
                    .ports(vec![8080])
                    .environment(env)
                    .secrets(BTreeMap::from([(
                        "DB_PASSWORD".to_string(),
                        SECRET.to_string(),
                    )]))
                    .build()])
                .build(),
        )
        .load_balancer(lb)
        .service(ServiceSettings::builder().desired_count(2).build())
        .build()
}

fn network_spec(cidr: &str) -> NetworkSpec {
    NetworkSpec::builder()
        .vpc(Network::Managed(
            ManagedVpc::builder()
                .cidr(cidr.parse().unwrap())
                .nat(NatStrategy::Single)
                .build(),
        ))
        .container_port(8080)
        .build()
}

#[tokio::test]
async fn create_noop_reorder_image_change_rollback_destroy() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let ctx = context("e2e-svc", &events);
    let clients = service_clients(&counter).await;
    let layer = ServiceLayer::from_clients(clients.clone());
    let net = NetworkLayer::from_client(ec2(&counter).await);
    let (_, network) = net
        .deploy(&ctx, &network_spec("10.30.0.0/16"))
        .await
        .unwrap();
    let cert = acm()
        .await
        .request_certificate()
        .domain_name("app.example.com")
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();

    // Create.
    let v1 = spec("public.ecr.aws/nginx/nginx:1.27", &cert);
    layer.verify(&ctx, &v1).await.unwrap();
    let plan = layer.plan(&ctx, &v1, &network).await.unwrap();
    let s = plan.changes().summary();
    // repository, 2 roles, cluster, task definition, ALB, target group, 2 listeners, 1 rule, service
    assert_eq!(
        (s.create, s.update, s.delete, s.replace),
        (11, 0, 0, 0),
        "{plan}"
    );
    let out = layer.apply(&ctx, &plan).await.unwrap();
    assert!(
        out.url.as_deref().unwrap().starts_with("https://"),
        "{out:?}"
    );
    assert!(
        out.task_definition_arn.ends_with("e2e-svc-app:1"),
        "{out:?}"
    );
    assert!(out.rollout.is_some(), "the create's rollout was waited for");
    assert!(out
        .repository_uri
        .as_deref()
        .unwrap()
        .ends_with("/e2e-svc-app"));
    assert!(events
        .events()
        .iter()
        .any(|e| matches!(e, Event::Done { .. })));

    // What the emulator holds carries the security defaults.
    let svc = clients
        .ecs
        .describe_services()
        .cluster("e2e-svc")
        .services("e2e-svc-app")
        .send()
        .await
        .unwrap();
    let svc = &svc.services()[0];
    let vpc_conf = svc
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap();
    assert_eq!(vpc_conf.assign_public_ip().unwrap().as_str(), "DISABLED");
    assert_eq!(
        vpc_conf.security_groups(),
        std::slice::from_ref(&network.task_sg)
    );
    let mut subnets = vpc_conf.subnets().to_vec();
    subnets.sort();
    let mut private = network.private_subnets.clone();
    private.sort();
    assert_eq!(subnets, private);
    let listeners = clients
        .elb
        .describe_listeners()
        .load_balancer_arn(out.load_balancer_arn.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let https = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(443))
        .unwrap();
    assert_eq!(
        https.ssl_policy(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
    assert_eq!(
        https.certificates()[0].certificate_arn(),
        Some(cert.as_str())
    );
    let http = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(80))
        .unwrap();
    assert_eq!(
        http.default_actions()[0]
            .redirect_config()
            .unwrap()
            .protocol(),
        Some("HTTPS")
    );
    let attrs = clients
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(out.load_balancer_arn.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert!(attrs.attributes().iter().any(|a| a.key()
        == Some("routing.http.drop_invalid_header_fields.enabled")
        && a.value() == Some("true")));
    let secrets_policy = clients
        .iam
        .get_role_policy()
        .role_name("e2e-svc-execution")
        .policy_name("secrets")
        .send()
        .await
        .unwrap();
    let secrets_policy = secrets_policy.policy_document().replace("%3A", ":");
    assert!(secrets_policy.contains("db-AbCdEf"), "{secrets_policy}");

    // No-op: zero mutating calls.
    counter.reset();
    let plan = layer.plan(&ctx, &v1, &network).await.unwrap();
    assert!(plan.changes().pending().next().is_none(), "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(
        counter.mutating(),
        vec![],
        "a no-op redeploy must not mutate"
    );
    let reads = counter.calls().len();
    assert!(reads <= 21, "{reads} reads: {:?}", counter.calls());

    // The live definition lists the environment in another order (e.g. written by another
    // tool): semantically equal, so still no change.
    let live = clients
        .ecs
        .describe_task_definition()
        .task_definition("e2e-svc-app")
        .send()
        .await
        .unwrap();
    let td = live.task_definition().unwrap();
    let mut container = td.container_definitions()[0].clone();
    let mut env: Vec<KeyValuePair> = container.environment().to_vec();
    env.reverse();
    container.environment = Some(env);
    let tags = ctx
        .resource_tags(Some("task-definition"), None)
        .iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
        .collect::<Vec<_>>();
    let reordered = clients
        .ecs
        .register_task_definition()
        .family("e2e-svc-app")
        .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
        .set_task_role_arn(td.task_role_arn().map(str::to_string))
        .set_network_mode(td.network_mode().cloned())
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(str::to_string))
        .set_memory(td.memory().map(str::to_string))
        .set_runtime_platform(td.runtime_platform().cloned())
        .container_definitions(container)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    let reordered = reordered
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    clients
        .ecs
        .update_service()
        .cluster("e2e-svc")
        .service("e2e-svc-app")
        .task_definition(&reordered)
        .send()
        .await
        .unwrap();
    counter.reset();
    let plan = layer.plan(&ctx, &v1, &network).await.unwrap();
    assert!(plan.changes().pending().next().is_none(), "{plan}");
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(
        counter.mutating(),
        vec![],
        "an environment reorder must not mutate"
    );

    // Image change: one new revision, one UpdateService.
    let v2 = spec("public.ecr.aws/nginx/nginx:1.28", &cert);
    counter.reset();
    let plan = layer.plan(&ctx, &v2, &network).await.unwrap();
    let td_change = plan
        .changes()
        .find("task-definition", "e2e-svc-app")
        .unwrap();
    assert!(
        matches!(&td_change.action, Action::Update(d) if d.iter().any(|f| f.field == "containers.web.image")),
        "{plan}"
    );
    let out = layer.apply(&ctx, &plan).await.unwrap();
    let ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);
    assert!(
        out.task_definition_arn.ends_with("e2e-svc-app:3"),
        "{out:?}"
    );

    // Rollback returns to the previous revision.
    let report = layer.rollback(&ctx, &v2).await.unwrap();
    let svc = clients
        .ecs
        .describe_services()
        .cluster("e2e-svc")
        .services("e2e-svc-app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        svc.services()[0].task_definition(),
        Some(reordered.as_str()),
        "{report:?}"
    );

    // Destroy: the repository is kept unless forced; then nothing tagged remains.
    let preview = layer.plan_destroy(&ctx, &v2, false).await.unwrap();
    assert_eq!(preview.kept.len(), 1, "{preview:?}");
    let report = layer.destroy(&ctx, &v2, true).await.unwrap();
    assert!(report.deleted.summary().delete >= 10, "{report:?}");
    assert_nothing_left(&clients, "e2e-svc").await;
    net.destroy(&ctx).await.unwrap();
}

/// What a CI pipeline does with boto3 (the same calls as `aws ecs register-task-definition`
/// and `aws ecs update-service`): a copy of the family's latest revision with `image`,
/// registered untagged, and released to the service when `release`. Returns its ARN.
fn ci_registers(stack: &str, image: &str, release: bool) -> String {
    let out = boto3_json(&format!(
        "ecs = boto3.client('ecs')\n\
         td = ecs.describe_task_definition(taskDefinition='{stack}-app')['taskDefinition']\n\
         keep = ['family', 'taskRoleArn', 'executionRoleArn', 'networkMode', 'containerDefinitions',\n\
                 'volumes', 'requiresCompatibilities', 'cpu', 'memory', 'runtimePlatform']\n\
         args = {{k: td[k] for k in keep if k in td}}\n\
         args['containerDefinitions'][0]['image'] = '{image}'\n\
         arn = ecs.register_task_definition(**args)['taskDefinition']['taskDefinitionArn']\n\
         if {release}:\n\
         \x20   ecs.update_service(cluster='{stack}', service='{stack}-app', taskDefinition=arn)\n\
         print(json.dumps(arn))",
        release = if release { "True" } else { "False" },
    ));
    out.as_str().unwrap().to_string()
}

#[tokio::test]
async fn revisions_ci_registers_with_boto3_never_block_and_destroy_takes_them_all() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let ctx = context("e2e-ci", &events);
    let clients = service_clients(&counter).await;
    let layer = ServiceLayer::from_clients(clients.clone());
    let net = NetworkLayer::from_client(ec2(&counter).await);
    let (_, network) = net
        .deploy(&ctx, &network_spec("10.33.0.0/16"))
        .await
        .unwrap();
    let mut v1 = spec("nginx:1", "unused");
    v1.load_balancer = None;
    layer.deploy(&ctx, &v1, &network).await.unwrap();

    // CI releases an image the way most ECS pipelines do.
    let released = ci_registers("e2e-ci", "nginx:2", true);
    assert!(
        released.ends_with("task-definition/e2e-ci-app:2"),
        "{released}"
    );

    // The plan does not fail, compares with what the service runs, and says in plain words
    // that the manifest's image would go back.
    let plan = layer.plan(&ctx, &v1, &network).await.unwrap();
    let change = plan
        .changes()
        .find("task-definition", "e2e-ci-app")
        .unwrap();
    assert_eq!(
        change.detail,
        "new revision 3; the service runs revision 2, registered outside this stack"
    );
    assert!(
        change.notes[0].starts_with("this deploy puts the manifest's image nginx:1 back"),
        "{plan}"
    );

    // `image: running` keeps CI's image: a deploy makes no mutating call.
    let mut keep = v1.clone();
    keep.task.containers[0].image = ecs_service::RUNNING_IMAGE.into();
    counter.reset();
    let (plan, out) = layer.deploy(&ctx, &keep, &network).await.unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(out.task_definition_arn, released);
    assert_eq!(counter.mutating(), vec![]);

    // An image-only release: exactly one new revision and one service update, then the wait.
    counter.reset();
    let release = ecs_service::ImageRelease::builder()
        .image("nginx:3")
        .build();
    let report = layer.release_image(&ctx, &keep, &release).await.unwrap();
    let ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);
    assert_eq!(report.previous_image, "nginx:2");
    assert!(
        report.task_definition.ends_with("e2e-ci-app:3"),
        "{report:?}"
    );
    assert_eq!(
        report.rollout.as_ref().unwrap().task_definition,
        report.task_definition
    );

    // Another team's family with the name of another stack's: that stack's plan refuses it,
    // and its destroy leaves it alone.
    let theirs = boto3_json(
        "r = boto3.client('ecs').register_task_definition(family='e2e-ci2-app',\n\
         containerDefinitions=[{'name': 'web', 'image': 'theirs:1', 'memory': 512}])\n\
         print(json.dumps(r['taskDefinition']['taskDefinitionArn']))",
    );
    let other = context("e2e-ci2", &events);
    let err = layer.plan(&other, &v1, &network).await.unwrap_err();
    assert!(
        matches!(err, ecs_service::Error::Foreign(ref f) if f.kind == "task-definition"),
        "{err}"
    );
    layer.destroy(&other, &v1, true).await.unwrap();
    let status = boto3_json(&format!(
        "r = boto3.client('ecs').describe_task_definition(taskDefinition='{}')\n\
         print(json.dumps(r['taskDefinition']['status']))",
        theirs.as_str().unwrap()
    ));
    assert_eq!(status, "ACTIVE");
    boto3_json(&format!(
        "boto3.client('ecs').deregister_task_definition(taskDefinition='{}')\nprint('null')",
        theirs.as_str().unwrap()
    ));

    // Destroy deregisters every active revision of the family, CI's included, and says so.
    let report = layer.destroy(&ctx, &keep, true).await.unwrap();
    assert_eq!(
        report
            .deleted
            .find("task-definition", "e2e-ci-app")
            .unwrap()
            .detail,
        "3 active revisions deregistered, those registered outside the stack included"
    );
    let active = boto3_json(
        "r = boto3.client('ecs').list_task_definitions(familyPrefix='e2e-ci-app', status='ACTIVE')\n\
         print(json.dumps(r['taskDefinitionArns']))",
    );
    assert_eq!(active, serde_json::json!([]));
    assert_nothing_left(&clients, "e2e-ci").await;
    net.destroy(&ctx).await.unwrap();
}

async fn assert_nothing_left(c: &ecs_service::ServiceClients, stack: &str) {
    for role in [format!("{stack}-execution"), format!("{stack}-task")] {
        let err = c.iam.get_role().role_name(&role).send().await.unwrap_err();
        assert_eq!(
            aws_sdk_iam::error::ProvideErrorMetadata::code(&err),
            Some("NoSuchEntity")
        );
    }
    let clusters = c
        .ecs
        .describe_clusters()
        .clusters(stack)
        .send()
        .await
        .unwrap();
    assert!(clusters
        .clusters()
        .iter()
        .all(|c| c.status() == Some("INACTIVE")));
    let tds = c
        .ecs
        .list_task_definitions()
        .family_prefix(format!("{stack}-app"))
        .status(TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert_eq!(tds.task_definition_arns(), Vec::<String>::new());
    assert!(c
        .elb
        .describe_load_balancers()
        .names(format!("{stack}-alb"))
        .send()
        .await
        .is_err());
    assert!(c
        .elb
        .describe_target_groups()
        .names(format!("{stack}-app"))
        .send()
        .await
        .is_err());
    assert!(c
        .ecr
        .describe_repositories()
        .repository_names(format!("{stack}-app"))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn a_resource_the_stack_does_not_own_is_never_touched() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let ctx = context("e2e-clash", &events);
    let clients = service_clients(&counter).await;
    let layer = ServiceLayer::from_clients(clients.clone());
    // Someone else's cluster happens to have the stack's cluster name.
    clients
        .ecs
        .create_cluster()
        .cluster_name("e2e-clash")
        .send()
        .await
        .unwrap();
    let net = NetworkLayer::from_client(ec2(&counter).await);
    let (_, network) = net
        .deploy(&ctx, &network_spec("10.31.0.0/16"))
        .await
        .unwrap();
    let mut spec = spec("nginx:1", "arn:unused");
    spec.load_balancer = None;
    counter.reset();
    let err = layer.plan(&ctx, &spec, &network).await.unwrap_err();
    assert!(
        matches!(err, ecs_service::Error::Foreign(ref f) if f.kind == "ecs-cluster"),
        "{err}"
    );
    assert!(err.to_string().contains("e2e-clash"), "{err}");
    assert_eq!(counter.mutating(), vec![]);
    // Destroy skips it.
    layer.destroy(&ctx, &spec, true).await.unwrap();
    let clusters = clients
        .ecs
        .describe_clusters()
        .clusters("e2e-clash")
        .send()
        .await
        .unwrap();
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));
    net.destroy(&ctx).await.unwrap();
}

#[tokio::test]
async fn settings_drift_and_preflight_against_the_emulator() {
    let counter = CallCounter::new();
    let events = EventLog::new();
    let ctx = context("e2e-drift", &events);
    let clients = service_clients(&counter).await;
    let layer = ServiceLayer::from_clients(clients.clone());
    let net = NetworkLayer::from_client(ec2(&counter).await);
    let (_, network) = net
        .deploy(&ctx, &network_spec("10.32.0.0/16"))
        .await
        .unwrap();
    let mut v1 = spec("nginx:1", "unused");
    v1.load_balancer = Some(LoadBalancerSpec::default());
    layer.deploy(&ctx, &v1, &network).await.unwrap();

    // Settings changed in the spec are changed in place, each with its own call.
    let mut v2 = v1.clone();
    let repo = v2.repository.as_mut().unwrap();
    repo.immutable_tags = false;
    // (Scan on push is not changed here: moto 5.2.5 keeps reporting it on after
    // PutImageScanningConfiguration turns it off; the mocked tests cover that call.)
    v2.cluster.container_insights = false;
    v2.cluster.default_strategy = vec![ecs_service::StrategyItem::spot()];
    let lb = v2.load_balancer.as_mut().unwrap();
    lb.idle_timeout = 120;
    lb.target_group.health_check.path = "/health".into();
    lb.target_group.deregistration_delay = 10;
    lb.listeners[0].default_action = ListenerAction::FixedResponse {
        status: 503,
        content_type: "text/plain".into(),
        body: "maintenance".into(),
    };
    // A trust policy changed by hand is put back.
    clients
        .iam
        .update_assume_role_policy()
        .role_name("e2e-drift-task")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    counter.reset();
    layer.deploy(&ctx, &v2, &network).await.unwrap();
    let mut ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    ops.sort();
    assert_eq!(
        ops,
        [
            "ModifyListener",
            "ModifyLoadBalancerAttributes",
            "ModifyTargetGroup",
            "ModifyTargetGroupAttributes",
            "PutClusterCapacityProviders",
            "PutImageTagMutability",
            "UpdateAssumeRolePolicy",
            "UpdateCluster",
        ]
    );
    counter.reset();
    let plan = layer.plan(&ctx, &v2, &network).await.unwrap();
    assert!(plan.changes().pending().next().is_none(), "{plan}");

    // Tags changed by hand (with boto3, as a user would): each kind's own tag calls put them
    // back, and nothing else is called.
    let (_, out) = layer.deploy(&ctx, &v2, &network).await.unwrap();
    let arns = format!(
        "cluster, service, td, lb, tg = {:?}, {:?}, {:?}, {:?}, {:?}\n\
         exec_role, task_role, repo_name = {:?}, {:?}, {:?}\n\
         ecs, iam, ecr, elb = (boto3.client(s) for s in ('ecs', 'iam', 'ecr', 'elbv2'))\n\
         repo = ecr.describe_repositories(repositoryNames=[repo_name])['repositories'][0]['repositoryArn']\n\
         listener = elb.describe_listeners(LoadBalancerArn=lb)['Listeners'][0]['ListenerArn']\n",
        out.cluster_arn,
        out.service_arn,
        out.task_definition_arn,
        out.load_balancer_arn.as_deref().unwrap(),
        out.target_group_arn.as_deref().unwrap(),
        out.names.execution_role,
        out.names.task_role,
        out.names.repository,
    );
    boto3_json(&format!(
        "{arns}\
         ecs.untag_resource(resourceArn=cluster, tagKeys=['suite'])\n\
         ecs.tag_resource(resourceArn=service, tags=[{{'key': 'suite', 'value': 'other'}}])\n\
         ecs.tag_resource(resourceArn=td, tags=[{{'key': 'extra', 'value': 'x'}}])\n\
         iam.untag_role(RoleName=exec_role, TagKeys=['suite'])\n\
         iam.tag_role(RoleName=task_role, Tags=[{{'Key': 'extra', 'Value': 'x'}}])\n\
         ecr.untag_resource(resourceArn=repo, tagKeys=['suite'])\n\
         elb.remove_tags(ResourceArns=[lb], TagKeys=['suite'])\n\
         elb.add_tags(ResourceArns=[tg], Tags=[{{'Key': 'extra', 'Value': 'x'}}])\n\
         elb.remove_tags(ResourceArns=[listener], TagKeys=['suite'])\n\
         print(json.dumps(True))"
    ));
    let plan = layer.plan(&ctx, &v2, &network).await.unwrap();
    for (kind, id) in [
        ("ecs-cluster", &out.names.cluster),
        ("ecs-service", &out.names.service),
        ("task-definition", &out.names.family),
        ("iam-role", &out.names.execution_role),
        ("iam-role", &out.names.task_role),
        ("ecr-repository", &out.names.repository),
        ("load-balancer", &out.names.load_balancer),
        ("target-group", &out.names.target_group),
    ] {
        let change = plan.changes().find(kind, id).unwrap();
        match &change.action {
            Action::Update(d) => assert_eq!(
                d.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(),
                ["tags"],
                "{change}"
            ),
            other => panic!("{kind} {id}: {other:?}\n{plan}"),
        }
    }
    let listener_changes: Vec<String> = plan
        .changes()
        .pending()
        .filter(|c| c.resource == "listener")
        .map(|c| c.to_string())
        .collect();
    assert_eq!(listener_changes.len(), 1, "{plan}");
    assert!(
        listener_changes[0].contains("tags:"),
        "{}",
        listener_changes[0]
    );
    counter.reset();
    layer.apply(&ctx, &plan).await.unwrap();
    let mut ops: Vec<String> = counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    ops.sort();
    assert_eq!(
        ops,
        [
            "AddTags",
            "AddTags",
            "RemoveTags",
            "TagResource",
            "TagResource",
            "TagResource",
            "TagRole",
            "UntagResource",
            "UntagRole",
        ]
    );
    // As boto3 sees them: every resource carries the stack's tags again, and only those.
    let tags = boto3_json(&format!(
        "{arns}\
         kv = lambda tags, k, v: {{t[k]: t[v] for t in tags}}\n\
         ecs_tags = lambda arn: kv(ecs.list_tags_for_resource(resourceArn=arn)['tags'], 'key', 'value')\n\
         elb_tags = {{d['ResourceArn']: kv(d['Tags'], 'Key', 'Value') for d in elb.describe_tags(ResourceArns=[lb, tg, listener])['TagDescriptions']}}\n\
         print(json.dumps({{\n\
           'cluster': ecs_tags(cluster), 'service': ecs_tags(service), 'td': ecs_tags(td),\n\
           'exec': kv(iam.list_role_tags(RoleName=exec_role)['Tags'], 'Key', 'Value'),\n\
           'task': kv(iam.list_role_tags(RoleName=task_role)['Tags'], 'Key', 'Value'),\n\
           'repo': kv(ecr.list_tags_for_resource(resourceArn=repo)['tags'], 'Key', 'Value'),\n\
           'lb': elb_tags[lb], 'tg': elb_tags[tg], 'listener': elb_tags[listener]}}))"
    ));
    for r in [
        "cluster", "service", "td", "exec", "task", "repo", "lb", "tg", "listener",
    ] {
        assert_eq!(tags[r]["suite"], "e2e", "{r}: {}", tags[r]);
        assert_eq!(tags[r]["ecs:stack"], "e2e-drift", "{r}: {}", tags[r]);
        assert!(tags[r].get("extra").is_none(), "{r}: {}", tags[r]);
    }
    counter.reset();
    let plan = layer.plan(&ctx, &v2, &network).await.unwrap();
    assert!(plan.changes().pending().next().is_none(), "{plan}");

    // Pre-flight: an image of this account's ECR that was never pushed is reported.
    let login = layer.registry_login(&ctx).await.unwrap();
    assert_eq!(login.username, "AWS");
    let mut v3 = v2.clone();
    v3.task.containers[0].image = format!("{}/e2e-drift-app:v9", login.registry);
    let err = layer.verify(&ctx, &v3).await.unwrap_err();
    assert!(
        err.problems().unwrap().mentions("task.containers[0].image"),
        "{err}"
    );
    assert_eq!(counter.mutating(), vec![]);

    layer.destroy(&ctx, &v2, true).await.unwrap();
    net.destroy(&ctx).await.unwrap();
}

/// Turns IAM enforcement on in `emulator`: from now on every AWS call must be signed by an IAM
/// user of the emulator whose policies allow it (moto's `/moto-api/reset-auth`, whose body is
/// read only when it is not a form).
fn enforce_iam(emulator: &ecs_core::testing::Emulator) {
    emulator
        .boto3(&format!(
            "import urllib.request\n\
             urllib.request.urlopen(urllib.request.Request('{}/moto-api/reset-auth', data=b'0', method='POST',\n\
             headers={{'Content-Type': 'text/plain'}}))",
            emulator.endpoint_url()
        ))
        .unwrap();
}

/// A user of `iam` whose only permissions are `policy`; its configuration for `emulator`.
async fn user_with(
    iam: &aws_sdk_iam::Client,
    emulator: &ecs_core::testing::Emulator,
    name: &str,
    policy: &serde_json::Value,
) -> aws_types::SdkConfig {
    iam.create_user().user_name(name).send().await.unwrap();
    iam.put_user_policy()
        .user_name(name)
        .policy_name("ci")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "ci",
        ))
        .endpoint_url(emulator.endpoint_url())
        .load()
        .await
}

#[tokio::test]
async fn an_image_only_release_succeeds_with_only_the_printed_ci_policy_under_enforced_iam() {
    // An emulator of its own: IAM enforcement applies to every call it serves.
    let emulator = ecs_core::testing::Emulator::start(Default::default()).unwrap();
    let admin = emulator.sdk_config().await;
    let counter = CallCounter::new();
    let events = EventLog::new();
    let ctx = context("e2e-iam", &events);
    let clients = ecs_facade::testing::emulator_layers(&emulator, &counter).await;
    let (_, network) = clients
        .network
        .deploy(&ctx, &network_spec("10.34.0.0/16"))
        .await
        .unwrap();
    let mut v1 = spec("nginx:1", "unused");
    v1.load_balancer = None;
    clients.service.deploy(&ctx, &v1, &network).await.unwrap();

    // The policy the CLI prints, as the CI user's only permissions; and the same without
    // `ecs:UpdateService`, to show the emulator enforces it.
    let policy = ecs_service::release_policy(ctx.stack(), &v1, "us-east-1", "123456789012");
    let mut without_update = policy.clone();
    for s in without_update["Statement"].as_array_mut().unwrap() {
        if let Some(actions) = s["Action"].as_array_mut() {
            actions.retain(|a| a != "ecs:UpdateService");
        }
    }
    let iam = aws_sdk_iam::Client::new(&admin);
    let ci = user_with(&iam, &emulator, "ci", &policy).await;
    let weak = user_with(&iam, &emulator, "ci-weak", &without_update).await;
    enforce_iam(&emulator);

    let layer = |config: &aws_types::SdkConfig, counter: &CallCounter| {
        ServiceLayer::from_clients(ecs_service::ServiceClients {
            ecr: aws_sdk_ecr::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            ecs: aws_sdk_ecs::Client::from_conf(
                aws_sdk_ecs::config::Builder::from(config)
                    .interceptor(counter.clone())
                    .build(),
            ),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
        })
    };
    let release = ecs_service::ImageRelease::builder()
        .image("nginx:2")
        .build();

    // Without `ecs:UpdateService`: refused by IAM at the update.
    let weak_counter = CallCounter::new();
    let err = layer(&weak, &weak_counter)
        .release_image(&ctx, &v1, &release)
        .await
        .unwrap_err();
    assert!(
        err.code().is_some_and(|c| c.contains("AccessDenied")),
        "{err}"
    );

    // With the printed policy: the registry login, then the release and its wait.
    let ci_counter = CallCounter::new();
    let ci_layer = layer(&ci, &ci_counter);
    ci_layer.registry_login(&ctx).await.unwrap();
    let report = ci_layer.release_image(&ctx, &v1, &release).await.unwrap();
    let ops: Vec<String> = ci_counter
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(ops, ["RegisterTaskDefinition", "UpdateService"]);
    assert!(report.released && report.rollout.is_some(), "{report:?}");

    // Through the facade, which holds the stack's lease (SSM parameters) while it releases:
    // the policy covers the lease too.
    let stack = ecs_facade::Stack::builder()
        .name("e2e-iam")
        .service(v1.clone())
        .build();
    let deployer = ecs_facade::Deployer::new(&ci);
    let release = ecs_service::ImageRelease::builder()
        .image("nginx:3")
        .build();
    let report = deployer.release_image(&stack, &release).await.unwrap();
    assert!(report.released, "{report:?}");
    assert_eq!(report.previous_image, "nginx:2");
    // The workflow's `status` on failure works with the same policy: the service, its
    // load balancer's describes. (Its alarms' `DescribeAlarms` goes through the emulator's
    // CloudWatch protocol bridge, which re-encodes the signed request, so moto cannot verify
    // its signature under enforced IAM: the policy grants it, as checked here, unexercised.)
    let status = ci_layer.status(&ctx, &v1).await.unwrap();
    assert!(status.is_some());
    assert!(policy.to_string().contains("\"cloudwatch:DescribeAlarms\""));
    emulator.stop();
}
