//! Shared helpers of the end-to-end tests: an emulator-backed EC2 client with call counting,
//! contexts for test stacks, plain SDK clients, and the inventory of what a stack owns.

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::types::ServiceNamespace;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::{ClusterField, ServiceField, TaskDefinitionField, TaskDefinitionStatus};
use ecs_core::testing::{CallCounter, Emulator};
use ecs_core::{Context, EventLog, StackName, OWNER_TAG};

/// The emulator shared by the test binary (installed and started on first use).
pub fn emulator() -> &'static Emulator {
    Emulator::shared().unwrap_or_else(|e| panic!("{e}"))
}

/// What boto3 (the official AWS SDK for Python) finds in the emulator: `script` (Python, with
/// `boto3` imported) prints JSON, which is returned parsed.
pub fn boto3_json(script: &str) -> serde_json::Value {
    let out = emulator()
        .boto3(&format!("import boto3, json\n{script}"))
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The rules of the default security group of `vpc_id`, as boto3 describes them:
/// `(ingress, egress)` permission lists, or `None` when the VPC has no default group.
pub fn default_group_rules(vpc_id: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let found = boto3_json(&format!(
        "groups = boto3.client('ec2').describe_security_groups(Filters=[\n\
         {{'Name': 'vpc-id', 'Values': ['{vpc_id}']}}, {{'Name': 'group-name', 'Values': ['default']}}])\n\
         print(json.dumps([[g['IpPermissions'], g['IpPermissionsEgress']] for g in groups['SecurityGroups']]))"
    ));
    let group = found.as_array()?.first()?.clone();
    Some((group[0].clone(), group[1].clone()))
}

/// `yaml` pointed at stand-ins made in the emulator for what it refers to but does not make
/// (the certificate, secrets, SNS topics: see [`ecs_facade::testing::stand_ins`]).
pub async fn with_stand_ins(yaml: &str) -> String {
    let mut stack = ecs_facade::Stack::from_manifest(yaml).unwrap_or_else(|e| panic!("{e}"));
    let config = emulator().sdk_config().await;
    // Boxed: debug builds poll this large future on the test thread's small stack.
    let made = Box::pin(ecs_facade::testing::stand_ins(&config, &mut stack))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    made.iter()
        .flat_map(|m| &m.replaced)
        .fold(yaml.to_string(), |y, (from, to)| y.replace(from, to))
}

/// Makes SNS topic `name` in the emulator (its alarms' actions must exist: the pre-flight
/// looks for them); returns its ARN. Making it again is harmless.
pub async fn sns_topic(name: &str) -> String {
    aws_sdk_sns::Client::new(&emulator().sdk_config().await)
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .topic_arn()
        .unwrap_or_default()
        .to_string()
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

/// How many rules the default security groups of the stack's VPCs still have (none once a
/// deploy is done: AWS Foundational Security Best Practices EC2.2).
pub async fn default_group_rule_count(ec2: &aws_sdk_ec2::Client, stack: &str) -> usize {
    let owner = Filter::builder()
        .name(format!("tag:{OWNER_TAG}"))
        .values(stack)
        .build();
    let vpcs = ec2.describe_vpcs().filters(owner).send().await.unwrap();
    let mut rules = 0;
    for vpc in vpcs.vpcs() {
        let groups = ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("vpc-id")
                    .values(vpc.vpc_id().unwrap_or_default())
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values("default")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        rules += groups
            .security_groups()
            .iter()
            .map(|g| g.ip_permissions().len() + g.ip_permissions_egress().len())
            .sum::<usize>();
    }
    rules
}

/// Plain SDK clients on the emulator, without the layers' interceptors (and without call
/// counting): what "someone else" uses in the tests, and what [`inventory`] reads with.
#[derive(Debug, Clone)]
pub struct Sdk {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// ECR.
    pub ecr: aws_sdk_ecr::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// Elastic Load Balancing v2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// CloudWatch (alarms and dashboards).
    pub cw: aws_sdk_cloudwatch::Client,
    /// CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// Application Auto Scaling.
    pub aas: aws_sdk_applicationautoscaling::Client,
}

impl Sdk {
    /// Plain clients on the shared [`emulator`].
    pub async fn new() -> Self {
        let config = emulator().sdk_config().await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&config),
            ecr: aws_sdk_ecr::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            cw: aws_sdk_cloudwatch::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            aas: aws_sdk_applicationautoscaling::Client::new(&config),
        }
    }
}

/// Whether these tags carry `stack`'s owner tag.
fn owned<'a>(
    stack: &str,
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> bool {
    tags.into_iter()
        .any(|(k, v)| k == Some(OWNER_TAG) && v == Some(stack))
}

/// The tags of a log group, sorted, read with `ListTagsForResource` on its ARN.
pub async fn log_group_tags(
    sdk: &Sdk,
    group: &aws_sdk_cloudwatchlogs::types::LogGroup,
) -> Vec<(String, String)> {
    let arn = group
        .log_group_arn()
        .or(group.arn())
        .unwrap_or_default()
        .trim_end_matches(":*");
    let out = sdk
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(String, String)> = out
        .tags()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.sort();
    tags
}

/// The ARNs among `arns` (load balancers or target groups) that carry `stack`'s owner tag.
async fn elb_owned(sdk: &Sdk, stack: &str, arns: Vec<String>) -> Vec<String> {
    if arns.is_empty() {
        return Vec::new();
    }
    let out = sdk
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns))
        .send()
        .await
        .unwrap();
    out.tag_descriptions()
        .iter()
        .filter(|d| owned(stack, d.tags().iter().map(|t| (t.key(), t.value()))))
        .filter_map(|d| d.resource_arn().map(str::to_string))
        .collect()
}

/// Everything stack `name` owns in the emulator, by kind, read with plain SDK calls
/// (independently of the layers' own observation). Only resources carrying the stack's owner
/// tag (`ecs:stack=<name>`) count — a resource with one of the stack's names but without the
/// tag is someone else's and is not counted — except the dashboard, which carries the stack's
/// mark in its body instead, and the autoscaling target and policies, found by the service's
/// resource id. Every kind is present in the map, with 0 when there is none.
pub async fn inventory(name: &str) -> BTreeMap<&'static str, usize> {
    inventory_in(name, None).await
}

/// The [`inventory`] of stack `name`, a service of environment `environment` when given: its
/// resources are named after the stack alone (`<name>`, not `<name>-app`), it runs in the
/// environment's cluster, and its listener rules (on the environment's load balancer, found
/// by the target group they forward to) are counted too.
pub async fn inventory_in(name: &str, environment: Option<&str>) -> BTreeMap<&'static str, usize> {
    let sdk = &Sdk::new().await;
    let mut out: BTreeMap<&'static str, usize> =
        tagged_counts(&sdk.ec2, name).await.into_iter().collect();
    out.insert(
        "default-security-group rule",
        default_group_rule_count(&sdk.ec2, name).await,
    );
    let app = match environment {
        Some(_) => name.to_string(),
        None => format!("{name}-app"),
    };
    let cluster = environment.unwrap_or(name);

    let mut repositories = 0;
    if let Ok(found) = sdk
        .ecr
        .describe_repositories()
        .repository_names(app.as_str())
        .send()
        .await
    {
        for r in found.repositories() {
            let tags = sdk
                .ecr
                .list_tags_for_resource()
                .resource_arn(r.repository_arn().unwrap_or_default())
                .send()
                .await
                .unwrap();
            repositories += usize::from(owned(
                name,
                tags.tags().iter().map(|t| (Some(t.key()), Some(t.value()))),
            ));
        }
    }
    out.insert("repository", repositories);

    let (mut roles, mut role_policies) = (0, 0);
    for role in [format!("{name}-execution"), format!("{name}-task")] {
        let Ok(got) = sdk.iam.get_role().role_name(role.as_str()).send().await else {
            continue;
        };
        let tagged = got.role().is_some_and(|r| {
            owned(
                name,
                r.tags().iter().map(|t| (Some(t.key()), Some(t.value()))),
            )
        });
        if !tagged {
            continue;
        }
        roles += 1;
        let inline = sdk
            .iam
            .list_role_policies()
            .role_name(role.as_str())
            .send()
            .await
            .unwrap();
        let attached = sdk
            .iam
            .list_attached_role_policies()
            .role_name(role.as_str())
            .send()
            .await
            .unwrap();
        role_policies += inline.policy_names().len() + attached.attached_policies().len();
    }
    out.insert("role", roles);
    out.insert("role-policy", role_policies);

    let clusters = sdk
        .ecs
        .describe_clusters()
        .clusters(cluster)
        .include(ClusterField::Tags)
        .send()
        .await
        .unwrap();
    out.insert(
        "cluster",
        clusters
            .clusters()
            .iter()
            .filter(|c| {
                c.status() == Some("ACTIVE")
                    && owned(name, c.tags().iter().map(|t| (t.key(), t.value())))
            })
            .count(),
    );

    let revisions = sdk
        .ecs
        .list_task_definitions()
        .family_prefix(app.as_str())
        .status(TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    let mut task_definitions = 0;
    for arn in revisions.task_definition_arns() {
        let td = sdk
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        task_definitions +=
            usize::from(owned(name, td.tags().iter().map(|t| (t.key(), t.value()))));
    }
    out.insert("task-definition", task_definitions);

    let services = sdk
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(app.as_str())
        .include(ServiceField::Tags)
        .send()
        .await
        .map_or(0, |o| {
            o.services()
                .iter()
                .filter(|s| {
                    s.status() == Some("ACTIVE")
                        && owned(name, s.tags().iter().map(|t| (t.key(), t.value())))
                })
                .count()
        });
    out.insert("service", services);

    let lb_arns = load_balancer_arns(sdk, &format!("{name}-alb")).await;
    let tg_arns: Vec<String> = sdk
        .elb
        .describe_target_groups()
        .names(app.as_str())
        .send()
        .await
        .map(|o| {
            o.target_groups()
                .iter()
                .filter_map(|t| t.target_group_arn().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let lbs = elb_owned(sdk, name, lb_arns).await;
    let mut listeners = 0;
    for arn in &lbs {
        listeners += sdk
            .elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .unwrap()
            .listeners()
            .len();
    }
    out.insert("load-balancer", lbs.len());
    out.insert("listener", listeners);
    let tgs = elb_owned(sdk, name, tg_arns).await;
    out.insert("target-group", tgs.len());
    // A service of an environment: its rules on the environment's load balancer.
    let mut rules = 0;
    if let (Some(env), Some(tg)) = (environment, tgs.first()) {
        for lb in &load_balancer_arns(sdk, &format!("{env}-alb")).await {
            let listeners = sdk
                .elb
                .describe_listeners()
                .load_balancer_arn(lb)
                .send()
                .await
                .unwrap();
            for l in listeners.listeners() {
                let found = sdk
                    .elb
                    .describe_rules()
                    .listener_arn(l.listener_arn().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                rules += found
                    .rules()
                    .iter()
                    .filter(|r| r.is_default() != Some(true))
                    .filter(|r| {
                        r.actions()
                            .iter()
                            .any(|a| a.target_group_arn() == Some(tg.as_str()))
                    })
                    .count();
            }
        }
    }
    out.insert("listener-rule", rules);

    let alarms = sdk
        .cw
        .describe_alarms()
        .alarm_name_prefix(format!("{name}-"))
        .send()
        .await
        .unwrap();
    let mut owned_alarms = 0;
    for a in alarms.metric_alarms() {
        let tags = sdk
            .cw
            .list_tags_for_resource()
            .resource_arn(a.alarm_arn().unwrap_or_default())
            .send()
            .await
            .unwrap();
        owned_alarms += usize::from(owned(
            name,
            tags.tags().iter().map(|t| (t.key(), t.value())),
        ));
    }
    out.insert("alarm", owned_alarms);

    // The dashboard's ownership mark is a text widget naming the stack in backquotes.
    let mark = format!("stack `{name}`");
    let dashboard = sdk
        .cw
        .get_dashboard()
        .dashboard_name(name)
        .send()
        .await
        .is_ok_and(|d| d.dashboard_body().is_some_and(|b| b.contains(&mark)));
    out.insert("dashboard", usize::from(dashboard));

    let group = format!("/ecs/{name}");
    let groups = sdk
        .logs
        .describe_log_groups()
        .log_group_name_prefix(group.as_str())
        .send()
        .await
        .unwrap();
    let mut log_groups = 0;
    for g in groups
        .log_groups()
        .iter()
        .filter(|g| g.log_group_name() == Some(group.as_str()))
    {
        let tags = log_group_tags(sdk, g).await;
        log_groups += usize::from(owned(
            name,
            tags.iter()
                .map(|(k, v)| (Some(k.as_str()), Some(v.as_str()))),
        ));
    }
    out.insert("log-group", log_groups);

    let id = format!("service/{cluster}/{app}");
    let targets = sdk
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(id.as_str())
        .send()
        .await
        .unwrap();
    out.insert("scalable-target", targets.scalable_targets().len());
    let policies = sdk
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(id.as_str())
        .send()
        .await
        .unwrap();
    out.insert("scaling-policy", policies.scaling_policies().len());
    out
}

/// The ARNs of the load balancers called `name` (none when there is none).
async fn load_balancer_arns(sdk: &Sdk, name: &str) -> Vec<String> {
    sdk.elb
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .map(|o| {
            o.load_balancers()
                .iter()
                .filter_map(|l| l.load_balancer_arn().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an [`inventory`] holds nothing at all.
pub fn nothing(inv: &BTreeMap<&'static str, usize>) -> bool {
    inv.values().all(|n| *n == 0)
}

/// Whatever still exists under one of the names the stack `name` uses, tagged or not
/// (repository, roles, cluster, load balancer, target group, log group, alarms, dashboard):
/// after a destroy of a stack that met no foreign resource this must be empty, which catches
/// an untagged leftover that [`inventory`] (tag-based) cannot see.
pub async fn leftovers_by_name(name: &str) -> Vec<String> {
    let sdk = Sdk::new().await;
    let app = format!("{name}-app");
    let mut out = Vec::new();
    if sdk
        .ecr
        .describe_repositories()
        .repository_names(app.as_str())
        .send()
        .await
        .is_ok_and(|r| !r.repositories().is_empty())
    {
        out.push(format!("repository {app}"));
    }
    for role in [format!("{name}-execution"), format!("{name}-task")] {
        if sdk
            .iam
            .get_role()
            .role_name(role.as_str())
            .send()
            .await
            .is_ok()
        {
            out.push(format!("role {role}"));
        }
    }
    if let Ok(c) = sdk.ecs.describe_clusters().clusters(name).send().await {
        if c.clusters().iter().any(|c| c.status() == Some("ACTIVE")) {
            out.push(format!("cluster {name}"));
        }
    }
    let alb = format!("{name}-alb");
    if sdk
        .elb
        .describe_load_balancers()
        .names(alb.as_str())
        .send()
        .await
        .is_ok_and(|r| !r.load_balancers().is_empty())
    {
        out.push(format!("load balancer {alb}"));
    }
    if sdk
        .elb
        .describe_target_groups()
        .names(app.as_str())
        .send()
        .await
        .is_ok_and(|r| !r.target_groups().is_empty())
    {
        out.push(format!("target group {app}"));
    }
    let logs = sdk
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/ecs/{name}"))
        .send()
        .await
        .expect("DescribeLogGroups");
    for g in logs.log_groups() {
        out.push(format!(
            "log group {}",
            g.log_group_name().unwrap_or_default()
        ));
    }
    let alarms = sdk
        .cw
        .describe_alarms()
        .alarm_name_prefix(format!("{name}-"))
        .send()
        .await
        .expect("DescribeAlarms");
    for a in alarms.metric_alarms() {
        out.push(format!("alarm {}", a.alarm_name().unwrap_or_default()));
    }
    let dashboards = sdk
        .cw
        .list_dashboards()
        .dashboard_name_prefix(name)
        .send()
        .await
        .expect("ListDashboards");
    for d in dashboards.dashboard_entries() {
        if d.dashboard_name() == Some(name) {
            out.push(format!("dashboard {name}"));
        }
    }
    out
}
