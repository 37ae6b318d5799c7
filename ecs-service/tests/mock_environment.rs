//! An environment's shared front and its web services against the stateful fakes of
//! `ecs_core::testing` (mocked ECS, ELB, ECR, IAM and EC2 clients): the environment's load
//! balancers, listeners and cluster; services that bring only their own target groups and
//! listener rules, at priorities ordered by specificity; conflicts refused before any change;
//! a lost priority race (`PriorityInUse`) retried; one service destroyed without touching
//! another's rule or the environment; an environment with services refused destroy.

#![allow(clippy::result_large_err)]

use aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleInput;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ElbAction, ActionTypeEnum, PathPatternConditionConfig, Rule as ElbRule, RuleCondition,
};
use ecs_core::testing::{
    Ec2State, EcrState, EcsState, ElbState, FakeEc2, FakeEcr, FakeEcs, FakeElb, FakeIam, IamState,
    Journal,
};
use ecs_core::{Context, FakeClock, StackName, Tags};
use ecs_net::NetworkOutputs;
use ecs_service::environment::{EnvironmentSpec, FrontSpec};
use ecs_service::routing::{Route, RoutingError};
use ecs_service::{
    ContainerSpec, EnvironmentPlacement, Error, ServiceClients, ServiceLayer, ServiceSpec, TaskSpec,
};

const CERT: &str = "arn:aws:acm:us-east-1:123456789012:certificate/abc";

#[derive(Clone)]
struct Mock {
    journal: Journal,
    ecr: FakeEcr,
    iam: FakeIam,
    ecs: FakeEcs,
    elb: FakeElb,
    ec2: FakeEc2,
}

impl Mock {
    fn new() -> Self {
        let journal = Journal::default();
        let ecs = FakeEcs::new(&journal, EcsState::default());
        Self {
            ecr: FakeEcr::new(&journal, EcrState::default()),
            iam: FakeIam::new(&journal, IamState::default()),
            elb: FakeElb::new(&journal, ElbState::default()).linked(&ecs),
            ec2: FakeEc2::new(&journal, Ec2State::default()),
            ecs,
            journal,
        }
    }

    fn layer(&self) -> ServiceLayer {
        ServiceLayer::from_clients(ServiceClients {
            ecr: self.ecr.client(),
            iam: self.iam.client(),
            ecs: self.ecs.client(),
            elb: self.elb.client(),
            ec2: self.ec2.client(),
        })
    }

    /// Every rule on the listener on `port` of load balancer `lb`: (priority, paths,
    /// forwarded-to target group ARN).
    fn rules(&self, lb: &str, port: i32) -> Vec<(u32, Vec<String>, String)> {
        let s = self.elb.state();
        let lb_arn = s
            .load_balancers
            .iter()
            .find(|l| l.lb.load_balancer_name() == Some(lb))
            .and_then(|l| l.lb.load_balancer_arn().map(str::to_string))
            .expect("the load balancer");
        let mut out: Vec<(u32, Vec<String>, String)> = s
            .listeners
            .iter()
            .filter(|l| l.listener.load_balancer_arn() == Some(lb_arn.as_str()))
            .filter(|l| l.listener.port() == Some(port))
            .flat_map(|l| l.rules.iter())
            .map(|r| {
                (
                    r.priority().unwrap_or_default().parse().unwrap(),
                    r.conditions()
                        .iter()
                        .flat_map(|c| c.path_pattern_config().map(|p| p.values().to_vec()))
                        .flatten()
                        .collect(),
                    r.actions()
                        .first()
                        .and_then(|a| a.target_group_arn())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

fn ctx(stack: &str, clock: &FakeClock) -> Context {
    Context::builder()
        .stack(StackName::new(stack).unwrap())
        .tags(Tags::new().with("team", "shop"))
        .clock(clock.clone())
        .run_id("run-1")
        .build()
}

fn network() -> NetworkOutputs {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    NetworkOutputs {
        vpc_id: "vpc-1".into(),
        vpc_cidr: "10.0.0.0/16".into(),
        availability_zones: s(&["us-east-1a", "us-east-1b"]),
        public_subnets: s(&["subnet-pub-a", "subnet-pub-b"]),
        private_subnets: s(&["subnet-priv-a", "subnet-priv-b"]),
        alb_sg: "sg-alb".into(),
        task_sg: "sg-task".into(),
        nat_gateways: Vec::new(),
        vpc_endpoints: Vec::new(),
    }
}

fn environment() -> EnvironmentSpec {
    EnvironmentSpec::builder()
        .load_balancer(FrontSpec::https(CERT))
        .internal_load_balancer(FrontSpec::http())
        .build()
}

/// A web service of environment `shop` on these paths.
fn web(paths: &[&str]) -> ServiceSpec {
    ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name("app")
                    .image("nginx:1.27")
                    .ports(vec![8080])
                    .build()])
                .build(),
        )
        .environment(
            EnvironmentPlacement::builder()
                .environment("shop")
                .routes(vec![Route::paths(paths.iter().copied())])
                .build(),
        )
        .build()
}

async fn deploy_environment(m: &Mock, clock: &FakeClock) {
    let layer = m.layer();
    let ctx = ctx("shop", clock);
    let state = layer.read_environment(&ctx, &environment()).await.unwrap();
    let plan = layer.plan_environment(&state, &network());
    layer.apply_environment(&ctx, &plan).await.unwrap();
}

async fn deploy_service(m: &Mock, clock: &FakeClock, stack: &str, spec: &ServiceSpec) {
    let layer = m.layer();
    let ctx = ctx(stack, clock);
    let plan = layer.plan(&ctx, spec, &network()).await.unwrap();
    layer.apply(&ctx, &plan).await.unwrap();
}

#[tokio::test]
async fn an_environment_makes_its_load_balancers_listeners_and_cluster_once() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    let layer = m.layer();
    let ctx = ctx("shop", &clock);
    let state = layer.read_environment(&ctx, &environment()).await.unwrap();
    let plan = layer.plan_environment(&state, &network());
    let out = layer.apply_environment(&ctx, &plan).await.unwrap();
    assert_eq!(m.journal.count("CreateLoadBalancer"), 2);
    assert_eq!(m.journal.count("CreateListener"), 3);
    assert_eq!(m.journal.count("CreateCluster"), 1);
    assert_eq!(
        m.journal.count("CreateTargetGroup"),
        0,
        "an environment has none"
    );
    let public = out.load_balancer.unwrap();
    assert_eq!(public.name, "shop-alb");
    assert_eq!(
        public.url(None, "/"),
        format!("https://{}/", public.dns_name)
    );
    let serving: Vec<u16> = public
        .listeners
        .iter()
        .filter(|l| l.serving)
        .map(|l| l.port)
        .collect();
    assert_eq!(serving, vec![443]);
    {
        let s = m.elb.state();
        let https = s
            .listeners
            .iter()
            .find(|l| l.listener.port() == Some(443))
            .unwrap();
        let action = &https.listener.default_actions()[0];
        assert_eq!(action.r#type(), Some(&ActionTypeEnum::FixedResponse));
        assert_eq!(
            action.fixed_response_config().unwrap().status_code(),
            Some("404")
        );
        // The internal load balancer joins the tasks' security group.
        let internal = s
            .load_balancers
            .iter()
            .find(|l| l.lb.load_balancer_name() == Some("shop-internal"))
            .unwrap();
        assert_eq!(internal.lb.security_groups(), ["sg-task"]);
    }
    // Again: nothing to do, no mutating call.
    m.journal.clear();
    let state = layer.read_environment(&ctx, &environment()).await.unwrap();
    let plan = layer.plan_environment(&state, &network());
    assert_eq!(plan.changes().pending().count(), 0, "{}", plan.changes());
    layer.apply_environment(&ctx, &plan).await.unwrap();
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}

#[tokio::test]
async fn web_services_take_rules_by_specificity_and_never_touch_the_environment() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    deploy_environment(&m, &clock).await;
    m.journal.clear();
    deploy_service(&m, &clock, "shop-api", &web(&["/api/*"])).await;
    let mutating = m.journal.mutating();
    for forbidden in [
        "CreateLoadBalancer",
        "CreateListener",
        "ModifyListener",
        "CreateCluster",
        "UpdateCluster",
    ] {
        assert!(!mutating.contains(&forbidden), "{mutating:?}");
    }
    assert_eq!(m.journal.count("CreateTargetGroup"), 1);
    // One rule, on the serving listener only (80 only redirects).
    assert_eq!(m.journal.count("CreateRule"), 1);
    assert!(m.rules("shop-alb", 80).is_empty());
    let created: Vec<CreateRuleInput> = m.journal.inputs();
    let tags = created[0].tags();
    assert!(tags
        .iter()
        .any(|t| t.key() == Some("ecs:stack") && t.value() == Some("shop-api")));

    // A more specific path deployed later comes first, the first rule untouched.
    let api_before = m.rules("shop-alb", 443);
    deploy_service(&m, &clock, "shop-admin", &web(&["/api/admin/*"])).await;
    let rules = m.rules("shop-alb", 443);
    let api = rules.iter().find(|r| r.1 == ["/api/*"]).unwrap();
    let admin = rules.iter().find(|r| r.1 == ["/api/admin/*"]).unwrap();
    assert!(admin.0 < api.0, "{rules:?}");
    assert!(api_before.contains(api));
    assert!(api.2.contains(":targetgroup/shop-api/"));
    assert!(admin.2.contains(":targetgroup/shop-admin/"));

    // Redeploying either, or the environment, changes nothing: the environment leaves its
    // services' rules alone.
    m.journal.clear();
    deploy_environment(&m, &clock).await;
    deploy_service(&m, &clock, "shop-api", &web(&["/api/*"])).await;
    deploy_service(&m, &clock, "shop-admin", &web(&["/api/admin/*"])).await;
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
}

#[tokio::test]
async fn identical_routes_and_a_missing_environment_are_refused_before_any_change() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    let layer = m.layer();
    // No environment yet.
    let err = layer
        .plan(&ctx("shop-api", &clock), &web(&["/api/*"]), &network())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EnvironmentMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("deploy the environment first"),
        "{err}"
    );

    deploy_environment(&m, &clock).await;
    deploy_service(&m, &clock, "shop-api", &web(&["/api/*"])).await;
    m.journal.clear();
    let err = layer
        .plan(&ctx("shop-copy", &clock), &web(&["/api/*"]), &network())
        .await
        .unwrap_err();
    match &err {
        Error::Routing(e) => match e.as_ref() {
            RoutingError::Identical { owner, .. } => assert_eq!(owner.as_deref(), Some("shop-api")),
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("`shop-api`"), "{err}");
    assert!(m.journal.mutating().is_empty());

    // A pinned priority another service holds.
    let taken = m.rules("shop-alb", 443)[0].0;
    let mut pinned = web(&["/pinned/*"]);
    pinned.environment.as_mut().unwrap().routes[0].priority = Some(taken);
    let err = layer
        .plan(&ctx("shop-pinned", &clock), &pinned, &network())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Routing(e) if matches!(**e, RoutingError::PinnedTaken { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_priority_taken_meanwhile_is_taken_again_from_a_fresh_read() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    deploy_environment(&m, &clock).await;
    let layer = m.layer();
    let ctx = ctx("shop-web", &clock);
    let spec = web(&["/*"]);
    let plan = layer.plan(&ctx, &spec, &network()).await.unwrap();
    // Another deploy takes the very priority this plan chose, after the plan's read.
    let chosen = ecs_service::routing::allocate("shop-web", &[Route::paths(["/*"])], &[])
        .unwrap()
        .priorities[0];
    taken_meanwhile(&m, chosen, "/other/*");
    m.journal.clear();
    layer.apply(&ctx, &plan).await.unwrap();
    assert_eq!(m.journal.count("CreateRule"), 2, "{:?}", m.journal.ops());
    assert_eq!(m.journal.count("DescribeRules"), 1);
    let rules = m.rules("shop-alb", 443);
    let mine = rules.iter().find(|r| r.1 == ["/*"]).unwrap();
    // The next free priority of its band, from the fresh read.
    let next = ecs_service::routing::free_priority(
        &Route::paths(["/*"]).conditions(),
        &std::collections::BTreeSet::from([chosen]),
    )
    .unwrap();
    assert_eq!(mine.0, next, "{rules:?}");
    assert_ne!(mine.0, chosen);
}

/// A rule of another service's at `priority` on the listener on 443, as if made meanwhile.
fn taken_meanwhile(m: &Mock, priority: u32, path: &str) {
    let mut s = m.elb.state();
    let listener = s
        .listeners
        .iter_mut()
        .find(|l| l.listener.port() == Some(443))
        .unwrap();
    listener.rules.push(
        ElbRule::builder()
            .rule_arn(format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop-alb/1/2/{priority}"))
            .priority(priority.to_string())
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(PathPatternConditionConfig::builder().values(path).build())
                    .build(),
            )
            .actions(
                ElbAction::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-other/1")
                    .build(),
            )
            .is_default(false)
            .build(),
    );
}

#[tokio::test]
async fn a_pinned_priority_is_kept_or_refused_never_moved() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    deploy_environment(&m, &clock).await;
    let layer = m.layer();
    let ctx = ctx("shop-api", &clock);
    // Pinned at 7; moved to 9 (its own rule gives way first), then to 11.
    let mut spec = web(&["/api/*"]);
    spec.environment.as_mut().unwrap().routes[0].priority = Some(7);
    deploy_service(&m, &clock, "shop-api", &spec).await;
    assert_eq!(m.rules("shop-alb", 443)[0].0, 7);
    // A pin moved onto the priority of the service's own rule for another route.
    let mut two = web(&["/api/*"]);
    two.environment.as_mut().unwrap().routes = vec![
        Route::paths(["/api/*"]).pinned(3),
        Route::paths(["/v2/*"]).pinned(7),
    ];
    deploy_service(&m, &clock, "shop-api", &two).await;
    let rules: Vec<(u32, Vec<String>)> = m
        .rules("shop-alb", 443)
        .into_iter()
        .map(|(p, paths, _)| (p, paths))
        .collect();
    assert_eq!(
        rules,
        vec![
            (3, vec!["/api/*".to_string()]),
            (7, vec!["/v2/*".to_string()])
        ]
    );
    // Another deploy takes a pinned priority between this plan and its apply: refused, not
    // moved.
    let mut three = two.clone();
    three
        .environment
        .as_mut()
        .unwrap()
        .routes
        .push(Route::paths(["/v3/*"]).pinned(20));
    let plan = layer.plan(&ctx, &three, &network()).await.unwrap();
    taken_meanwhile(&m, 20, "/other/*");
    let err = layer.apply(&ctx, &plan).await.unwrap_err();
    assert!(
        matches!(&err, Error::Routing(e) if matches!(**e, RoutingError::PinnedTaken { priority: 20, .. })),
        "{err}"
    );
    assert!(!m.rules("shop-alb", 443).iter().any(|r| r.1 == ["/v3/*"]));
}

#[tokio::test]
async fn an_environment_does_not_delete_a_listener_its_services_have_rules_on() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    deploy_environment(&m, &clock).await;
    deploy_service(&m, &clock, "shop-api", &web(&["/api/*"])).await;
    let layer = m.layer();
    // HTTPS dropped: the 443 listener (with the service's rule) would go.
    let http_only = EnvironmentSpec::builder()
        .load_balancer(FrontSpec::http())
        .internal_load_balancer(FrontSpec::http())
        .build();
    m.journal.clear();
    let err = layer
        .read_environment(&ctx("shop", &clock), &http_only)
        .await
        .unwrap_err();
    match &err {
        Error::EnvironmentInUse { services, .. } => assert_eq!(services, &["shop-api"]),
        other => panic!("{other}"),
    }
    assert!(m.journal.mutating().is_empty());
}

#[tokio::test]
async fn destroying_a_service_leaves_the_others_and_the_environment_alone() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    deploy_environment(&m, &clock).await;
    deploy_service(&m, &clock, "shop-api", &web(&["/api/*"])).await;
    deploy_service(&m, &clock, "shop-admin", &web(&["/api/admin/*"])).await;
    let layer = m.layer();

    // The environment cannot go while it has services: refused before any change.
    m.journal.clear();
    let err = layer
        .destroy_environment(&ctx("shop", &clock))
        .await
        .unwrap_err();
    match &err {
        Error::EnvironmentInUse { services, .. } => {
            assert_eq!(services, &["shop-admin", "shop-api"])
        }
        other => panic!("{other}"),
    }
    assert!(m.journal.mutating().is_empty());

    let admin_rule = m
        .rules("shop-alb", 443)
        .into_iter()
        .find(|r| r.1 == ["/api/admin/*"])
        .unwrap();
    let listeners_before = m.elb.state().listeners.len();
    m.journal.clear();
    layer
        .destroy(&ctx("shop-api", &clock), &web(&["/api/*"]), true)
        .await
        .unwrap();
    let mutating = m.journal.mutating();
    assert_eq!(m.journal.count("DeleteRule"), 1, "{mutating:?}");
    assert_eq!(m.journal.count("DeleteTargetGroup"), 1, "{mutating:?}");
    for forbidden in ["DeleteLoadBalancer", "DeleteListener", "DeleteCluster"] {
        assert!(!mutating.contains(&forbidden), "{mutating:?}");
    }
    assert_eq!(m.rules("shop-alb", 443), vec![admin_rule]);
    assert_eq!(m.elb.state().listeners.len(), listeners_before);
    assert!(m.ecs.state().cluster_active("shop"));
}

#[tokio::test]
async fn a_stack_that_is_its_own_environment_leaves_its_services_rules_alone() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    // A stack with its own load balancer (HTTP on 80, forwarding to its target group).
    let own = ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name("app")
                    .image("nginx:1.27")
                    .ports(vec![8080])
                    .build()])
                .build(),
        )
        .load_balancer(ecs_service::LoadBalancerSpec::builder().build())
        .build();
    deploy_service(&m, &clock, "shop", &own).await;
    // A service of it: its rule on the stack's listener.
    deploy_service(&m, &clock, "shop-api", &web(&["/api/*"])).await;
    assert_eq!(m.rules("shop-alb", 80).len(), 1);
    // Redeploying the stack changes nothing: the service's rule is not the stack's.
    m.journal.clear();
    deploy_service(&m, &clock, "shop", &own).await;
    assert!(
        m.journal.mutating().is_empty(),
        "{:?}",
        m.journal.mutating()
    );
    assert_eq!(m.rules("shop-alb", 80).len(), 1);
}

#[test]
fn a_services_release_policy_reads_its_environments_lease_and_names_its_own_resources() {
    let policy = ecs_service::release_policy(
        &StackName::new("shop-api").unwrap(),
        &web(&["/api/*"]),
        "us-east-1",
        "123456789012",
    )
    .to_string();
    for expected in [
        "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api",
        "repository/shop-api",
        "role/shop-api-execution",
        "parameter/ecs-facade/lease/stack/shop-api/*",
        "parameter/ecs-facade/lease/stack/shop/clock",
    ] {
        assert!(policy.contains(expected), "{expected}: {policy}");
    }
    // The environment's lease is read (and its clock probe written), never taken.
    let value: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let env_read = value["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "TheEnvironmentsLeaseRead")
        .unwrap();
    assert_eq!(
        env_read["Action"],
        serde_json::json!(["ssm:GetParametersByPath"])
    );
}

#[tokio::test]
async fn a_stack_of_its_own_is_not_moved_into_an_environment_silently() {
    let (m, clock) = (Mock::new(), FakeClock::new());
    deploy_environment(&m, &clock).await;
    // `shop-api` first ran on its own: its own cluster is there.
    let alone = ServiceSpec::builder()
        .task(
            TaskSpec::builder()
                .containers(vec![ContainerSpec::builder()
                    .name("app")
                    .image("nginx:1.27")
                    .ports(vec![8080])
                    .build()])
                .build(),
        )
        .build();
    deploy_service(&m, &clock, "shop-api", &alone).await;
    m.journal.clear();
    let err = m
        .layer()
        .plan(&ctx("shop-api", &clock), &web(&["/api/*"]), &network())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Placement(_)), "{err}");
    assert!(err.to_string().contains("destroy it before"), "{err}");
    assert!(m.journal.mutating().is_empty());
}
