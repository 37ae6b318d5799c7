//! ECS Exec against mocked clients (the emulator has no `ExecuteCommand`): a session is
//! opened in a running task's container with exactly the calls it needs; exec off, no task or
//! an unknown container is refused before any session is made; the session's token never
//! shows in `Debug`; a read-only root filesystem without writable paths for Exec's agent is
//! refused at validation.

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::execute_command::ExecuteCommandOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::{
    Container, DeploymentConfiguration, DesiredStatus, ManagedAgent, ManagedAgentName, Service,
    Session, Task,
};
use aws_smithy_mocks::{Rule, RuleMode};
use ecs_core::testing::mock;
use ecs_core::{Context, StackName};
use ecs_service::{
    ContainerSpec, Error, ExecRequest, MountPoint, ServiceClients, ServiceLayer, ServiceSettings,
    ServiceSpec, TaskSpec,
};

const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/shop/0123456789abcdef";
const PENDING: &str = "arn:aws:ecs:us-east-1:123456789012:task/shop/fedcba9876543210";

fn spec() -> ServiceSpec {
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
        .service(
            ServiceSettings::builder()
                .enable_execute_command(true)
                .build(),
        )
        .build()
}

fn service(exec: bool) -> Rule {
    mock!(aws_sdk_ecs::Client::describe_services).then_output(move || {
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .service_name("shop-app")
                    .status("ACTIVE")
                    .enable_execute_command(exec)
                    .deployment_configuration(DeploymentConfiguration::builder().build())
                    .build(),
            )
            .build()
    })
}

fn tasks(running: bool) -> Rule {
    mock!(aws_sdk_ecs::Client::list_tasks)
        .match_requests(|r| {
            r.cluster() == Some("shop")
                && r.service_name() == Some("shop-app")
                && r.desired_status() == Some(&DesiredStatus::Running)
        })
        .then_output(move || {
            let out = ListTasksOutput::builder();
            if running {
                out.task_arns(PENDING).task_arns(TASK).build()
            } else {
                out.build()
            }
        })
}

fn describe_task() -> Rule {
    mock!(aws_sdk_ecs::Client::describe_tasks)
        .match_requests(|r| r.tasks() == [PENDING, TASK])
        .then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(
                    // A task still starting, then one ready.
                    Task::builder()
                        .task_arn(PENDING)
                        .last_status("PENDING")
                        .enable_execute_command(true)
                        .containers(Container::builder().name("app").build())
                        .build(),
                )
                .tasks(
                    Task::builder()
                        .task_arn(TASK)
                        .last_status("RUNNING")
                        .enable_execute_command(true)
                        .containers(
                            Container::builder()
                                .name("app")
                                .runtime_id("rt-42")
                                .managed_agents(
                                    ManagedAgent::builder()
                                        .name(ManagedAgentName::ExecuteCommandAgent)
                                        .last_status("RUNNING")
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
}

fn execute() -> Rule {
    mock!(aws_sdk_ecs::Client::execute_command)
        .match_requests(|r| {
            r.cluster() == Some("shop")
                && r.task() == Some(TASK)
                && r.container() == Some("app")
                && r.interactive() == Some(true)
                && r.command() == Some("ls -la /")
        })
        .then_output(|| {
            ExecuteCommandOutput::builder()
                .session(
                    Session::builder()
                        .session_id("sess-1")
                        .stream_url(
                            "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/sess-1",
                        )
                        .token_value("sentinel-token")
                        .build(),
                )
                .build()
        })
}

fn layer(ecs: &[&Rule]) -> ServiceLayer {
    let none: Vec<Rule> = Vec::new();
    ServiceLayer::from_clients(ServiceClients {
        ecr: ecs_core::mock_client!(aws_sdk_ecr, RuleMode::MatchAny, &none),
        iam: ecs_core::mock_client!(aws_sdk_iam, RuleMode::MatchAny, &none),
        ecs: ecs_core::mock_client!(aws_sdk_ecs, RuleMode::MatchAny, ecs.iter().copied()),
        elb: ecs_core::mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, &none),
        ec2: ecs_core::mock_client!(aws_sdk_ec2, RuleMode::MatchAny, &none),
    })
}

fn ctx() -> Context {
    Context::builder()
        .stack(StackName::new("shop").unwrap())
        .build()
}

#[tokio::test]
async fn a_session_opens_in_a_running_tasks_container() {
    let (svc, list, describe, run) = (service(true), tasks(true), describe_task(), execute());
    let layer = layer(&[&svc, &list, &describe, &run]);
    let request = ExecRequest::builder().command("ls -la /").build();
    let session = layer.exec(&ctx(), &spec(), &request).await.unwrap();
    assert_eq!(session.task_arn, TASK);
    assert_eq!(session.container, "app");
    assert_eq!(session.session_id, "sess-1");
    assert_eq!(session.token, "sentinel-token");
    assert_eq!(session.target(), "ecs:shop_0123456789abcdef_rt-42");
    assert!(!format!("{session:?}").contains("sentinel-token"));
    for rule in [&svc, &list, &describe, &run] {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn exec_off_no_task_or_no_such_container_is_refused_before_any_session() {
    let request = ExecRequest::builder().command("ls -la /").build();

    let (svc, list, run) = (service(false), tasks(true), execute());
    let err = layer(&[&svc, &list, &run])
        .exec(&ctx(), &spec(), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Exec(m) if m.contains("`exec: true`")),
        "{err}"
    );
    assert_eq!((list.num_calls(), run.num_calls()), (0, 0));

    let (svc, list, run) = (service(true), tasks(false), execute());
    let err = layer(&[&svc, &list, &run])
        .exec(&ctx(), &spec(), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Exec(m) if m.contains("runs no task")),
        "{err}"
    );
    assert_eq!(run.num_calls(), 0);

    // Tasks started before exec was turned on cannot be exec'd into.
    let (svc, list, run) = (service(true), tasks(true), execute());
    let old_tasks = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
        DescribeTasksOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn(TASK)
                    .last_status("RUNNING")
                    .enable_execute_command(false)
                    .build(),
            )
            .build()
    });
    let err = layer(&[&svc, &list, &old_tasks, &run])
        .exec(&ctx(), &spec(), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Exec(m) if m.contains("started before exec was on")),
        "{err}"
    );
    assert_eq!(run.num_calls(), 0);

    let svc = service(true);
    let mut other = request.clone();
    other.container = Some("sidecar".to_string());
    let err = layer(&[&svc])
        .exec(&ctx(), &spec(), &other)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Exec(m) if m.contains("no container `sidecar`") && m.contains("app")),
        "{err}"
    );
    assert_eq!(svc.num_calls(), 0, "refused before any call");
}

#[test]
fn a_read_only_root_filesystem_needs_writable_paths_for_execs_agent() {
    let mut s = spec();
    s.task.containers[0].readonly_root_filesystem = true;
    let problems = s.validate().unwrap_err();
    assert!(
        problems.mentions("service.enable_execute_command"),
        "{problems}"
    );
    // Writable volumes where the agent writes make it valid.
    s.task.containers[0].mount_points = ["/var/lib/amazon", "/var/log/amazon"]
        .into_iter()
        .map(|path| MountPoint::builder().volume("agent").path(path).build())
        .collect();
    let problems = s
        .validate()
        .err()
        .map(|p| p.to_string())
        .unwrap_or_default();
    assert!(!problems.contains("enable_execute_command"), "{problems}");
    // Without exec, a read-only root filesystem needs nothing more.
    let mut s = spec();
    s.task.containers[0].readonly_root_filesystem = true;
    s.service.enable_execute_command = false;
    assert!(s.validate().is_ok());
}
