//! Image-only releases: a new image for one container of one service, whatever else the
//! spec says — exactly one `RegisterTaskDefinition` (a copy of the revision the service runs,
//! with the new image and the stack's tags) and one `UpdateService` naming it, then the wait.
//!
//! The revision carries the stack's tags and `ecs:origin=image-release`, so that a later plan
//! of the manifest says in plain words when it would put the manifest's image back.
//!
//! The selector is a service and a container. A stack has one service today, so
//! [`ImageRelease::service`] must name it or be left out; an environment with several services
//! (web, backend, worker, job) selects one the same way, by its application name. A task with
//! one container needs no container name; with several, [`ImageRelease::container`] names the
//! one whose image changes (the others keep theirs).

use aws_sdk_ecs::Client;
use ecs_core::{Context, Event, Problems, StackName};
use serde_json::{json, Value};
use typed_builder::TypedBuilder;

use crate::names::{partition, ServiceNames};
use crate::service::{self, RolloutReport};
use crate::spec::{valid_image, ServiceSpec};
use crate::taskdef::{self, RUNNING_IMAGE};
use crate::{tagging, Result};

/// What an image-only release ([`ServiceLayer::release_image`](crate::ServiceLayer::release_image))
/// changes: the image of one container of one service. The service is named by its
/// application name (a stack has one today; an environment selects one of several the same
/// way); the container is needed only when the task has several.
///
/// ```
/// let release = ecs_service::ImageRelease::builder()
///     .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v43")
///     .build();
/// assert_eq!(release.container, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, TypedBuilder, serde::Serialize)]
#[non_exhaustive]
pub struct ImageRelease {
    /// The image: a tag (`repo:v43`) or a digest (`repo@sha256:…`) reference.
    #[builder(setter(into))]
    pub image: String,
    /// The service, by its application name ([`ServiceSpec::name`]); `None`: the stack's only
    /// service.
    #[builder(default, setter(into, strip_option))]
    pub service: Option<String>,
    /// The container; `None`: the task's only container (required when it has several).
    #[builder(default, setter(into, strip_option))]
    pub container: Option<String>,
}

/// What an image-only release did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// The ECS service.
    pub service: String,
    /// The container whose image changed.
    pub container: String,
    /// The image it ran before.
    pub previous_image: String,
    /// The image it runs now.
    pub image: String,
    /// The revision the service ran before.
    pub previous_task_definition: String,
    /// The revision the service runs now (the one registered, unless nothing changed).
    pub task_definition: String,
    /// Whether a revision was registered and the service updated: `false` when the container
    /// ran this image already (no mutating call).
    pub released: bool,
    /// The deployment the update started.
    pub deployment: Option<String>,
    /// The rollout waited for, when the spec's `rollout.wait` is on.
    pub rollout: Option<RolloutReport>,
}

/// Checks the release against the spec before any call: the image's form, the service.
fn validate(spec: &ServiceSpec, release: &ImageRelease) -> Result<()> {
    let mut p = Problems::new();
    if !valid_image(&release.image) || release.image == RUNNING_IMAGE {
        p.push(
            "image",
            "must be an image reference (a tag or a digest) without spaces, at most 255",
        );
    }
    if let Some(s) = release.service.as_deref().filter(|s| *s != spec.name) {
        p.push(
            "service",
            format!(
                "the stack has no service `{s}`: its service is `{}`",
                spec.name
            ),
        );
    }
    if let Some(c) = &release.container {
        if !spec.task.containers.iter().any(|x| &x.name == c) {
            p.push(
                "container",
                format!("the task has no container `{c}`: {}", names(spec)),
            );
        }
    } else if spec.task.containers.len() > 1 {
        p.push(
            "container",
            format!("the task has several containers, name one: {}", names(spec)),
        );
    }
    Ok(p.into_result()?)
}

fn names(spec: &ServiceSpec) -> String {
    let names: Vec<String> = spec
        .task
        .containers
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    format!("it has {}", names.join(", "))
}

/// An image-only release read and decided ([`ServiceLayer::plan_release`](crate::ServiceLayer::plan_release)):
/// what it would do, and what [`ServiceLayer::apply_release`](crate::ServiceLayer::apply_release)
/// needs to do it. A caller checks [`changes_anything`](Self::changes_anything) first, and
/// takes the stack's lease only when it does.
#[derive(Debug, Clone)]
pub struct ReleasePlan {
    report: ReleaseReport,
    want: Option<taskdef::TaskDef>,
    names: ServiceNames,
    target_group: Option<String>,
    wait: Option<u64>,
}

impl ReleasePlan {
    /// Whether the release registers a revision and updates the service: `false` when the
    /// container runs the image already.
    pub fn changes_anything(&self) -> bool {
        self.want.is_some()
    }

    /// What the release did, or would do (before [`apply_release`](crate::ServiceLayer::apply_release)).
    pub fn report(&self) -> &ReleaseReport {
        &self.report
    }
}

/// Reads the stack's service and the revision it runs, and decides the release (no change).
pub(crate) async fn plan(
    ctx: &Context,
    ecs: &Client,
    spec: &ServiceSpec,
    release: &ImageRelease,
) -> Result<ReleasePlan> {
    validate(spec, release)?;
    let names = ServiceNames::new(ctx.stack(), spec);
    let live = service::observe(ctx, ecs, &names.cluster, &names.service)
        .await?
        .filter(|s| !s.draining)
        .ok_or_else(|| ecs_core::resource::NotFound::new(service::KIND, &names.service))?;
    crate::owned_or_conflict::<service::Service<'_>>(ctx, &names.service, &live)?;
    let running = taskdef::describe(ctx, ecs, &live.task_definition)
        .await?
        .ok_or_else(|| ecs_core::resource::NotFound::new(taskdef::KIND, &live.task_definition))?;
    let container = match &release.container {
        Some(c) => c.clone(),
        None => spec.task.containers[0].name.clone(),
    };
    let Some(previous_image) = running
        .definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container.as_str()))
        .map(|c| c.image().unwrap_or_default().to_string())
    else {
        return Err(ecs_core::resource::NotFound::new(
            format!("container `{container}` in"),
            &live.task_definition,
        )
        .into());
    };
    let report = ReleaseReport {
        service: names.service.clone(),
        container: container.clone(),
        previous_image: previous_image.clone(),
        image: release.image.clone(),
        previous_task_definition: live.task_definition.clone(),
        task_definition: live.task_definition.clone(),
        released: false,
        deployment: None,
        rollout: None,
    };
    let want = (previous_image != release.image).then(|| {
        let mut want = running.definition.clone();
        want.container_definitions = Some(
            want.container_definitions()
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    if c.name() == Some(container.as_str()) {
                        c.image = Some(release.image.clone());
                    }
                    c
                })
                .collect(),
        );
        taskdef::TaskDef {
            want,
            tags: tagging::StackTags::new(ctx)
                .of(taskdef::LOGICAL)
                .with(taskdef::ORIGIN_TAG, taskdef::RELEASED),
        }
    });
    Ok(ReleasePlan {
        report,
        want,
        // The target group the stack's service sends traffic to: its health is reported
        // while waiting (no other load balancer read, so the CI policy stays small).
        target_group: live.load_balancers.first().map(|(tg, _, _)| tg.clone()),
        wait: spec
            .service
            .rollout
            .wait
            .then_some(spec.service.rollout.timeout),
        names,
    })
}

/// Carries out `planned`: one `RegisterTaskDefinition`, one `UpdateService`, the wait; no
/// call when it changes nothing.
pub(crate) async fn apply(
    ctx: &Context,
    ecs: &Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    planned: &ReleasePlan,
) -> Result<ReleaseReport> {
    let mut report = planned.report.clone();
    let Some(td) = &planned.want else {
        return Ok(report);
    };
    let names = &planned.names;
    let td_resource = format!("{} {}", taskdef::KIND, names.family);
    ctx.emit(Event::Started {
        resource: td_resource.clone(),
        action: format!(
            "register revision with {} in `{}`",
            report.image, report.container
        ),
    });
    let revision = td.register(ctx, ecs).await?;
    ctx.emit(Event::Done {
        resource: td_resource,
        detail: format!("revision {}", taskdef::revision_of(&revision.arn)),
    });
    let deployment = service::point_at(
        ctx,
        ecs,
        (&names.cluster, &names.service),
        &revision.arn,
        format!("update to revision {}", taskdef::revision_of(&revision.arn)),
    )
    .await?;
    report.task_definition = revision.arn;
    report.released = true;
    report.deployment = Some(deployment.clone());
    if let Some(timeout) = planned.wait {
        report.rollout = Some(
            service::wait_rollout(
                ctx,
                ecs,
                planned.target_group.as_deref().map(|t| (elb, t)),
                &names.cluster,
                &names.service,
                &deployment,
                &report.task_definition,
                std::time::Duration::from_secs(timeout),
            )
            .await?,
        );
    }
    Ok(report)
}

/// The least-privilege IAM policy a CI principal needs to release images of the service
/// `spec` describes in `stack` (`deploy FILE --image URI`) in `account` and `region`: log in
/// to the registry and push to the stack's repository (when the spec has one); hold the
/// stack's lease (SSM parameters under its own path); describe the
/// service and the revision it runs; register the new revision (with its tags: `TagResource`
/// only on creation) and pass the stack's two roles to ECS tasks; update the service; follow
/// the rollout (the service, its stopped tasks, its targets' health); and `status` when a
/// release failed (the load balancer's describes, the alarms' states). Actions AWS does not
/// scope to a resource (`RegisterTaskDefinition`, `DescribeTaskDefinition`, `ListTasks`, the
/// load balancer's describes, `DescribeAlarms`, `GetAuthorizationToken`) have `"*"`.
///
/// ```
/// let stack = ecs_core::StackName::new("shop").unwrap();
/// let spec = ecs_service::ServiceSpec::builder()
///     .task(ecs_service::TaskSpec::builder()
///         .containers(vec![ecs_service::ContainerSpec::builder().name("app").image("nginx").build()])
///         .build())
///     .build();
/// let policy = ecs_service::release_policy(&stack, &spec, "us-east-1", "123456789012");
/// assert!(policy.to_string().contains("arn:aws:ecs:us-east-1:123456789012:service/shop/shop-app"));
/// ```
pub fn release_policy(stack: &StackName, spec: &ServiceSpec, region: &str, account: &str) -> Value {
    let names = ServiceNames::new(stack, spec);
    let p = partition(region);
    let ecs = |resource: String| format!("arn:{p}:ecs:{region}:{account}:{resource}");
    let role = |name: &str| format!("arn:{p}:iam::{account}:role/{name}");
    let mut statements = Vec::new();
    if spec.repository.is_some() {
        statements.push(json!({
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        }));
        statements.push(json!({
            "Sid": "PushToTheStacksRepository",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:DescribeImages",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            "Resource": format!("arn:{p}:ecr:{region}:{account}:repository/{}", names.repository),
        }));
    }
    statements.extend([
        json!({
            "Sid": "ReadAndRegisterRevisions",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"],
            "Resource": "*",
        }),
        json!({
            "Sid": "TagTheRevisionItRegisters",
            "Effect": "Allow",
            "Action": ["ecs:TagResource"],
            "Resource": ecs(format!("task-definition/{}:*", names.family)),
            "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        }),
        json!({
            "Sid": "PassTheStacksRolesToTasks",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [role(&names.execution_role), role(&names.task_role)],
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        }),
        json!({
            "Sid": "UpdateAndFollowTheService",
            "Effect": "Allow",
            "Action": ["ecs:DescribeServices", "ecs:UpdateService"],
            "Resource": ecs(format!("service/{}/{}", names.cluster, names.service)),
        }),
        json!({
            "Sid": "WhyTasksStopped",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks"],
            "Resource": ecs(format!("task/{}/*", names.cluster)),
        }),
        json!({
            "Sid": "ListTheClustersTasks",
            "Effect": "Allow",
            "Action": ["ecs:ListTasks"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"ecs:cluster": ecs(format!("cluster/{}", names.cluster))}},
        }),
    ]);
    // The stack's lease (`ecs_core::lease`, in SSM Parameter Store): read, create, renew,
    // release, and remove older generations, under the stack's own path only.
    let lease = ecs_core::lease::LeaseScope::stack(stack).path();
    statements.push(json!({
        "Sid": "TheStacksLease",
        "Effect": "Allow",
        "Action": [
            "ssm:DeleteParameters",
            "ssm:GetParameter",
            "ssm:GetParametersByPath",
            "ssm:PutParameter",
        ],
        "Resource": [
            format!("arn:{p}:ssm:{region}:{account}:parameter{lease}"),
            format!("arn:{p}:ssm:{region}:{account}:parameter{lease}/*"),
        ],
    }));
    // A service of an environment gives way to a run writing its environment: it reads the
    // environment's lease (its generations, and the clock probe it writes to judge their
    // expiry), and never takes it.
    if let Some(env) = spec
        .environment
        .as_ref()
        .and_then(|e| StackName::new(e.environment.clone()).ok())
    {
        let lease = ecs_core::lease::LeaseScope::stack(&env).path();
        statements.push(json!({
            "Sid": "TheEnvironmentsLeaseRead",
            "Effect": "Allow",
            "Action": ["ssm:GetParametersByPath"],
            "Resource": [
                format!("arn:{p}:ssm:{region}:{account}:parameter{lease}"),
                format!("arn:{p}:ssm:{region}:{account}:parameter{lease}/*"),
            ],
        }));
        statements.push(json!({
            "Sid": "TheEnvironmentsLeaseClock",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:PutParameter"],
            "Resource": format!("arn:{p}:ssm:{region}:{account}:parameter{lease}/clock"),
        }));
    }
    // Target health while waiting, and `status` when a release failed (the load balancer,
    // its target group and their health; the alarms' states): read-only, and AWS does not
    // scope these describes to a resource.
    statements.push(json!({
        "Sid": "StatusOfTheStack",
        "Effect": "Allow",
        "Action": ["cloudwatch:DescribeAlarms", "elasticloadbalancing:Describe*"],
        "Resource": "*",
    }));
    json!({"Version": "2012-10-17", "Statement": statements})
}
